"""Tests of depthsense.metrics: hand-computed values, per-image averaging, guards."""

from __future__ import annotations

import importlib
import math
import pkgutil

import pytest
import torch

from depthsense import metrics as M
from depthsense.errors import ShapeError


def _example():
    """1x1x2x2 example; the bottom-right pixel has no GT (pred 7 there must be ignored)."""
    gt = torch.tensor([[[[2.0, 4.0], [10.0, 0.0]]]])
    pred = torch.tensor([[[[2.5, 4.0], [8.0, 7.0]]]])
    return pred, gt


# --------------------------------------------------------------------------- values by hand


def test_hand_computed_kitti_metrics():
    pred, gt = _example()
    out = M.per_image_metrics(pred, gt)
    # errors 0.5, 0, -2 m over 3 valid pixels
    assert out["mae"].item() == pytest.approx((0.5 + 0 + 2) / 3 * 1000)  # 833.33 mm
    assert out["rmse"].item() == pytest.approx(math.sqrt((0.25 + 0 + 4) / 3) * 1000)  # 1190.24 mm
    # inverse: 1/2.5-1/2 = -0.1, 0, 1/8-1/10 = 0.025 (1/m) -> *1000 for 1/km
    assert out["imae"].item() == pytest.approx((0.1 + 0.025) / 3 * 1000)  # 41.67 1/km
    assert out["irmse"].item() == pytest.approx(math.sqrt((0.01 + 0.025**2) / 3) * 1000)
    assert out["absrel"].item() == pytest.approx((0.5 / 2 + 0 + 2 / 10) / 3)  # 0.15
    assert out["sqrel"].item() == pytest.approx((0.25 / 2 + 0 + 4 / 10) / 3)  # 0.175 m
    # ratios 1.25, 1, 1.25: the threshold is strict, so only the exact pixel passes delta1
    assert out["delta1"].item() == pytest.approx(1 / 3)
    assert out["delta2"].item() == pytest.approx(1.0)
    assert out["delta3"].item() == pytest.approx(1.0)
    for name in out:
        assert out[name].shape == (1,)


def test_individual_functions_match_per_image_metrics():
    torch.manual_seed(0)
    gt = torch.rand(3, 1, 4, 5) * 10 * (torch.rand(3, 1, 4, 5) > 0.3)
    pred = torch.rand(3, 1, 4, 5) * 10
    out = M.per_image_metrics(pred, gt)
    for name, fn in [("mae", M.mae), ("rmse", M.rmse), ("imae", M.imae), ("irmse", M.irmse),
                     ("absrel", M.absrel), ("sqrel", M.sqrel)]:
        torch.testing.assert_close(fn(pred, gt), out[name])
    for k in (1, 2, 3):
        torch.testing.assert_close(M.delta(pred, gt, k=k), out[f"delta{k}"])
    with pytest.raises(ValueError, match="1.25"):
        M.delta(pred, gt, k=4)


def test_delta_thresholds_both_sides():
    gt = torch.ones(1, 1, 1, 4)
    pred = torch.tensor([[[[1.2, 1.3, 1.6, 2.0]]]])  # ratios 1.2 | 1.3 | 1.6 | 2.0
    for p, g in [(pred, gt), (gt, pred)]:  # max(d/g, g/d) is symmetric
        assert M.delta(p, g, k=1).item() == pytest.approx(1 / 4)  # < 1.25
        assert M.delta(p, g, k=2).item() == pytest.approx(2 / 4)  # < 1.5625
        assert M.delta(p, g, k=3).item() == pytest.approx(3 / 4)  # < 1.953125


def test_non_positive_prediction_is_a_large_finite_error():
    gt = torch.tensor([[1.0, 2.0]])
    pred = torch.tensor([[0.0, -2.0]])
    out = M.per_image_metrics(pred, gt)
    assert all(torch.isfinite(v).all() for v in out.values())
    # clamped to 1 mm: |1/0.001 - 1| = 999 and |1/0.001 - 1/2| = 999.5 (1/m)
    assert out["imae"].item() == pytest.approx((999 + 999.5) / 2 * 1000, rel=1e-5)
    # a sign flip must not pass a ratio test (naively max(-1, -1) = -1 < 1.25)
    assert out["delta1"].item() == 0.0 and out["delta3"].item() == 0.0
    assert out["mae"].item() == pytest.approx((1 + 4) / 2 * 1000)


# --------------------------------------------------------------------------- averaging, skipping


def test_per_image_average_differs_from_pixel_pooling():
    gt = torch.zeros(2, 1, 2, 2)
    pred = torch.zeros(2, 1, 2, 2)
    gt[0, 0, 0, 0], pred[0, 0, 0, 0] = 5.0, 6.0  # image 0: one pixel, error 1 m
    gt[1, 0, :, :3] = 3.0  # image 1: four pixels, error 0 ...
    gt[1, 0, 1, 1] = 0.0  # ... made three
    pred[1] = gt[1]
    out = M.depth_metrics(pred, gt)
    assert out["images"] == 2
    assert out["mae"] == pytest.approx((1000 + 0) / 2)  # per image: 500 mm
    pooled = 1000 / (1 + 3)
    assert out["mae"] != pytest.approx(pooled)


def test_image_without_gt_is_skipped_not_nan():
    gt = torch.zeros(3, 1, 2, 2)
    pred = torch.ones(3, 1, 2, 2)
    gt[0, 0, 0, 0] = 2.0  # error 1 m
    gt[2, 0, 1, 1] = 4.0  # error 3 m; image 1 has no GT at all
    per = M.per_image_metrics(pred, gt)
    assert torch.equal(M.valid_images(gt), torch.tensor([True, False, True]))
    assert per["mae"][1].item() == 0.0 and torch.isfinite(per["rmse"]).all()
    out = M.depth_metrics(pred, gt)
    assert out["images"] == 2
    assert out["mae"] == pytest.approx(2000.0)  # (1000 + 3000) / 2, not / 3
    assert all(v is not None and math.isfinite(v) for v in out.values())


def test_all_invalid_batch_returns_none_and_zero_images():
    out = M.depth_metrics(torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3))
    assert out["images"] == 0
    assert set(out) == {"images", *M.DEFAULT_METRICS}
    assert all(out[n] is None for n in M.DEFAULT_METRICS)
    rel = M.relative_metrics(torch.ones(1, 1, 3, 3), torch.zeros(1, 1, 3, 3))
    assert rel["images"] == 0 and rel["whdr"] is None


def test_mask_narrows_valid_set_and_broadcasts():
    gt = torch.full((2, 1, 2, 2), 2.0)
    pred = gt.clone()
    pred[:, 0, 0, 0] = 5.0  # error 3 m at the top-left pixel of each image
    assert M.mae(pred, gt).tolist() == pytest.approx([750.0, 750.0])
    keep = torch.ones(1, 1, 2, 2)  # (1,1,H,W) broadcast over the batch
    keep[0, 0, 0, 0] = 0
    assert M.mae(pred, gt, keep).tolist() == [0.0, 0.0]
    assert M.mae(pred, gt, keep.bool()).tolist() == [0.0, 0.0]
    # a mask cannot add pixels without GT
    gt[1] = 0
    assert M.valid_images(gt, torch.ones(2, 1, 2, 2)).tolist() == [True, False]
    with pytest.raises(ShapeError, match="mask"):
        M.mae(pred, gt, torch.ones(1, 1, 3, 3))
    with pytest.raises(ShapeError, match="mask"):
        M.mae(pred[:1], gt[:1], torch.ones(2, 1, 2, 2))  # mask larger than the batch


def test_garbage_at_invalid_pixels_cannot_change_metrics():
    pred, gt = _example()
    clean = M.per_image_metrics(pred, gt)
    for bad in (float("nan"), float("inf"), -1e30):
        p = pred.clone()
        p[0, 0, 1, 1] = bad  # the pixel without GT
        dirty = M.per_image_metrics(p, gt)
        for name in clean:
            torch.testing.assert_close(dirty[name], clean[name])
    # and a NaN ground-truth pixel counts as missing
    g = gt.clone()
    g[0, 0, 1, 1] = float("nan")
    torch.testing.assert_close(M.mae(pred, g), clean["mae"])


def test_nan_prediction_at_valid_pixel_raises_in_summary():
    pred, gt = _example()
    pred[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN/Inf"):
        M.depth_metrics(pred, gt)


# --------------------------------------------------------------------------- shapes, dtypes


def test_shapes_are_normalised():
    pred, gt = _example()
    ref = M.mae(pred, gt)
    torch.testing.assert_close(M.mae(pred[0, 0], gt[0, 0]), ref)  # (H,W)
    torch.testing.assert_close(M.mae(pred[0], gt[0]), ref)  # (1,H,W)
    assert M.mae(pred[:, 0].expand(3, 2, 2), gt[:, 0].expand(3, 2, 2)).shape == (3,)  # (B,H,W)


@pytest.mark.parametrize(
    "pred, gt, match",
    [
        (torch.ones(1, 3, 2, 2), torch.ones(1, 3, 2, 2), "single-channel"),
        (torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 3), r"pred has shape \(1, 1, 2, 2\) but gt has \(1, 1, 2, 3\)"),
        (torch.ones(2, 2), torch.ones(2, 2, dtype=torch.int32), "divided by 256"),
        (torch.ones(2), torch.ones(2), "expected"),
    ],
)
def test_bad_inputs_raise_shape_error(pred, gt, match):
    with pytest.raises(ShapeError, match=match):
        M.per_image_metrics(pred, gt)


def test_unknown_metric_lists_known_names():
    with pytest.raises(KeyError, match="mae"):
        M.per_image_metrics(torch.ones(2, 2), torch.ones(2, 2), names=["maee"])
    with pytest.raises(KeyError, match="known"):
        M.MetricAccumulator(["nope"])


def test_dtype_and_device_preserved():
    pred, gt = _example()
    out = M.per_image_metrics(pred.double(), gt.double())
    assert all(v.dtype == torch.float64 and v.device == pred.device for v in out.values())
    ref = M.per_image_metrics(pred, gt)
    for name in ref:
        torch.testing.assert_close(out[name].float(), ref[name])
    # half precision is computed in float32: a 99 m error squared in mm overflows fp16
    big = M.rmse(torch.full((1, 1, 2, 2), 100.0, dtype=torch.float16), torch.ones(1, 1, 2, 2, dtype=torch.float16))
    assert big.dtype == torch.float32 and big.item() == pytest.approx(99000.0)


def test_units_and_names_are_consistent():
    assert set(M.METRIC_UNITS) == set(M.DEFAULT_METRICS) | set(M.RELATIVE_METRICS)
    assert M.METRIC_UNITS["mae"] == "mm" and M.METRIC_UNITS["irmse"] == "1/km"
    assert M.HIGHER_IS_BETTER <= set(M.METRIC_UNITS)
    assert set(M.__all__) <= set(dir(M))


def test_the_package_re_exports_every_public_name_of_its_modules():
    modules = [info.name for info in pkgutil.iter_modules(M.__path__)]
    assert {"names", "_inputs", "per_image", "alignment", "pairs", "accumulator"} <= set(modules)
    for name in modules:
        module = importlib.import_module(f"depthsense.metrics.{name}")
        for public in module.__all__:
            assert public in M.__all__ and getattr(M, public) is getattr(module, public), (name, public)


def test_metric_unit_on_relative_ground_truth():
    assert M.metric_unit("ssi_rmse") == "m" and M.metric_unit("rmse") == "mm" and M.metric_unit("whdr") == ""
    assert M.metric_unit("ssi_rmse", metric_depth=False) == ""  # aligned to relative depth: no unit
    assert M.metric_unit("rmse", metric_depth=False) == "mm"  # only the relative metrics lose theirs
    with pytest.raises(TypeError):
        M.metric_unit("ssi_rmse", "redweb")  # the data set's ability, never its name
    with pytest.raises(KeyError):
        M.metric_unit("rmse_typo")


# --------------------------------------------------------------------------- accumulator


def _random_batch(seed: int, b: int = 3):
    g = torch.Generator().manual_seed(seed)
    gt = (torch.rand(b, 1, 4, 6, generator=g) * 20 + 1) * (torch.rand(b, 1, 4, 6, generator=g) > 0.5)
    pred = torch.rand(b, 1, 4, 6, generator=g) * 20 + 0.5
    gt[0] = 0  # one image without GT per batch
    return pred, gt


def test_accumulator_equals_one_shot_and_is_order_free():
    (p1, g1), (p2, g2) = _random_batch(1), _random_batch(2, b=2)
    one_shot = M.depth_metrics(torch.cat([p1, p2]), torch.cat([g1, g2]))
    acc = M.MetricAccumulator()
    acc.update(p2, g2)
    acc.update(p1, g1)
    out = acc.compute()
    assert out["images"] == one_shot["images"] == 3
    for name in M.DEFAULT_METRICS:
        assert out[name] == pytest.approx(one_shot[name], rel=1e-6)
    acc.reset()
    assert acc.compute()["images"] == 0 and acc.compute()["mae"] is None


def test_accumulator_merge_and_state_round_trip():
    (p1, g1), (p2, g2) = _random_batch(3), _random_batch(4)
    a, b = M.MetricAccumulator(), M.MetricAccumulator()
    a.update(p1, g1)
    b.update(p2, g2)
    expected = M.depth_metrics(torch.cat([p1, p2]), torch.cat([g1, g2]))
    merged = M.MetricAccumulator().merge(a).merge(b)  # empty first: merge copies
    assert merged.compute() == pytest.approx(expected, rel=1e-6)
    # DDP style: sum the state vectors, load them into a fresh accumulator
    c = M.MetricAccumulator()
    c.load_state(a.state() + b.state())
    assert c.compute() == pytest.approx(expected, rel=1e-6)
    assert M.MetricAccumulator().state().tolist() == [0.0] * (1 + len(M.DEFAULT_METRICS))
    with pytest.raises(ShapeError, match="count"):
        c.load_state(torch.zeros(3))
    with pytest.raises(ValueError, match="names differ"):
        a.merge(M.MetricAccumulator(["mae"]))


def test_accumulator_all_reduce_single_process_gloo(tmp_path):
    import torch.distributed as dist

    p, g = _random_batch(5)
    acc = M.MetricAccumulator()
    acc.update(p, g)
    before = acc.compute()
    acc.all_reduce()  # not initialised: no-op
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        acc.all_reduce()
    finally:
        dist.destroy_process_group()
    assert acc.compute() == pytest.approx(before)


def test_accumulator_keeps_float64_sums_and_ignores_grad():
    p, g = _random_batch(6)
    p = p.double().requires_grad_()
    acc = M.MetricAccumulator(["mae"])
    acc.update(p, g.double())
    assert acc.state().dtype == torch.float64
    assert acc.compute()["mae"] == pytest.approx(
        M.depth_metrics(p.detach(), g.double(), names=["mae"])["mae"])


# --------------------------------------------------------------------------- relative depth


def test_ssi_align_recovers_affine_prediction_exactly():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 1, 5, 5, generator=g, dtype=torch.float64) * 10 + 1
    pred = torch.empty_like(gt)
    pred[0] = (gt[0] - 0.7) / 2.5  # gt = 2.5 * pred + 0.7
    pred[1] = -(gt[1] - 3.0) * 4  # negative scale is allowed
    gt[:, :, 0, 0] = 0  # one missing pixel each; its prediction is garbage
    pred[:, :, 0, 0] = 1e6
    s, t = M.ssi_scale_shift(pred, gt)
    torch.testing.assert_close(s, torch.tensor([2.5, -0.25], dtype=torch.float64))
    torch.testing.assert_close(t, torch.tensor([0.7, 3.0], dtype=torch.float64))
    aligned = M.ssi_align(pred, gt)
    assert aligned.shape == pred.shape and aligned.dtype == torch.float64
    valid = gt > 0
    torch.testing.assert_close(aligned[valid], gt[valid], rtol=0, atol=1e-10)


def test_ssi_align_guards():
    gt = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]])
    const = torch.full_like(gt, 5.0)
    # zero variance: shift only, the result is the mean of gt everywhere
    torch.testing.assert_close(M.ssi_align(const, gt), torch.full_like(gt, 3.0))
    # one valid pixel: shift only, exact there
    one = torch.zeros_like(gt)
    one[0, 0, 1, 0] = 3.0
    pred = torch.tensor([[[[1.0, 4.0], [2.0, 8.0]]]])
    assert M.ssi_align(pred, one)[0, 0, 1, 0].item() == pytest.approx(3.0)
    # no valid pixel: unchanged, no NaN
    torch.testing.assert_close(M.ssi_align(pred, torch.zeros_like(gt)), pred)


def test_relative_metrics_perfect_affine_prediction():
    gt = torch.linspace(1, 20, 64).reshape(1, 1, 8, 8)
    out = M.relative_metrics(3 * gt - 2, gt)
    assert out["images"] == 1
    assert out["ssi_absrel"] == pytest.approx(0, abs=1e-5)
    assert out["ssi_rmse"] == pytest.approx(0, abs=1e-4)
    assert out["ssi_delta1"] == 1.0 and out["whdr"] == 0.0


def test_whdr_identical_zero_reversed_one():
    gt = (1.1 ** torch.arange(30.0)).reshape(1, 1, 5, 6)  # any two pixels differ >= 10 %
    assert M.whdr(gt, gt).item() == 0.0
    # 1/gt reverses every ordered pair: every label flips
    assert M.whdr(1 / gt, gt).item() == 1.0


def test_whdr_hand_computed_with_explicit_pairs():
    gt = torch.tensor([[1.0, 2.0, 2.02, 4.0, 0.0]])
    pred = torch.tensor([[1.0, 3.0, 2.0, 3.05, 9.0]])
    pairs = torch.tensor([[0, 1], [1, 2], [2, 3], [1, 3], [0, 4]])
    # (0,1): gt -1, pred -1 agree | (1,2): gt 0 (2.02/2 < 1.03), pred +1 disagree
    # (2,3): gt -1, pred -1 agree | (1,3): gt -1, pred 0 (3.05/3 < 1.03) disagree
    # (0,4): pixel 4 has no GT -> ignored                          => 2 / 4
    assert M.whdr(pred, gt, pairs=pairs).item() == pytest.approx(0.5)
    # sigma = 1 (labels need a factor >= 2): (0,1) -1/-1, (1,2) 0/0 (3/2 < 2),
    # (2,3) 0/0 (4/2.02 < 2), (1,3) -1 (4 >= 2*2) vs 0 (3.05/3)    => 1 / 4
    assert M.whdr(pred, gt, pairs=pairs, sigma=1.0).item() == pytest.approx(0.25)
    # pairs given per image (B,P,2) and on their own device/dtype
    assert M.whdr(pred, gt, pairs=pairs[None].int()).item() == pytest.approx(0.5)
    with pytest.raises(ShapeError, match="indices"):
        M.whdr(pred, gt, pairs=torch.tensor([[0, 5]]))
    with pytest.raises(ValueError, match="sigma"):
        M.whdr(pred, gt, sigma=-1)


def test_whdr_sampling_is_deterministic_and_uses_only_valid_distinct_pixels():
    gt = torch.zeros(3, 1, 4, 4)
    pred = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 100
    gt[0, 0, 1, 2], gt[0, 0, 3, 0] = 1.0, 2.0  # image 0: exactly two valid pixels
    pred[0, 0, 1, 2], pred[0, 0, 3, 0] = 2.0, 1.0  # reversed there
    gt[1, 0, 2, 2] = 5.0  # image 1: one pixel, nothing to compare
    gt[2] = torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(2)) + 1
    w = M.whdr(pred, gt, num_pairs=50)
    # image 0: every pair is the two valid pixels (distinct), always disagreeing
    assert w[0].item() == 1.0 and w[1].item() == 0.0
    torch.testing.assert_close(M.whdr(pred, gt, num_pairs=50), w)  # default seed 0
    torch.testing.assert_close(
        M.whdr(pred, gt, num_pairs=50, generator=torch.Generator().manual_seed(0)), w)
    other = M.whdr(pred, gt, num_pairs=50, generator=torch.Generator().manual_seed(7))
    assert other[2].item() != w[2].item()  # different pairs on the random image


def test_pixel_samplers_draw_valid_distinct_pixels_in_range():
    valid = torch.zeros(4, 30, dtype=torch.bool)
    valid[1, 7] = True  # one valid pixel: no pair, but single draws
    valid[2, [3, 11, 29]] = True
    valid[3] = True
    i, j, ok = M.sample_pixel_pairs(valid, 500, torch.Generator().manual_seed(0))
    assert ok.tolist() == [False, False, True, True]
    assert i.shape == j.shape == (4, 500) and (i >= 0).all() and (j < 30).all()
    assert valid[2:].gather(1, i[2:]).all() and valid[2:].gather(1, j[2:]).all() and (i[2:] != j[2:]).all()
    assert set(i[2].tolist()) == set(j[2].tolist()) == {3, 11, 29}
    idx, has = M.sample_pixels(valid, 200, torch.Generator().manual_seed(1))
    assert has.tolist() == [False, True, True, True] and (idx[1] == 7).all()
    assert set(idx[2].tolist()) == {3, 11, 29} and (idx[0] == 0).all()

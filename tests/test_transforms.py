"""Tests for data/transforms.py: alignment, exact depth values, padding, seeding, K."""

from __future__ import annotations

import numpy as np
import pytest

from depthsense.data.transforms import PairedTransform, adjust_intrinsics, eval_transform, train_transform

H, W = 40, 120


def _sample(seed=0, with_gt=True):
    rng = np.random.default_rng(seed)
    rgb = rng.uniform(0.1, 0.9, (H, W, 3)).astype(np.float32)
    sparse = np.where(rng.random((H, W)) < 0.2, rng.uniform(1, 80, (H, W)), 0).astype(np.float32)
    gt = np.where(rng.random((H, W)) < 0.6, rng.uniform(1, 80, (H, W)), 0).astype(np.float32)
    out = {"rgb": rgb, "sparse": sparse}
    if with_gt:
        out["gt"] = gt
    return out


def _with_marker(sample, y, x):
    s = {k: v.copy() for k, v in sample.items()}
    s["rgb"][y, x] = (1.0, 0.0, 1.0)
    s["sparse"][y, x] = 123.25
    s["gt"][y, x] = 77.5
    return s


def _find(arr, value):
    return [tuple(p) for p in np.argwhere(arr == value)]


@pytest.mark.parametrize("seed", range(6))
def test_crop_and_flip_keep_rgb_sparse_gt_aligned(seed):
    s = _with_marker(_sample(seed), 35, 60)
    t = train_transform(crop=(16, 64), hflip=0.5, colour_jitter=False)
    out = t(s, np.random.default_rng(seed))
    y0, x0 = out["crop_offset"]
    assert y0 == H - 16  # bottom-aligned
    yy, xx = 35 - y0, 60 - x0
    if out["flip"]:
        xx = 64 - 1 - xx
    if 0 <= xx < 64:
        assert _find(out["sparse"], 123.25) == [(yy, xx)]
        assert _find(out["gt"], 77.5) == [(yy, xx)]
        np.testing.assert_array_equal(out["rgb"][yy, xx], [1.0, 0.0, 1.0])
    else:
        assert _find(out["sparse"], 123.25) == []


def test_flip_happens_for_some_seeds_and_matches_numpy():
    s = _sample(1)
    t = train_transform(crop=(16, 64), hflip=0.5, colour_jitter=False)
    flips = []
    for seed in range(12):
        out = t(s, np.random.default_rng(seed))
        y0, x0 = out["crop_offset"]
        ref = s["sparse"][y0 : y0 + 16, x0 : x0 + 64]
        ref_rgb = s["rgb"][y0 : y0 + 16, x0 : x0 + 64]
        if out["flip"]:
            ref, ref_rgb = ref[:, ::-1], ref_rgb[:, ::-1]
        np.testing.assert_array_equal(out["sparse"], ref)
        np.testing.assert_array_equal(out["rgb"], ref_rgb)
        flips.append(out["flip"])
    assert any(flips) and not all(flips)


@pytest.mark.parametrize("seed", range(4))
def test_depth_values_are_never_interpolated(seed):
    s = _sample(seed)
    out = train_transform(crop=(24, 80), hflip=0.5, colour_jitter=True, bottom=False)(s, np.random.default_rng(seed))
    for k in ("sparse", "gt"):
        assert set(np.unique(out[k])) <= set(np.unique(s[k]))
        assert out[k].dtype == np.float32 and out[k].shape == (24, 80)
    assert out["rgb"].shape == (24, 80, 3) and out["rgb"].dtype == np.float32


def test_colour_jitter_changes_rgb_only():
    s = _sample(2)
    plain = train_transform(crop=(16, 64), colour_jitter=False)(s, np.random.default_rng(5))
    jit = train_transform(crop=(16, 64), colour_jitter=True)(s, np.random.default_rng(5))
    assert plain["crop_offset"] == jit["crop_offset"] and plain["flip"] == jit["flip"]
    np.testing.assert_array_equal(plain["sparse"], jit["sparse"])
    np.testing.assert_array_equal(plain["gt"], jit["gt"])
    assert np.abs(plain["rgb"] - jit["rgb"]).max() > 1e-3
    assert jit["rgb"].min() >= 0.0 and jit["rgb"].max() <= 1.0


def test_same_generator_seed_same_output():
    s = _sample(3)
    t = train_transform(crop=(16, 64))
    a = t(s, np.random.default_rng([4, 2]))
    b = t(s, np.random.default_rng([4, 2]))
    for k in ("rgb", "sparse", "gt"):
        np.testing.assert_array_equal(a[k], b[k])
    outs = {t(s, np.random.default_rng(i))["crop_offset"] for i in range(10)}
    assert len(outs) > 1  # the offset really is random


def test_non_bottom_random_crop_varies_vertically():
    s = _sample(0)
    t = train_transform(crop=(16, 64), bottom=False, colour_jitter=False)
    ys = {t(s, np.random.default_rng(i))["crop_offset"][0] for i in range(20)}
    assert len(ys) > 1 and all(0 <= y <= H - 16 for y in ys)


def test_eval_transform_bottom_centre_and_identity():
    s = _sample(0)
    out = eval_transform(crop=(16, 64))(s)
    assert out["crop_offset"] == (H - 16, (W - 64) // 2) and out["flip"] is False
    np.testing.assert_array_equal(out["gt"], s["gt"][H - 16 :, 28:92])
    ident = eval_transform()(s)
    assert ident["crop_offset"] == (0, 0)
    for k in ("rgb", "sparse", "gt"):
        np.testing.assert_array_equal(ident[k], s[k])


def test_small_image_is_zero_padded_at_the_top():
    s = _sample(0)
    out = eval_transform(crop=(50, 130))(s)  # 10 rows, 10 columns larger than the image
    assert out["sparse"].shape == (50, 130)
    assert out["crop_offset"] == (-10, -5)
    np.testing.assert_array_equal(out["sparse"][10:, 5:125], s["sparse"])
    np.testing.assert_array_equal(out["rgb"][10:, 5:125], s["rgb"])
    assert not out["sparse"][:10].any() and not out["gt"][:, :5].any() and not out["rgb"][:10].any()


def test_sample_without_gt_and_bad_inputs():
    s = _sample(0, with_gt=False)
    out = train_transform(crop=(16, 64))(s, np.random.default_rng(0))
    assert "gt" not in out
    bad = dict(s, sparse=s["sparse"][:-1])
    with pytest.raises(ValueError, match="sparse"):
        eval_transform()(bad)
    with pytest.raises(ValueError, match="crop"):
        PairedTransform(crop=(0, 10))
    with pytest.raises(ValueError, match="hflip"):
        PairedTransform(hflip=2.0)


def test_adjust_intrinsics_crop_and_flip_hand_computed():
    K = np.array([[100.0, 0, 50.0], [0, 90.0, 20.0], [0, 0, 1]])
    k2 = adjust_intrinsics(K, (8, 10), False, 64)
    np.testing.assert_allclose(k2, [[100, 0, 40], [0, 90, 12], [0, 0, 1]])
    k3 = adjust_intrinsics(K, (8, 10), True, 64)
    np.testing.assert_allclose(k3[0, 2], 64 - 1 - 40)
    np.testing.assert_array_equal(adjust_intrinsics(np.zeros((3, 3)), (8, 10), True, 64), np.zeros((3, 3)))


def test_adjusted_K_projects_a_3d_point_to_its_marker():
    # A 3-D point projects to (u, v) in the input; after crop+flip the adjusted K must
    # project it where the transform moved the marker.
    K = np.array([[80.0, 0, 61.0], [0, 80.0, 19.0], [0, 0, 1]])
    u, v, z = 70, 33, 10.0
    point = np.array([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
    s = _with_marker(_sample(0), v, u)
    checked = 0
    for seed in range(8):
        out = train_transform(crop=(16, 64), colour_jitter=False)(s, np.random.default_rng(seed))
        hits = _find(out["sparse"], 123.25)
        if not hits:
            continue
        k2 = adjust_intrinsics(K, out["crop_offset"], out["flip"], 64)
        x = -point[0] if out["flip"] else point[0]  # a flipped image shows the mirrored world
        uu = k2[0, 0] * x / z + k2[0, 2]
        vv = k2[1, 1] * point[1] / z + k2[1, 2]
        assert hits == [(round(vv), round(uu))]
        checked += 1
    assert checked >= 4

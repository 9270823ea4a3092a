"""Tests of models/: registry, the common forward API, sparsity invariance, learning."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from depthsense import models
from depthsense.errors import ShapeError
from depthsense.models import build_model

ALL = ["sparse_convnet", "sparse_unet", "convnet", "convnet_mask", "dense_unet", "ip_basic", "nearest", "monocular"]
# (name, cfg) variants worth running separately: the RGB branch changes the U-Nets.
PREFILLED = {"rgb": True, "prefill": "ip_basic+nearest", "max_depth": 100.0}  # the shipped model's architecture
VARIANTS = [(n, {}) for n in ALL] + [("sparse_unet", {"rgb": True}), ("dense_unet", {"rgb": True}),
                                     ("sparse_unet", PREFILLED)]
LEARNED = [(n, c) for n, c in VARIANTS if n not in ("ip_basic", "nearest")]
METRIC = [(n, c) for n, c in VARIANTS if n != "monocular"]
CHEAP_FULL_SIZE = ["sparse_unet", "dense_unet", "monocular", "ip_basic", "nearest"]


def _ids(variants):
    return [n + ("+rgb" if c.get("rgb") else "") + ("+prefill" if c.get("prefill") else "") for n, c in variants]


def _inputs(b=1, h=37, w=101, density=0.07, seed=0):
    """Smooth random depth surface (8..38 m) sampled at ``density``; rgb derived from it."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 1, 4, 5, generator=g)
    gt = 8 + 30 * F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).clamp(0, 1)
    mask = (torch.rand(b, 1, h, w, generator=g) < density).float()
    rgb = (gt / 40).expand(b, 3, h, w) * torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)
    return gt * mask, mask, rgb.contiguous(), gt


def _build(name, cfg):
    torch.manual_seed(0)
    return build_model(name, **cfg)


# --------------------------------------------------------------------------- registry


def test_registry_has_every_model():
    assert models.available_models() == sorted(ALL + ["colorization", "pyramid"])  # + the fills tested in test_classical


def test_unknown_name_raises_keyerror_listing_known_names():
    with pytest.raises(KeyError) as err:
        build_model("sparse_unett")
    for name in ALL:
        assert name in str(err.value)


def test_unknown_option_raises_typeerror_listing_options():
    with pytest.raises(TypeError, match=r"widht.*options are: width, depth"):
        build_model("sparse_unet", widht=8)


@pytest.mark.parametrize("name,cfg", VARIANTS, ids=_ids(VARIANTS))
def test_config_round_trip_rebuilds_same_architecture(name, cfg):
    model = _build(name, cfg)
    assert model.name == name
    cfg_back = json.loads(json.dumps(model.config))  # as it would come out of a checkpoint
    again = build_model(model.name, **cfg_back)
    assert type(again) is type(model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in again.state_dict().items()}
    again.load_state_dict(model.state_dict())  # strict: same keys, same shapes


def test_sparse_convnet_parameter_count_matches_the_paper():
    n = sum(p.numel() for p in build_model("sparse_convnet").parameters())
    # 1*16*121+16 + 16*16*49+16 + 16*16*25+16 + 2*(16*16*9+16) + 16*1+1
    assert n == 25585
    assert 25_000 <= n <= 26_000
    assert sum(p.numel() for p in build_model("convnet").parameters()) == n
    assert sum(p.numel() for p in build_model("convnet_mask").parameters()) == n + 16 * 121


def test_dense_unet_is_the_sparse_unet_with_plain_convs():
    sparse, dense = build_model("sparse_unet"), build_model("dense_unet")
    s = {k: v.shape for k, v in sparse.state_dict().items()}
    d = {k: v.shape for k, v in dense.state_dict().items()}
    assert s.keys() == d.keys()
    diff = [k for k in s if s[k] != d[k]]
    assert diff == ["stem.weight", "refine_in.weight"]  # only the extra mask input channel
    assert d["stem.weight"][1] == 2 and s["stem.weight"][1] == 1


def test_flags():
    assert build_model("sparse_unet").needs_rgb is False
    assert build_model("sparse_unet", rgb=True).needs_rgb is True
    mono = build_model("monocular")
    assert (mono.needs_rgb, mono.needs_sparse) == (True, False)
    assert build_model("ip_basic").learned is False and build_model("convnet").learned is True


# --------------------------------------------------------------------------- forward API


@pytest.mark.parametrize("name,cfg", VARIANTS, ids=_ids(VARIANTS))
def test_odd_size_shape_and_nonnegative_metric_output(name, cfg):
    model = _build(name, cfg).eval()
    sparse, mask, rgb, _ = _inputs(b=2, h=37, w=101)
    with torch.inference_mode():
        y = model(sparse, mask, rgb)
    assert y.shape == (2, 1, 37, 101) and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    if name != "monocular":
        assert (y >= 0).all()


@pytest.mark.parametrize("name,cfg", VARIANTS, ids=_ids(VARIANTS))
def test_all_zero_sparse_input_gives_no_nan(name, cfg):
    model = _build(name, cfg).eval()
    zeros = torch.zeros(1, 1, 37, 101)
    rgb = torch.rand(1, 3, 37, 101, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        y = model(zeros, zeros, rgb)
    assert y.shape == zeros.shape and torch.isfinite(y).all()
    if name in ("sparse_convnet", "ip_basic", "nearest") or (name == "sparse_unet" and not cfg):
        assert (y == 0).all()  # nothing seen -> no prediction


@pytest.mark.parametrize("name", CHEAP_FULL_SIZE)
def test_full_kitti_size_forward(name):
    model = _build(name, {}).eval()
    sparse, mask, rgb, _ = _inputs(h=352, w=1216, density=0.05)
    with torch.inference_mode():
        y = model(sparse, mask, rgb)
    assert y.shape == (1, 1, 352, 1216) and torch.isfinite(y).all()


def test_unet_pads_with_missing_pixels_and_crops_top_left():
    """Internal padding must equal padding by hand with 0 depth / 0 mask, then cropping."""
    model = _build("sparse_unet", {}).eval()
    sparse, mask, _, _ = _inputs(h=37, w=101)
    with torch.inference_mode():
        y = model(sparse, mask)
        y_pad = model(F.pad(sparse, (0, 11, 0, 11)), F.pad(mask, (0, 11, 0, 11)))  # 48 x 112 = 16k
    assert torch.equal(y, y_pad[..., :37, :101])


@pytest.mark.parametrize("name,cfg", VARIANTS, ids=_ids(VARIANTS))
def test_float64_and_channels_last_give_the_same_prediction(name, cfg):
    """``.double()`` / ``.to(memory_format=...)`` work (no nn.Module method is shadowed)."""
    model = _build(name, cfg).eval()
    sparse, mask, rgb, _ = _inputs(h=24, w=40)
    cl = torch.channels_last
    with torch.inference_mode():
        ref = model(sparse, mask, rgb)
        y64 = model.double()(sparse.double(), mask.double(), rgb.double())
        ycl = model.float().to(memory_format=cl)(*(t.contiguous(memory_format=cl) for t in (sparse, mask, rgb)))
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), ref, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ycl, ref, rtol=1e-4, atol=1e-3)


def test_sparse_unet_gradcheck_through_the_whole_net():
    """Autograd through stem, skips, sparse_add, concat with RGB and pixel shuffle."""
    torch.manual_seed(0)
    model = build_model("sparse_unet", width=2, depth=2, rgb=True).double()
    sparse, mask, rgb, _ = _inputs(h=8, w=12, density=0.3)
    sparse = sparse.double().requires_grad_(True)
    rgb = rgb.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s, r: model(s, mask.double(), r), (sparse, rgb), eps=1e-6, atol=1e-5)


def test_missing_mask_means_positive_depth():
    model = _build("sparse_convnet", {}).eval()
    sparse, mask, _, _ = _inputs()
    with torch.inference_mode():
        ref = model(sparse, mask)
        assert torch.equal(model(sparse, None), ref)
        assert torch.equal(model(sparse, mask.bool()), ref)


@pytest.mark.parametrize("name", ["sparse_convnet", "sparse_unet", "convnet", "dense_unet", "ip_basic"])
def test_missing_sparse_raises(name):
    with pytest.raises(ShapeError, match="needs sparse depth"):
        build_model(name)(None, None, torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("name,cfg", [("monocular", {}), ("sparse_unet", {"rgb": True}), ("dense_unet", {"rgb": True})])
def test_missing_rgb_raises(name, cfg):
    sparse, mask, _, _ = _inputs(h=16, w=16)
    with pytest.raises(ShapeError, match="needs rgb"):
        build_model(name, **cfg)(sparse, mask)


def test_bad_shapes_raise_with_clear_messages():
    model = build_model("sparse_unet", rgb=True)
    sparse, mask, rgb, _ = _inputs(h=16, w=16)
    with pytest.raises(ShapeError, match=r"sparse has shape \(1, 16, 16\); expected \(B,1,H,W\).*unsqueeze"):
        model(sparse[0], mask, rgb)
    with pytest.raises(ShapeError, match=r"mask has shape \(1, 1, 16, 8\) but sparse has \(1, 1, 16, 16\)"):
        model(sparse, mask[..., :8], rgb)
    with pytest.raises(ShapeError, match=r"rgb has shape \(1, 1, 16, 16\); expected \(B,3,H,W\)"):
        model(sparse, mask, rgb[:, :1])
    with pytest.raises(ShapeError, match=r"rgb has shape \(1, 3, 16, 8\) but sparse has \(1, 1, 16, 16\).*together"):
        model(sparse, mask, rgb[..., :8])
    with pytest.raises(ShapeError, match="float tensor.*/255"):
        model(sparse, mask, (rgb * 255).to(torch.uint8))


# --------------------------------------------------------------------------- sparsity invariance


def _garbage_under_mask(sparse, mask, seed=3):
    g = torch.Generator().manual_seed(seed)
    junk = torch.rand(sparse.shape, generator=g) * 1000 - 200
    return torch.where(mask > 0, sparse, junk)


@pytest.mark.parametrize("name,cfg", LEARNED, ids=_ids(LEARNED))
def test_values_under_missing_pixels_never_reach_any_model(name, cfg):
    """The API contract: whatever is stored where mask = 0 (even NaN) is ignored."""
    model = _build(name, cfg).eval()
    sparse, mask, rgb, _ = _inputs()
    dirty = _garbage_under_mask(sparse, mask)
    dirty[0, 0, 0, 0] = float("nan") if mask[0, 0, 0, 0] == 0 else dirty[0, 0, 0, 0]
    with torch.inference_mode():
        assert torch.equal(model(sparse, mask, rgb), model(dirty, mask, rgb))


def _raw_values_through(model, monkeypatch):
    """Switch off the entry sanitiser, so the *network* sees the raw values under mask 0."""
    checked = model.check_inputs

    def passthrough(sparse, mask, rgb):
        _, m, r = checked(sparse, mask, rgb)
        return sparse, m, r

    monkeypatch.setattr(model, "check_inputs", passthrough)


@pytest.mark.parametrize("name", ["sparse_convnet", "sparse_unet"])
def test_sparse_networks_are_sparsity_invariant(name, monkeypatch):
    """Whole-net invariance from the layers themselves (eval, rgb=None)."""
    model = _build(name, {}).eval()
    _raw_values_through(model, monkeypatch)
    sparse, mask, _, _ = _inputs(b=2)
    with torch.inference_mode():
        clean = model(sparse, mask)
        dirty = model(_garbage_under_mask(sparse, mask), mask)
    assert clean.abs().max() > 1  # a real prediction, not all zeros
    assert torch.equal(clean, dirty)


@pytest.mark.parametrize("name", ["convnet", "dense_unet"])
def test_dense_networks_are_not_sparsity_invariant(name, monkeypatch):
    """Negative control for the test above: plain convolutions do see the raw values."""
    model = _build(name, {}).eval()
    _raw_values_through(model, monkeypatch)
    sparse, mask, _, _ = _inputs(b=2)
    with torch.inference_mode():
        diff = (model(sparse, mask) - model(_garbage_under_mask(sparse, mask), mask)).abs().max()
    assert diff > 1


# --------------------------------------------------------------------------- learning


# The pre-filled U-Net starts from a classical completion (its own learning test is below).
OVERFIT = [(n, c) for n, c in LEARNED if not c.get("prefill")]


@pytest.mark.parametrize("name,cfg", OVERFIT, ids=_ids(OVERFIT))
def test_overfits_one_small_batch(name, cfg):
    """Masked L1 on one fixed 2x48x64 batch (7% density) falls by 80% within 200 Adam steps.

    A drop from a poor initial guess can be had by fitting the mean alone, so the loss
    must also fall below half that of the best constant prediction (the median): the net
    has to reproduce the surface's shape. The sparse nets have no BatchNorm: this is the
    check that the SparseConv2d initialisation lets them learn. The monocular net fits
    relative depth (gt / mean).
    """
    torch.manual_seed(0)
    model = build_model(name, **cfg)
    sparse, mask, rgb, gt = _inputs(b=2, h=48, w=64, density=0.07)
    target = gt / gt.mean() if name == "monocular" else gt
    constant = (target - target.median()).abs().mean().item()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        loss = (model(sparse, mask, rgb) - target).abs().mean()  # every GT pixel is valid here
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if min(losses) <= min(0.2 * losses[0], 0.5 * constant):
            break
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses) <= 0.2 * losses[0], f"{name}: L1 {losses[0]:.3f} -> {min(losses):.3f}"
    assert min(losses) <= 0.5 * constant, f"{name}: L1 {min(losses):.3f} vs constant {constant:.3f}"


# --------------------------------------------------------------------------- pre-filled U-Net


def test_prefilled_unet_starts_as_a_blend_of_its_classical_fills():
    """Head and refinement start at zero correction: before training the prediction is
    exactly the initial blend, softmax(1.5, 0) of IP-Basic and nearest fill (so training
    starts from a classical completion, not from noise)."""
    from depthsense.models.classical import ip_basic_fill, nearest_fill

    sparse, mask, rgb, _ = _inputs(b=2, h=40, w=96, density=0.05)
    model = _build("sparse_unet", PREFILLED).eval()
    with torch.no_grad():
        out = model(sparse, mask, rgb)
    for b in range(2):
        d = sparse[b, 0].numpy()
        w = float(torch.softmax(torch.tensor([1.5, 0.0]), 0)[0])
        expected = w * ip_basic_fill(d) + (1 - w) * nearest_fill(d)
        torch.testing.assert_close(out[b, 0], torch.from_numpy(expected), atol=1e-4, rtol=1e-5)


def test_prefilled_unet_learns_to_choose_the_better_fill():
    """On dense input nearest fill is almost exact and IP-Basic is not: a few steps move
    the blend towards nearest (the error falls below the equal blend's)."""
    gt_sparse, mask, rgb, gt = _inputs(b=2, h=32, w=64, density=0.5)
    model = _build("sparse_unet", dict(PREFILLED, width=4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.eval()
    with torch.no_grad():
        before = (model(gt_sparse, mask, rgb) - gt).abs().mean()
    model.train()
    for _ in range(40):
        loss = (model(gt_sparse, mask, rgb) - gt).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        after = (model(gt_sparse, mask, rgb) - gt).abs().mean()
    assert after < 0.7 * before, (float(before), float(after))


@pytest.mark.parametrize("spec", ["ip_basic+ip_basic", "bilinear", "ip_basic,median"])
def test_bad_prefill_names(spec):
    with pytest.raises(ValueError, match="prefill="):
        build_model("sparse_unet", prefill=spec)


@pytest.mark.parametrize("name", ["sparse_convnet", "convnet", "sparse_unet"])
def test_learned_outputs_stay_within_zero_and_max_depth_at_any_density(name):
    """Far below the training density a normalised convolution can scale a lone point by
    k^2 times a weight; in eval mode every learned model's output is bounded."""
    model = _build(name, {})
    with torch.no_grad():
        for layer in model.modules():
            if hasattr(layer, "weight") and layer.weight is not None and layer.weight.dim() == 4:
                layer.weight.mul_(8.0)  # an untrained net with large weights: outputs far out of range
    model.eval()
    sparse, mask, _, _ = _inputs(b=1, h=48, w=96, density=0.005)
    with torch.no_grad():
        out = model(sparse, mask)
    assert float(out.min()) >= 0.0 and float(out.max()) <= model.config["max_depth"]
    assert float(out.max()) == pytest.approx(model.config["max_depth"])  # the bound was needed


# --------------------------------------------------------------------------- extra heads

HEADED = dict(PREFILLED, heads="depth,conf,fg")


@pytest.mark.parametrize("name, cfg", VARIANTS, ids=_ids(VARIANTS))
def test_heads_are_absent_unless_asked_for(name, cfg):
    model = _build(name, cfg)
    assert model.heads == ()
    assert not any(k.startswith("extra_") for k in model.state_dict())


def test_depth_only_unet_state_dict_is_unchanged_and_loads_into_the_depth_path():
    """No new keys without heads (old checkpoints load strictly); with heads the old
    keys are all there, and the depth output of a headed model built from a depth-only
    state dict is that model's output exactly (heads start from zero weights)."""
    plain = _build("sparse_unet", PREFILLED).eval()
    headed = _build("sparse_unet", HEADED).eval()
    extra = set(headed.state_dict()) - set(plain.state_dict())
    assert extra == {"extra_trunk.weight", "extra_trunk.bias", "extra_head.weight", "extra_head.bias",
                     "extra_refine.weight", "extra_refine.bias"}
    headed.load_state_dict(plain.state_dict(), strict=False)
    sparse, mask, rgb, _ = _inputs(b=1, h=40, w=96, density=0.05)
    with torch.no_grad():
        torch.testing.assert_close(headed(sparse, mask, rgb), plain(sparse, mask, rgb))
        torch.testing.assert_close(headed(sparse, mask, rgb, return_heads=True)["depth"], plain(sparse, mask, rgb))


@pytest.mark.parametrize("cfg", [{"heads": "depth,conf,fg"}, HEADED, {"heads": "conf", "refine": 0}])
def test_head_outputs_are_finite_in_range_and_of_the_input_size(cfg):
    model = _build("sparse_unet", cfg)
    sparse, mask, rgb, _ = _inputs(b=2, h=37, w=101, density=0.05)
    for train in (True, False):
        model.train(train)
        out = model(sparse, mask, rgb, return_heads=True)
        for key in ("conf", "scale") + (("fg", "fg_logit") if "fg" in model.heads else ()):
            assert out[key].shape == (2, 1, 37, 101), key
            assert torch.isfinite(out[key]).all(), key
        assert ((out["conf"] > 0) & (out["conf"] <= 1)).all()
        assert (out["scale"] >= 0.01).all()
        if "fg" in out:
            assert ((out["fg"] >= 0) & (out["fg"] <= 1)).all()
    with torch.no_grad():  # also where the input has no point at all
        out = model.eval()(torch.zeros(1, 1, 20, 30), None, rgb[:1, :, :20, :30], return_heads=True)
    assert torch.isfinite(out["conf"]).all() and ((out["conf"] >= 0) & (out["conf"] <= 1)).all()


def test_forward_outputs_is_a_dict_with_the_heads_only_when_the_model_has_them():
    import doctest

    from depthsense.models import _common

    sparse, mask, rgb, _ = _inputs(b=1, h=24, w=40, density=0.1)
    plain = _build("sparse_unet", {"rgb": True}).eval()
    headed = _build("sparse_unet", dict(HEADED, heads="depth,conf,fg")).eval()
    with torch.no_grad():
        out = models.forward_outputs(plain, sparse, mask, rgb)
        assert list(out) == ["depth"]
        torch.testing.assert_close(out["depth"], plain(sparse, mask, rgb), rtol=0, atol=0)
        out = models.forward_outputs(headed, sparse, mask, rgb)
        ref = headed(sparse, mask, rgb, return_heads=True)
        assert set(out) == {"depth", "conf", "scale", "fg", "fg_logit"} == set(ref)
        for key in ref:
            torch.testing.assert_close(out[key], ref[key], rtol=0, atol=0)
        # A wrapped model (DistributedDataParallel / DataParallel in training) declares
        # its heads through its module: still the whole dict.
        assert set(models.forward_outputs(torch.nn.DataParallel(headed), sparse, mask, rgb)) == set(ref)
        # Any callable without ``heads`` (the ONNX runtime) gives depth only.
        assert list(models.forward_outputs(lambda s, m, r: s * 2, sparse, mask, rgb)) == ["depth"]
    result = doctest.testmod(_common)
    assert result.failed == 0 and result.attempted > 0


def test_heads_config_round_trips_and_bad_names_raise():
    model = _build("sparse_unet", {"heads": "fg, depth"})
    assert model.heads == ("fg",) and model.config["heads"] == "depth,fg"
    assert build_model("sparse_unet", **json.loads(json.dumps(model.config))).heads == ("fg",)
    assert "heads" not in _build("sparse_unet", {"heads": "depth"}).config
    for spec in ("depth,mask", "conf,conf"):
        with pytest.raises(ValueError, match="heads="):
            build_model("sparse_unet", heads=spec)
    # head_width: stored only when it differs from the default, and it sizes the heads' layer.
    wide = _build("sparse_unet", {"heads": "depth,conf,fg", "head_width": 16})
    assert wide.config["head_width"] == 16 and wide.extra_trunk.out_channels == 16
    assert build_model("sparse_unet", **json.loads(json.dumps(wide.config))).extra_trunk.out_channels == 16
    assert "head_width" not in _build("sparse_unet", {"heads": "depth,fg"}).config
    with pytest.raises(ValueError, match="head_width"):
        build_model("sparse_unet", heads="depth,fg", head_width=0)


def test_heads_learn_a_mask_and_where_the_error_is():
    """A few steps on one batch: the fg head separates a square, and the confidence is
    lower where the depth is unpredictable (noise on the right half, marked in the image)."""
    from depthsense.losses import build_loss

    torch.manual_seed(0)
    sparse, mask, rgb, gt = _inputs(b=2, h=32, w=64, density=0.2)
    fg = torch.zeros_like(gt)
    fg[..., 8:24, 8:24] = 1.0  # an object 5 m away, and red
    gt = torch.where(fg > 0, torch.full_like(gt, 5.0), gt)
    sparse = gt * mask
    rgb = rgb.clone()
    rgb[:, 0:1] = torch.where(fg > 0, 1.0, rgb[:, 0:1])
    noisy = gt.clone()  # unpredictable depth on the right half, which the image marks (no blue)
    noisy[..., 32:] += 3 * torch.randn_like(noisy[..., 32:])
    rgb[:, 2:3, :, 32:] = 0.0
    model = _build("sparse_unet", {"rgb": True, "width": 8, "heads": "depth,conf,fg"})
    loss = build_loss("l1,laplace_nll:1,fg_bce:2,fg_dice:2")
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(100):
        out = model(sparse, mask, rgb, return_heads=True)
        extras = {"scale": out["scale"], "fg_logit": out["fg_logit"], "fg_gt": fg}
        total, _ = loss(out["depth"], noisy, extras=extras)
        opt.zero_grad()
        total.backward()
        opt.step()
    with torch.no_grad():
        out = model.eval()(sparse, mask, rgb, return_heads=True)
    assert ((out["fg"] > 0.5).float() == fg).float().mean() > 0.9
    # the confidence orders pixels by their actual error better than chance (the real
    # measure, on synthetic data, is in the README: AUSE against the distance baseline)
    from depthsense.evaluation.heads_metrics import ause, oracle_curve, sparsification_curve

    err = (out["depth"] - noisy).abs().flatten()
    oracle = oracle_curve(err)
    learned = ause(sparsification_curve(err, 1 - out["conf"].flatten()), oracle)
    chance = ause(sparsification_curve(err, torch.rand(err.shape, generator=torch.Generator().manual_seed(0))), oracle)
    assert learned < 0.95 * chance, (learned, chance)


def test_image_norm_is_scale_equivariant_and_positive():
    """norm="image": scaling the input by c scales the output by c (for any weights), and
    every pixel is positive: no 0 m "no prediction" and no negative depth."""
    torch.manual_seed(0)
    net = build_model("sparse_unet", width=4, rgb=True, prefill="nearest+pyramid+ip_basic", norm="image",
                      max_depth=1000.0).eval()  # far above these depths: the eval clamp stays out of the way
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # corrections far from their zero start
    sparse = torch.zeros(2, 1, 40, 56)
    sparse[..., ::6, ::5] = torch.rand(2, 1, 7, 12) * 8 + 0.5
    rgb = torch.rand(2, 3, 40, 56)
    out = net(sparse, None, rgb)
    assert (out > 0).all()
    for c in (0.1, 7.0):
        torch.testing.assert_close(net(sparse * c, None, rgb), out * c, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="prefill"):
        build_model("sparse_unet", norm="image")
    with pytest.raises(ValueError, match="norm="):
        build_model("sparse_unet", norm="log")
    assert net.config["norm"] == "image" and "norm" not in build_model("sparse_unet").config


def test_image_norm_prefill_passed_in_equals_the_one_computed_inside():
    """The ONNX graph and the Predictor pass the fills in: they must give the same depth."""
    torch.manual_seed(0)
    net = build_model("sparse_unet", width=4, rgb=True, prefill="nearest+pyramid+ip_basic", norm="image",
                      max_depth=100.0).eval()
    sparse = torch.zeros(1, 1, 40, 56)
    sparse[..., ::4, ::3] = torch.rand(1, 1, 10, 19) * 3 + 0.5  # indoor scale: IP-Basic's metres matter
    rgb = torch.rand(1, 3, 40, 56)
    torch.testing.assert_close(net(sparse, None, rgb, prefill=net.compute_prefill(sparse)), net(sparse, None, rgb))


def test_model_class_reads_the_registry_without_building():
    assert models.model_class("sparse_unet") is models.SparseUNet
    assert not models.model_class("ip_basic").learned and models.model_class("monocular").needs_rgb
    with pytest.raises(KeyError, match="known models: .*sparse_unet"):
        models.model_class("sparse_net")

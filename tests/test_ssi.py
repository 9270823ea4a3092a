"""Tests for losses/ssi.py: scale-and-shift-invariant loss."""

from __future__ import annotations

import pytest
import torch

from depthsense.losses.ssi import SSILoss, align_scale_shift, gradient_matching_loss, ssi_loss


def _pair(seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    gt = 1.0 + 9.0 * torch.rand(2, 1, 10, 12, generator=gen, dtype=dtype)
    gt = gt * (torch.rand(gt.shape, generator=gen) < 0.7)
    pred = torch.rand(gt.shape, generator=gen, dtype=dtype)
    return pred, gt


def test_hand_computed_alignment_and_mae():
    # valid p = [0, 1, 2], g = [0.5, 1, 3] (one extra pixel is missing).
    pred = torch.tensor([[[[0.0, 1.0, 2.0, 9.0]]]])
    gt = torch.tensor([[[[0.5, 1.0, 3.0, 0.0]]]])
    s, t = align_scale_shift(pred, gt)
    # mean p = 1, mean g = 1.5; cov = (-1)(-1) + 0 + (1)(1.5) = 2.5; var = 2
    assert s.item() == pytest.approx(1.25) and t.item() == pytest.approx(1.5 - 1.25)
    # aligned = [0.25, 1.5, 2.75]; |residual| = [0.25, 0.5, 0.25]
    assert ssi_loss(pred, gt, grad_weight=0.0).item() == pytest.approx(1.0 / 3.0)


def test_recovers_an_exact_affine_map_per_image():
    pred, gt = _pair()
    target = torch.cat([2.0 * pred[:1] + 3.0, 0.5 * pred[1:] - 1.0])
    mask = gt > 0
    s, t = align_scale_shift(pred, target, mask)
    assert s.flatten().tolist() == pytest.approx([2.0, 0.5], rel=1e-5)
    assert t.flatten().tolist() == pytest.approx([3.0, -1.0], abs=1e-5)
    assert ssi_loss(pred, target, mask).item() < 1e-5


# a=0.01, b=100 squeezes the prediction into 100 +- 0.01, below float32 resolution
# (ulp(100) = 7.6e-6) *before* the loss sees it, so that case runs in float64.
@pytest.mark.parametrize(
    "a,b,dtype", [(0.5, -2.0, torch.float32), (3.0, 7.0, torch.float32), (1e-2, 100.0, torch.float64)]
)
@pytest.mark.parametrize("grad_weight", [0.0, 0.5])
def test_invariant_to_positive_affine_change_of_prediction(a, b, dtype, grad_weight):
    pred, gt = _pair(dtype=dtype)
    ref = ssi_loss(pred, gt, grad_weight=grad_weight)
    assert ref.item() > 0.1
    assert ssi_loss(a * pred + b, gt, grad_weight=grad_weight).item() == pytest.approx(ref.item(), abs=1e-5)


def test_masked_out_pixels_do_not_matter():
    pred, gt = _pair()
    other = pred.clone()
    other[gt == 0] = 1e6
    assert ssi_loss(other, gt).item() == pytest.approx(ssi_loss(pred, gt).item(), abs=1e-6)


def _degenerate(case):
    gt = torch.zeros(1, 1, 4, 4)
    pred = torch.full((1, 1, 4, 4), 3.0)
    if case == "constant":
        gt[..., :2, :] = torch.arange(8.0).view(2, 4) + 1.0  # mean 4.5
    elif case == "single_pixel":
        gt[0, 0, 1, 1] = 4.0
        pred = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    return pred, gt


@pytest.mark.parametrize("case", ["constant", "single_pixel", "empty"])
def test_degenerate_images_fit_the_shift_only_and_are_finite(case):
    pred, gt = _degenerate(case)
    pred.requires_grad_()
    s, t = align_scale_shift(pred, gt)
    loss = ssi_loss(pred, gt)
    loss.backward()
    assert s.item() == 1.0
    expected_shift = {"constant": 4.5 - 3.0, "single_pixel": 4.0 - pred[0, 0, 1, 1].item(), "empty": 0.0}[case]
    assert t.item() == pytest.approx(expected_shift)
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    if case == "empty":
        assert loss.item() == 0.0 and (pred.grad == 0).all()
    if case == "single_pixel":  # aligned exactly at the one valid pixel: nothing to learn
        assert loss.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("case", ["random", "affine", "constant", "single_pixel", "empty", "near_constant"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loss_and_metric_align_the_same(case, dtype):
    """The SSI loss and the relative-depth metrics share one fit and one degenerate rule."""
    from depthsense.metrics import ssi_align, ssi_scale_shift

    if case in ("constant", "single_pixel", "empty"):
        pred, gt = _degenerate(case)
        pred, gt = pred.to(dtype), gt.to(dtype)
    else:
        pred, gt = _pair(dtype=dtype)
        if case == "affine":
            pred = torch.where(gt > 0, (gt - 0.5) / 3.0, pred)
        if case == "near_constant":  # spread at float rounding: no scale can be fitted
            pred = 7.0 + pred * (10 * torch.finfo(dtype).eps)
    s_loss, t_loss = align_scale_shift(pred, gt)
    s_metric, t_metric = ssi_scale_shift(pred, gt)
    torch.testing.assert_close(s_loss.flatten(), s_metric, rtol=0, atol=0)
    torch.testing.assert_close(t_loss.flatten(), t_metric, rtol=0, atol=0)
    valid = gt > 0
    residual = (s_loss * pred + t_loss - gt)[valid]
    torch.testing.assert_close(residual, (ssi_align(pred, gt) - gt)[valid], rtol=0, atol=0)
    if case == "near_constant":
        assert (s_metric == 1).all()


def test_gradient_matching_hand_computed():
    r = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])
    m = torch.ones_like(r)
    # dx: |1-0| + |0-0| = 1; dy: |0-0| + |0-1| = 1; over 4 valid pixels
    assert gradient_matching_loss(r, m, scales=1).item() == pytest.approx(0.5)
    m[0, 0, 0, 0] = 0  # pairs touching (0,0) drop: dx row 0 and dy col 0 go
    assert gradient_matching_loss(r, m, scales=1).item() == pytest.approx(1.0 / 3.0)


def test_gradcheck_with_gradient_term():
    pred, gt = _pair(dtype=torch.float64)
    pred = pred[:, :, :5, :6].contiguous().requires_grad_()
    gt = gt[:, :, :5, :6].contiguous()
    assert torch.autograd.gradcheck(lambda p: ssi_loss(p, gt, grad_weight=0.5, scales=2), (pred,))


def test_module_matches_function_and_validates():
    pred, gt = _pair()
    assert SSILoss(grad_weight=0.0)(pred, gt).item() == pytest.approx(ssi_loss(pred, gt, grad_weight=0.0).item())
    with pytest.raises(ValueError, match="grad_weight must be >= 0"):
        SSILoss(grad_weight=-1.0)
    with pytest.raises(ValueError, match="scales must be an integer >= 1"):
        SSILoss(scales=0)

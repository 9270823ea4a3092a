"""Tests for losses/structure.py: SSIM loss and gradient-edge loss."""

from __future__ import annotations

import pytest
import torch

import kornia

from depthsense.losses.structure import EdgeLoss, SSIMLoss, edge_loss, erode_mask, sobel_gradient, ssim_loss, ssim_map


def _scene(h: int = 24, w: int = 32, dtype=torch.float32) -> torch.Tensor:
    """A smooth ramp with a box in front: depth 10..30 m."""
    y, x = torch.meshgrid(torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype), indexing="ij")
    depth = 10.0 + 20.0 * y / h + 0.2 * x
    depth[h // 3 : 2 * h // 3, w // 4 : w // 2] = 8.0
    return depth.view(1, 1, h, w)


# ----------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("window_size,dtype", [(11, torch.float32), (5, torch.float64), (3, torch.float32)])
def test_ssim_map_equals_kornia_values_and_gradients(window_size, dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 13, 17, generator=gen, dtype=dtype)
    y = (x + 0.2 * torch.rand(x.shape, generator=gen, dtype=dtype)).clamp(0, 1)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = ssim_map(x1, y, window_size)
    ref = kornia.metrics.ssim(x2, y, window_size, max_val=1.0, eps=0.0)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=tol)
    weights = torch.rand(ref.shape, generator=gen, dtype=dtype)
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=tol * 10)


def test_ssim_identical_maps_is_zero():
    gt = _scene()
    assert ssim_loss(gt.clone(), gt).item() < 1e-6


def test_ssim_grows_with_noise():
    gt = _scene()
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(gt.shape, generator=gen)
    values = [ssim_loss(gt + s * noise, gt).item() for s in (0.1, 1.0, 5.0)]
    assert 0 < values[0] < values[1] < values[2] <= 1.0


def test_ssim_holes_are_filled_not_compared_with_zero():
    gt = _scene()
    holes = gt.clone()
    holes[..., ::3, ::2] = 0.0  # a third of the rows, half the columns missing
    # The prediction agrees with every valid GT pixel: the loss must stay ~0 (comparing
    # the prediction with zeros inside the windows would make it large).
    assert ssim_loss(gt, holes).item() < 1e-6
    assert ssim_loss(gt + 0.5 * torch.randn(gt.shape, generator=torch.Generator().manual_seed(1)), holes).item() > 1e-3


def test_ssim_max_depth_scaling_and_clamp():
    gt = _scene()
    # Beyond max_depth everything clamps to 1: a prediction of 100 m vs gt all at >= max_depth.
    far = torch.full_like(gt, 100.0)
    assert ssim_loss(far, torch.full_like(gt, 90.0), max_depth=80.0).item() < 1e-6
    assert SSIMLoss(max_depth=40.0)(gt + 1.0, gt).item() > SSIMLoss(max_depth=400.0)(gt + 1.0, gt).item()


def test_ssim_gradcheck_and_module():
    gen = torch.Generator().manual_seed(0)
    gt = 1.0 + 5.0 * torch.rand(1, 1, 7, 8, generator=gen, dtype=torch.float64)
    pred = (gt + torch.randn(gt.shape, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda p: ssim_loss(p, gt, max_depth=10.0, window_size=5), (pred,), fast_mode=True)
    module = SSIMLoss(max_depth=10.0, window_size=5)
    assert module(pred, gt).item() == pytest.approx(ssim_loss(pred, gt, None, 10.0, 5).item())


def test_ssim_argument_errors():
    with pytest.raises(ValueError, match="window_size must be a positive odd"):
        SSIMLoss(window_size=4)
    with pytest.raises(ValueError, match="max_depth must be > 0"):
        SSIMLoss(max_depth=0.0)
    with pytest.raises(ValueError, match="too small for window_size=11"):
        ssim_loss(torch.ones(1, 1, 4, 20), torch.ones(1, 1, 4, 20))


# ----------------------------------------------------------------------------- edge


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sobel_gradient_equals_kornia_values_and_gradients(dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, 9, generator=gen, dtype=dtype)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, ref = sobel_gradient(x1), kornia.filters.spatial_gradient(x2)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert ours.shape == ref.shape == (2, 3, 2, 6, 9)
    assert torch.allclose(ours, ref, atol=tol)
    weights = torch.randn(ref.shape, generator=gen, dtype=dtype)
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=tol)


def test_edge_zero_for_constant_offset():
    gt = _scene()
    assert edge_loss(gt + 3.7, gt).item() < 1e-5


def test_edge_tilted_plane_vs_flat_hand_computed():
    h, w = 5, 6
    x = torch.arange(w, dtype=torch.float32).expand(h, w)
    gt = (10.0 + 0.5 * x).view(1, 1, h, w)
    pred = torch.full_like(gt, 10.0)
    # Normalised Sobel: d/dx of the ramp is 0.5 inside, 0.25 in the first and last column
    # (replicated border); d/dy is 0. All pixels are valid, so the mean over columns is:
    expected = (0.5 * (w - 2) + 2 * 0.25) / w
    assert edge_loss(pred, gt).item() == pytest.approx(expected, rel=1e-6)


def test_edge_ignores_prediction_next_to_holes():
    gt = _scene()
    gt[0, 0, 10, 12] = 0.0
    pred = gt + 2.0
    pred[0, 0, 10, 12] = 500.0  # only windows touching the hole see this value
    assert edge_loss(pred, gt).item() < 1e-5


def test_erode_mask_hand_example():
    m = torch.ones(1, 1, 4, 5)
    m[0, 0, 1, 3] = 0
    e = erode_mask(m)[0, 0].int().tolist()
    assert e == [
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 1, 1],
    ]


def test_edge_gradcheck_and_module():
    gen = torch.Generator().manual_seed(0)
    gt = 1.0 + torch.rand(1, 1, 5, 6, generator=gen, dtype=torch.float64)
    pred = torch.rand(1, 1, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: edge_loss(p, gt), (pred,))
    assert EdgeLoss()(pred, gt).item() == edge_loss(pred, gt).item()


@pytest.mark.parametrize("fn", [ssim_loss, edge_loss])
def test_empty_mask_zero_and_finite_grad(fn):
    pred = (torch.rand(2, 1, 12, 12) * 20).requires_grad_()
    loss = fn(pred, torch.zeros(2, 1, 12, 12))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_ssim_under_autocast_stays_float32():
    gt = _scene()
    pred = gt + 0.5
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        value = ssim_loss(pred, gt)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(ssim_loss(pred, gt).item(), rel=1e-5)

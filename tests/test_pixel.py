"""Tests for losses/pixel.py: masked L1/L2 and the shared masking helpers."""

from __future__ import annotations

import pytest
import torch

from depthsense.errors import ShapeError
from depthsense.losses.pixel import MaskedL1Loss, MaskedL2Loss, masked_l1, masked_l2, masked_mean, valid_mask


def _example():
    # gt 0 at (0,1) = missing. Valid diffs: 1-2=-1, 3-1=2, 4-4=0.
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    gt = torch.tensor([[[[2.0, 0.0], [1.0, 4.0]]]])
    return pred, gt


def test_l1_l2_hand_computed_default_mask():
    pred, gt = _example()
    assert masked_l1(pred, gt).item() == pytest.approx((1 + 2 + 0) / 3)
    assert masked_l2(pred, gt).item() == pytest.approx((1 + 4 + 0) / 3)


def test_l1_l2_hand_computed_explicit_mask():
    pred, gt = _example()
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 1.0]]]])  # explicit mask is used as given
    # valid: (0,0) diff 1, (0,1) diff 2 (gt 0 but mask says valid), (1,1) diff 0
    assert masked_l1(pred, gt, mask).item() == pytest.approx(3 / 3)
    assert masked_l2(pred, gt, mask).item() == pytest.approx(5 / 3)


def test_pooled_over_batch_not_per_image():
    pred = torch.zeros(2, 1, 2, 2)
    gt = torch.tensor([[[[4.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 0.0]]]])
    # pooled: (4 + 1 + 1 + 1) / 4 = 1.75 (a per-image mean would give (4 + 1) / 2 = 2.5)
    assert masked_l1(pred, gt).item() == pytest.approx(1.75)


def test_invalid_pixels_cannot_change_the_loss():
    pred, gt = _example()
    other = pred.clone()
    other[0, 0, 0, 1] = 1e30
    assert masked_l1(other, gt).item() == masked_l1(pred, gt).item()
    assert masked_l2(other, gt).item() == masked_l2(pred, gt).item()


def test_masked_mean_ignores_non_finite_outside_mask():
    x = torch.tensor([[[[1.0, float("inf")], [float("nan"), 3.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    assert masked_mean(x, mask).item() == 2.0


@pytest.mark.parametrize("fn", [masked_l1, masked_l2])
def test_empty_mask_is_zero_with_finite_gradient(fn):
    pred = torch.rand(2, 1, 3, 4, requires_grad=True)
    loss = fn(pred, torch.zeros(2, 1, 3, 4))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad == 0).all()


@pytest.mark.parametrize("fn", [masked_l1, masked_l2])
def test_gradcheck(fn):
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 1, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(2, 1, 3, 4, generator=gen, dtype=torch.float64) + 0.5
    gt[0, 0, 1, 1] = 0
    assert torch.autograd.gradcheck(lambda p: fn(p, gt), (pred,))


def test_modules_match_functions_and_ignore_rgb():
    pred, gt = _example()
    rgb = torch.rand(1, 3, 2, 2)
    assert MaskedL1Loss()(pred, gt, None, rgb).item() == masked_l1(pred, gt).item()
    assert MaskedL2Loss()(pred, gt, rgb=rgb).item() == masked_l2(pred, gt).item()


def test_half_precision_is_promoted():
    pred, gt = _example()
    out = masked_l2(pred.half(), gt.half())
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(5 / 3)


def test_shape_errors_name_the_problem():
    with pytest.raises(ShapeError, match=r"pred has shape \(2, 3, 4\); expected \(B,1,H,W\)"):
        masked_l1(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ShapeError, match=r"gt has shape \(1, 1, 3, 3\) but pred has \(1, 1, 2, 2\)"):
        masked_l2(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3))
    with pytest.raises(ShapeError, match="mask has shape"):
        masked_l1(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.ones(1, 2, 2))


def test_valid_mask_default_is_gt_positive():
    gt = torch.tensor([[[[0.0, 1.0], [-1.0, 2.0]]]])
    assert valid_mask(gt).tolist() == [[[[False, True], [False, True]]]]


def test_per_image_losses_weigh_every_image_equally():
    from depthsense.losses.pixel import image_mae, image_rmse

    pred = torch.zeros(3, 1, 4, 4)
    gt = torch.zeros(3, 1, 4, 4)
    gt[0] = 2.0  # 16 valid pixels, error 2 everywhere
    gt[1, 0, 0, 0] = 6.0  # one valid pixel, error 6
    # image 2 has no valid pixel: left out of the mean
    assert float(image_mae(pred, gt)) == pytest.approx((2.0 + 6.0) / 2)
    assert float(image_rmse(pred, gt)) == pytest.approx((2.0 + 6.0) / 2, abs=1e-5)
    # pooled over the batch, the dense image would dominate: (16*2 + 6) / 17
    assert float(masked_l1(pred, gt)) == pytest.approx(38 / 17)
    gt[1, 0, 0, 1] = 3.0  # per-image RMSE is the root of the image's mean square
    assert float(image_rmse(pred, gt)) == pytest.approx((2.0 + ((36 + 9) / 2) ** 0.5) / 2, abs=1e-5)


def test_per_image_losses_empty_and_perfect_are_finite():
    from depthsense.losses.pixel import image_rmse

    pred = torch.ones(2, 1, 3, 3, requires_grad=True)
    gt = torch.ones(2, 1, 3, 3)
    loss = image_rmse(pred, gt)
    loss.backward()
    assert float(loss) < 1e-2 and torch.isfinite(pred.grad).all()
    empty = image_rmse(pred, torch.zeros_like(gt))
    assert float(empty) == 0.0


def test_scale_free_terms_weigh_rooms_and_streets_alike():
    from depthsense.losses import build_loss
    from depthsense.losses.pixel import SCALE_FREE_REF_M, image_mae, image_rmse

    gt = torch.full((2, 1, 4, 4), 2.0)
    gt[1] = 20.0  # a room at 2 m, a street at 20 m
    pred = gt * 1.1  # both 10 % too far
    per = image_mae(pred[:1], gt[:1], scale_free=True), image_mae(pred[1:], gt[1:], scale_free=True)
    torch.testing.assert_close(per[0], per[1])
    torch.testing.assert_close(per[0], torch.tensor(0.1 * SCALE_FREE_REF_M))
    torch.testing.assert_close(image_rmse(pred, gt, scale_free=True), torch.tensor(0.1 * SCALE_FREE_REF_M),
                               atol=1e-4, rtol=1e-4)
    assert float(image_mae(pred, gt)) == pytest.approx(1.1)  # metric: the street dominates
    total, terms = build_loss("nmae:1,nrmse:1")(pred, gt)
    assert float(total) == pytest.approx(2 * 0.1 * SCALE_FREE_REF_M, rel=1e-4) and set(terms) == {"nmae", "nrmse"}

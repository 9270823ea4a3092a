"""Tests for losses/heads.py: the confidence and foreground loss terms."""

from __future__ import annotations

import math

import pytest
import torch

from depthsense.errors import ShapeError
from depthsense.losses import build_loss, required_heads
from depthsense.losses.heads import (
    ForegroundBCELoss,
    ForegroundDiceLoss,
    ForegroundEdgeLoss,
    LaplaceNLLLoss,
    fg_bce,
    fg_dice,
    fg_edge,
    laplace_nll,
)


def _depth(seed=0):
    gen = torch.Generator().manual_seed(seed)
    gt = 5 + 20 * torch.rand(2, 1, 6, 7, generator=gen)
    gt[0, 0, 0, :3] = 0
    pred = (gt + torch.randn(2, 1, 6, 7, generator=gen)).requires_grad_()
    scale = (0.1 + torch.rand(2, 1, 6, 7, generator=gen)).requires_grad_()
    return pred, scale, gt


def test_laplace_nll_by_hand_and_depth_is_detached():
    pred, scale, gt = _depth()
    valid = gt > 0
    err = (pred - gt).abs()
    expected = (err / scale + scale.log())[valid].mean()
    value = laplace_nll(pred, scale, gt)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert pred.grad is None and scale.grad is not None and torch.isfinite(scale.grad).all()
    assert (scale.grad[~valid] == 0).all()


def test_laplace_nll_is_minimised_by_the_mean_absolute_error():
    err = torch.tensor([0.5, 1.5, 1.0, 3.0]).view(1, 1, 2, 2)
    gt = torch.full_like(err, 10.0)
    values = {b: float(laplace_nll(gt + err, torch.full_like(err, b), gt)) for b in (0.8, 1.5, 2.5)}
    assert min(values, key=values.get) == 1.5  # E|err| = 1.5
    assert values[1.5] == pytest.approx(1.0 + math.log(1.5))


def test_foreground_terms_by_hand():
    logit = torch.tensor([[2.0, -1.0], [0.0, -3.0]]).view(1, 1, 2, 2).requires_grad_()
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(1, 1, 2, 2)
    p = torch.sigmoid(logit)
    bce = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    torch.testing.assert_close(fg_bce(logit, target), bce)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    torch.testing.assert_close(fg_dice(logit, target), dice)
    assert float(fg_edge(torch.full((1, 1, 5, 5), 9.0), torch.ones(1, 1, 5, 5))) < 1e-3
    assert float(fg_edge(logit.detach(), target)) > 0
    big = torch.where(target > 0, 20.0, -20.0)
    assert float(fg_dice(big, target)) < 1e-6 and float(fg_bce(big, target)) < 1e-6
    fg_dice(logit, target).backward()
    assert torch.isfinite(logit.grad).all()
    with pytest.raises(ShapeError):
        fg_bce(logit, target[..., :1])


def test_modules_agree_with_functions_and_combine_by_spec():
    pred, scale, gt = _depth(1)
    logit = torch.randn(2, 1, 6, 7)
    fg = (torch.rand(2, 1, 6, 7) < 0.3).float()
    extras = {"scale": scale, "fg_logit": logit, "fg_gt": fg}
    assert LaplaceNLLLoss()(pred, gt, extras=extras) == laplace_nll(pred, scale, gt)
    assert ForegroundBCELoss()(pred, gt, extras=extras) == fg_bce(logit, fg)
    assert ForegroundDiceLoss()(pred, gt, extras=extras) == fg_dice(logit, fg)
    assert ForegroundEdgeLoss()(pred, gt, extras=extras) == fg_edge(logit, fg)
    loss = build_loss("l1:1,laplace_nll:0.1,fg_bce:1,fg_dice:1,fg_edge:0.5")
    total, terms = loss(pred, gt, extras=extras)
    assert set(terms) == {"l1", "laplace_nll", "fg_bce", "fg_dice", "fg_edge"}
    expected = terms["l1"] + 0.1 * terms["laplace_nll"] + terms["fg_bce"] + terms["fg_dice"] + 0.5 * terms["fg_edge"]
    torch.testing.assert_close(total.detach(), expected)
    assert loss.required_heads == {"conf", "fg"} == required_heads("l1,laplace_nll,fg_dice")
    assert required_heads("l1,rmse") == set()


def test_missing_head_outputs_name_the_model_option():
    pred, scale, gt = _depth()
    with pytest.raises(ShapeError, match="heads=depth,conf"):
        build_loss("l1,laplace_nll")(pred, gt)
    with pytest.raises(ShapeError, match="fg_gt.*foreground masks"):
        build_loss("fg_bce")(pred, gt, extras={"fg_logit": torch.zeros_like(gt)})


def test_foreground_terms_skip_samples_without_a_mask():
    """A batch mixing data sets (fg_valid): only samples with a real mask count."""
    from depthsense.losses import build_loss

    torch.manual_seed(0)
    logit = torch.randn(3, 1, 8, 8, requires_grad=True)
    target = (torch.rand(3, 1, 8, 8) > 0.5).float()
    valid = torch.tensor([1.0, 0.0, 1.0])
    for name in ("fg_bce", "fg_dice", "fg_edge"):
        term = build_loss(name)
        pred = gt = torch.ones(3, 1, 8, 8)
        mixed = term(pred, gt, extras={"fg_logit": logit, "fg_gt": target, "fg_valid": valid})[0]
        subset = term(pred[[0, 2]], gt[[0, 2]], extras={"fg_logit": logit[[0, 2]], "fg_gt": target[[0, 2]]})[0]
        torch.testing.assert_close(mixed, subset)
        none = term(pred, gt, extras={"fg_logit": logit, "fg_gt": target, "fg_valid": torch.zeros(3)})[0]
        assert float(none.detach()) == 0.0 and none.requires_grad

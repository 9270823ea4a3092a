"""Tests for losses/__init__.py: registry, spec parsing, CombinedLoss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from depthsense import losses
from depthsense.losses import CombinedLoss, available_losses, build_loss, parse_loss_spec, register_loss


def _batch(seed=0, b=2, h=16, w=20):
    gen = torch.Generator().manual_seed(seed)
    gt = 2.0 + 30.0 * torch.rand(b, 1, h, w, generator=gen)
    gt = gt * (torch.rand(b, 1, h, w, generator=gen) < 0.6)
    pred = (2.0 + 30.0 * torch.rand(b, 1, h, w, generator=gen)).requires_grad_()
    rgb = torch.rand(b, 3, h, w, generator=gen)
    return pred, gt, rgb


def test_registry_holds_the_six_terms():
    assert {"l1", "l2", "ssim", "edge", "rank", "ssi"} <= set(available_losses())
    assert available_losses() == sorted(available_losses())


def test_total_is_weighted_sum_of_logged_terms():
    pred, gt, rgb = _batch()
    loss = build_loss("l1:1.0,ssim:0.2,edge:0.1,rank:0.5,ssi:0.3,l2:0.05", seed=0)
    total, terms = loss(pred, gt, rgb=rgb)
    assert list(terms) == ["l1", "ssim", "edge", "rank", "ssi", "l2"]
    weights = {"l1": 1.0, "ssim": 0.2, "edge": 0.1, "rank": 0.5, "ssi": 0.3, "l2": 0.05}
    expected = sum(w * terms[k] for k, w in weights.items())
    assert torch.allclose(total, expected, rtol=1e-6)
    for name, value in terms.items():
        assert value.dim() == 0 and not value.requires_grad, name
        assert value.item() > 0, name
    assert terms["l1"].item() == pytest.approx(losses.masked_l1(pred, gt).item())
    total.backward()
    assert torch.isfinite(pred.grad).all()


def test_spec_whitespace_and_default_weight():
    assert parse_loss_spec("  l1 , ssim : 0.2 ,rank:1e-1 ") == {"l1": 1.0, "ssim": 0.2, "rank": 0.1}
    assert build_loss("l1").weights == {"l1": 1.0}
    assert build_loss("l1:0").spec == "l1:0.0"  # weight 0: logged, not trained on


@pytest.mark.parametrize(
    "spec", ["", "   ", "l1:abc", "l1::2", "l1:1,", ",l1", "l1:-0.5", "l1:1,l1:2", "l1:nan", "l1:inf", "l 1:1", ":1"]
)
def test_malformed_spec_is_value_error_with_format(spec):
    with pytest.raises(ValueError, match="name:weight,name:weight"):
        build_loss(spec)


def test_unknown_term_is_key_error_listing_known_terms():
    with pytest.raises(KeyError, match="known terms: edge, fg_bce, fg_dice, fg_edge, l1, l2, laplace_nll, mae, nmae, nrmse, rank, rmse, ssi, ssim") as info:
        build_loss("l1:1,sssim:0.2")
    assert "sssim" in str(info.value)


def test_kwargs_reach_terms_that_accept_them():
    loss = build_loss("ssim:1,rank:1", max_depth=20.0, sigma=0.1, num_pairs=7, num_edge_pairs=0, grad_weight=0.0)
    assert loss.terms["ssim"].max_depth == 20.0
    assert (loss.terms["rank"].sigma, loss.terms["rank"].num_pairs, loss.terms["rank"].num_edge_pairs) == (0.1, 7, 0)
    # grad_weight belongs to "ssi", which is not selected: ignored; a typo is an error
    with pytest.raises(TypeError, match="no loss term accepts \\['max_dept'\\]"):
        build_loss("ssim", max_dept=20.0)
    with pytest.raises(ValueError, match="max_depth must be > 0"):
        build_loss("ssim", max_depth=-1.0)


def test_rgb_reaches_the_ranking_term():
    # Flat gt has no edges: edge-guided pairs can only come from rgb.
    gt = torch.full((1, 1, 12, 16), 5.0)
    pred = torch.rand(1, 1, 12, 16, generator=torch.Generator().manual_seed(0))
    rgb = torch.zeros(1, 3, 12, 16)
    rgb[..., :, 8:] = 1.0
    loss = build_loss("rank", num_pairs=0, num_edge_pairs=100, seed=0)
    assert loss(pred, gt)[1]["rank"].item() == 0.0  # no pairs at all
    assert loss(pred, gt, rgb=rgb)[1]["rank"].item() > 0.0  # r = 0 pairs: (z_i - z_j)^2


@pytest.mark.parametrize("name", ["l1", "l2", "ssim", "edge", "rank", "ssi"])
def test_every_term_empty_mask_zero_and_finite_gradient(name):
    pred, gt, rgb = _batch()
    loss = build_loss(name, seed=0)
    for mask in (torch.zeros_like(gt), None):
        target = gt if mask is not None else torch.zeros_like(gt)
        total, terms = loss(pred, target, mask, rgb)
        assert total.item() == 0.0 and terms[name].item() == 0.0
        pred.grad = None
        total.backward()
        assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_explicit_mask_is_passed_to_terms():
    pred, gt, _ = _batch()
    mask = torch.zeros_like(gt)
    mask[..., :8, :] = (gt[..., :8, :] > 0).float()
    _, terms = build_loss("l1,l2")(pred, gt, mask)
    assert terms["l1"].item() == pytest.approx(losses.masked_l1(pred, gt, mask).item())
    assert terms["l1"].item() != pytest.approx(losses.masked_l1(pred, gt).item())


def test_register_loss_rejects_duplicates_and_bad_names():
    with pytest.raises(ValueError, match="already registered"):
        register_loss("l1")(type("Other", (nn.Module,), {}))
    with pytest.raises(ValueError, match="must be an identifier"):
        register_loss("l1:2")


def test_combined_loss_requires_matching_keys():
    with pytest.raises(ValueError, match="same, non-empty keys"):
        CombinedLoss({"l1": losses.MaskedL1Loss()}, {"l2": 1.0})


def test_loss_class_reads_the_registry():
    from depthsense import losses

    assert losses.loss_class("l1") is losses.LOSSES["l1"] and losses.loss_class("laplace_nll").requires == "conf"
    with pytest.raises(KeyError, match="known terms: edge, fg_bce"):
        losses.loss_class("l3")

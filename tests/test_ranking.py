"""Tests for losses/ranking.py: ordinal ranking loss and pair sampling."""

from __future__ import annotations

import math

import pytest
import torch

from depthsense.errors import ShapeError
from depthsense.losses.ranking import RankingLoss, ordinal_labels, ranking_loss, sample_pairs


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# ----------------------------------------------------------------------------- loss


def test_loss_matches_formula_for_all_three_labels():
    # pair 0: g_i/g_j = 2 -> r=+1; pair 1: g_j/g_i = 2 -> r=-1; pair 2: ratio 1.01 -> r=0
    g_i = torch.tensor([2.0, 1.0, 1.01])
    g_j = torch.tensor([1.0, 2.0, 1.00])
    z_i = torch.tensor([0.3, 0.5, 4.0])
    z_j = torch.tensor([1.0, -0.2, 3.5])
    assert ordinal_labels(g_i, g_j, 0.03).tolist() == [1, -1, 0]
    expected = (
        _softplus(-(+1) * (0.3 - 1.0)) + _softplus(-(-1) * (0.5 - (-0.2))) + (4.0 - 3.5) ** 2
    ) / 3
    assert ranking_loss(z_i, z_j, g_i, g_j, 0.03).item() == pytest.approx(expected, rel=1e-6)


def test_label_threshold_is_inclusive_ratio():
    g_j = torch.tensor([2.0, 2.0, 2.0])
    g_i = torch.tensor([3.0, 2.9, 1.0])  # ratios 1.5 (=1+sigma), 1.45, 0.5
    assert ordinal_labels(g_i, g_j, sigma=0.5).tolist() == [1, 0, -1]
    # a zero target cannot make inf/NaN: 0 vs 1 is "j farther"
    assert ordinal_labels(torch.tensor([0.0]), torch.tensor([1.0])).tolist() == [-1]


def test_correct_order_scores_lower_than_reversed():
    gen = torch.Generator().manual_seed(0)
    g = 1.0 + 10.0 * torch.rand(500, generator=gen)
    idx_i, idx_j = torch.randint(0, 500, (2, 2000), generator=gen)
    z = 0.1 * g  # same order (and scale-free: only the order matters for r != 0)
    right = ranking_loss(z[idx_i], z[idx_j], g[idx_i], g[idx_j])
    wrong = ranking_loss(-z[idx_i], -z[idx_j], g[idx_i], g[idx_j])
    assert right.item() < wrong.item()


def test_gradient_step_separates_a_wrongly_ordered_pair():
    g_i, g_j = torch.tensor([5.0]), torch.tensor([2.0])  # i is farther: r = +1
    z = torch.tensor([1.0, 3.0], requires_grad=True)  # predicted the other way round
    loss = ranking_loss(z[:1], z[1:], g_i, g_j)
    loss.backward()
    assert z.grad[0] < 0 < z.grad[1]  # descent raises z_i and lowers z_j
    with torch.no_grad():
        z_new = z - 1.0 * z.grad
        assert (z_new[0] - z_new[1]) > (z[0] - z[1])
        assert ranking_loss(z_new[:1], z_new[1:], g_i, g_j) < loss


def test_no_overflow_for_large_differences():
    z_i = torch.tensor([1e4, -1e4], requires_grad=True)
    z_j = torch.zeros(2)
    loss = ranking_loss(z_i, z_j, torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]))
    loss.backward()
    assert loss.item() == pytest.approx(1e4 / 2)  # softplus(1e4) ~ 1e4 for the wrong pair
    assert torch.isfinite(z_i.grad).all()


def test_gradcheck_on_fixed_pairs():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.tensor([1.0, 2.0, 1.01, 5.0, 5.0, 0.5], dtype=torch.float64)
    i = torch.tensor([0, 1, 2, 3, 4, 5, 1])
    j = torch.tensor([1, 0, 0, 4, 3, 2, 5])
    assert set(ordinal_labels(g[i], g[j]).tolist()) == {-1, 0, 1}
    assert torch.autograd.gradcheck(lambda v: ranking_loss(v[i], v[j], g[i], g[j]), (z,))


def test_empty_pairs_give_zero_and_finite_gradient():
    z = torch.rand(4, requires_grad=True)
    empty = torch.zeros(0, dtype=torch.long)
    loss = ranking_loss(z[empty], z[empty], z.detach()[empty], z.detach()[empty])
    assert loss.item() == 0.0
    loss.backward()
    assert (z.grad == 0).all()


def test_loss_argument_errors():
    with pytest.raises(ShapeError, match="1-D tensors of one length"):
        ranking_loss(torch.zeros(3), torch.zeros(2), torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        RankingLoss(sigma=-0.1)


# ----------------------------------------------------------------------------- sampling


def _sparse_gt(b=2, h=16, w=20, density=0.2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    gt = 1.0 + 20.0 * torch.rand(b, 1, h, w, generator=gen)
    return gt * (torch.rand(b, 1, h, w, generator=gen) < density)


def test_pairs_only_among_valid_pixels_and_within_one_image():
    gt = _sparse_gt()
    gt[1] = 0.0  # second image has no valid pixel at all
    i, j = sample_pairs(gt, None, 200, generator=torch.Generator().manual_seed(1))
    n = 16 * 20
    assert i.numel() > 100
    flat = gt.reshape(-1)
    assert (flat[i] > 0).all() and (flat[j] > 0).all()
    assert (i // n == j // n).all() and (i // n == 0).all()
    assert (i != j).all()


def test_explicit_mask_restricts_pairs():
    gt = 1.0 + torch.rand(1, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :, :3] = 1
    i, j = sample_pairs(gt, mask, 100, generator=torch.Generator().manual_seed(0))
    assert i.numel() > 0
    assert ((i % 8) < 3).all() and ((j % 8) < 3).all()


def test_no_valid_pixel_gives_no_pairs():
    i, j = sample_pairs(torch.zeros(2, 1, 6, 6), None, 50, generator=torch.Generator().manual_seed(0))
    assert i.numel() == 0 and j.numel() == 0 and i.dtype == torch.long


def _step(h=12, w=16, col=8):
    gt = torch.full((1, 1, h, w), 5.0)
    gt[..., col:] = 10.0
    return gt


def test_edge_pairs_from_gt_straddle_the_step():
    gt = _step()
    i, j = sample_pairs(gt, None, 0, num_edge_pairs=300, generator=torch.Generator().manual_seed(0))
    assert i.numel() > 100
    x_i, x_j = i % 16, j % 16
    # one end left of the step (x < 8), the other right of it: different depths
    assert ((x_i < 8) != (x_j < 8)).all()
    assert (gt.reshape(-1)[i] != gt.reshape(-1)[j]).all()


def test_edge_pairs_from_rgb_straddle_the_rgb_edge():
    gt = torch.full((1, 1, 12, 16), 7.0)  # flat depth: edges can only come from rgb
    rgb = torch.zeros(1, 3, 12, 16)
    rgb[..., 5:, :] = 1.0  # horizontal edge between rows 4 and 5
    i, j = sample_pairs(gt, None, 0, rgb, torch.Generator().manual_seed(0), num_edge_pairs=300)
    assert i.numel() > 100
    assert (((i // 16) < 5) != ((j // 16) < 5)).all()
    # without rgb, a flat gt has no edge and gives no edge pair
    i2, _ = sample_pairs(gt, None, 0, None, torch.Generator().manual_seed(0), num_edge_pairs=300)
    assert i2.numel() == 0


def test_edge_pairs_drop_invalid_ends():
    gt = _step()
    gt[..., :, :6] = 0.0  # left of column 6 is missing
    i, j = sample_pairs(gt, None, 0, num_edge_pairs=300, generator=torch.Generator().manual_seed(0))
    flat = gt.reshape(-1)
    assert (flat[i] > 0).all() and (flat[j] > 0).all()


def test_sampling_is_deterministic_per_seed():
    gt = _sparse_gt()
    rgb = torch.rand(2, 3, 16, 20, generator=torch.Generator().manual_seed(3))
    a = sample_pairs(gt, None, 64, rgb, torch.Generator().manual_seed(7))
    b = sample_pairs(gt, None, 64, rgb, torch.Generator().manual_seed(7))
    c = sample_pairs(gt, None, 64, rgb, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_sampling_argument_errors():
    gt = _sparse_gt()
    with pytest.raises(ShapeError, match="expected \\(B,1,H,W\\)"):
        sample_pairs(gt[:, 0], None, 10)
    with pytest.raises(ShapeError, match="edge_source has shape"):
        sample_pairs(gt, None, 10, torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="num_pairs must be a non-negative integer"):
        sample_pairs(gt, None, -1)
    with pytest.raises(ValueError, match="edge_quantile"):
        sample_pairs(gt, None, 10, edge_quantile=1.0)


# ----------------------------------------------------------------------------- module


def test_module_is_seeded_reproducible_and_varies_between_steps():
    gt = _sparse_gt(density=0.5)
    pred = torch.rand(gt.shape, generator=torch.Generator().manual_seed(5))
    a, b = RankingLoss(num_pairs=50, num_edge_pairs=20, seed=3), RankingLoss(num_pairs=50, num_edge_pairs=20, seed=3)
    first = a(pred, gt)
    assert first.item() == b(pred, gt).item()
    assert a(pred, gt).item() != first.item()  # the generator advances: new pairs each step


def test_module_prefers_the_right_order_on_an_image():
    gt = _step() + torch.linspace(0, 3, 12).view(1, 1, 12, 1)
    loss = RankingLoss(num_pairs=200, num_edge_pairs=200, seed=0)
    right = loss(gt / 10, gt).item()
    loss = RankingLoss(num_pairs=200, num_edge_pairs=200, seed=0)
    wrong = loss(-gt / 10, gt).item()
    assert right < wrong


def test_module_empty_mask_zero_and_finite_gradient():
    pred = torch.rand(2, 1, 8, 8, requires_grad=True)
    loss = RankingLoss(num_pairs=20, seed=0)(pred, torch.zeros(2, 1, 8, 8), rgb=torch.rand(2, 3, 8, 8))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_edge_pairs_follow_each_images_own_edge():
    gt = torch.full((2, 1, 10, 16), 7.0)
    rgb = torch.zeros(2, 3, 10, 16)
    rgb[0, :, :, 5:] = 1.0  # image 0: vertical edge left of column 5
    rgb[1, :, :, 11:] = 1.0  # image 1: vertical edge left of column 11
    i, j = sample_pairs(gt, None, 0, rgb, torch.Generator().manual_seed(0), num_edge_pairs=200)
    n = 10 * 16
    image = i // n
    assert (image == j // n).all() and set(image.tolist()) == {0, 1}
    col = torch.tensor([5, 11])[image]
    assert (((i % 16) < col) != ((j % 16) < col)).all()


def test_random_ends_are_uniform_over_valid_pixels():
    gt = torch.zeros(2, 1, 5, 5)
    gt[0, 0, [0, 1, 3, 4], [4, 0, 2, 1]] = 3.0  # image 0: 4 valid pixels
    gt[1, 0, 2, 2] = 1.0  # image 1: 1 valid pixel, so no pair of two distinct ones
    i, j = sample_pairs(gt, None, 4000, generator=torch.Generator().manual_seed(0), num_edge_pairs=0)
    ends = torch.cat([i, j])
    assert (ends < 25).all()
    counts = torch.bincount(ends, minlength=25)[gt[0].reshape(-1) > 0].double()
    share = counts / counts.sum()
    assert ((share > 0.22) & (share < 0.28)).all(), share


def test_random_pairs_and_labels_are_whdrs():
    """The ranking loss samples and labels pairs with WHDR's own functions."""
    from depthsense import metrics as M

    assert ordinal_labels is M.ordinal_labels
    gt = _sparse_gt(density=0.5)
    i, j = sample_pairs(gt, None, 64, generator=torch.Generator().manual_seed(4), num_edge_pairs=0)
    valid = (gt > 0).reshape(2, -1)
    mi, mj, ok = M.sample_pixel_pairs(valid, 64, torch.Generator().manual_seed(4))
    base = torch.arange(2)[:, None] * valid.shape[1]
    assert ok.all()
    assert torch.equal(i, (mi + base).reshape(-1)) and torch.equal(j, (mj + base).reshape(-1))

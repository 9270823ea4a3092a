"""Ordinal ranking loss (Xian et al., "Monocular Relative Depth Perception with Web
Stereo Data Supervision", CVPR 2018) with random and edge-guided pair sampling.

For a pair of pixels (i, j) with predictions z and targets g the ordinal label is

    r = +1  if g_i >= (1 + sigma) * g_j      (i clearly farther than j)
    r = -1  if g_j >= (1 + sigma) * g_i      (j clearly farther than i)
    r =  0  otherwise                        (about equally far)

(the paper's ratio test ``g_i / g_j >= 1 + sigma`` written without a division, so a
target of 0 cannot produce inf/NaN), and the pair's loss is

    log(1 + exp(-r (z_i - z_j)))   if r != 0      (computed as softplus, no overflow)
    (z_i - z_j)^2                  if r == 0.

Sign convention: the loss is *low* when the prediction orders a pair the way the target
does, i.e. for r = +1 when z_i > z_j. Prediction and target must therefore be monotone
in the same direction. DepthSense uses depth-like quantities (larger = farther) for
both; a disparity-like prediction (larger = closer) needs a disparity-like target (or
``-z`` as the prediction), otherwise the loss rewards the reversed order.
``sigma`` defaults to 0.03: two pixels whose target depths differ by less than 3% count
as equally far (a few percent is about the noise of stereo-derived relative depth and
of LiDAR at range). The target g must be >= 0 (metric depth, or ReDWeb relative depth
mapped to a non-negative depth-like range). The r = 0 term is quadratic in prediction
units: on metric depth in metres it can dominate the logistic terms, so weight "rank"
accordingly (or feed it a relative prediction). The labels are
:func:`depthsense.metrics.ordinal_labels`, the ones WHDR compares.

Pairs come from :func:`sample_pairs`: uniform random pairs of distinct valid pixels of
each image (:func:`depthsense.metrics.sample_pixel_pairs`, WHDR's sampler), plus pairs
straddling image edges (Xian et al., CVPR 2020 "structure-guided" sampling,
simplified): anchors are the strongest Sobel edges of the RGB image (or of
the ground truth) and the two ends lie on either side of the edge along its gradient
direction. Sampling is vectorised on the input's device and seeded by a
``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.check import check_shape
from depthsense.losses.registry import register_loss
from depthsense.losses.pixel import check_pair, valid_mask
from depthsense.losses.structure import erode_mask, sobel_gradient
from depthsense.metrics import WHDR_SIGMA, ordinal_labels, sample_pixel_pairs, sample_pixels

__all__ = ["ranking_loss", "ordinal_labels", "sample_pairs", "RankingLoss"]

DEFAULT_SIGMA = WHDR_SIGMA
"""Relative depth difference below which a pair counts as equally far (0.03, WHDR's)."""


def ranking_loss(z_i: Tensor, z_j: Tensor, g_i: Tensor, g_j: Tensor, sigma: float = DEFAULT_SIGMA) -> Tensor:
    """Mean ordinal ranking loss over already-sampled pairs.

    Args:
        z_i, z_j: (P,) predictions at the two ends of each pair (depth-like).
        g_i, g_j: (P,) targets at the same pixels (depth-like, >= 0; no gradient needed).
        sigma: equality threshold on the depth ratio (>= 0).
    Returns:
        Scalar: mean over the P pairs of the per-pair loss in the module docstring;
        0 (connected to ``z``'s graph, zero gradient) when P = 0.
    Raises:
        ShapeError: the four tensors do not share one 1-D shape.
        ValueError: ``sigma < 0``.
    """
    dims = None
    for name, x in (("z_i", z_i), ("z_j", z_j), ("g_i", g_i), ("g_j", g_j)):
        dims = check_shape(x, "P", name, where="ranking_loss", dims=dims,
                           hint="z_i, z_j, g_i, g_j must be 1-D tensors of one length P.")
    _check_sigma(sigma)
    diff = z_i - z_j
    if diff.numel() == 0:
        return diff.sum() * 0.0
    r = ordinal_labels(g_i, g_j, sigma).to(diff.dtype)  # depthsense.metrics', as WHDR labels pairs
    # softplus(-r*d) = log(1 + exp(-r*d)) without overflow for large |d|.
    per_pair = torch.where(r != 0, F.softplus(-r * diff), diff * diff)
    return per_pair.mean()


@torch.no_grad()
def sample_pairs(
    gt: Tensor,
    mask: Tensor | None = None,
    num_pairs: int = 3000,
    edge_source: Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    num_edge_pairs: int | None = None,
    edge_quantile: float = 0.9,
    edge_offset: tuple[float, float] = (2.0, 6.0),
) -> tuple[Tensor, Tensor]:
    """Sample pixel pairs for the ranking loss, per image, among valid pixels.

    Random pairs: for each image with at least two valid pixels, ``num_pairs`` pairs of
    two distinct valid pixels, each end uniform (:func:`depthsense.metrics.sample_pixel_pairs`,
    the sampler of WHDR).

    Edge-guided pairs: for each image, ``num_edge_pairs`` anchors drawn uniformly from
    its edge pixels, i.e. pixels whose Sobel magnitude is in the top ``1 -
    edge_quantile`` fraction (threshold estimated on a regular subsample of about 32k
    pixels) and > 0. The ends are ``anchor -/+ t * n`` with n the unit gradient
    direction at the anchor and t uniform in ``edge_offset`` pixels, rounded and
    clamped to the image. Edges come from ``edge_source`` (e.g. RGB, averaged over
    channels) or, when it is None, from the ground truth itself, whose gradient is
    trusted only where its 3x3 window is valid (so the rim of a hole is not an edge).
    The gradient is kornia's normalised Sobel (:func:`depthsense.losses.structure.sobel_gradient`).

    Edge pairs with an invalid end or an end equal to the other, and the pairs of an
    image without edges, are dropped, so fewer edge pairs than requested may come back:
    with GT of density d about a fraction d^2 survive; an image with fewer than two
    valid pixels contributes no pair. All work is vectorised on ``gt``'s device with no
    ``.item()`` and no host copy; the one ``nonzero`` that drops pairs waits for the
    device on CUDA (its output size depends on the data).

    Args:
        gt: (B,1,H,W) target, 0 = missing (only its validity is used, unless
            ``edge_source`` is None).
        mask: (B,1,H,W) {0,1}; default ``gt > 0``.
        num_pairs: random pairs per image (>= 0).
        edge_source: optional (B,C,H,W) image on gt's device whose edges guide sampling.
        generator: ``torch.Generator`` (on gt's device, or a CPU one); None uses the global RNG.
        num_edge_pairs: edge-guided pairs per image (>= 0); default ``num_pairs``.
        edge_quantile: in [0, 1); 0.9 keeps the strongest 10% of gradient magnitudes.
        edge_offset: (min, max) distance in pixels of each end from the anchor, 0 < min <= max.
    Returns:
        ``(idx_i, idx_j)``: two (P,) int64 tensors of flat indices into
        ``gt.reshape(-1)`` (both ends of a pair always lie in the same image), grouped
        by image, each image's random pairs before its edge pairs.
    Raises:
        ShapeError: gt not (B,1,H,W), or an edge_source / mask of another size.
        ValueError: negative pair counts, edge_quantile or edge_offset out of range.
    """
    dims = check_shape(gt, "B,1,H,W", "gt", where="sample_pairs")
    if edge_source is not None:
        check_shape(edge_source, "B,C,H,W", "edge_source", where="sample_pairs", dims=dims,
                    hint="Pass an image of the same batch and size as gt (e.g. its RGB).")
    num_edge_pairs = num_pairs if num_edge_pairs is None else num_edge_pairs
    _check_sampling_args(num_pairs, num_edge_pairs, edge_quantile, edge_offset)
    b, _, h, w = gt.shape
    n = h * w
    valid = valid_mask(gt, mask, "sample_pairs").reshape(b, n)
    valid_flat = valid.reshape(-1)
    firsts, seconds, keeps = [], [], []

    if num_pairs > 0:
        ii, jj, ok = sample_pixel_pairs(valid, num_pairs, generator)  # WHDR's sampler
        base = torch.arange(b, device=gt.device)[:, None] * n
        firsts.append(ii + base)
        seconds.append(jj + base)
        keeps.append(ok[:, None].expand(b, num_pairs))

    if num_edge_pairs > 0:
        ia, ib, ok = _edge_pairs(gt, valid, edge_source, num_edge_pairs, generator, edge_quantile, edge_offset)
        firsts.append(ia)
        seconds.append(ib)
        keeps.append(ok & _take(valid_flat, ia) & _take(valid_flat, ib))

    if not firsts:
        empty = torch.zeros(0, dtype=torch.long, device=gt.device)
        return empty, empty.clone()
    first = torch.cat(firsts, dim=1).reshape(-1)
    second = torch.cat(seconds, dim=1).reshape(-1)
    kept = torch.cat(keeps, dim=1).reshape(-1).nonzero().squeeze(1)
    return first.index_select(0, kept), second.index_select(0, kept)


@register_loss("rank")
class RankingLoss(nn.Module):
    """Ordinal ranking loss with pair sampling (module docstring has the formula).

    Args:
        sigma: equality threshold on the depth ratio (default 0.03).
        num_pairs: random pairs per image (default 3000).
        num_edge_pairs: edge-guided pairs per image (default 3000; 0 disables them).
        edge_quantile: fraction of pixels below the edge threshold (default 0.9).
        edge_offset: (min, max) distance in pixels of pair ends from the edge (2, 6).
        seed: seeds a private generator per device, so a run's pairs are reproducible
            yet differ between steps; None uses the global torch RNG.

    ``forward(pred, gt, mask=None, rgb=None) -> scalar``: pairs are sampled among
    pixels valid in ``mask`` (default ``gt > 0``) with edges from ``rgb`` (B,3,H,W) if
    given, else from ``gt``; the loss is :func:`ranking_loss` on those pairs. ``pred``
    and ``gt`` are depth-like (larger = farther).
    """

    def __init__(
        self,
        sigma: float = DEFAULT_SIGMA,
        num_pairs: int = 3000,
        num_edge_pairs: int | None = 3000,
        edge_quantile: float = 0.9,
        edge_offset: tuple[float, float] = (2.0, 6.0),
        seed: int | None = None,
    ) -> None:
        super().__init__()
        num_edge_pairs = num_pairs if num_edge_pairs is None else num_edge_pairs
        _check_sigma(sigma)
        _check_sampling_args(num_pairs, num_edge_pairs, edge_quantile, edge_offset)
        self.sigma = float(sigma)
        self.num_pairs = int(num_pairs)
        self.num_edge_pairs = int(num_edge_pairs)
        self.edge_quantile = float(edge_quantile)
        self.edge_offset = (float(edge_offset[0]), float(edge_offset[1]))
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        pred, gt = check_pair(pred, gt, "RankingLoss")
        valid = valid_mask(gt, mask, "RankingLoss")
        idx_i, idx_j = sample_pairs(
            gt,
            valid,
            self.num_pairs,
            edge_source=rgb,
            generator=self._generator(pred.device),
            num_edge_pairs=self.num_edge_pairs,
            edge_quantile=self.edge_quantile,
            edge_offset=self.edge_offset,
        )
        # One index_select for both ends: the backward is then a single index_add into
        # one zero map of pred's size instead of two.
        both = torch.cat([idx_i, idx_j])
        z_i, z_j = pred.reshape(-1).index_select(0, both).chunk(2)
        g_i, g_j = gt.reshape(-1).index_select(0, both).chunk(2)
        return ranking_loss(z_i, z_j, g_i, g_j, self.sigma)

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, num_pairs={self.num_pairs}, num_edge_pairs={self.num_edge_pairs}, "
            f"edge_quantile={self.edge_quantile}, edge_offset={self.edge_offset}, seed={self.seed}"
        )

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        gen = self._generators.get(device)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(int(self.seed))
            self._generators[device] = gen
        return gen


def _take(values: Tensor, index: Tensor) -> Tensor:
    """``values[index]`` for 1-D values and any-shape index (index_select is the fastest
    gather on CPU)."""
    return values.index_select(0, index.reshape(-1)).view(index.shape)


def _edge_pairs(
    gt: Tensor,
    valid: Tensor,
    edge_source: Tensor | None,
    k: int,
    generator: torch.Generator | None,
    edge_quantile: float,
    edge_offset: tuple[float, float],
) -> tuple[Tensor, Tensor, Tensor]:
    """``k`` pairs per image straddling edges: (B,k) flat indices of both ends and a
    (B,k) bool that is False for images without edges and for coinciding ends."""
    b, _, h, w = gt.shape
    n = h * w
    if edge_source is None:
        src = gt if gt.is_floating_point() else gt.to(torch.float32)
        src = torch.where(valid.reshape(b, 1, h, w), src, torch.zeros_like(src))
    else:
        src = edge_source if edge_source.is_floating_point() else edge_source.to(torch.float32)
        src = src.mean(dim=1, keepdim=True) if src.shape[1] > 1 else src
    grad = sobel_gradient(src).reshape(b, 2, n)  # (B,2,N): d/dx, d/dy (kornia's Sobel)
    mag2 = grad.square().sum(dim=1)  # squared magnitude ranks like the magnitude
    if edge_source is None:
        # The gradient next to a hole mixes depth with the 0 filler: not an edge.
        inner = erode_mask(valid.reshape(b, 1, h, w)).reshape(b, n)
        mag2 = torch.where(inner, mag2, torch.zeros_like(mag2))
    # The threshold is a statistic: ~32k pixels per image estimate it well and keep
    # kthvalue (a selection over a copy) cheap on large images.
    sub = mag2[:, :: max(1, n // 32768)]
    rank = min(max(math.ceil(edge_quantile * sub.shape[1]), 1), sub.shape[1])
    thresh = sub.kthvalue(rank, dim=1, keepdim=True).values
    edges = mag2 >= thresh.clamp_min(torch.finfo(mag2.dtype).tiny)  # top fraction, and > 0

    local, has_edges = sample_pixels(edges, k, generator)  # (B,k) indices within each image
    ok = has_edges[:, None].expand(b, k)
    base = torch.arange(b, device=gt.device)[:, None] * n
    # Unit gradient direction times a random offset t; the ends are anchor -/+ step.
    flat_x = (base * 2 + local).reshape(-1)  # index of d/dx at the anchor in grad's (B,2,N) layout
    grad_flat = grad.reshape(-1)
    along = torch.stack([grad_flat.index_select(0, flat_x), grad_flat.index_select(0, flat_x + n)]).view(2, b, k)
    lo, hi = float(edge_offset[0]), float(edge_offset[1])
    t = torch.rand((b, k), generator=generator, device=gt.device, dtype=along.dtype).mul_(hi - lo).add_(lo)
    scale = t.mul_(along.square().sum(dim=0).clamp_min_(torch.finfo(along.dtype).tiny).rsqrt_())
    step = along * scale  # (2,B,k): (dx, dy) * t / |grad|
    y = (local // w).to(along.dtype)
    x = (local % w).to(along.dtype)
    ys = torch.stack([y - step[1], y + step[1]]).round_().clamp_(0, h - 1).long()
    xs = torch.stack([x - step[0], x + step[0]]).round_().clamp_(0, w - 1).long()
    ends = base + ys * w + xs  # (2,B,k)
    return ends[0], ends[1], ok & (ends[0] != ends[1])


def _check_sigma(sigma: float) -> None:
    if not sigma >= 0:
        raise ValueError(f"ranking: sigma must be >= 0 (a depth ratio threshold, e.g. 0.03), got {sigma}")


def _check_sampling_args(num_pairs: int, num_edge_pairs: int, edge_quantile: float, edge_offset) -> None:
    for name, value in (("num_pairs", num_pairs), ("num_edge_pairs", num_edge_pairs)):
        if int(value) != value or value < 0:
            raise ValueError(f"ranking: {name} must be a non-negative integer, got {value}")
    if not 0.0 <= edge_quantile < 1.0:
        raise ValueError(f"ranking: edge_quantile must be in [0, 1), got {edge_quantile}")
    if len(edge_offset) != 2 or not 0.0 < edge_offset[0] <= edge_offset[1]:
        raise ValueError(f"ranking: edge_offset must be (min, max) pixels with 0 < min <= max, got {edge_offset}")

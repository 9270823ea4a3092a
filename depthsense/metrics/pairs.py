"""Ordinal pixel pairs: the labels and the pair/pixel samplers shared by WHDR and the
ranking loss (:mod:`depthsense.losses.ranking`)."""

from __future__ import annotations

import torch
from torch import Tensor

from depthsense.metrics.names import WHDR_SIGMA

__all__ = ["ordinal_labels", "sample_pixel_pairs", "sample_pixels"]

def ordinal_labels(g_i: Tensor, g_j: Tensor, sigma: float = WHDR_SIGMA) -> Tensor:
    """Ordinal labels of pixel pairs from depth-like values (larger = farther).

    The labels of ``whdr`` and of the ranking loss (:mod:`depthsense.losses.ranking`).

    Args:
        g_i, g_j: values at the two ends of each pair, one shape, >= 0.
        sigma: equality threshold on the ratio (>= 0).
    Returns:
        int8 of that shape in {+1, -1, 0}: +1 where ``g_i >= (1+sigma) g_j``, -1 where
        ``g_j >= (1+sigma) g_i``, else 0 ("about equal"; also two equal values at
        ``sigma = 0``). The ratio test has no division, so a 0 cannot give inf or NaN.
    Raises:
        ValueError: ``sigma < 0``.
    """
    if not sigma >= 0:
        raise ValueError(f"ordinal_labels: sigma must be >= 0 (a depth ratio threshold, e.g. 0.03), got {sigma}")
    k = 1.0 + float(sigma)
    return (g_i >= k * g_j).to(torch.int8) - (g_j >= k * g_i).to(torch.int8)


def sample_pixel_pairs(valid: Tensor, num_pairs: int,
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``num_pairs`` pairs of two *distinct* valid pixels per image, each end uniform.

    The pair sampler of ``whdr`` and of the ranking loss's random pairs. The first end is
    uniform over the image's valid pixels, the second uniform over the others. Random
    numbers are float64 (float32 on MPS) from the generator's device, so ``floor(u *
    count)`` is exact for millions of pixels and a CPU generator gives the same pairs on
    every device. No host synchronisation.

    Args:
        valid: (B,N) bool, the pixels pairs may use.
        num_pairs: pairs per image (>= 0).
        generator: source of the draws; ``None`` uses the global RNG of ``valid``'s device.
    Returns:
        ``(i, j, ok)``: (B,P) int64 flat pixel indices in [0, N) of the two ends, and (B,)
        bool, False for images with fewer than two valid pixels (their indices are
        meaningless but in range).
    """
    b, _ = valid.shape
    u = _uniform((2, b, num_pairs), generator, valid.device)
    count = valid.sum(dim=1)  # (B,) int64
    cnt = count[:, None]
    a = (u[0] * cnt).long().clamp_max((cnt - 1).clamp_min(0))
    # Offset in [1, count-1] makes the second pixel differ from the first.
    off = 1 + (u[1] * (cnt - 1).clamp_min(0)).long().clamp_max((cnt - 2).clamp_min(0))
    c = (a + off) % cnt.clamp_min(1)
    i, j = _nth_valid(valid, torch.cat([a, c], dim=1)).chunk(2, dim=1)
    return i, j, count >= 2


def sample_pixels(valid: Tensor, k: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``k`` uniform draws (with replacement) among the valid pixels of each image.

    Draws as :func:`sample_pixel_pairs` does (the ranking loss's edge anchors use it).

    Args:
        valid: (B,N) bool.
        k: draws per image (>= 0).
        generator: source of the draws; ``None`` uses the global RNG of ``valid``'s device.
    Returns:
        ``(idx, ok)``: (B,k) int64 flat pixel indices in [0, N) and (B,) bool, False for
        images without a valid pixel (their indices are meaningless but in range).
    """
    b, _ = valid.shape
    u = _uniform((b, k), generator, valid.device)
    count = valid.sum(dim=1)
    cnt = count[:, None]
    return _nth_valid(valid, (u * cnt).long().clamp_max((cnt - 1).clamp_min(0))), count > 0


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Uniform [0,1) draws from the generator's device, in float64 (float32 on MPS), on ``device``."""
    source = generator.device if generator is not None else device
    dtype = torch.float32 if source.type == "mps" else torch.float64
    return torch.rand(shape, generator=generator, dtype=dtype, device=source).to(device)


def _nth_valid(valid: Tensor, rank: Tensor) -> Tensor:
    """(B,K) flat index of the ``rank``-th valid pixel (raster order) of each row of (B,N) ``valid``.

    A cumulative count and a binary search: O(N) and no host synchronisation (a
    ``nonzero`` would wait for the device). Rows without valid pixels give 0.
    """
    n = valid.shape[1]
    idx = torch.searchsorted(valid.cumsum(dim=1), rank + 1)
    return torch.where(idx < n, idx, 0)

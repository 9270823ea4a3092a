"""Scale-and-shift alignment: the one least-squares fit (and degenerate rule) of the
relative-depth metrics and of the SSI loss (:mod:`depthsense.losses.ssi`)."""

from __future__ import annotations

import torch
from torch import Tensor

from depthsense.metrics._inputs import _count, _masked_mean, _prepare

__all__ = ["ssi_scale_shift", "fit_scale_shift", "ssi_align"]

def ssi_scale_shift(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-image least-squares scale ``s`` and shift ``t`` minimising sum (s*d + t - g)^2.

    :func:`fit_scale_shift` over the metric's valid pixels (valid GT, within ``mask``),
    with its rule for degenerate images.

    Returns:
        ``(s, t)``, each (B,) on ``pred``'s device.
    """
    p, g, valid = _prepare(pred, gt, mask, "ssi_scale_shift")
    return fit_scale_shift(p, g, valid)


def fit_scale_shift(pred: Tensor, gt: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """The scale-and-shift fit of DepthSense: the metrics' alignment and the SSI loss use it.

    Closed form over the valid pixels of each image: ``s = cov(d, g) / var(d)``,
    ``t = mean(g) - s*mean(d)``, with centred sums (far better conditioned than
    ``sum(d^2) - n*mean^2`` in float32).

    Degenerate images (never NaN): with fewer than two valid pixels, or a prediction of
    (numerically) zero variance there (relative spread below 1000 machine epsilons,
    below which float rounding would make ``s`` noise over noise), only the shift is
    fitted: ``s = 1``, ``t = mean(g - d)``; without any valid pixel ``s = 1, t = 0``
    (alignment leaves the prediction unchanged).

    Args:
        pred: (B, ...) prediction, any units; flattened per image.
        gt: target of ``pred``'s shape and dtype.
        valid: bool of ``pred``'s shape: the pixels the fit uses (anything, even NaN, may
            stand elsewhere in ``pred`` and ``gt``).
    Returns:
        ``(s, t)``, each (B,), differentiable in ``pred`` (through both where ``s`` is
        fitted, through ``t`` alone where it is not).
    """
    b = pred.shape[0]
    p, g, v = pred.reshape(b, -1), gt.reshape(b, -1), valid.reshape(b, -1)
    return _scale_shift(p, g, v, _count(v, p.dtype))


def ssi_align(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Align ``pred`` to ``gt`` by the per-image scale and shift of ``ssi_scale_shift``.

    Returns:
        ``s*pred + t`` for every pixel (valid or not), with ``pred``'s shape and device
        (dtype at least float32).
    """
    p, g, valid = _prepare(pred, gt, mask, "ssi_align")
    s, t = fit_scale_shift(p, g, valid)
    return (s[:, None] * p + t[:, None]).reshape(pred.shape)


def _scale_shift(p: Tensor, g: Tensor, valid: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`fit_scale_shift` on (B,N) tensors whose valid-pixel counts are known."""
    mp = _masked_mean(p, valid, count)
    mg = _masked_mean(g, valid, count)
    pc = torch.where(valid, p - mp[:, None], 0)
    gc = torch.where(valid, g - mg[:, None], 0)
    var = (pc * pc).sum(dim=1)
    cov = (pc * gc).sum(dim=1)
    energy = torch.where(valid, p * p, 0).sum(dim=1)
    eps = torch.finfo(p.dtype).eps
    ok = (count >= 2) & (var > (1e3 * eps) ** 2 * energy) & (var > 0)
    s = torch.where(ok, cov / torch.where(ok, var, 1), 1)
    t = mg - s * mp
    return s, t

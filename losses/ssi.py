"""Scale-and-shift-invariant loss (Ranftl et al., MiDaS, TPAMI 2020).

A monocular network knows depth only up to an unknown scale and shift. Per image, the
prediction is aligned to the target by least squares over valid pixels,

    (s, t) = argmin  sum_valid (s * p + t - g)^2,

solved in closed form (the 2x2 normal equations, written in centred form for accuracy:
``s = cov(p, g) / var(p)``, ``t = mean(g) - s * mean(p)``), batched over images. The
loss is the masked L1 distance (MAE, robust to GT outliers) between ``s*p + t`` and g,
pooled over all valid pixels of the batch, plus optionally MiDaS' multi-scale
gradient-matching term on the residual ``s*p + t - g``. Gradients flow through s and t,
as in MiDaS. The target is not normalised, so the loss is in the target's units.

The fit is :func:`depthsense.metrics.fit_scale_shift`, the one the relative-depth
metrics align with, so a loss and a metric of one prediction see the same alignment.
Degenerate images (fewer than 2 valid pixels, or a prediction without variance over
them) get its shift-only rule, ``s = 1, t = mean(g - p)`` (``t = 0`` without valid
pixels): a finite loss and gradient, never NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from depthsense.losses.registry import register_loss
from depthsense.losses.pixel import check_pair, masked_mean, valid_mask
from depthsense.metrics import fit_scale_shift

__all__ = ["align_scale_shift", "ssi_loss", "gradient_matching_loss", "SSILoss"]

DEFAULT_GRAD_WEIGHT = 0.5
"""Weight of the gradient-matching term (MiDaS' alpha = 0.5)."""


def align_scale_shift(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-image least-squares scale and shift mapping ``pred`` onto ``gt``.

    Args:
        pred: (B,1,H,W) prediction (any units).
        gt: (B,1,H,W) target, 0 = missing.
        mask: (B,1,H,W) {0,1}; default ``gt > 0``.
    Returns:
        ``(scale, shift)``, each (B,1,1,1), differentiable in ``pred``; for degenerate
        images ``scale = 1, shift = mean(gt - pred over valid)`` (0 if none), the rule of
        :func:`depthsense.metrics.fit_scale_shift`.
    Raises:
        ShapeError: mismatching shapes.
    """
    pred, gt = check_pair(pred, gt, "align_scale_shift")
    mask = valid_mask(gt, mask, "align_scale_shift")
    scale, shift = fit_scale_shift(pred, gt, mask)
    return scale.view(-1, 1, 1, 1), shift.view(-1, 1, 1, 1)


def ssi_loss(
    pred: Tensor,
    gt: Tensor,
    mask: Tensor | None = None,
    grad_weight: float = DEFAULT_GRAD_WEIGHT,
    scales: int = 4,
) -> Tensor:
    """Scale-and-shift-invariant MAE plus weighted gradient matching.

    Args:
        pred: (B,1,H,W) prediction, any scale and shift.
        gt: (B,1,H,W) target (metric or relative depth), 0 = missing.
        mask: (B,1,H,W) {0,1}; default ``gt > 0``.
        grad_weight: weight of :func:`gradient_matching_loss` (>= 0; 0 disables it).
        scales: number of scales of the gradient term (>= 1).
    Returns:
        Scalar in target units; unchanged (up to rounding) when ``pred`` is replaced by
        ``a * pred + b`` with ``a > 0``; 0 for an empty mask.
    Raises:
        ShapeError: mismatching shapes.
        ValueError: ``grad_weight < 0`` or ``scales < 1``.
    """
    _check_args(grad_weight, scales)
    pred, gt = check_pair(pred, gt, "ssi_loss")
    mask = valid_mask(gt, mask, "ssi_loss")
    scale, shift = align_scale_shift(pred, gt, mask)
    residual = scale * pred + shift - gt
    loss = masked_mean(residual.abs(), mask)
    if grad_weight > 0:
        loss = loss + grad_weight * gradient_matching_loss(residual, mask, scales)
    return loss


def gradient_matching_loss(residual: Tensor, mask: Tensor, scales: int = 4) -> Tensor:
    """MiDaS' multi-scale gradient matching on an aligned residual.

    At scale k (k = 0..scales-1) the residual and mask are subsampled with stride
    ``2**k``; the term is the sum of ``|dR/dx|`` and ``|dR/dy|`` (forward differences)
    over pixel pairs whose both ends are valid, divided by the valid pixel count at that
    scale. The scales are summed.

    Args:
        residual: (B,1,H,W) aligned prediction minus target.
        mask: (B,1,H,W) {0,1} float or bool.
        scales: number of scales (>= 1).
    Returns:
        Scalar (target units per pixel); 0 where no neighbouring pair is valid.
    """
    _check_args(0.0, scales)
    mask = mask > 0
    zero = torch.zeros((), dtype=residual.dtype, device=residual.device)
    total = residual.sum() * 0.0
    for k in range(scales):
        step = 2**k
        r = residual[..., ::step, ::step]
        m = mask[..., ::step, ::step]
        mx = m[..., :, 1:] & m[..., :, :-1]
        my = m[..., 1:, :] & m[..., :-1, :]
        gx = torch.where(mx, (r[..., :, 1:] - r[..., :, :-1]).abs(), zero).sum()
        gy = torch.where(my, (r[..., 1:, :] - r[..., :-1, :]).abs(), zero).sum()
        total = total + (gx + gy) / m.sum().to(residual.dtype).clamp_min(1.0)
    return total


@register_loss("ssi")
class SSILoss(nn.Module):
    """Module form of :func:`ssi_loss`.

    Args:
        grad_weight: weight of the gradient-matching term (default 0.5 as in MiDaS; 0
            gives the pure scale-and-shift-invariant MAE).
        scales: scales of the gradient term (default 4).

    ``forward(pred, gt, mask=None, rgb=None) -> scalar``; ``rgb`` is ignored.
    """

    def __init__(self, grad_weight: float = DEFAULT_GRAD_WEIGHT, scales: int = 4) -> None:
        super().__init__()
        _check_args(grad_weight, scales)
        self.grad_weight = float(grad_weight)
        self.scales = int(scales)

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        return ssi_loss(pred, gt, mask, self.grad_weight, self.scales)

    def extra_repr(self) -> str:
        return f"grad_weight={self.grad_weight}, scales={self.scales}"


def _check_args(grad_weight: float, scales: int) -> None:
    if not grad_weight >= 0:
        raise ValueError(f"ssi: grad_weight must be >= 0, got {grad_weight}")
    if int(scales) != scales or scales < 1:
        raise ValueError(f"ssi: scales must be an integer >= 1, got {scales}")

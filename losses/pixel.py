"""Masked pixel losses (L1, L2) and the masking helpers every loss shares.

Every DepthSense loss compares a prediction with ground truth only where the ground
truth is valid (ARCHITECTURE.md section 2: 0 = missing). The helpers here give all
loss modules the same rules:

* the validity mask defaults to ``gt > 0``; an explicit mask is used as given (pass the
  *ground-truth* validity, not the sparse-input mask of a batch);
* a mean over an empty mask is 0, still connected to the autograd graph, so
  ``backward()`` works and every gradient is finite (0), never NaN;
* nothing leaves the input's device and nothing synchronises with it (no ``.item()``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from depthsense.check import check_shape
from depthsense.errors import ShapeError
from depthsense.losses.registry import register_loss

__all__ = [
    "masked_l1",
    "masked_l2",
    "masked_mean",
    "valid_mask",
    "check_pair",
    "MaskedL1Loss",
    "MaskedL2Loss",
    "image_mae",
    "image_rmse",
    "ImageMAELoss",
    "ImageRMSELoss",
    "ScaleFreeMAELoss",
    "ScaleFreeRMSELoss",
    "SCALE_FREE_REF_M",
]

SCALE_FREE_REF_M = 10.0
"""``nmae`` / ``nrmse`` express every image's error as if its depths had this geometric mean (m)."""


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` over the pixels where ``mask`` is 1.

    Args:
        x: (B,C,H,W) values.
        mask: (B,1,H,W) {0,1} (float or bool), broadcast over C.
    Returns:
        Scalar: ``sum(x*mask) / (C*sum(mask))``; 0 when the mask is empty (never NaN).
        Values of ``x`` outside the mask may be anything, even inf/NaN: they are
        selected away (``torch.where``), not multiplied by 0.
    """
    m = mask > 0
    total = torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum()
    count = m.expand_as(x).sum().to(x.dtype)
    # clamp: empty mask -> 0/1 = 0, a graph-connected zero with zero gradient.
    return total / count.clamp_min(1.0)


def masked_l1(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error over valid ground-truth pixels of the whole batch.

    Args:
        pred: (B,1,H,W) predicted depth (metres).
        gt: (B,1,H,W) ground truth, 0 = missing.
        mask: (B,1,H,W) {0,1}; default ``gt > 0``.
    Returns:
        Scalar in metres: ``sum |pred-gt| / #valid`` (pixels pooled over the batch, so
        an image with more valid pixels weighs more); 0 for an empty mask.
    Raises:
        ShapeError: see :func:`check_pair`.
    """
    pred, gt = check_pair(pred, gt, "masked_l1")
    mask = valid_mask(gt, mask, "masked_l1")
    return masked_mean((pred - gt).abs(), mask)


def masked_l2(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over valid ground-truth pixels of the whole batch.

    Args:
        pred, gt, mask: as in :func:`masked_l1`.
    Returns:
        Scalar in metres^2 (an MSE, not an RMSE: no square root, so the gradient stays
        finite at a perfect prediction); 0 for an empty mask.
    Raises:
        ShapeError: see :func:`check_pair`.
    """
    pred, gt = check_pair(pred, gt, "masked_l2")
    mask = valid_mask(gt, mask, "masked_l2")
    diff = pred - gt
    return masked_mean(diff * diff, mask)


def image_mae(pred: Tensor, gt: Tensor, mask: Tensor | None = None, scale_free: bool = False) -> Tensor:
    """Per-image MAE averaged over the images with valid ground truth (metres).

    The KITTI metric's own averaging: every image weighs the same however many valid
    pixels it has (unlike :func:`masked_l1`, where a dense image outweighs a sparse one,
    e.g. a synthetic frame with dense GT next to a real scan scored at held-out rings).

    Args:
        pred, gt, mask: as in :func:`masked_l1`.
        scale_free: divide each image's error by the geometric mean of its valid ground
            truth and multiply by :data:`SCALE_FREE_REF_M`, so a room at 2 m and a street
            at 20 m weigh alike (a 1 % error costs the same everywhere).
    Returns:
        Scalar in metres (metres at the reference scale when ``scale_free``); 0 when no
        image has a valid pixel.
    """
    pred, gt = check_pair(pred, gt, "image_mae")
    mask = valid_mask(gt, mask, "image_mae")
    total, count = _per_image_sums((pred - gt).abs(), mask)
    per_image = total / count.clamp_min(1.0)
    if scale_free:
        per_image = per_image * _reference_gain(gt, mask, count)
    return _mean_over_images(per_image, count)


def image_rmse(pred: Tensor, gt: Tensor, mask: Tensor | None = None, eps: float = 1e-6,
               scale_free: bool = False) -> Tensor:
    """Per-image RMSE averaged over the images with valid ground truth (metres).

    Args:
        pred, gt, mask: as in :func:`masked_l1`.
        eps: added under the square root (m^2) so the gradient stays finite at a perfect
            prediction.
        scale_free: as in :func:`image_mae`.
    Returns:
        Scalar in metres; 0 when no image has a valid pixel.
    """
    pred, gt = check_pair(pred, gt, "image_rmse")
    mask = valid_mask(gt, mask, "image_rmse")
    diff = pred - gt
    total, count = _per_image_sums(diff * diff, mask)
    per_image = torch.sqrt(total / count.clamp_min(1.0) + eps)
    if scale_free:
        per_image = per_image * _reference_gain(gt, mask, count)
    return _mean_over_images(per_image, count)


def check_pair(pred: Tensor, gt: Tensor, where: str = "loss") -> tuple[Tensor, Tensor]:
    """Validate a prediction/ground-truth pair and bring them to a common float dtype.

    Half-precision inputs (from autocast) are promoted to float32: loss sums over a
    whole batch overflow float16. float64 stays float64 (gradcheck).

    Args:
        pred: (B,1,H,W) floating tensor.
        gt: (B,1,H,W) tensor of the same shape and device.
        where: name of the calling function, used in the error message.
    Returns:
        ``(pred, gt)`` in the same floating dtype.
    Raises:
        ShapeError: not (B,1,H,W), shapes that differ, or a pred that is no float tensor.
    """
    dims = check_shape(pred, "B,1,H,W", "pred", where=where,
                       hint="Add the channel axis with pred.unsqueeze(1) if it is (B,H,W).")
    check_shape(gt, "B,1,H,W", "gt", where=where, dims=dims,
                hint="Resize or crop the prediction to the ground truth first.")
    if not pred.is_floating_point():
        raise ShapeError(f"{where}: pred has dtype {pred.dtype}; expected a floating tensor (float32).")
    dtype = pred.dtype if pred.dtype in (torch.float32, torch.float64) else torch.float32
    return pred.to(dtype), gt.to(dtype)


def valid_mask(gt: Tensor, mask: Tensor | None = None, where: str = "loss") -> Tensor:
    """The boolean ground-truth validity mask.

    Args:
        gt: (B,1,H,W) ground truth, 0 = missing.
        mask: optional (B,1,H,W) {0,1} float or bool; used as given when not None.
        where: name of the caller, for the error message.
    Returns:
        (B,1,H,W) bool, ``gt > 0`` by default.
    Raises:
        ShapeError: a mask whose shape is not gt's (B,1,H,W).
    """
    if mask is None:
        return gt > 0
    check_shape(mask, "B,1,H,W", "mask", where=where, dims=check_shape(gt, "B,1,H,W", "gt", where=where),
                hint="Pass the ground-truth validity mask (or None for gt > 0), not the sparse-input mask "
                     "of another size.")
    return mask > 0


@register_loss("l1")
class MaskedL1Loss(nn.Module):
    """Module form of :func:`masked_l1` (no hyper-parameters).

    ``forward(pred, gt, mask=None, rgb=None) -> scalar``; ``rgb`` is ignored (it is part
    of the common term signature used by :class:`depthsense.losses.CombinedLoss`).
    """

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        return masked_l1(pred, gt, mask)


@register_loss("l2")
class MaskedL2Loss(nn.Module):
    """Module form of :func:`masked_l2` (no hyper-parameters).

    ``forward(pred, gt, mask=None, rgb=None) -> scalar``; ``rgb`` is ignored.
    """

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        return masked_l2(pred, gt, mask)


@register_loss("mae")
class ImageMAELoss(nn.Module):
    """Module form of :func:`image_mae` (per-image MAE, mean over images; metres)."""

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        return image_mae(pred, gt, mask)


@register_loss("rmse")
class ImageRMSELoss(nn.Module):
    """Module form of :func:`image_rmse` (per-image RMSE, mean over images; metres)."""

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        return image_rmse(pred, gt, mask)


@register_loss("nmae")
class ScaleFreeMAELoss(nn.Module):
    """Module form of ``image_mae(..., scale_free=True)``: per-image MAE relative to the
    image's depth scale (metres at :data:`SCALE_FREE_REF_M`), for training on rooms and
    streets together."""

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        return image_mae(pred, gt, mask, scale_free=True)


@register_loss("nrmse")
class ScaleFreeRMSELoss(nn.Module):
    """Module form of ``image_rmse(..., scale_free=True)`` (see :class:`ScaleFreeMAELoss`)."""

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        return image_rmse(pred, gt, mask, scale_free=True)


def _reference_gain(gt: Tensor, mask: Tensor, count: Tensor) -> Tensor:
    """(B,) ``SCALE_FREE_REF_M / geometric mean of the valid gt`` (no gradient: gt is data)."""
    logd, _ = _per_image_sums(torch.log(gt.clamp_min(1e-3)), mask)
    return SCALE_FREE_REF_M / torch.exp(logd / count.clamp_min(1.0))


def _per_image_sums(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) sums of ``x`` over each image's mask and (B,) valid-pixel counts."""
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    total = torch.where(mask, x, zero).flatten(1).sum(1)
    return total, mask.flatten(1).sum(1).to(x.dtype)


def _mean_over_images(per_image: Tensor, count: Tensor) -> Tensor:
    has = (count > 0).to(per_image.dtype)
    return (per_image * has).sum() / has.sum().clamp_min(1.0)

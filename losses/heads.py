"""Losses of the U-Net's extra heads: a Laplacian likelihood for the confidence head and
BCE, Dice and a mask-edge term for the foreground head.

These terms read the model's head outputs and the batch's foreground mask, which the
trainer passes to :class:`depthsense.losses.CombinedLoss` as ``extras``::

    extras = {"scale": (B,1,H,W) m,        # sparse_unet heads=...conf: Laplacian scale b
              "fg_logit": (B,1,H,W),       # sparse_unet heads=...fg: foreground logit
              "fg_gt": (B,1,H,W) {0,1},    # the batch's ``fg`` (synthetic data)
              "fg_valid": (B,) {0,1}}      # optional: which samples have a real ``fg``

Confidence. The head predicts, per pixel, the scale ``b`` of a Laplacian around the
predicted depth ``d``; its negative log-likelihood of the ground truth is
``|d - gt| / b + log b`` (+ log 2, dropped). For fixed ``d`` it is minimised by
``b = E|d - gt|``: a proper scoring rule, so ``b`` learns the expected absolute error,
whose order is exactly what the sparsification curve scores. The depth in it is
*detached*: the depth head keeps being trained by its own terms (``l1``, ``rmse``, ...)
exactly as in a depth-only model. Without the detach the NLL also re-weights the
depth loss by ``1/b``, which lets the network give up on hard pixels (a large ``b``
excuses their error) and costs depth accuracy; detaching keeps the issue's "depth RMSE
within 5 % of the depth-only model" a matter of the shared decoder only.

Foreground. ``fg_bce`` is the per-pixel binary cross-entropy (with logits, so it is
stable), ``fg_dice`` the soft Dice loss ``1 - (2 sum(p t) + 1) / (sum p + sum t + 1)``
per image, averaged (it balances the small foreground against the large background),
and ``fg_edge`` the mean L1 distance between the Sobel gradients of the predicted
probability and of the mask, which sharpens the mask's outline. All three use every
pixel: the mask is defined everywhere, unlike depth ground truth.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.errors import ShapeError
from depthsense.losses.registry import register_loss
from depthsense.losses.pixel import check_pair, masked_mean, valid_mask
from depthsense.losses.structure import sobel_gradient

__all__ = [
    "laplace_nll",
    "fg_bce",
    "fg_dice",
    "fg_edge",
    "LaplaceNLLLoss",
    "ForegroundBCELoss",
    "ForegroundDiceLoss",
    "ForegroundEdgeLoss",
    "HeadLoss",
]


def laplace_nll(pred: Tensor, scale: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Laplacian negative log-likelihood of the ground truth, depth detached.

    Args:
        pred: (B,1,H,W) predicted depth (m); detached here (see the module docstring).
        scale: (B,1,H,W) predicted scale ``b`` > 0 (m).
        gt: (B,1,H,W) ground truth, 0 = missing.
        mask: (B,1,H,W) {0,1}; default ``gt > 0``.
    Returns:
        Scalar ``mean(|pred - gt| / b + log b)`` over valid pixels (log metres; can be
        negative); 0 for an empty mask.
    Raises:
        ShapeError: mismatching shapes.
    """
    pred, gt = check_pair(pred, gt, "laplace_nll")
    scale, _ = check_pair(scale, gt, "laplace_nll (scale)")
    mask = valid_mask(gt, mask, "laplace_nll")
    err = (pred.detach() - gt).abs()
    return masked_mean(err / scale + torch.log(scale), mask)


def fg_bce(logit: Tensor, target: Tensor) -> Tensor:
    """Mean binary cross-entropy of foreground logits against a {0,1} mask (every pixel).

    Args:
        logit: (B,1,H,W) foreground logits.
        target: (B,1,H,W) {0,1} mask.
    Returns:
        Scalar (nats per pixel).
    Raises:
        ShapeError: mismatching shapes.
    """
    logit, target = check_pair(logit, target, "fg_bce")
    return F.binary_cross_entropy_with_logits(logit, target)


def fg_dice(logit: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """Soft Dice loss per image, averaged over the batch.

    Args:
        logit: (B,1,H,W) foreground logits (the probability is their sigmoid).
        target: (B,1,H,W) {0,1} mask.
        smooth: added to numerator and denominator (pixels); an image without foreground
            predicted as none gives 0, not 0/0.
    Returns:
        Scalar in [0,1): ``1 - (2 sum(p t) + s) / (sum p + sum t + s)``.
    Raises:
        ShapeError: mismatching shapes.
    """
    logit, target = check_pair(logit, target, "fg_dice")
    p = torch.sigmoid(logit).flatten(1)
    t = target.flatten(1)
    dice = (2 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth)
    return (1 - dice).mean()


def fg_edge(logit: Tensor, target: Tensor) -> Tensor:
    """Mean L1 distance between the Sobel gradients of the probability and of the mask.

    Args:
        logit: (B,1,H,W) foreground logits.
        target: (B,1,H,W) {0,1} mask.
    Returns:
        Scalar (probability per pixel); 0 for a perfect mask.
    Raises:
        ShapeError: mismatching shapes.
    """
    logit, target = check_pair(logit, target, "fg_edge")
    diff = sobel_gradient(torch.sigmoid(logit) - target).abs().sum(dim=2)
    return diff.mean()


class HeadLoss(nn.Module):
    """Base of the head terms: ``forward(pred, gt, mask=None, rgb=None, extras=None)``.

    ``requires`` names the model head the term trains (``"conf"`` or ``"fg"``);
    :class:`~depthsense.losses.CombinedLoss` passes ``extras`` to every term with
    ``uses_extras``.
    """

    uses_extras = True
    requires: str = ""
    keys: tuple[str, ...] = ()

    def _get(self, extras: dict | None) -> list[Tensor]:
        missing = [k for k in self.keys if not extras or extras.get(k) is None]
        if missing:
            hint = ("a model built with heads=depth,conf" if self.requires == "conf" else
                    "a model built with heads=depth,fg and data with foreground masks (synthetic)")
            raise ShapeError(f"loss term {type(self).__name__} needs {', '.join(missing)}: train {hint} "
                             "(--model-arg heads=...), or drop the term from --loss")
        return [extras[k] for k in self.keys]


@register_loss("laplace_nll")
class LaplaceNLLLoss(HeadLoss):
    """Module form of :func:`laplace_nll` (confidence head; needs ``extras["scale"]``)."""

    requires = "conf"
    keys = ("scale",)

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None,
                extras: dict | None = None) -> Tensor:
        (scale,) = self._get(extras)
        return laplace_nll(pred, scale, gt, mask)


class _ForegroundLoss(HeadLoss):
    """Module form of a foreground term ``fn(extras["fg_logit"], extras["fg_gt"])``.

    With ``extras["fg_valid"]`` (a batch mixing data sets with and without masks, see
    :func:`depthsense.data.collate_samples`) only the samples that have a mask count; a
    batch with none gives 0 (still connected to the graph, so every parameter gets a
    gradient, as DDP requires).
    """

    requires = "fg"
    keys = ("fg_logit", "fg_gt")
    fn: Callable[[Tensor, Tensor], Tensor]  # set by each registered subclass

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None,
                extras: dict | None = None) -> Tensor:
        logit, target = self._get(extras)
        valid = extras.get("fg_valid")
        if valid is not None:
            keep = valid > 0.5
            if not bool(keep.any()):
                return logit.sum() * 0.0
            logit, target = logit[keep], target[keep]
        return self.fn(logit, target)


@register_loss("fg_bce")
class ForegroundBCELoss(_ForegroundLoss):
    """Module form of :func:`fg_bce` (needs ``extras["fg_logit"]`` and ``extras["fg_gt"]``)."""

    fn = staticmethod(fg_bce)


@register_loss("fg_dice")
class ForegroundDiceLoss(_ForegroundLoss):
    """Module form of :func:`fg_dice` (needs ``extras["fg_logit"]`` and ``extras["fg_gt"]``)."""

    fn = staticmethod(fg_dice)


@register_loss("fg_edge")
class ForegroundEdgeLoss(_ForegroundLoss):
    """Module form of :func:`fg_edge` (needs ``extras["fg_logit"]`` and ``extras["fg_gt"]``)."""

    fn = staticmethod(fg_edge)

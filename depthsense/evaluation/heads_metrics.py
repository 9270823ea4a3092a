"""Metrics of the extra heads: confidence (sparsification, AUSE) and foreground masks.

The depth metrics live in :mod:`depthsense.metrics`; these are their companions for the
U-Net's ``conf`` and ``fg`` heads, pure functions of tensors used by the evaluation
report and the tests alike.

Confidence
    A confidence map is judged by the order it puts pixels in. The **sparsification
    curve** removes a fraction ``f`` of an image's valid pixels, the least confident
    first, and gives the RMSE (mm) of the rest, for ``f`` in :data:`SPARSIFICATION_FRACTIONS`
    (0 to 90 %). The **oracle** curve removes the largest true errors first: the best any
    confidence can do. **AUSE** (area under the sparsification error) is the area
    between the two over ``f`` in [0, 0.9] (trapezoids; mm x fraction; 0 is perfect).
    Curves are per image, then averaged over the images (so AUSE, which is linear in the
    curves, is both the mean of per-image AUSEs and the area between the mean curves).
    Ties in the confidence are broken at random (seeded): an order the confidence
    does not give must not be borrowed from the pixel layout.

    Baseline: :func:`distance_to_measurement`, the distance (pixels) from each pixel to
    the nearest input measurement, as an uncertainty: free, and the first thing a
    careful user would try.

Foreground
    ``fg`` probabilities are thresholded at 0.5. :func:`mask_counts` gives true/false
    positives and false negatives, pooled over a data set before :func:`iou_from_counts`
    and :func:`f1_from_counts` (an image without foreground cannot make a NaN). Depth
    errors inside and outside the foreground use :func:`depthsense.metrics.mae` /
    :func:`~depthsense.metrics.rmse` with the region as the mask.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from depthsense.check import check_shape
from depthsense.metrics import mae, rmse, valid_images

__all__ = [
    "SPARSIFICATION_FRACTIONS",
    "sparsification_curve",
    "oracle_curve",
    "ause",
    "rmse_reduction",
    "distance_to_measurement",
    "confidence_to_uncertainty",
    "mask_counts",
    "iou_from_counts",
    "f1_from_counts",
    "HeadsAccumulator",
]

SPARSIFICATION_FRACTIONS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(19))
"""Fractions of pixels removed: 0, 0.05, ..., 0.9."""


def sparsification_curve(
    err: Tensor, uncertainty: Tensor, fractions: Sequence[float] = SPARSIFICATION_FRACTIONS,
    *, generator: torch.Generator | None = None,
) -> Tensor:
    """RMSE of the pixels left after removing the most uncertain ones.

    Args:
        err: (N,) absolute errors of one image's valid pixels (any unit; the RMSE has it).
        uncertainty: (N,) larger = less confident = removed first.
        fractions: removal fractions in [0, 1).
        generator: breaks ties in ``uncertainty`` (seeded random order); default seed 0.
    Returns:
        (len(fractions),) float64 RMSE of the kept pixels; all 0 for an empty image.
    Raises:
        ShapeError: ``err`` and ``uncertainty`` are not two 1-D tensors of one length.
        ValueError: a fraction outside [0, 1).
    """
    err, uncertainty = _check_pair(err, uncertainty)
    fr = _check_fractions(fractions)
    n = err.numel()
    if n == 0:
        return torch.zeros(len(fr), dtype=torch.float64)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    perm = torch.randperm(n, generator=gen)
    order = perm[torch.argsort(uncertainty.detach().cpu().double()[perm], stable=True)]  # most confident first
    sq = err.detach().cpu().double()[order] ** 2
    return _kept_rmse(torch.cumsum(sq, 0), fr)


def oracle_curve(err: Tensor, fractions: Sequence[float] = SPARSIFICATION_FRACTIONS) -> Tensor:
    """The sparsification curve of a perfect confidence (largest errors removed first).

    Args, Returns: as :func:`sparsification_curve`.
    """
    err, _ = _check_pair(err, err)
    fr = _check_fractions(fractions)
    if err.numel() == 0:
        return torch.zeros(len(fr), dtype=torch.float64)
    sq = torch.sort(err.detach().cpu().double().abs()).values ** 2
    return _kept_rmse(torch.cumsum(sq, 0), fr)


def ause(curve: Tensor, oracle: Tensor, fractions: Sequence[float] = SPARSIFICATION_FRACTIONS) -> float:
    """Area between a sparsification curve and its oracle (trapezoids over ``fractions``).

    Args:
        curve, oracle: (F,) from :func:`sparsification_curve` and :func:`oracle_curve`.
    Returns:
        The area (curve unit x fraction); 0 for a perfect confidence.
    Raises:
        ShapeError: curves of another length than ``fractions``.
    """
    fr = _check_fractions(fractions)
    for name, c in (("curve", curve), ("oracle", oracle)):
        check_shape(c, "F", name, where="ause", dims={"F": len(fr)}, hint="One value per removal fraction.")
    gap = (curve.double() - oracle.double()).cpu().numpy()
    return float(np.sum((gap[1:] + gap[:-1]) * 0.5 * np.diff(fr)))


def rmse_reduction(curve: Tensor, fraction: float = 0.2,
                   fractions: Sequence[float] = SPARSIFICATION_FRACTIONS) -> float:
    """``1 - RMSE(after removing fraction) / RMSE(all pixels)``: 0.4 = 40 % lower.

    Raises:
        ValueError: ``fraction`` is not one of ``fractions``.
    """
    fr = list(_check_fractions(fractions))
    matches = [i for i, f in enumerate(fr) if abs(f - fraction) < 1e-9]
    if not matches or abs(fr[0]) > 1e-12:
        raise ValueError(f"rmse_reduction: fraction {fraction} (and 0) must be among the fractions {fr}")
    full = float(curve[0])
    return 0.0 if full <= 0 else 1.0 - float(curve[matches[0]]) / full


def distance_to_measurement(mask: Tensor) -> Tensor:
    """Euclidean distance (pixels) from every pixel to the nearest valid input pixel.

    Args:
        mask: (B,1,H,W) {0,1} (or bool) input validity.
    Returns:
        (B,1,H,W) float32 on ``mask``'s device; 0 at measurements. An image without any
        measurement gets ``H + W`` everywhere (farther than any real distance).
    Raises:
        ShapeError: not (B,1,H,W).
    """
    check_shape(mask, "B,1,H,W", "mask", where="distance_to_measurement")
    m = (mask.detach() > 0).cpu().numpy()
    h, w = m.shape[-2:]
    out = np.empty(m.shape, np.float32)
    for b in range(m.shape[0]):
        if not m[b, 0].any():
            out[b, 0] = float(h + w)
            continue
        out[b, 0] = cv2.distanceTransform((~m[b, 0]).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return torch.from_numpy(out).to(mask.device)


def confidence_to_uncertainty(conf: Tensor) -> Tensor:
    """``1 - conf``: the removal order of :func:`sparsification_curve` for a confidence in [0,1]."""
    return 1.0 - conf


def mask_counts(prob: Tensor, target: Tensor, threshold: float = 0.5) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of a thresholded mask.

    Args:
        prob: (B,1,H,W) foreground probability (or {0,1} mask); foreground where > threshold.
        target: (B,1,H,W) {0,1} true mask.
    Returns:
        ``(tp, fp, fn)`` pixel counts over the whole batch.
    Raises:
        ShapeError: shapes differ.
    """
    check_shape(target, "B,1,H,W", "target", where="mask_counts",
                dims=check_shape(prob, "B,1,H,W", "prob", where="mask_counts"))
    p = prob > threshold
    t = target > 0.5
    return int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())


def iou_from_counts(tp: int, fp: int, fn: int) -> float:
    """Intersection over union ``tp / (tp + fp + fn)``; 1.0 when both masks are empty."""
    union = tp + fp + fn
    return 1.0 if union == 0 else tp / union


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 (Dice) ``2 tp / (2 tp + fp + fn)``; 1.0 when both masks are empty."""
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2 * tp / denom


class HeadsAccumulator:
    """Sums over a data set for the heads' report: curves per confidence source,
    foreground counts and depth errors inside/outside the foreground.

    Args:
        fractions: sparsification fractions (default :data:`SPARSIFICATION_FRACTIONS`).
        seed: tie-breaking seed of the curves.

    ``update(pred, gt, uncertainties={"name": (B,1,H,W)}, fg_prob=None, fg_gt=None)``
    per batch; ``compute()`` gives the summary (see there).
    """

    def __init__(self, fractions: Sequence[float] = SPARSIFICATION_FRACTIONS, seed: int = 0) -> None:
        self.fractions = _check_fractions(fractions)
        self.generator = torch.Generator().manual_seed(seed)
        self.curves: dict[str, Tensor] = {}
        self.oracle = torch.zeros(len(self.fractions), dtype=torch.float64)
        self.images = 0
        self.counts = [0, 0, 0]
        self.region: dict[str, list[float]] = {k: [0.0, 0.0, 0.0] for k in ("inside", "outside")}  # mae, rmse, n

    @torch.no_grad()
    def update(self, pred: Tensor, gt: Tensor, uncertainties: Mapping[str, Tensor] | None = None,
               fg_prob: Tensor | None = None, fg_gt: Tensor | None = None) -> None:
        """Add a batch.

        Args:
            pred, gt: (B,1,H,W) depth (m), gt 0 = missing.
            uncertainties: name -> (B,1,H,W), larger = removed first (e.g. ``1 - conf``,
                or :func:`distance_to_measurement`).
            fg_prob: (B,1,H,W) predicted foreground probability, or None.
            fg_gt: (B,1,H,W) {0,1} true mask, or None (then no foreground numbers).
        """
        valid = (gt > 0) & torch.isfinite(gt)
        if uncertainties:
            for b in range(gt.shape[0]):
                v = valid[b, 0]
                if not v.any():
                    continue
                err = (pred[b, 0][v] - gt[b, 0][v]).abs().double() * 1000.0  # mm
                self.oracle += oracle_curve(err, self.fractions)
                for name, u in uncertainties.items():
                    curve = sparsification_curve(err, u[b, 0][v], self.fractions, generator=self.generator)
                    self.curves[name] = self.curves.get(name, torch.zeros_like(curve)) + curve
                self.images += 1
        if fg_gt is not None:
            if fg_prob is not None:
                for i, c in enumerate(mask_counts(fg_prob, fg_gt)):
                    self.counts[i] += c
            inside = fg_gt > 0.5
            for name, region in (("inside", inside), ("outside", ~inside)):
                has = valid_images(gt, region)
                if has.any():
                    acc = self.region[name]
                    acc[0] += float(mae(pred, gt, region)[has].sum())
                    acc[1] += float(rmse(pred, gt, region)[has].sum())
                    acc[2] += int(has.sum())

    def compute(self) -> dict:
        """The summary.

        Returns:
            ``{"fractions": [...], "images": n, "oracle": [mm...],
            "confidence": {name: {"curve": [mm...], "ause": mm, "rmse_cut_20": ratio}},
            "fg": {"iou", "f1", "tp", "fp", "fn"} or None,
            "depth_in_fg": {"inside": {"mae", "rmse", "images"}, "outside": {...}} or None}``;
            curves are means over the images with valid ground truth.
        """
        n = max(self.images, 1)
        oracle = self.oracle / n
        conf = {}
        for name, total in self.curves.items():
            curve = total / n
            conf[name] = {
                "curve": [round(float(v), 3) for v in curve],
                "ause": ause(curve, oracle, self.fractions),
                "rmse_cut_20": rmse_reduction(curve, 0.2, self.fractions) if 0.2 in self.fractions else None,
            }
        tp, fp, fn = self.counts
        has_fg = any(acc[2] for acc in self.region.values())
        return {
            "fractions": list(self.fractions),
            "images": self.images,
            "oracle": [round(float(v), 3) for v in oracle],
            "oracle_rmse_cut_20": rmse_reduction(oracle, 0.2, self.fractions) if self.images else None,
            "confidence": conf,
            "fg": {"iou": iou_from_counts(tp, fp, fn), "f1": f1_from_counts(tp, fp, fn), "tp": tp, "fp": fp,
                   "fn": fn} if (tp + fp + fn) else None,
            "depth_in_fg": {
                name: {"mae": acc[0] / acc[2], "rmse": acc[1] / acc[2], "images": int(acc[2])}
                for name, acc in self.region.items() if acc[2]
            } if has_fg else None,
        }


def _check_pair(err: Tensor, unc: Tensor) -> tuple[Tensor, Tensor]:
    hint = "err and uncertainty must be 1-D tensors of one length (the valid pixels of one image)."
    check_shape(unc, "N", "uncertainty", where="sparsification",
                dims=check_shape(err, "N", "err", where="sparsification", hint=hint), hint=hint)
    return err, unc


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    fr = tuple(float(f) for f in fractions)
    if not fr or any(not (0.0 <= f < 1.0) or not math.isfinite(f) for f in fr) or list(fr) != sorted(fr):
        raise ValueError(f"fractions {list(fractions)}: expected increasing values in [0, 1)")
    return fr


def _kept_rmse(cumsum_sq: Tensor, fractions: tuple[float, ...]) -> Tensor:
    """RMSE of the first ``N - round(f N)`` entries (at least 1) for each fraction."""
    n = cumsum_sq.numel()
    keep = torch.tensor([max(1, n - int(round(f * n))) for f in fractions])
    return torch.sqrt(cumsum_sq[keep - 1] / keep.double())

"""Depth metrics: the single place a metric is defined.

Training logs, evaluation reports and tests all call these functions. Everything here is
a pure function of tensors (no file I/O), runs on the inputs' device and never makes a
NaN: pixels or images without ground truth are skipped, not averaged as NaN or 0.

Conventions (ARCHITECTURE.md section 2):

* ``pred`` and ``gt`` are depth in metres, shape (B,1,H,W); (H,W), (1,H,W) and (B,H,W)
  are accepted and read as single-channel images. ``gt == 0`` (or NaN/Inf) is missing.
* A pixel counts when ``gt > 0`` and finite and, if given, ``mask != 0``; ``mask`` may be
  bool or float {0,1} and broadcasts against ``gt`` (e.g. one (1,1,H,W) crop for a batch).
* Metrics are computed **per image** over that image's valid pixels, then averaged over
  the images that have at least one valid pixel, as the KITTI devkit does. So an image
  with 100 valid pixels weighs as much as one with 10 000; this differs from pooling all
  pixels of a batch.

Metric definitions (``d`` = prediction, ``g`` = ground truth, mean over valid pixels):

=========  ==============================================  ========
name       definition                                      unit
=========  ==============================================  ========
mae        mean|d - g| * 1000                              mm
rmse       sqrt(mean (d - g)^2) * 1000                     mm
imae       mean|1/d' - 1/g| * 1000                         1/km
irmse      sqrt(mean (1/d' - 1/g)^2) * 1000                1/km
absrel     mean|d - g| / g                                 (ratio)
sqrel      mean (d - g)^2 / g  (Eigen et al. convention)   m
delta<k>   fraction with max(d'/g, g/d') < 1.25^k          (ratio)
=========  ==============================================  ========

``d' = max(d, MIN_DEPTH_M)``: inverse and ratio metrics clamp the prediction to 1 mm so
that a zero or negative prediction gives a large, finite error (and can never pass a
delta threshold by a sign flip) instead of Inf or NaN. MAE/RMSE/AbsRel/SqRel use the
raw prediction, where a negative depth is simply a large error.

Relative (affine-invariant) depth, for monocular models:

* ``ssi_align`` fits a per-image least-squares scale and shift ``s*d + t`` to ``g``.
* ``whdr`` is the Weighted Human Disagreement Rate on ordinal pixel pairs.
* ``ssi_absrel``, ``ssi_rmse`` (metres), ``ssi_delta1`` and ``whdr`` after alignment
  are ``RELATIVE_METRICS``, summarised by ``relative_metrics``.

Precision: float64 inputs are kept in float64; float16/bfloat16 are computed in float32
(squared errors in mm overflow half precision). The only host synchronisations are in the
summary helpers ``depth_metrics``, ``relative_metrics`` and ``MetricAccumulator.compute``.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor

from depthsense.check import check_shape
from depthsense.errors import ShapeError

__all__ = [
    "DEFAULT_METRICS",
    "RELATIVE_METRICS",
    "METRIC_UNITS",
    "metric_unit",
    "HIGHER_IS_BETTER",
    "MIN_DEPTH_M",
    "WHDR_SIGMA",
    "WHDR_NUM_PAIRS",
    "per_image_metrics",
    "valid_images",
    "depth_metrics",
    "relative_metrics",
    "MetricAccumulator",
    "mae",
    "rmse",
    "imae",
    "irmse",
    "absrel",
    "sqrel",
    "delta",
    "whdr",
    "ssi_scale_shift",
    "ssi_align",
    "fit_scale_shift",
    "ordinal_labels",
    "sample_pixel_pairs",
    "sample_pixels",
]

MIN_DEPTH_M = 1e-3
"""Predictions are clamped to this depth (1 mm) in the inverse and ratio metrics."""

WHDR_SIGMA = 0.03
"""Default equality threshold of ``whdr`` on the depth ratio (3 %)."""

WHDR_NUM_PAIRS = 5000
"""Default number of ordinal pairs ``whdr`` samples per image."""

DEFAULT_METRICS: tuple[str, ...] = (
    "mae", "rmse", "imae", "irmse", "absrel", "sqrel", "delta1", "delta2", "delta3",
)
"""Metric-depth metrics reported by default (KITTI's four first)."""

RELATIVE_METRICS: tuple[str, ...] = ("ssi_absrel", "ssi_rmse", "ssi_delta1", "whdr")
"""Relative-depth metrics: after per-image scale-and-shift alignment, plus WHDR."""

METRIC_UNITS: dict[str, str] = {
    "mae": "mm",
    "rmse": "mm",
    "imae": "1/km",
    "irmse": "1/km",
    "absrel": "",
    "sqrel": "m",
    "delta1": "",
    "delta2": "",
    "delta3": "",
    "ssi_absrel": "",
    "ssi_rmse": "m",
    "ssi_delta1": "",
    "whdr": "",
}
"""Unit of each metric for report headers ("" = dimensionless ratio/fraction)."""


def metric_unit(metric: str, dataset: str | None = None) -> str:
    """The unit of ``metric`` on ``dataset`` ("" = none).

    ``METRIC_UNITS`` gives metres for ``ssi_rmse`` (the aligned prediction is in the
    ground truth's unit); ReDWeb's ground truth is itself relative depth, so there it
    has no unit.
    """
    if dataset == "redweb" and metric in RELATIVE_METRICS:
        return ""
    return METRIC_UNITS[metric]

HIGHER_IS_BETTER = frozenset({"delta1", "delta2", "delta3", "ssi_delta1"})
"""Metrics where larger is better (all others: smaller is better), for model selection."""


# --------------------------------------------------------------------------- per image


def per_image_metrics(
    pred: Tensor,
    gt: Tensor,
    mask: Tensor | None = None,
    names: Sequence[str] = DEFAULT_METRICS,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Compute the named metrics for every image of a batch.

    Args:
        pred: (B,1,H,W) predicted depth in metres ((H,W), (1,H,W), (B,H,W) accepted).
        gt: ground-truth depth, same shape as ``pred``; 0 = missing.
        mask: optional bool or float {0,1}, broadcastable to ``gt``; narrows the valid set.
        names: metric names from ``METRIC_UNITS`` (default ``DEFAULT_METRICS``).
        generator: random generator for the pairs of ``whdr`` (only used if requested).
    Returns:
        dict name -> (B,) tensor on ``pred``'s device, in the units of ``METRIC_UNITS``.
        Entries of images without a valid pixel are 0; use ``valid_images`` to skip them.
    Raises:
        ShapeError: shapes, dtypes or devices that do not fit.
        KeyError: an unknown metric name (the message lists the known names).
    """
    names = _check_names(names)
    batch = _Batch(*_prepare(pred, gt, mask, "per_image_metrics"), generator=generator)
    return {name: _METRICS[name](batch) for name in names}


def valid_images(gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Which images have at least one valid ground-truth pixel.

    Args:
        gt: (B,1,H,W) depth in metres (other accepted shapes as in ``per_image_metrics``).
        mask: optional mask narrowing the valid set.
    Returns:
        (B,) bool tensor on ``gt``'s device.
    """
    _, _, valid = _prepare(gt, gt, mask, "valid_images")
    return valid.any(dim=1)


def mae(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error per image in **millimetres**, (B,); 0 for images without GT."""
    return _single("mae", pred, gt, mask)


def rmse(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Root mean squared error per image in **millimetres**, (B,); 0 without GT."""
    return _single("rmse", pred, gt, mask)


def imae(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error of inverse depth per image in **1/km**, (B,).

    The prediction is clamped to ``MIN_DEPTH_M`` before inversion, so a zero or negative
    prediction counts as 1 mm away (a large, finite error of up to 1e6 1/km).
    """
    return _single("imae", pred, gt, mask)


def irmse(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Root mean squared error of inverse depth per image in **1/km**, (B,); see ``imae``."""
    return _single("irmse", pred, gt, mask)


def absrel(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute relative error ``|d - g| / g`` per image (dimensionless), (B,)."""
    return _single("absrel", pred, gt, mask)


def sqrel(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared relative error ``(d - g)^2 / g`` per image in metres, (B,).

    This is the Eigen et al. / monodepth convention (divide by ``g``, not ``g^2``).
    """
    return _single("sqrel", pred, gt, mask)


def delta(pred: Tensor, gt: Tensor, mask: Tensor | None = None, k: int = 1) -> Tensor:
    """Fraction of valid pixels with ``max(d'/g, g/d') < 1.25**k`` per image, (B,).

    ``d' = max(d, MIN_DEPTH_M)``. ``k`` is 1, 2 or 3 (the names ``delta1..3``).
    """
    if k not in (1, 2, 3):
        raise ValueError(f"delta: k={k!r}; expected 1, 2 or 3 (threshold 1.25**k).")
    return _single(f"delta{k}", pred, gt, mask)


def whdr(
    pred: Tensor,
    gt: Tensor,
    mask: Tensor | None = None,
    *,
    pairs: Tensor | None = None,
    sigma: float = WHDR_SIGMA,
    num_pairs: int = WHDR_NUM_PAIRS,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Weighted Human Disagreement Rate on ordinal pixel pairs, per image.

    Each pair (i, j) gets an ordinal label from the ground truth,
    ``+1`` if ``g_i >= (1+sigma) g_j``, ``-1`` if ``g_j >= (1+sigma) g_i``, else ``0``
    ("about equal"), and the same rule is applied to the prediction. WHDR is the fraction
    of pairs whose labels differ. All pairs weigh the same (the "weighted" of the name
    refers to per-pair human confidence in the original data sets; sampled pairs have
    none), and pairs labelled equal are kept, so a prediction must also get "about equal"
    right.

    The prediction must be depth-like (larger = farther) and is clamped to
    ``MIN_DEPTH_M``; apply ``ssi_align`` first to the raw output of a relative-depth
    network (``relative_metrics`` does).

    Args:
        pred, gt, mask: as in ``per_image_metrics``.
        pairs: optional long tensor (P,2) or (B,P,2) of flat pixel indices ``y*W + x``.
            Pairs touching a pixel without valid GT are ignored. If ``None``, ``num_pairs``
            pairs of two *distinct* valid pixels are drawn uniformly per image.
        sigma: equality threshold on the depth ratio (>= 0).
        num_pairs: pairs sampled per image when ``pairs`` is None.
        generator: source of the sampling. ``None`` uses a fresh CPU generator seeded
            with 0, so the result is deterministic and identical on CPU and GPU.
    Returns:
        (B,) disagreement rate in [0, 1]; 0 for images with fewer than two valid pixels
        (no pair to compare).
    Raises:
        ShapeError: bad shapes, or pair indices outside the image.
        ValueError: negative ``sigma`` or non-positive ``num_pairs``.
    """
    p, g, valid = _prepare(pred, gt, mask, "whdr")
    return _whdr(p, g, valid, pairs=pairs, sigma=sigma, num_pairs=num_pairs, generator=generator)


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


# --------------------------------------------------------------------------- summaries


def depth_metrics(
    pred: Tensor,
    gt: Tensor,
    mask: Tensor | None = None,
    names: Sequence[str] = DEFAULT_METRICS,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, float | int | None]:
    """Mean of each metric over the images of a batch that have valid GT (syncs to host).

    Returns:
        ``{"images": n, name: float, ...}`` where ``n`` is the number of images counted.
        If no image has a valid pixel, ``images`` is 0 and every metric is ``None``
        (never NaN): callers print "n/a" or skip the batch.
    Raises:
        ValueError: a metric is not finite, i.e. ``pred`` holds NaN/Inf at valid pixels
            (the metrics themselves never create one).
        ShapeError, KeyError: as in ``per_image_metrics``.
    """
    acc = MetricAccumulator(names, generator=generator)
    acc.update(pred, gt, mask)
    return acc.compute()


def relative_metrics(
    pred: Tensor,
    gt: Tensor,
    mask: Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, float | int | None]:
    """``RELATIVE_METRICS`` of a relative-depth prediction, averaged over valid images.

    ``pred`` is aligned per image to ``gt`` with ``ssi_align``; then AbsRel, RMSE (in
    **metres**, as relative-depth papers report it), delta1 and WHDR are computed on the
    aligned prediction. Same return convention as ``depth_metrics``.
    """
    return depth_metrics(pred, gt, mask, RELATIVE_METRICS, generator=generator)


class MetricAccumulator:
    """Running per-image sums of metrics, for a data set seen batch by batch.

    Holds, on the device of the first update, the sum over valid images of each metric
    and the number of valid images. Pure sums: the order of updates does not matter, and
    two accumulators (e.g. of two DDP ranks) merge exactly with ``merge`` or through
    ``state()`` / ``load_state()`` around ``torch.distributed.all_reduce`` (see
    ``all_reduce``). ``update`` never synchronises with the host; ``compute`` does.

    Args:
        names: metric names (default ``DEFAULT_METRICS``; ``RELATIVE_METRICS`` for
            relative depth, or any mix).
        generator: passed to ``whdr`` when it is among ``names``.

    Example::

        acc = MetricAccumulator()
        for batch in loader:
            acc.update(model(batch["sparse"], batch["mask"]), batch["gt"])
        print(acc.compute())   # {"images": 1000, "mae": 250.1, ...}
    """

    def __init__(
        self,
        names: Sequence[str] = DEFAULT_METRICS,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.names: tuple[str, ...] = _check_names(names)
        self.generator = generator
        self._sums: Tensor | None = None  # (len(names),) float64 sums over valid images
        self._count: Tensor | None = None  # () number of valid images

    @torch.no_grad()
    def update(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> None:
        """Add the images of one batch (arguments as in ``per_image_metrics``)."""
        p, g, valid = _prepare(pred.detach(), gt.detach(), mask, "MetricAccumulator.update")
        batch = _Batch(p, g, valid, generator=self.generator)
        keep = batch.image_valid
        acc_dtype = _acc_dtype(p.device)
        values = torch.stack([_METRICS[n](batch) for n in self.names])  # (M,B)
        sums = torch.where(keep, values, 0).to(acc_dtype).sum(dim=1)
        count = keep.sum()
        if self._sums is None:
            self._sums, self._count = sums, count
        else:
            self._sums = self._sums + sums.to(self._sums.device)
            self._count = self._count + count.to(self._count.device)

    def compute(self) -> dict[str, float | int | None]:
        """Mean of each metric over all valid images seen (synchronises to host).

        Returns:
            ``{"images": n, name: float, ...}``; with ``n == 0`` every metric is ``None``.
        Raises:
            ValueError: a summed metric is NaN/Inf (a prediction had NaN/Inf at valid
                pixels); the message names the metrics.
        """
        n = 0 if self._count is None else int(self._count.item())
        out: dict[str, float | int | None] = {"images": n}
        if n == 0:
            out.update({name: None for name in self.names})
            return out
        sums = self._sums.tolist()
        bad = [name for name, s in zip(self.names, sums) if not math.isfinite(s)]
        if bad:
            raise ValueError(
                f"metrics {bad} are not finite over {n} images: the prediction holds "
                "NaN/Inf at pixels with valid ground truth (metrics never create NaN). "
                "Check the model output, e.g. with torch.isfinite(pred).all()."
            )
        out.update({name: s / n for name, s in zip(self.names, sums)})
        return out

    def reset(self) -> None:
        """Forget everything seen so far."""
        self._sums = None
        self._count = None

    def merge(self, other: "MetricAccumulator") -> "MetricAccumulator":
        """Add ``other``'s sums and counts into this accumulator; returns ``self``.

        Raises:
            ValueError: the two accumulators track different metric names.
        """
        if other.names != self.names:
            raise ValueError(
                f"MetricAccumulator.merge: metric names differ ({list(self.names)} vs "
                f"{list(other.names)}); merge accumulators built with the same names."
            )
        if other._sums is None:
            return self
        if self._sums is None:
            self._sums, self._count = other._sums.clone(), other._count.clone()
        else:
            self._sums = self._sums + other._sums.to(self._sums.device)
            self._count = self._count + other._count.to(self._count.device)
        return self

    def state(self, device: torch.device | str | None = None) -> Tensor:
        """The accumulator as one vector ``[count, sum_1, ..., sum_M]`` (float64).

        Sum it across processes (``all_reduce``) and ``load_state`` the result.
        ``device`` defaults to the device of the sums (CPU if nothing was seen).
        """
        if self._sums is None:
            dev = torch.device("cpu") if device is None else torch.device(device)
            return torch.zeros(1 + len(self.names), dtype=_acc_dtype(dev), device=dev)
        vec = torch.cat([self._count.to(self._sums.dtype).reshape(1), self._sums])
        return vec if device is None else vec.to(device)

    def load_state(self, state: Tensor) -> None:
        """Replace the sums by a vector from ``state()`` (e.g. after an all-reduce).

        Raises:
            ShapeError: ``state`` does not have ``1 + len(names)`` entries.
        """
        if state.ndim != 1 or state.numel() != 1 + len(self.names):
            raise ShapeError(
                f"MetricAccumulator.load_state: state has shape {tuple(state.shape)}; "
                f"expected ({1 + len(self.names)},) = [count, one sum per metric]."
            )
        self._count = state[0].round().to(torch.int64)
        self._sums = state[1:].clone()

    def all_reduce(self, group=None) -> None:
        """Sum this accumulator over the processes of ``group`` (in place).

        A no-op when ``torch.distributed`` is not initialised. Every rank must call it.
        The state travels on the sums' device (CUDA for NCCL, CPU for gloo).
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        device = None
        if dist.get_backend(group) == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        state = self.state(device)
        dist.all_reduce(state, op=dist.ReduceOp.SUM, group=group)
        self.load_state(state)


# --------------------------------------------------------------------------- registry

_METRICS: dict[str, Callable[["_Batch"], Tensor]] = {}


def _register(name: str) -> Callable:
    def deco(fn: Callable[["_Batch"], Tensor]) -> Callable[["_Batch"], Tensor]:
        _METRICS[name] = fn
        return fn

    return deco


@_register("mae")
def _mae(b: "_Batch") -> Tensor:
    return b.mean(b.diff.abs()) * 1000.0


@_register("rmse")
def _rmse(b: "_Batch") -> Tensor:
    return b.mean(b.diff.square()).sqrt() * 1000.0


@_register("imae")
def _imae(b: "_Batch") -> Tensor:
    return b.mean(b.inv_diff.abs()) * 1000.0


@_register("irmse")
def _irmse(b: "_Batch") -> Tensor:
    return b.mean(b.inv_diff.square()).sqrt() * 1000.0


@_register("absrel")
def _absrel(b: "_Batch") -> Tensor:
    return b.mean(b.diff.abs() / b.gt_safe)


@_register("sqrel")
def _sqrel(b: "_Batch") -> Tensor:
    return b.mean(b.diff.square() / b.gt_safe)


def _make_delta(k: int) -> Callable[["_Batch"], Tensor]:
    def fn(b: "_Batch") -> Tensor:
        return b.mean((b.ratio < 1.25**k).to(b.pred.dtype))

    return fn


for _k in (1, 2, 3):
    _register(f"delta{_k}")(_make_delta(_k))


@_register("ssi_absrel")
def _ssi_absrel(b: "_Batch") -> Tensor:
    return b.mean((b.aligned - b.gt).abs() / b.gt_safe)


@_register("ssi_rmse")
def _ssi_rmse(b: "_Batch") -> Tensor:
    return b.mean((b.aligned - b.gt).square()).sqrt()  # metres


@_register("ssi_delta1")
def _ssi_delta1(b: "_Batch") -> Tensor:
    ratio = _max_ratio(b.aligned, b.gt_safe)
    return b.mean((ratio < 1.25).to(b.pred.dtype))


@_register("whdr")
def _whdr_registered(b: "_Batch") -> Tensor:
    return _whdr(b.aligned, b.gt, b.valid, pairs=None, sigma=WHDR_SIGMA,
                 num_pairs=WHDR_NUM_PAIRS, generator=b.generator)


assert set(_METRICS) == set(METRIC_UNITS), "every metric needs a unit"


# --------------------------------------------------------------------------- helpers


class _Batch:
    """Flattened (B,N) prediction, GT and validity with lazily shared intermediates."""

    def __init__(self, pred: Tensor, gt: Tensor, valid: Tensor,
                 generator: torch.Generator | None = None) -> None:
        self.pred, self.gt, self.valid, self.generator = pred, gt, valid, generator
        self.count = _count(valid, pred.dtype)

    def mean(self, x: Tensor) -> Tensor:
        # torch.where, not x*valid: values at invalid pixels (even NaN/Inf) must not leak.
        return _masked_mean(x, self.valid, self.count)

    @cached_property
    def image_valid(self) -> Tensor:
        return self.valid.any(dim=1)

    @cached_property
    def diff(self) -> Tensor:
        return self.pred - self.gt

    @cached_property
    def gt_safe(self) -> Tensor:
        return torch.where(self.valid, self.gt, torch.ones_like(self.gt))

    @cached_property
    def pred_clamped(self) -> Tensor:
        return self.pred.clamp_min(MIN_DEPTH_M)

    @cached_property
    def inv_diff(self) -> Tensor:
        return self.pred_clamped.reciprocal() - self.gt_safe.reciprocal()

    @cached_property
    def ratio(self) -> Tensor:
        return _max_ratio(self.pred, self.gt_safe)

    @cached_property
    def aligned(self) -> Tensor:
        s, t = _scale_shift(self.pred, self.gt, self.valid, self.count)
        return s[:, None] * self.pred + t[:, None]


def _single(name: str, pred: Tensor, gt: Tensor, mask: Tensor | None) -> Tensor:
    return _METRICS[name](_Batch(*_prepare(pred, gt, mask, name)))


def _check_names(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    unknown = [n for n in names if n not in _METRICS]
    if unknown:
        raise KeyError(f"unknown metric(s) {unknown}; known metrics: {sorted(_METRICS)}")
    if not names:
        raise KeyError(f"no metric names given; known metrics: {sorted(_METRICS)}")
    return names


def _prepare(pred: Tensor, gt: Tensor, mask: Tensor | None, where: str) -> tuple[Tensor, Tensor, Tensor]:
    """Validate and flatten to (B,N) compute-dtype pred/gt and a (B,N) bool validity."""
    p4, g4 = _as_b1hw(pred, "pred", where), _as_b1hw(gt, "gt", where)
    for name, x in (("pred", p4), ("gt", g4)):
        if not x.is_floating_point():
            raise ShapeError(
                f"{where}: {name} has dtype {x.dtype}; expected float depth in metres "
                "(raw KITTI PNG values must be divided by 256 first)."
            )
    check_shape(p4, "B,1,H,W", "pred", where=where, dims=check_shape(g4, "B,1,H,W", "gt"),
                hint="Crop or resize the prediction to the GT first.")
    if p4.device != g4.device:
        raise ShapeError(f"{where}: pred is on {p4.device} but gt on {g4.device}; move them together.")
    dtype = torch.promote_types(p4.dtype, g4.dtype)
    if dtype.itemsize < 4:  # fp16/bf16 overflow on squared errors in mm
        dtype = torch.float32
    p4, g4 = p4.to(dtype), g4.to(dtype)
    valid = (g4 > 0) & torch.isfinite(g4)
    if mask is not None:
        m4 = _as_b1hw(mask, "mask", where)
        try:
            fits = torch.broadcast_shapes(m4.shape, g4.shape) == g4.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ShapeError(
                f"{where}: mask {tuple(mask.shape)} does not broadcast to gt {tuple(g4.shape)}; "
                "expected (B,1,H,W) or (1,1,H,W) with the GT's H and W."
            )
        valid = valid & (m4.to(g4.device) != 0)
    b = g4.shape[0]
    return p4.reshape(b, -1), g4.reshape(b, -1), valid.expand_as(g4).reshape(b, -1)


def _as_b1hw(x: Tensor, name: str, where: str) -> Tensor:
    check_shape(x, "B,1,H,W|B,H,W|H,W", name, where=where, hint="Depth is a single-channel image.")
    return x[None, None] if x.ndim == 2 else x[:, None] if x.ndim == 3 else x


def _count(valid: Tensor, dtype: torch.dtype) -> Tensor:
    return valid.sum(dim=1).to(dtype)


def _masked_mean(x: Tensor, valid: Tensor, count: Tensor) -> Tensor:
    return torch.where(valid, x, 0).sum(dim=1) / count.clamp_min(1)


def _max_ratio(pred: Tensor, gt_safe: Tensor) -> Tensor:
    p = pred.clamp_min(MIN_DEPTH_M)
    return torch.maximum(p / gt_safe, gt_safe / p)


def _acc_dtype(device: torch.device) -> torch.dtype:
    # Sums over a whole data set want float64; MPS has none.
    return torch.float32 if device.type == "mps" else torch.float64


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


def _whdr(p: Tensor, g: Tensor, valid: Tensor, *, pairs: Tensor | None, sigma: float,
          num_pairs: int, generator: torch.Generator | None) -> Tensor:
    if sigma < 0:
        raise ValueError(f"whdr: sigma={sigma}; expected a ratio threshold >= 0 (e.g. 0.03).")
    b, n = p.shape
    if pairs is None:
        if num_pairs <= 0:
            raise ValueError(f"whdr: num_pairs={num_pairs}; expected a positive number of pairs.")
        if generator is None:  # deterministic, and the same pairs on every device
            generator = torch.Generator().manual_seed(0)
        i, j, ok = sample_pixel_pairs(valid, num_pairs, generator)
        w = ok[:, None].expand(b, num_pairs)
    else:
        i, j = _check_pairs(pairs, b, n, p.device)
        w = valid.gather(1, i) & valid.gather(1, j)
    pc = p.clamp_min(MIN_DEPTH_M)
    label_g = ordinal_labels(g.gather(1, i), g.gather(1, j), sigma)
    label_p = ordinal_labels(pc.gather(1, i), pc.gather(1, j), sigma)
    wf = w.to(p.dtype)
    wrong = ((label_g != label_p).to(p.dtype) * wf).sum(dim=1)
    return wrong / wf.sum(dim=1).clamp_min(1)


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


def _check_pairs(pairs: Tensor, b: int, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    check_shape(pairs, "P,2|B,P,2", "pairs", where="whdr", dims={"B": b},
                hint="Pairs are flat pixel indices y*W + x, for one image or one per image of the batch.")
    if pairs.dtype not in (torch.int32, torch.int64):
        raise ShapeError(f"whdr: pairs has dtype {pairs.dtype}; expected integer flat pixel indices y*W + x.")
    if pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= n):
        raise ShapeError(
            f"whdr: pair indices span [{int(pairs.min())}, {int(pairs.max())}]; the image has "
            f"{n} pixels, so indices must lie in [0, {n - 1}] (flat index y*W + x)."
        )
    pairs = pairs.to(device=device, dtype=torch.int64)
    if pairs.ndim == 2:
        pairs = pairs[None].expand(b, -1, -1)
    return pairs[..., 0].contiguous(), pairs[..., 1].contiguous()

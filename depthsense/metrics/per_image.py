"""The per-image metrics: one registered function per metric name, computed on a batch
of flattened images (:class:`_Batch`), and the public per-metric functions."""

from __future__ import annotations

from functools import cached_property
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor

from depthsense.check import check_shape
from depthsense.errors import ShapeError
from depthsense.metrics._inputs import _count, _masked_mean, _prepare
from depthsense.metrics.alignment import _scale_shift
from depthsense.metrics.names import DEFAULT_METRICS, METRIC_UNITS, MIN_DEPTH_M, WHDR_NUM_PAIRS, WHDR_SIGMA
from depthsense.metrics.pairs import ordinal_labels, sample_pixel_pairs

__all__ = ["per_image_metrics", "valid_images", "mae", "rmse", "imae", "irmse", "absrel", "sqrel", "delta", "whdr"]

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


def _max_ratio(pred: Tensor, gt_safe: Tensor) -> Tensor:
    p = pred.clamp_min(MIN_DEPTH_M)
    return torch.maximum(p / gt_safe, gt_safe / p)


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

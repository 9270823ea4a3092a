"""Averages over a data set: :class:`MetricAccumulator` (per-image sums, mergeable across
ranks) and the one-batch summaries :func:`depth_metrics` and :func:`relative_metrics`."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from depthsense.errors import ShapeError
from depthsense.metrics._inputs import _acc_dtype, _prepare
from depthsense.metrics.names import DEFAULT_METRICS, RELATIVE_METRICS
from depthsense.metrics.per_image import _METRICS, _Batch, _check_names

__all__ = ["depth_metrics", "relative_metrics", "MetricAccumulator"]

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

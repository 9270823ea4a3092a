"""What the evaluation loop feeds: one image's inputs and one model's outputs in, a
summary out.

:func:`depthsense.evaluation.loop.inference_on_dataset` runs the models and hands every
evaluator of a model the image (:class:`ImageInputs`), the model's outputs (the dict of
:func:`depthsense.models.forward_outputs`, depth in float32) and the forward time. Each
evaluator keeps its own sums and gives them back when asked; validation during training
and ``depthsense-evaluate`` choose which evaluators they attach:

* :class:`DepthEvaluator`: the depth metrics (:class:`depthsense.metrics.MetricAccumulator`),
  optionally per group of images;
* :class:`HeadsEvaluator`: the extra heads (:class:`~depthsense.evaluation.heads_metrics.HeadsAccumulator`),
  the confidence turned into an uncertainty by
  :func:`~depthsense.evaluation.heads_metrics.confidence_to_uncertainty` (the one
  conversion) and the distance-to-measurement baseline next to it;
* :class:`TimingEvaluator`: forward times (median);
* :class:`PanelEvaluator`, :class:`FirstImage`: the predictions shown in the report's
  panels and validation's TensorBoard panel.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from depthsense.evaluation.heads_metrics import HeadsAccumulator, confidence_to_uncertainty, distance_to_measurement
from depthsense.metrics import MetricAccumulator, ssi_align

__all__ = [
    "ImageInputs",
    "Evaluator",
    "DepthEvaluator",
    "HeadsEvaluator",
    "TimingEvaluator",
    "PanelEvaluator",
    "FirstImage",
]


@dataclass
class ImageInputs:
    """One image of the loop.

    Attributes:
        index: the image's index in the data set.
        sample: the sample as the data set yields it (CPU tensors without batch dimension,
            ``meta``, optional ``fg``).
        rgb, sparse, mask, gt: the sample's tensors with a batch dimension of 1, on the
            loop's device: (1,3,H,W) [0,1], (1,1,H,W) m, (1,1,H,W) {0,1}, (1,1,H,W) m.
    """

    index: int
    sample: dict
    rgb: Tensor
    sparse: Tensor
    mask: Tensor
    gt: Tensor

    @classmethod
    def from_sample(cls, index: int, sample: dict, device: torch.device) -> "ImageInputs":
        rgb, sparse, mask, gt = (sample[k][None].to(device) for k in ("rgb", "sparse", "mask", "gt"))
        return cls(index, sample, rgb, sparse, mask, gt)


class Evaluator:
    """Base of the evaluators: ``process`` is called once per image and model."""

    def process(self, image: ImageInputs, outputs: Mapping[str, Tensor], ms: float) -> None:
        """Add one image.

        Args:
            image: the inputs.
            outputs: the model's outputs, ``depth`` (1,1,H,W) float32 and its heads' tensors.
            ms: the forward time in milliseconds.
        """
        raise NotImplementedError


class DepthEvaluator(Evaluator):
    """Depth metrics of one model, averaged per image, and optionally per group.

    Args:
        acc: the accumulator of all images (its metric names choose the metrics).
        group_of: image index -> group name (e.g. an RGB-D folder's source), or None.
        group_accs: group name -> accumulator, for every group of ``group_of``.
    """

    def __init__(self, acc: MetricAccumulator, group_of: Mapping[int, str] | None = None,
                 group_accs: Mapping[str, MetricAccumulator] | None = None) -> None:
        self.acc = acc
        self.group_of = group_of
        self.group_accs = dict(group_accs or {})

    def process(self, image: ImageInputs, outputs: Mapping[str, Tensor], ms: float) -> None:
        pred = outputs["depth"]
        self.acc.update(pred, image.gt)
        if self.group_of is not None:
            self.group_accs[self.group_of[image.index]].update(pred, image.gt)

    def result(self) -> dict:
        """``MetricAccumulator.compute()`` of all images (with ``images``)."""
        return self.acc.compute()

    def group_results(self) -> dict[str, dict]:
        """group -> metrics (without ``images``)."""
        return {g: {k: v for k, v in acc.compute().items() if k != "images"} for g, acc in self.group_accs.items()}


class HeadsEvaluator(Evaluator):
    """The extra heads of one model: the confidence's sparsification curves, next to
    those of the distance-to-nearest-measurement baseline on the same depth, and the
    foreground mask against the sample's ``fg``.

    Validation scores the baseline too, although it logs only the confidence: the two
    curves draw their tie-breaking orders from one generator, image after image, so the
    confidence's numbers equal the report's only when both are scored (they differ
    wherever the confidence has ties, e.g. the constant output of an untrained head).

    Args:
        acc: the accumulator the summary comes from.
    """

    def __init__(self, acc: HeadsAccumulator) -> None:
        self.acc = acc

    def process(self, image: ImageInputs, outputs: Mapping[str, Tensor], ms: float) -> None:
        unc = {}
        if "conf" in outputs:
            unc = {"conf": confidence_to_uncertainty(outputs["conf"].float()),
                   "distance": distance_to_measurement(image.mask)}
        fg = image.sample.get("fg")
        fg_gt = None if fg is None else fg[None].to(image.gt.device)
        self.acc.update(outputs["depth"], image.gt, unc, outputs.get("fg"), fg_gt)

    def result(self) -> dict:
        """:meth:`HeadsAccumulator.compute`."""
        return self.acc.compute()


class TimingEvaluator(Evaluator):
    """Forward times of one model."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def process(self, image: ImageInputs, outputs: Mapping[str, Tensor], ms: float) -> None:
        self.times.append(ms)

    def result(self) -> float | None:
        """Median milliseconds; None without images."""
        return float(statistics.median(self.times)) if self.times else None


class PanelEvaluator(Evaluator):
    """A model's predictions of the panel images, into ``panel_data[index]["preds"]``.

    Args:
        panel_data: image index -> panel record (``{"preds": {}}`` at the start).
        name: the model's column name.
        relative: a relative-depth model: shown scale-and-shift aligned to the ground
            truth (``"<name> (aligned)"``), clamped at 0.
    """

    def __init__(self, panel_data: dict[int, dict[str, Any]], name: str, relative: bool = False) -> None:
        self.panel_data = panel_data
        self.name = name
        self.relative = relative

    def process(self, image: ImageInputs, outputs: Mapping[str, Tensor], ms: float) -> None:
        if image.index not in self.panel_data:
            return
        pred = outputs["depth"]
        shown = ssi_align(pred, image.gt).clamp_min(0.0) if self.relative else pred
        label = f"{self.name} (aligned)" if self.relative else self.name
        self.panel_data[image.index]["preds"][label] = shown[0, 0].cpu().numpy()


class FirstImage(Evaluator):
    """The first image and its depth prediction, for a TensorBoard panel.

    ``first`` is None before any image, then ``(batch, pred)``: ``batch`` the sample's
    tensors with a batch dimension of 1 (CPU, as a DataLoader of batch size 1 gives
    them), ``pred`` (1,1,H,W) on the loop's device.
    """

    def __init__(self) -> None:
        self.first: tuple[dict, Tensor] | None = None

    def process(self, image: ImageInputs, outputs: Mapping[str, Tensor], ms: float) -> None:
        if self.first is None:
            batch = {k: v[None] for k, v in image.sample.items() if isinstance(v, Tensor)}
            self.first = (batch, outputs["depth"])

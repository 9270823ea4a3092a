"""The one evaluation loop: models on images, their outputs fed to evaluators.

:func:`inference_on_dataset` reads each image once, runs every model on it through
:func:`depthsense.models.forward_outputs` (timed) and hands the outputs to that model's
evaluators (:mod:`depthsense.evaluation.evaluators`: depth metrics, extra heads, timing,
panels). Validation during training (:meth:`depthsense.engine.trainer.Trainer.validate`)
and ``depthsense-evaluate`` both use it, so a checkpoint's numbers are computed the same
way in both. :func:`evaluate_level` is the evaluation of one sparsity level:
:func:`depthsense.evaluation.run.evaluate` calls it once per level.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from depthsense.evaluation.evaluators import (
    DepthEvaluator,
    Evaluator,
    HeadsEvaluator,
    ImageInputs,
    PanelEvaluator,
    TimingEvaluator,
)
from depthsense.evaluation.heads_metrics import HeadsAccumulator
from depthsense.evaluation.report import EvalModel, Level
from depthsense.metrics import MetricAccumulator
from depthsense.models import forward_outputs

__all__ = ["ModelRun", "inference_on_dataset", "evaluate_level"]

_SHORTFALL = 0.9  # a uniform level whose measured density is below 90 % of the request gets a note


@dataclass
class ModelRun:
    """One model in :func:`inference_on_dataset` and the evaluators of its outputs.

    Attributes:
        model: called as ``model(sparse, mask, rgb)`` (in the mode the caller set, e.g. eval).
        evaluators: fed every image's outputs, in this order.
        relative: an RGB-only model: called with ``sparse = mask = None``.
        warm_up: one untimed forward on the first image before the timed one (the first
            call pays for allocation and kernel selection).
    """

    model: nn.Module
    evaluators: Sequence[Evaluator]
    relative: bool = False
    warm_up: bool = False


def inference_on_dataset(runs: Sequence[ModelRun], dataset, indices: Iterable[int], device: torch.device,
                         workers: int = 0, on_image: Callable[[ImageInputs], None] | None = None) -> None:
    """Run every model on every image and feed its evaluators.

    Each image is read once (``dataset[i]``, or through ``workers`` DataLoader workers),
    moved to ``device`` with a batch dimension of 1 (:class:`ImageInputs`), and the
    models run on it in order under ``torch.inference_mode``; the depth output is turned
    into float32 before the evaluators see it. ``on_image`` is called after the models,
    once per image.

    Raises:
        DepthSenseError: a bad data file (also when read in a worker).
    """
    indices = list(indices)
    for n, (i, sample) in enumerate(zip(indices, _iterate(dataset, indices, workers))):
        image = ImageInputs.from_sample(i, sample, device)
        for run in runs:
            args = (None, None, image.rgb) if run.relative else (image.sparse, image.mask, image.rgb)
            if run.warm_up and n == 0:
                _forward(run.model, args, device)
            outputs, ms = _forward(run.model, args, device)
            outputs = {**outputs, "depth": outputs["depth"].float()}
            for evaluator in run.evaluators:
                evaluator.process(image, outputs, ms)
        if on_image is not None:
            on_image(image)


def evaluate_level(lv: Level, dataset, level_models: list[EvalModel], indices: list[int], device: torch.device,
                   workers: int, panel_data: dict[int, dict[str, Any]], is_panel_level: bool, warmed: set[str],
                   bar, group_of: dict[int, str] | None = None) -> tuple[dict, dict, dict, list[str], dict, dict]:
    """Run every model of one level on its images: (metrics, median ms, level stats, notes,
    extra-head summaries of the models that have heads, per-group metrics).

    Fills ``panel_data[i]`` for the panel images: inputs and metric predictions at the
    panel level, aligned monocular predictions wherever they are made. With ``group_of``
    (image index -> group, e.g. an RGB-D folder's source) the metrics are also averaged
    per group: ``{group: {model: {metric: value}}}`` (empty without groups). ``warmed``
    holds the models that already had their untimed first call (at an earlier level).
    """
    groups = list(dict.fromkeys((group_of or {}).values()))
    depth = {m.name: DepthEvaluator(MetricAccumulator(m.metric_names), group_of,
                                    {g: MetricAccumulator(m.metric_names) for g in groups}) for m in level_models}
    heads = {m.name: HeadsEvaluator(HeadsAccumulator()) for m in level_models if getattr(m.model, "heads", ())}
    timing = {m.name: TimingEvaluator() for m in level_models}
    runs = []
    for m in level_models:
        evaluators: list[Evaluator] = [depth[m.name]] + ([heads[m.name]] if m.name in heads else []) + [timing[m.name]]
        if is_panel_level or m.relative:
            evaluators.append(PanelEvaluator(panel_data, m.name, m.relative))
        runs.append(ModelRun(m.model, evaluators, relative=m.relative, warm_up=m.name not in warmed))
    density_sum = 0.0

    def on_image(image: ImageInputs) -> None:
        nonlocal density_sum
        mask = image.sample["mask"]
        density_sum += int(torch.count_nonzero(mask)) / mask.numel()  # exact, not float32
        if image.index in panel_data and is_panel_level:
            s = image.sample
            panel_data[image.index].update(rgb=s["rgb"].numpy(), sparse=s["sparse"][0].numpy(), gt=s["gt"][0].numpy())
        if bar is not None:
            bar.update(1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inference_on_dataset(runs, dataset, indices, device, workers, on_image)
    if indices:
        warmed.update(m.name for m in level_models)
    notes = []
    for msg in dict.fromkeys(str(w.message) for w in caught):  # once per level, not once per image
        notes.append(f"level {lv.name}: {msg}")
        warnings.warn(f"level {lv.name}: {msg}", RuntimeWarning, stacklevel=3)
    metrics, medians, images_with_gt = {}, {}, 0
    for m in level_models:
        result = depth[m.name].result()
        images_with_gt = int(result.pop("images"))
        metrics[m.name] = result
        medians[m.name] = timing[m.name].result()
    measured = density_sum / len(indices) if lv.sparse and indices else None
    stats = {"density_measured": measured, "images": len(indices), "images_with_gt": images_with_gt}
    if lv.kind == "uniform" and measured is not None and measured < _SHORTFALL * lv.density:
        notes.append(
            f"level {lv.name}: measured density {100 * measured:.2f}% is below the requested "
            f"{100 * lv.density:g}% because the ground truth has fewer valid pixels; plots use the measured density."
        )
    if images_with_gt < len(indices):
        notes.append(f"level {lv.name}: {len(indices) - images_with_gt} image(s) without valid ground truth "
                     "were skipped by the metrics.")
    by_model = {m.name: depth[m.name].group_results() for m in level_models}
    per_group = {g: {m.name: by_model[m.name][g] for m in level_models} for g in groups}
    return metrics, medians, stats, notes, {name: ev.result() for name, ev in heads.items()}, per_group


def _iterate(dataset, indices: list[int], workers: int):
    if workers <= 0:
        for i in indices:
            yield dataset[i]
        return
    from torch.utils.data import Subset

    from depthsense.data.loader import worker_safe_loader  # a bad file in a worker: the same one-line error

    yield from worker_safe_loader(Subset(dataset, indices), batch_size=None, shuffle=False, num_workers=workers)


@torch.inference_mode()
def _forward(model: nn.Module, args: tuple, device: torch.device) -> tuple[dict[str, torch.Tensor], float]:
    """:func:`forward_outputs` and its time in milliseconds."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    outputs = forward_outputs(model, *args)
    if device.type == "cuda":  # kernels run asynchronously: wait for them before reading the clock
        torch.cuda.synchronize(device)
    return outputs, (time.perf_counter() - t0) * 1000.0

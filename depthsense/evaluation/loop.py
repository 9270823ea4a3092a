"""The evaluation loop of one sparsity level: every model on every image, metrics
accumulated per image (:class:`depthsense.metrics.MetricAccumulator`, and
:class:`depthsense.evaluation.heads_metrics.HeadsAccumulator` for the extra heads),
median forward time, measured input density and the panels' predictions.

:func:`depthsense.evaluation.run.evaluate` calls it once per level. Validation during
training (:meth:`depthsense.engine.trainer.Trainer.validate`) has its own loop today.
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Any

import torch
from torch import nn

from depthsense.evaluation.heads_metrics import HeadsAccumulator, confidence_to_uncertainty, distance_to_measurement
from depthsense.evaluation.report import EvalModel, Level
from depthsense.metrics import MetricAccumulator, ssi_align

__all__ = ["evaluate_level"]

_SHORTFALL = 0.9  # a uniform level whose measured density is below 90 % of the request gets a note


def evaluate_level(lv: Level, dataset, level_models: list[EvalModel], indices: list[int], device: torch.device,
                   workers: int, panel_data: dict[int, dict[str, Any]], is_panel_level: bool, warmed: set[str],
                   bar, group_of: dict[int, str] | None = None) -> tuple[dict, dict, dict, list[str], dict, dict]:
    """Run every model of one level on its images: (metrics, median ms, level stats, notes,
    extra-head summaries of the models that have heads, per-group metrics).

    Fills ``panel_data[i]`` for the panel images: inputs and metric predictions at the
    panel level, aligned monocular predictions wherever they are made. With ``group_of``
    (image index -> group, e.g. an RGB-D folder's source) the metrics are also averaged
    per group: ``{group: {model: {metric: value}}}`` (empty without groups).
    """
    accs = {m.name: MetricAccumulator(m.metric_names) for m in level_models}
    group_accs: dict[str, dict[str, MetricAccumulator]] = {}
    for g in dict.fromkeys((group_of or {}).values()):
        group_accs[g] = {m.name: MetricAccumulator(m.metric_names) for m in level_models}
    head_accs = {m.name: HeadsAccumulator() for m in level_models if getattr(m.model, "heads", ())}
    times: dict[str, list[float]] = {m.name: [] for m in level_models}
    density_sum = 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i, sample in zip(indices, _iterate(dataset, indices, workers)):
            rgb, sparse, mask, gt = (sample[k][None].to(device) for k in ("rgb", "sparse", "mask", "gt"))
            density_sum += int(torch.count_nonzero(sample["mask"])) / sample["mask"].numel()  # exact, not float32
            for m in level_models:
                args = (None, None, rgb) if m.relative else (sparse, mask, rgb)
                if m.name not in warmed:  # the first call pays for allocation / kernel selection
                    _forward(m.model, args, device)
                    warmed.add(m.name)
                pred, ms = _forward(m.model, args, device)
                if isinstance(pred, dict):  # a model with extra heads
                    out, pred = pred, pred["depth"]
                    _update_heads(head_accs[m.name], out, pred.float(), gt, mask, sample.get("fg"), device)
                pred = pred.float()
                accs[m.name].update(pred, gt)
                if group_of is not None:
                    group_accs[group_of[i]][m.name].update(pred, gt)
                times[m.name].append(ms)
                if i in panel_data and (is_panel_level or m.relative):
                    shown = ssi_align(pred, gt).clamp_min(0.0) if m.relative else pred
                    label = f"{m.name} (aligned)" if m.relative else m.name
                    panel_data[i]["preds"][label] = shown[0, 0].cpu().numpy()
            if i in panel_data and is_panel_level:
                panel_data[i].update(rgb=sample["rgb"].numpy(), sparse=sample["sparse"][0].numpy(),
                                     gt=sample["gt"][0].numpy())
            if bar is not None:
                bar.update(1)
    notes = []
    for msg in dict.fromkeys(str(w.message) for w in caught):  # once per level, not once per image
        notes.append(f"level {lv.name}: {msg}")
        warnings.warn(f"level {lv.name}: {msg}", RuntimeWarning, stacklevel=3)
    metrics, medians, images_with_gt = {}, {}, 0
    for m in level_models:
        result = accs[m.name].compute()
        images_with_gt = int(result.pop("images"))
        metrics[m.name] = result
        medians[m.name] = float(statistics.median(times[m.name])) if times[m.name] else None
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
    per_group = {g: {name: {k: v for k, v in acc.compute().items() if k != "images"} for name, acc in row.items()}
                 for g, row in group_accs.items()}
    return metrics, medians, stats, notes, {name: acc.compute() for name, acc in head_accs.items()}, per_group


def _update_heads(acc: HeadsAccumulator, out: dict, pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor,
                  fg: torch.Tensor | None, device: torch.device) -> None:
    """Confidence (the head and the distance baseline on the same depth) and foreground."""
    unc = {}
    if "conf" in out:
        unc = {"conf": confidence_to_uncertainty(out["conf"].float()), "distance": distance_to_measurement(mask)}
    fg_gt = None if fg is None else fg[None].to(device)
    acc.update(pred, gt, unc, out.get("fg"), fg_gt)


def _iterate(dataset, indices: list[int], workers: int):
    if workers <= 0:
        for i in indices:
            yield dataset[i]
        return
    from torch.utils.data import Subset

    from depthsense.data.loader import worker_safe_loader  # a bad file in a worker: the same one-line error

    yield from worker_safe_loader(Subset(dataset, indices), batch_size=None, shuffle=False, num_workers=workers)


@torch.inference_mode()
def _forward(model: nn.Module, args: tuple, device: torch.device) -> tuple[torch.Tensor, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    pred = model(*args, return_heads=True) if getattr(model, "heads", ()) else model(*args)
    if device.type == "cuda":  # kernels run asynchronously: wait for them before reading the clock
        torch.cuda.synchronize(device)
    return pred, (time.perf_counter() - t0) * 1000.0

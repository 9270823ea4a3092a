"""Evaluation: sparsity levels x models -> metric tables and the report files.

The per-level loop is :func:`depthsense.evaluation.loop.evaluate_level`; the tables'
text forms are in :mod:`depthsense.evaluation.report`, the figures in
:mod:`depthsense.evaluation.plots`.

One run evaluates every model on every sparsity level of one data split::

    from depthsense.evaluation import EvalConfig, evaluate
    report = evaluate(EvalConfig(dataset="synthetic", data_root="data/synth", split="val",
                                 checkpoints=("runs/unet/best.pt",), out="reports/eval"))
    print(report.markdown(["mae", "rmse"]))

Levels (rows of the tables), in this order:

* ``uniform``: ``density=d`` of the pixels sampled uniformly from the ground truth
  (``depthsense.data.sparsify.uniform``), named ``"0.5%"``, ``"5%"``, ...; ascending;
* ``beams``: the data set's LiDAR input thinned to ``b`` scan lines, named ``"64 beams"``;
  descending (KITTI layouts only);
* ``holdout``: real LiDAR scans (``kitti_object``) scored at held-out rings or points:
  the input is the scan without them and the ground truth is their pixels
  (``depthsense.data.lidar.holdout_split``), named ``"beams:2 hold-out"``; ring phase 0;
* ``lidar``: the data set's own sparse input, unchanged (``"lidar"`` for KITTI layouts,
  ``"500 points"`` for NYU, whose own input is 500 points sampled from the ground truth);
* ``rgb-only``: no sparse input, for monocular (RGB-only) checkpoints.

Every level is a data set built once (``depthsense.data.build_dataset(..., density=d | beams=b,
seed=seed)``); all models of the level run on the same samples, batch 1, full frames
(no crop). Sparsification is seeded per ``(seed, image index)``, and models run in
eval mode, so two runs with the same config give identical tables (forward times are
kept apart: ``Report.timings``, the ``time_ms`` rows of the CSV, and their own Markdown
table).

Models (columns): checkpoints (name ``<run dir>/<file stem>``, or ``NAME=PATH``; made
unique with ``-2``, ``-3``, ...) and non-learned baselines by registry name (``ip_basic``,
``nearest``). Metric models get ``depthsense.metrics.DEFAULT_METRICS`` (MAE, RMSE in mm,
iMAE, iRMSE in 1/km, AbsRel, SqRel, delta<1.25^k) on the sparse levels. Monocular
checkpoints (``needs_sparse`` False) predict relative depth of arbitrary scale, so they get
``RELATIVE_METRICS`` (after per-image scale-and-shift alignment, plus WHDR) on the one
``rgb-only`` level; that is the only level of a ReDWeb run, and NYU / KITTI-layout runs add
it when a monocular checkpoint is given. Metrics are averaged per image over the images
with valid ground truth (KITTI devkit convention).

Also measured per level: the actual input density (mean over images of the fraction of
pixels with sparse depth; for uniform levels it is below the request when the ground
truth has fewer valid pixels, which the report notes), and per model the median forward
time per image in ms (one untimed warm-up forward per model first; CUDA synchronised).

Files written to ``cfg.out`` (each to a temporary file, then ``os.replace``d):
``report.md``, ``report.csv`` (long format), ``report.json`` (config, checkpoints with
their stored train config and step, versions, git commit, results),
``mae_vs_density.png`` / ``rmse_vs_density.png`` (log-x, *measured* density; beam and
LiDAR levels as separate markers), ``mae_vs_beams.png`` / ``rmse_vs_beams.png`` when
beam levels exist, and ``panel_<i>.png`` qualitative panels (``depthsense.viz.make_panel``)
at the LiDAR level (else the first beam level, else the middle uniform level, else
rgb-only); a monocular prediction appears there after scale-and-shift alignment to the GT.

Checkpoints with extra heads (``sparse_unet`` with ``heads=depth,conf,fg``) are also
scored on them at every level (:mod:`depthsense.evaluation.heads_metrics`): the confidence by its
sparsification curve, RMSE cut at 20 % removed and AUSE, next to the same numbers for the
"distance to the nearest measurement" baseline on the same depth; the foreground mask by
IoU and F1 (when the data set has ``fg`` masks) and the depth MAE/RMSE inside and outside
the true foreground. They go into ``report.md`` ("Extra heads"), ``report.json``
(``heads``) and ``sparsification_<level>_<model>.png``.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from depthsense.config import (
    EvalConfig,
    UsageError,
    make_output_dir,
    refuse_output_inside,
    refuse_overwrite,
    resolve_device,
    uniform_level_name,
)
from depthsense.errors import CheckpointError, DatasetError
from depthsense.evaluation.loop import evaluate_level
from depthsense.evaluation.plots import write_plots, write_sparsification_plots
from depthsense.evaluation.report import EvalModel, Level, Report
from depthsense.io import atomic_write_bytes, write_rgb
from depthsense.precision import check_precision, run_in_precision
from depthsense.provenance import git_info, versions

__all__ = ["evaluate", "write_report", "checkpoint_names"]


def evaluate(cfg: EvalConfig, *, write: bool = True) -> Report:
    """Evaluate every model at every sparsity level; write the report files.

    Everything is validated (config, checkpoints, data sets, output directory) before the
    first image is processed.

    Args:
        cfg: the run configuration (resolved here).
        write: write the report files into ``cfg.out`` (``Report.write``).
    Returns:
        The :class:`Report`.
    Raises:
        UsageError: bad option values or combinations (see :meth:`EvalConfig.resolved`),
            a split without ground truth, a metric checkpoint on an RGB-only data set.
        CheckpointError: a checkpoint that is missing, unreadable, of unknown format, not
            a DepthSense checkpoint, or whose weights do not fit its model.
        DatasetError, DepthFileError: missing or empty data set root/split, bad files.
    """
    start = time.perf_counter()
    cfg = cfg.resolved()
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    models_ = _load_models(cfg, device)
    levels = _build_levels(cfg, models_)
    datasets = {lv.name: _build_level_dataset(cfg, lv) for lv in levels}
    n_total = _check_datasets(cfg, datasets)
    out = Path(cfg.out)
    if write:
        refuse_output_inside(out, {"--data-root": cfg.data_root, "--rgb-root": cfg.rgb_root})
        refuse_overwrite([out / n for n in ("report.md", "report.csv", "report.json")],
                         [path for _, path in checkpoint_names(cfg.checkpoints)])
        make_output_dir(out, "report directory")

    indices = _select_indices(n_total, cfg.max_images)
    panel_level = _panel_level(levels)
    panel_idx = [indices[j] for j in sorted({round(x) for x in np.linspace(0, len(indices) - 1, cfg.panels)})] \
        if cfg.panels and indices else []
    panel_data: dict[int, dict[str, Any]] = {i: {"preds": {}} for i in panel_idx}

    tables: dict[str, dict[str, dict[str, float | None]]] = {}
    timings: dict[str, dict[str, float | None]] = {}
    level_stats: dict[str, dict[str, Any]] = {}
    heads: dict[str, dict[str, dict]] = {}
    groups: dict[str, dict[str, dict[str, dict]]] = {}
    notes: list[str] = []
    warmed: set[str] = set()
    bar = _progress(cfg, len(levels) * len(indices))
    try:
        for lv in levels:
            if bar is not None:
                bar.set_description(f"level {lv.name}")
            level_models = [m for m in models_ if m.relative != lv.sparse]
            ds = datasets[lv.name]
            group_of = {i: ds.group(i) for i in indices} if hasattr(ds, "group") else None
            tables[lv.name], timings[lv.name], level_stats[lv.name], level_notes, heads[lv.name], groups[lv.name] = \
                evaluate_level(lv, ds, level_models, indices, device, cfg.workers, panel_data, lv is panel_level,
                               warmed, bar, group_of)
            notes += level_notes
    finally:
        if bar is not None:
            bar.close()

    report = Report(
        config=cfg,
        levels=levels,
        models=models_,
        tables=tables,
        timings=timings,
        level_stats=level_stats,
        notes=notes,
        meta={
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(),
            **git_info(),
            "device": str(device),
            "images_in_split": n_total,
            "images_evaluated": len(indices),
            "image_indices": list(indices),
            "panel_level": panel_level.name if panel_level else None,
        },
        panels=[_panel(panel_data[i]) for i in panel_idx if "rgb" in panel_data[i]],
        heads={k: v for k, v in heads.items() if v},
        groups={k: v for k, v in groups.items() if v},
    )
    report.meta["seconds"] = time.perf_counter() - start
    if write:
        write_report(report, out)
    return report


def write_report(report: Report, out: str | Path | None = None) -> list[Path]:
    """Write every report file into ``out`` (default ``report.config.out``), atomically each:
    the panels, the plots, ``report.csv``, ``report.json`` and ``report.md``.

    Returns:
        The paths written (also stored in ``report.files``).
    Raises:
        DepthFileError: the directory cannot be created or written.
    """
    out = Path(out if out is not None else report.config.out)
    make_output_dir(out, "report directory")
    written: list[Path] = []
    for i, panel in enumerate(report.panels):
        write_rgb(out / f"panel_{i}.png", panel)
        written.append(out / f"panel_{i}.png")
    written += write_plots(report, out)
    written += write_sparsification_plots(report.heads, out)
    report.files = written + [out / "report.md", out / "report.csv", out / "report.json"]
    report.meta["files"] = [p.name for p in report.files]
    atomic_write_bytes(out / "report.csv", report.csv_text().encode())
    atomic_write_bytes(out / "report.json", report.to_json().encode())
    atomic_write_bytes(out / "report.md", report.markdown().encode())
    return list(report.files)


def checkpoint_names(specs: Iterable[str]) -> list[tuple[str, Path]]:
    """Column names and paths of ``--checkpoints`` entries.

    An entry is ``PATH`` (named ``<parent folder>/<file stem>``, e.g. ``unet/best`` for
    ``runs/unet/best.pt``) or ``NAME=PATH`` when it is not itself an existing file. Names
    are made unique by appending ``-2``, ``-3``, ... in order of appearance.

    Returns:
        ``[(name, path), ...]`` in the given order.
    """
    out: list[tuple[str, Path]] = []
    used: set[str] = set()
    for spec in specs:
        spec = str(spec)
        name, path = None, Path(spec)
        if "=" in spec and not path.exists():
            left, right = spec.split("=", 1)
            if left and right:
                name, path = left, Path(right)
        if name is None:
            parent = path.resolve().parent.name
            name = f"{parent}/{path.stem}" if parent else path.stem
        out.append((_unique(name, used), path))
    return out


# --------------------------------------------------------------------------- helpers


def _unique(name: str, used: set[str]) -> str:
    candidate, k = name, 2
    while candidate in used:
        candidate, k = f"{name}-{k}", k + 1
    used.add(candidate)
    return candidate


def _load_models(cfg: EvalConfig, device: torch.device) -> list[EvalModel]:
    from depthsense import models
    from depthsense.checkpoint import build_model_from_checkpoint, load_checkpoint

    used: set[str] = set()
    out: list[EvalModel] = []
    for name, path in checkpoint_names(cfg.checkpoints):
        ckpt = load_checkpoint(path, map_location="cpu")
        try:
            model = build_model_from_checkpoint(ckpt, device)
        except CheckpointError as exc:  # given a dict, its messages say "<checkpoint>": name the file
            raise CheckpointError(str(exc).replace("<checkpoint>", str(path), 1)) from None
        model = run_in_precision(model, cfg.precision, device)
        relative = not getattr(model, "needs_sparse", True)
        if cfg.dataset == "redweb" and not relative:
            raise UsageError(
                f"{path}: model {ckpt['model']!r} needs sparse depth, but --dataset redweb has only RGB and "
                "relative depth; evaluate it on kitti/synthetic/nyu, or pass a monocular checkpoint"
            )
        out.append(EvalModel(
            name=_unique(name, used), model=model, source="checkpoint", relative=relative,
            path=str(Path(path).resolve()),
            info={"model": ckpt["model"], "model_cfg": dict(ckpt.get("model_cfg") or {}),
                  "train_cfg": ckpt.get("train_cfg") or {}, "step": ckpt.get("step"),
                  "stored_metrics": ckpt.get("metrics") or {},
                  "parameters": sum(p.numel() for p in model.parameters())},
        ))
    for name in cfg.baselines:
        model = models.build_model(name).to(device).eval()
        out.append(EvalModel(name=_unique(name, used), model=model, source="baseline", relative=False,
                             info={"model": name, "model_cfg": dict(model.config), "parameters": 0}))
    return out


def _build_levels(cfg: EvalConfig, models_: list[EvalModel]) -> list[Level]:
    levels: list[Level] = []
    if any(not m.relative for m in models_):
        levels += [Level(uniform_level_name(d), "uniform", density=d) for d in cfg.densities]
        levels += [Level(f"{b} beams", "beams", beams=b) for b in cfg.beams]
        levels += [Level(f"{h} hold-out", "holdout", holdout=h) for h in cfg.holdout]
        levels += [Level(p, "pattern", pattern=p) for p in cfg.patterns]
        if cfg.lidar:
            levels.append(Level(_native_level_name(cfg.dataset), "lidar"))
    if any(m.relative for m in models_):
        levels.append(Level("rgb-only", "rgb-only"))
    if not levels:
        raise UsageError(f"no sparsity level to evaluate: {cfg.no_level_fix()}")
    return levels


def _native_level_name(dataset: str) -> str:
    from depthsense import data

    return data.dataset_class(dataset).own_input or "lidar"


def _build_level_dataset(cfg: EvalConfig, level: Level):
    from depthsense import data

    extra = {"rgb_root": cfg.rgb_root} if cfg.rgb_root else {}
    if level.holdout:
        extra.update(holdout=level.holdout, holdout_phase=0)
    if cfg.depth_unit is not None:
        extra["depth_unit"] = cfg.depth_unit
    ds = data.build_dataset(cfg.dataset, cfg.data_root, cfg.split, transform=None, density=level.density,
                            beams=level.beams, seed=cfg.seed, pattern=level.pattern, **extra)
    if level.pattern:  # scored where the sensor gave nothing (for holes: inside the holes)
        ds.hidden_target = True
    return ds


def _check_datasets(cfg: EvalConfig, datasets: dict) -> int:
    sizes = {name: len(ds) for name, ds in datasets.items()}
    n = next(iter(sizes.values()))
    if n == 0:
        raise DatasetError(f"{cfg.data_root}: split {cfg.split!r} of {cfg.dataset} is empty; nothing to evaluate.")
    if len(set(sizes.values())) != 1:  # every level is the same split: a bug, not a user error
        raise RuntimeError(f"levels see different numbers of images: {sizes}")
    first = next(iter(datasets.values()))
    records = getattr(first, "samples", None)
    if records and any(getattr(r, "gt", 1) is None for r in records):
        raise UsageError(
            f"--split {cfg.split}: {cfg.dataset} has no ground truth in this split; evaluate "
            "val or val_selection (KITTI's test split is scored by the benchmark server)"
        )
    return n


def _select_indices(n: int, max_images: int) -> list[int]:
    if not max_images or max_images >= n:
        return list(range(n))
    # Evenly spaced, not the first N: KITTI splits are sorted by drive, so the first
    # images would all come from one street.
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, max_images)})


def _panel_level(levels: list[Level]) -> Level | None:
    by_kind = {k: [lv for lv in levels if lv.kind == k]
               for k in ("lidar", "holdout", "pattern", "beams", "uniform", "rgb-only")}
    if by_kind["lidar"]:
        return by_kind["lidar"][0]
    if by_kind["holdout"]:
        return by_kind["holdout"][0]
    if by_kind["pattern"]:
        return by_kind["pattern"][0]
    if by_kind["beams"]:
        return by_kind["beams"][0]
    if by_kind["uniform"]:
        return by_kind["uniform"][len(by_kind["uniform"]) // 2]
    return by_kind["rgb-only"][0] if by_kind["rgb-only"] else None


def _panel(d: dict[str, Any]) -> np.ndarray:
    from depthsense.viz import make_panel

    return make_panel(d["rgb"], d["sparse"], d["preds"], d["gt"])


def _progress(cfg: EvalConfig, total: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="evaluate", file=sys.stderr)

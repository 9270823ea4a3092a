"""Evaluation results and their text forms: Markdown, CSV and JSON.

A :class:`Report` holds the tables of one :func:`depthsense.evaluation.evaluate` run (rows =
sparsity levels, :class:`Level`; columns = models, :class:`EvalModel`) and renders
``report.md``, ``report.csv`` (long format, :data:`CSV_COLUMNS`) and ``report.json``
(config, checkpoints, versions, git commit, results). The files, the plots
(:mod:`depthsense.evaluation.plots`) and the panels are written by
:func:`depthsense.evaluation.write_report`.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from torch import nn

from depthsense.config import jsonable
from depthsense.evaluation.heads_report import heads_markdown
from depthsense.metrics import DEFAULT_METRICS, HIGHER_IS_BETTER, METRIC_UNITS, RELATIVE_METRICS, metric_unit

if TYPE_CHECKING:
    from depthsense.config import EvalConfig

__all__ = ["Level", "EvalModel", "Report", "CSV_COLUMNS", "TIME_METRIC", "REPORT_FORMAT", "METRIC_TITLES",
           "metric_label"]

CSV_COLUMNS: tuple[str, ...] = (
    "level", "level_kind", "density_requested", "density_measured", "group", "model", "metric", "value",
)
"""Columns of ``report.csv`` (one row per level x model x metric, plus ``time_ms`` rows; then,
for data sets with groups such as an RGB-D folder's sources, one row per level x group x
model x metric with ``group`` set; it is empty on the overall rows)."""

CLASSICAL_REFERENCE: tuple[str, ...] = ("ip_basic", "nearest")
"""The classical fills a learned model is compared with in the report's summary (the better
of them, per cell and metric)."""

TIME_METRIC = "time_ms"
"""Metric name of the forward-time rows in ``report.csv`` (median ms per image)."""

REPORT_FORMAT = 1
"""Version of the ``report.json`` layout."""

METRIC_TITLES = {
    "mae": "MAE", "rmse": "RMSE", "imae": "iMAE", "irmse": "iRMSE", "absrel": "AbsRel",
    "sqrel": "SqRel", "delta1": "δ<1.25", "delta2": "δ<1.25²", "delta3": "δ<1.25³",
    "ssi_absrel": "AbsRel (aligned)", "ssi_rmse": "RMSE (aligned)", "ssi_delta1": "δ<1.25 (aligned)",
    "whdr": "WHDR",
}
"""Display names of the metrics in tables and plots."""

_SPARSE_LEVEL_KINDS = ("uniform", "beams", "holdout", "pattern", "lidar")


def metric_label(metric: str, dataset: str | None = None) -> str:
    """``"RMSE [mm]"``: the metric's display name with its unit (see :func:`depthsense.metrics.metric_unit`)."""
    unit = metric_unit(metric, metric_depth=_metric_depth(dataset))
    return f"{METRIC_TITLES.get(metric, metric)}{f' [{unit}]' if unit else ''}"


@dataclass(frozen=True)
class Level:
    """One sparsity level: a row of the tables.

    Attributes:
        name: row label and key, e.g. ``"5%"``, ``"32 beams"``, ``"lidar"``, ``"rgb-only"``.
        kind: ``"uniform"`` | ``"beams"`` | ``"holdout"`` | ``"pattern"`` | ``"lidar"`` | ``"rgb-only"``.
        density: requested uniform density (fraction of pixels), uniform levels only.
        beams: beam count, beam levels only.
        holdout: hold-out spec (``"beams:2"``), hold-out levels only.
        pattern: sensor pattern (``"holes:25%"``), pattern levels only; scored at the
            ground-truth pixels that are not input pixels.
    """

    name: str
    kind: str
    density: float | None = None
    beams: int | None = None
    holdout: str | None = None
    pattern: str | None = None

    @property
    def sparse(self) -> bool:
        """True for levels with sparse input (metric models), False for ``rgb-only``."""
        return self.kind in _SPARSE_LEVEL_KINDS


@dataclass
class EvalModel:
    """One evaluated model: a column of the tables.

    Attributes:
        name: unique column name.
        model: the module, in eval mode on the evaluation device.
        source: ``"checkpoint"`` or ``"baseline"``.
        relative: True for monocular (RGB-only, relative-depth) models.
        path: absolute checkpoint path (``None`` for baselines).
        info: registry name, model config and, for checkpoints, the stored ``train_cfg``,
            ``step`` and ``metrics``.
    """

    name: str
    model: nn.Module
    source: str
    relative: bool
    path: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return RELATIVE_METRICS if self.relative else DEFAULT_METRICS


@dataclass
class Report:
    """The results of one evaluation run and their text forms.

    Attributes:
        config: the resolved :class:`EvalConfig`.
        levels: evaluated levels in row order.
        models: evaluated models in column order (``EvalModel.model`` is not serialised).
        tables: level name -> model name -> metric name -> value (``None`` if no image of
            the level had ground truth); deterministic for a given config.
        timings: level name -> model name -> median forward time per image in ms.
        level_stats: level name -> ``{"density_measured", "images", "images_with_gt"}``.
        notes: warnings worth reading next to the numbers (e.g. capped densities).
        meta: run facts for ``report.json``: versions, git commit, device, data set size,
            evaluated image indices, wall time, creation time.
        panels: qualitative panels (uint8 RGB arrays) written as ``panel_<i>.png``.
        files: paths written by :func:`depthsense.evaluation.write_report`.
    """

    config: EvalConfig
    levels: list[Level]
    models: list[EvalModel]
    tables: dict[str, dict[str, dict[str, float | None]]]
    timings: dict[str, dict[str, float | None]]
    level_stats: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    panels: list[np.ndarray] = field(default_factory=list, repr=False)
    files: list[Path] = field(default_factory=list)
    heads: dict[str, dict[str, dict]] = field(default_factory=dict)
    """level -> model -> extra-head summary (:mod:`depthsense.evaluation.heads_metrics`); models with heads only."""
    groups: dict[str, dict[str, dict[str, dict[str, float | None]]]] = field(default_factory=dict)
    """level -> group -> model -> metric -> value, for data sets whose images come in groups
    (an RGB-D folder's sources); empty otherwise."""

    # ------------------------------------------------------------------ views

    def markdown(self, metrics: Sequence[str] | None = None) -> str:
        """The report as Markdown.

        Args:
            metrics: ``None`` for the full ``report.md``; otherwise only the tables of these
                metrics (e.g. ``["mae", "rmse"]``, which the CLI prints), plus the relative
                table if any name is a relative metric.
        Returns:
            Markdown text ending in a newline.
        """
        full = metrics is None
        names = list(DEFAULT_METRICS) if full else [m for m in metrics if m in DEFAULT_METRICS]
        rel_names = list(RELATIVE_METRICS) if full else [m for m in metrics if m in RELATIVE_METRICS]
        unknown = [] if full else [m for m in metrics if m not in METRIC_UNITS]
        if unknown:
            raise KeyError(f"unknown metric(s) {unknown}; known metrics: {', '.join(METRIC_UNITS)}")
        lines: list[str] = []
        if full:
            lines += self._md_header()
        sparse_levels = [lv for lv in self.levels if lv.sparse]
        metric_models = [m for m in self.models if not m.relative]
        if sparse_levels and metric_models:
            for name in names:
                lines += self._md_metric_table(name, sparse_levels, metric_models)
            if self.groups:
                for name in (names if full else [n for n in names if n in ("mae", "rmse")]):
                    lines += self._md_group_table(name, sparse_levels, metric_models)
            lines += self._md_versus_classical([n for n in ("rmse", "mae", "irmse", "imae") if n in names])
        rel_models = [m for m in self.models if m.relative]
        rel_levels = [lv for lv in self.levels if not lv.sparse]
        if rel_names and rel_models and rel_levels:
            lines += self._md_relative_table(rel_names, rel_levels, rel_models)
        if full:
            lines += heads_markdown(self.heads)
            lines += self._md_timing_table()
            lines += self._md_footer()
        return "\n".join(lines).rstrip("\n") + "\n"

    def to_dict(self) -> dict:
        """Everything except the panel images, JSON-able (the content of ``report.json``)."""
        return jsonable({
            "format": REPORT_FORMAT,
            "config": self.config.to_dict(),
            **self.meta,
            "levels": [
                {"name": lv.name, "kind": lv.kind, "density_requested": lv.density, "beams": lv.beams,
                 "holdout": lv.holdout, "pattern": lv.pattern,
                 **self.level_stats.get(lv.name, {})}
                for lv in self.levels
            ],
            "models": [
                {"name": m.name, "source": m.source, "relative": m.relative, "path": m.path,
                 "metrics": list(m.metric_names), **m.info}
                for m in self.models
            ],
            "checkpoints": [
                {"name": m.name, "path": m.path, "model": m.info.get("model"),
                 "train_cfg": m.info.get("train_cfg"), "step": m.info.get("step")}
                for m in self.models if m.source == "checkpoint"
            ],
            "metric_units": {k: metric_unit(k, metric_depth=_metric_depth(self.config.dataset))
                             for k in (*DEFAULT_METRICS, *RELATIVE_METRICS)},
            "results": self.tables,
            "timings_ms": self.timings,
            **({"heads": self.heads} if any(self.heads.values()) else {}),
            **({"groups": self.groups} if self.groups else {}),
            "versus_classical": {n: self.versus_classical(n) for n in ("rmse", "mae", "irmse", "imae")},
            "notes": list(self.notes),
        })

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text (no NaN: missing values are ``null``)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def csv_rows(self) -> list[dict[str, Any]]:
        """Rows of ``report.csv``: every level x model x metric, then the ``time_ms`` rows."""
        rows: list[dict[str, Any]] = []
        for lv in self.levels:
            measured = self.level_stats.get(lv.name, {}).get("density_measured")
            base = {"level": lv.name, "level_kind": lv.kind, "density_requested": lv.density,
                    "density_measured": measured}
            for m in self.models:
                values = self.tables.get(lv.name, {}).get(m.name)
                if values is None:
                    continue
                rows += [{**base, "model": m.name, "metric": k, "value": values[k]} for k in m.metric_names]
                rows.append({**base, "model": m.name, "metric": TIME_METRIC,
                             "value": self.timings[lv.name][m.name]})
        for lv in self.levels:
            base = {"level": lv.name, "level_kind": lv.kind, "density_requested": lv.density,
                    "density_measured": None}
            for group, row in self.groups.get(lv.name, {}).items():
                for m in self.models:
                    values = row.get(m.name)
                    if values is not None:
                        rows += [{**base, "group": group, "model": m.name, "metric": k, "value": values[k]}
                                 for k in m.metric_names]
        return rows

    def versus_classical(self, metric: str) -> dict[str, dict[str, Any]]:
        """Each learned model's ratio to the better classical fill (:data:`CLASSICAL_REFERENCE`).

        The cells are the sparse levels, or level x group when the data set has groups;
        per cell the model's value is divided by the smaller of the reference fills' values.
        Returns:
            model name -> ``{"cells", "wins" (ratio <= 1), "geomean", "worst", "worst_cell"}``;
            empty when no reference fill or no learned model was evaluated.
        """
        refs = [m.name for m in self.models if m.source == "baseline" and m.info.get("model") in CLASSICAL_REFERENCE]
        learned = [m.name for m in self.models if m.source == "checkpoint" and not m.relative]
        if not refs or not learned or metric in HIGHER_IS_BETTER:
            return {}
        cells: list[tuple[str, dict[str, dict]]] = []
        for lv in (lv for lv in self.levels if lv.sparse):
            if self.groups.get(lv.name):
                cells += [(f"{g} / {lv.name}", row) for g, row in self.groups[lv.name].items()]
            else:
                cells.append((lv.name, self.tables.get(lv.name, {})))
        out: dict[str, dict[str, Any]] = {}
        for name in learned:
            ratios = []
            for label, row in cells:
                ours = (row.get(name) or {}).get(metric)
                best = [v for v in ((row.get(r) or {}).get(metric) for r in refs) if v is not None]
                if ours is not None and best and min(best) > 0:
                    ratios.append((ours / min(best), label))
            if ratios:
                worst = max(ratios)
                out[name] = {"cells": len(ratios), "wins": sum(r <= 1.0 for r, _ in ratios),
                             "geomean": float(np.exp(np.mean([np.log(max(r, 1e-12)) for r, _ in ratios]))),
                             "worst": worst[0], "worst_cell": worst[1], "reference": refs}
        return out

    # ------------------------------------------------------------------ helpers

    def csv_text(self) -> str:
        """The content of ``report.csv``: a header, then :meth:`csv_rows`."""
        buf = _stdio.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.csv_rows():
            writer.writerow({k: "" if v is None else (repr(float(v)) if isinstance(v, float) else v)
                             for k, v in row.items()})
        return buf.getvalue()

    def _md_header(self) -> list[str]:
        cfg, meta = self.config, self.meta
        commit = meta.get("git_commit")
        rev = "no git commit (not a git checkout)" if not commit else (
            f"commit `{commit[:12]}`" + (" with uncommitted changes" if meta.get("git_dirty") else "")
        )
        versions = meta.get("versions", {})
        evaluated = meta.get("images_evaluated")
        lines = [
            "# DepthSense evaluation report",
            "",
            f"Data set `{cfg.dataset}` split `{cfg.split}` at `{cfg.data_root}`: {evaluated} of "
            f"{meta.get('images_in_split')} images per level, device `{meta.get('device')}`, "
            f"{meta.get('seconds', 0.0):.1f} s.",
            "",
            f"Produced by depthsense {versions.get('depthsense')} ({rev}; torch {versions.get('torch')}, "
            f"numpy {versions.get('numpy')}) on {meta.get('created')}. The full config is in "
            "`report.json`; to reproduce:",
            "",
            "```",
            "depthsense-evaluate " + " ".join(_shell_quote(a) for a in cfg.to_argv()),
            "```",
            "",
            "Metrics are averaged per image over the images with valid ground truth (KITTI devkit "
            "convention); **bold** is the best model of a row. Density = fraction of pixels with "
            "sparse input (measured = mean over the evaluated images).",
            "",
            "## Models",
            "",
            "| column | source | model | trained at | step | path |",
            "|---|---|---|---|---|---|",
        ]
        for m in self.models:
            train_cfg = m.info.get("train_cfg") or {}
            trained = "—"
            if m.source == "checkpoint":
                if train_cfg.get("density") is not None:
                    trained = f"{100 * float(train_cfg['density']):g}% uniform"
                elif train_cfg.get("beams") is not None:
                    trained = f"{train_cfg['beams']} beams"
                elif train_cfg:
                    trained = "own sparse input" if not m.relative else "rgb"
                else:
                    trained = "?"
            step = m.info.get("step")
            lines.append(
                f"| {m.name} | {m.source} | {m.info.get('model')}{' (relative depth)' if m.relative else ''} | "
                f"{trained} | {'—' if step is None else step} | {m.path or '—'} |"
            )
        lines.append("")
        return lines

    def _md_metric_table(self, name: str, levels: list[Level], models: list[EvalModel]) -> list[str]:
        better = "higher" if name in HIGHER_IS_BETTER else "lower"
        lines = [
            f"## {metric_label(name, self.config.dataset)} ({better} is better)",
            "",
            "| level | density requested | density measured | " + " | ".join(m.name for m in models) + " |",
            "|---|---:|---:|" + "---:|" * len(models),
        ]
        for lv in levels:
            row = self.tables.get(lv.name, {})
            values = [row.get(m.name, {}).get(name) for m in models]
            lines.append(
                f"| {lv.name} | {_fmt_density(lv.density)} | "
                f"{_fmt_density(self.level_stats.get(lv.name, {}).get('density_measured'))} | "
                + " | ".join(_bold_best(values, name)) + " |"
            )
        lines.append("")
        return lines

    def _md_group_table(self, name: str, levels: list[Level], models: list[EvalModel]) -> list[str]:
        better = "higher" if name in HIGHER_IS_BETTER else "lower"
        lines = [f"## {metric_label(name, self.config.dataset)} per source ({better} is better)", "",
                 "| source | level | " + " | ".join(m.name for m in models) + " |",
                 "|---|---|" + "---:|" * len(models)]
        groups = list(dict.fromkeys(g for lv in levels for g in self.groups.get(lv.name, {})))
        for g in groups:
            for lv in levels:
                row = self.groups.get(lv.name, {}).get(g)
                if row is not None:
                    values = [row.get(m.name, {}).get(name) for m in models]
                    lines.append(f"| {g} | {lv.name} | " + " | ".join(_bold_best(values, name)) + " |")
        lines.append("")
        return lines

    def _md_versus_classical(self, names: list[str]) -> list[str]:
        rows = [(n, model, v) for n in names for model, v in self.versus_classical(n).items()]
        if not rows:
            return []
        lines = [f"## Learned models against the better of {' / '.join(rows[0][2]['reference'])}", "",
                 "Per cell (" + ("source x level" if self.groups else "level") + ") the model's value divided "
                 "by the better classical fill's; below 1 the model wins.", "",
                 "| model | metric | cells won | geometric mean | worst (cell) |", "|---|---|---:|---:|---|"]
        for n, model, v in rows:
            lines.append(f"| {model} | {METRIC_TITLES.get(n, n)} | {v['wins']} of {v['cells']} | "
                         f"{v['geomean']:.3f}x | {v['worst']:.2f}x ({v['worst_cell']}) |")
        lines.append("")
        return lines

    def _md_relative_table(self, names: list[str], levels: list[Level], models: list[EvalModel]) -> list[str]:
        lines = [
            "## Relative depth (monocular models, after per-image scale-and-shift alignment)",
            "",
            "| level | model | " + " | ".join(metric_label(n, self.config.dataset) for n in names) + " |",
            "|---|---|" + "---:|" * len(names),
        ]
        for lv in levels:
            for m in models:
                row = self.tables.get(lv.name, {}).get(m.name)
                if row is not None:
                    lines.append(f"| {lv.name} | {m.name} | " + " | ".join(_fmt(row.get(n)) for n in names) + " |")
        lines.append("")
        return lines

    def _md_timing_table(self) -> list[str]:
        models = self.models
        lines = [
            "## Forward time per image [ms] (median; varies between runs)",
            "",
            "| level | " + " | ".join(m.name for m in models) + " |",
            "|---|" + "---:|" * len(models),
        ]
        for lv in self.levels:
            row = self.timings.get(lv.name, {})
            lines.append(f"| {lv.name} | " + " | ".join(
                "—" if row.get(m.name) is None else f"{row[m.name]:.2f}" for m in models) + " |")
        lines.append("")
        return lines

    def _md_footer(self) -> list[str]:
        lines: list[str] = []
        plots = [p for p in self.meta.get("files", []) if p.endswith(".png") and not p.startswith("panel_")]
        panels = [p for p in self.meta.get("files", []) if p.startswith("panel_")]
        if plots or panels:
            lines += ["## Plots", ""]
            lines += [f"![{p[:-4]}]({p})" for p in plots]
            if panels:
                lines += ["", f"Qualitative panels at level `{self.meta.get('panel_level')}` (rgb, sparse input, "
                          "each prediction, ground truth, error maps): " + ", ".join(f"[{p}]({p})" for p in panels)]
            lines.append("")
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        return lines


def _metric_depth(dataset: str | None) -> bool:
    """Whether ``dataset``'s ground truth is in metres (its class's ``has_metric_depth``); True unnamed."""
    if dataset is None:
        return True
    from depthsense.data import dataset_class  # not at import: report readers need no data sets

    return dataset_class(dataset).has_metric_depth


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.4f}"


def _fmt_density(d: float | None) -> str:
    return "—" if d is None else f"{100 * d:.2f}%"


def _bold_best(values: list[float | None], metric: str) -> list[str]:
    shown = [_fmt(v) for v in values]
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return [s if v is not None else "—" for s, v in zip(shown, values)]
    best = max(present) if metric in HIGHER_IS_BETTER else min(present)
    return ["—" if v is None else (f"**{s}**" if _fmt(v) == _fmt(best) else s) for s, v in zip(shown, values)]


def _shell_quote(arg: str) -> str:
    return shlex.quote(arg)

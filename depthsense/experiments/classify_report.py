"""The report of one sparse-classification experiment: Markdown, CSV, JSON and the plot.

Written by :func:`depthsense.experiments.classify.run_classification` into its ``out`` folder, each
file atomically, in the look of ``depthsense-evaluate``'s report:

* ``report.md``: data, nets, command to reproduce, one accuracy table per protocol (rows
  = sparsity levels, columns = nets, best of a row in bold), the spread of protocol (b),
  training times, notes;
* ``report.csv``: long format, :data:`CLASSIFY_CSV_COLUMNS`, one row per protocol x net x
  test level;
* ``report.json``: config, data, nets, results, per-training facts, versions, git commit,
  machine load;
* ``accuracy_vs_sparsity.png``: accuracy against the fraction of dropped pixels, one
  panel per protocol.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import math
import shlex
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from depthsense.experiments.classify_config import ClassifyConfig, level_name
from depthsense.config import jsonable, make_output_dir
from depthsense.io import atomic_write_bytes
from depthsense.evaluation.plots import new_figure, save_figure

__all__ = ["ClassifyReport", "CLASSIFY_CSV_COLUMNS", "PLOT_NAME"]

CLASSIFY_CSV_COLUMNS: tuple[str, ...] = ("protocol", "train_sparsity", "test_sparsity", "net", "metric", "value")
"""Columns of ``report.csv``; sparsities are fractions of pixels dropped, ``metric`` is ``accuracy``."""

PLOT_NAME = "accuracy_vs_sparsity.png"
"""File name of the plot."""

_PROTOCOL_TITLES = {
    "a": "Protocol (a): trained and tested at each sparsity",
    "b": "Protocol (b): trained at {train}, tested at every sparsity",
}


@dataclass
class ClassifyReport:
    """Results of one experiment and their writers.

    Attributes:
        config: the resolved :class:`~depthsense.experiments.classify_config.ClassifyConfig`.
        data: facts about the image set (name, source, classes, image counts, size).
        nets: ``{"name", "kind", "batchnorm", "parameters"}`` per net, in column order.
        protocol_a: net -> level name -> test accuracy in [0,1] (trained at that level).
        protocol_b: net -> level name -> test accuracy (trained at ``config.train_level``).
        runs: one dict per training: net, train_level, steps, final_loss, train_seconds,
            test_seconds, parameters.
        notes: remarks printed under the tables.
        meta: versions, git commit, creation time, wall seconds, CPU count, load average.
        files: paths written by :meth:`write`.
    """

    config: ClassifyConfig
    data: dict[str, Any]
    nets: list[dict[str, Any]]
    protocol_a: dict[str, dict[str, float]]
    protocol_b: dict[str, dict[str, float]]
    runs: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    # ------------------------------------------------------------------ views

    @property
    def chance(self) -> float:
        """Accuracy of guessing: 1 / number of classes."""
        return 1.0 / self.data["classes"]

    def spreads(self) -> dict[str, dict[str, float]]:
        """Protocol (b): per net, ``range`` (max - min) and population ``std`` of the
        accuracy over all test levels, and the ``min`` / ``max`` themselves."""
        out = {}
        for net, row in self.protocol_b.items():
            values = list(row.values())
            out[net] = {"range": max(values) - min(values), "std": statistics.pstdev(values),
                        "min": min(values), "max": max(values)}
        return out

    def markdown(self, full: bool = True) -> str:
        """The report as Markdown: with ``full`` False only the accuracy tables (what the CLI prints)."""
        lines: list[str] = self._md_header() if full else []
        for protocol, table in (("a", self.protocol_a), ("b", self.protocol_b)):
            if table:
                lines += self._md_table(protocol, table)
        if full:
            lines += self._md_runs()
            lines += [f"## Plot", "", f"![accuracy vs sparsity]({PLOT_NAME})", ""]
            if self.notes:
                lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(lines).rstrip("\n") + "\n"

    def to_dict(self) -> dict:
        """Everything, JSON-able (the content of ``report.json``)."""
        return jsonable({
            "format": 1,
            "config": self.config.to_dict(),
            **self.meta,
            "data": self.data,
            "nets": self.nets,
            "levels": [level_name(v) for v in self.config.levels],
            "train_level": level_name(self.config.train_level),
            "chance": self.chance,
            "results": {"a": self.protocol_a, "b": self.protocol_b},
            "spread_b": self.spreads() if self.protocol_b else {},
            "runs": self.runs,
            "notes": list(self.notes),
        })

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def csv_rows(self) -> list[dict[str, Any]]:
        """Rows of ``report.csv``: protocol x net x test level."""
        rows = []
        for protocol, table in (("a", self.protocol_a), ("b", self.protocol_b)):
            for net, row in table.items():
                for level in self.config.levels:
                    name = level_name(level)
                    if name in row:
                        train = level if protocol == "a" else self.config.train_level
                        rows.append({"protocol": protocol, "train_sparsity": train, "test_sparsity": level,
                                     "net": net, "metric": "accuracy", "value": row[name]})
        return rows

    # ------------------------------------------------------------------ writers

    def write(self, out: str | Path | None = None) -> list[Path]:
        """Write ``report.md/csv/json`` and the plot into ``out`` (default ``config.out``).

        Returns:
            The paths written (also in ``files``).
        Raises:
            UsageError: the directory cannot be created or written.
        """
        out = Path(out if out is not None else self.config.out)
        make_output_dir(out, "report directory")
        _write_plot(self, out / PLOT_NAME)
        self.files = [out / PLOT_NAME, out / "report.md", out / "report.csv", out / "report.json"]
        self.meta["files"] = [p.name for p in self.files]
        buf = _stdio.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CLASSIFY_CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: repr(float(v)) if isinstance(v, float) else v for k, v in row.items()}
                         for row in self.csv_rows())
        atomic_write_bytes(out / "report.csv", buf.getvalue().encode())
        atomic_write_bytes(out / "report.json", self.to_json().encode())
        atomic_write_bytes(out / "report.md", self.markdown().encode())
        return list(self.files)

    # ------------------------------------------------------------------ helpers

    def _md_header(self) -> list[str]:
        cfg, meta, data = self.config, self.meta, self.data
        commit = meta.get("git_commit")
        rev = "no git commit" if not commit else (
            f"commit `{commit[:12]}`" + (" with uncommitted changes" if meta.get("git_dirty") else ""))
        versions = meta.get("versions", {})
        h, w = data["image_size"]
        nets = ", ".join(f"`{n['name']}` ({n['parameters']:,} parameters)" for n in self.nets)
        load = meta.get("load_average_before"), meta.get("load_average_after")
        load_text = "" if None in load else (
            f" Load average (1/5/15 min) before {'/'.join(f'{v:g}' for v in load[0])}, after "
            f"{'/'.join(f'{v:g}' for v in load[1])} on {meta.get('cpu_count')} CPUs.")
        return [
            "# DepthSense sparse classification report",
            "",
            f"Image set `{data['name']}` ({data['source']}): {data['train_images']} training and "
            f"{data['test_images']} test images, {h}x{w}, {data['channels']} channel(s), {data['classes']} classes "
            f"(chance {100 * self.chance:.1f}%). Nets: {nets}. Training: {cfg.epochs} epochs, batch "
            f"{cfg.batch_size}, Adam one-cycle to lr {cfg.lr:g}, first kernel {cfg.first_kernel}x{cfg.first_kernel}, "
            f"{cfg.pool}-pooling, seed {cfg.seed}.",
            "",
            f"{meta.get('seconds', 0.0):.0f} s wall clock with {cfg.jobs} job(s) of one CPU thread each.{load_text} "
            f"Produced by depthsense {versions.get('depthsense')} ({rev}; torch {versions.get('torch')}) on "
            f"{meta.get('created')}. The full config is in `report.json`; to reproduce:",
            "",
            "```",
            "depthsense-classify " + " ".join(shlex.quote(a) for a in cfg.to_argv()),
            "```",
            "",
            "Sparsity = fraction of pixels dropped (uniformly at random, exactly that share of every image; "
            "the same pixels for every net). Accuracy = top-1 on the whole test split, in %; **bold** is the "
            f"best net of a row. With {data['test_images']} test images one accuracy has a binomial standard "
            f"error of up to {100 * math.sqrt(0.25 / data['test_images']):.1f} points (at 50 %); differences "
            "between seeds can be larger.",
            "",
        ]

    def _md_table(self, protocol: str, table: dict[str, dict[str, float]]) -> list[str]:
        nets = [n["name"] for n in self.nets if n["name"] in table]
        title = _PROTOCOL_TITLES[protocol].format(train=level_name(self.config.train_level) + " missing")
        lines = [f"## {title} [accuracy %]", "",
                 "| missing | " + " | ".join(nets) + " |", "|---:|" + "---:|" * len(nets)]
        for level in self.config.levels:
            name = level_name(level)
            values = [table[n].get(name) for n in nets]
            label = name + (" (trained)" if protocol == "b" and level == self.config.train_level else "")
            lines.append(f"| {label} | " + " | ".join(_bold_max(values)) + " |")
        if protocol == "b":
            spreads = self.spreads()
            lines.append("| spread (max − min) | " + " | ".join(f"{100 * spreads[n]['range']:.1f}" for n in nets)
                         + " |")
            lines.append("| std over levels | " + " | ".join(f"{100 * spreads[n]['std']:.1f}" for n in nets) + " |")
        lines.append("")
        return lines

    def _md_runs(self) -> list[str]:
        lines = ["## Trainings", "", "| net | trained at | steps | final loss | train s | test s |",
                 "|---|---:|---:|---:|---:|---:|"]
        for r in sorted(self.runs, key=lambda r: (r["train_level"], r["net"])):
            lines.append(f"| {r['net']} | {level_name(r['train_level'])} | {r['steps']} | {r['final_loss']:.3f} | "
                         f"{r['train_seconds']:.1f} | {r['test_seconds']:.1f} |")
        lines.append("")
        return lines


def _write_plot(report: ClassifyReport, path: Path) -> None:
    tables = [(p, t) for p, t in (("a", report.protocol_a), ("b", report.protocol_b)) if t]
    fig, axes = new_figure(max(1, len(tables)))
    levels = list(report.config.levels)
    xs = [100 * v for v in levels]
    for ax, (protocol, table) in zip(axes, tables):
        for net in report.nets:
            row = table.get(net["name"])
            if not row:
                continue
            ys = [100 * row[level_name(v)] for v in levels]
            ax.plot(xs, ys, marker="o" if net["kind"] == "sparse" else "s",
                    color="C1" if net["kind"] == "sparse" else "C0",
                    linestyle="--" if net["batchnorm"] else "-", label=net["name"])
        ax.axhline(100 * report.chance, color="grey", linestyle=":", linewidth=1, label="chance")
        if protocol == "b":
            ax.axvline(100 * report.config.train_level, color="grey", linewidth=0.8, alpha=0.6)
        ax.set_xlabel("pixels dropped [%]")
        ax.set_ylabel("test accuracy [%]")
        ax.set_ylim(0, 101)
        ax.set_title(_PROTOCOL_TITLES[protocol].format(train=level_name(report.config.train_level)).replace(
            "Protocol ", "") + f" ({report.data['name']})", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    save_figure(fig, path)


def _bold_max(values: list[float | None]) -> list[str]:
    shown = ["—" if v is None else f"{100 * v:.1f}" for v in values]
    present = [s for s in shown if s != "—"]
    if len(present) < 2:
        return shown
    best = max(present, key=float)
    return [f"**{s}**" if s == best else s for s in shown]

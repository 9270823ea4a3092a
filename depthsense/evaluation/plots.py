"""Report plots: metric vs measured input density and vs LiDAR beams, and the extra
heads' sparsification curves (matplotlib, Agg).

Figures are drawn on the Agg canvas directly (no pyplot, no global backend switch for
library users) and written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import numpy as np

from depthsense.evaluation.heads_report import CONFIDENCE_LABELS
from depthsense.io import atomic_output
from depthsense.evaluation.report import METRIC_TITLES, Report, metric_label

__all__ = ["write_plots", "write_sparsification_plots", "new_figure", "save_figure"]


def write_plots(report: Report, out: Path) -> list[Path]:
    """Write ``{mae,rmse}_vs_density.png`` (and ``_vs_beams.png`` when beam levels exist).

    Returns:
        The paths written (none when the report has no sparse level or metric model).
    """
    levels = [lv for lv in report.levels if lv.sparse]
    models_ = [m for m in report.models if not m.relative]
    if not levels or not models_:
        return []
    written: list[Path] = []
    measured = {lv.name: report.level_stats[lv.name]["density_measured"] for lv in levels}
    if any(measured[lv.name] and measured[lv.name] > 0 for lv in levels):
        for metric in ("mae", "rmse"):
            path = out / f"{metric}_vs_density.png"
            _plot_vs_density(report, levels, models_, measured, metric, path)
            written.append(path)
    beam_levels = [lv for lv in levels if lv.kind == "beams"]
    if beam_levels:
        for metric in ("mae", "rmse"):
            path = out / f"{metric}_vs_beams.png"
            _plot_vs_beams(report, beam_levels, models_, metric, path)
            written.append(path)
    return written


def write_sparsification_plots(heads: Mapping[str, Mapping[str, dict]], out: Path) -> list[Path]:
    """``sparsification_<level>_<model>.png`` per level and model with a confidence head:
    RMSE of the kept pixels vs the fraction removed, for every confidence and the oracle.

    Returns:
        The paths written.
    """
    written: list[Path] = []
    for level, per_model in heads.items():
        for model, s in per_model.items():
            if not s["confidence"]:
                continue
            fig, (ax,) = new_figure()
            x = [100 * f for f in s["fractions"]]
            for name, c in s["confidence"].items():
                ax.plot(x, c["curve"], marker="o", ms=3,
                        label=f"{CONFIDENCE_LABELS.get(name, name)} (AUSE {c['ause']:.0f} mm)")
            ax.plot(x, s["oracle"], "k--", label="oracle (true error order)")
            ax.set_xlabel("pixels removed, least confident first (%)")
            ax.set_ylabel("RMSE of the remaining pixels (mm)")
            ax.set_title(f"sparsification: {model}, {level}")
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            path = out / f"sparsification_{_slug(level)}_{_slug(model)}.png"
            save_figure(fig, path)
            written.append(path)
    return written


def new_figure(ncols: int = 1):
    """A report figure (7 x 4.5 in per panel, 110 dpi) with ``ncols`` side-by-side axes.

    Returns:
        ``(figure, [axes, ...])``; draw, then :func:`save_figure`.
    """
    # The Agg canvas directly, not pyplot: no global backend switch for library users.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0 * ncols, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` as PNG to ``path`` atomically, with the reports' fixed margins."""
    fig.subplots_adjust(left=0.12 / len(fig.axes), right=0.97, bottom=0.13, top=0.92,
                        wspace=0.25)  # fixed: tight_layout costs ~0.3 s a plot
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")


def _new_figure():
    fig, axes = new_figure()
    return fig, axes[0]


def _plot_vs_density(report: Report, levels, models_, measured, metric: str, path: Path) -> None:
    fig, ax = _new_figure()
    colours = [f"C{i % 10}" for i in range(len(models_))]
    kinds_seen: set[str] = set()
    for m, colour in zip(models_, colours):
        for kind, marker, style in (("uniform", "o", "-"), ("beams", "s", ":"), ("holdout", "D", "--"),
                                    ("lidar", "*", "")):
            pts = [(measured[lv.name], report.tables[lv.name][m.name].get(metric)) for lv in levels
                   if lv.kind == kind and m.name in report.tables.get(lv.name, {})]
            pts = sorted((x, y) for x, y in pts if x and x > 0 and y is not None)
            if not pts:
                continue
            kinds_seen.add(kind)
            xs, ys = zip(*pts)
            ax.plot(xs, ys, linestyle=style or "none", marker=marker, color=colour,
                    markersize=10 if kind == "lidar" else 6,
                    label=m.name if kind == "uniform" or "uniform" not in kinds_seen else None)
    # one legend entry per model (by colour) and per level kind (by marker)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for m, colour in zip(models_, colours):
        if m.name not in seen:
            seen[m.name] = ax.plot([], [], color=colour, marker="o", linestyle="-")[0]
    for kind, marker, text in (("uniform", "o", "uniform sampling"), ("beams", "s", "LiDAR beams (thinned)"),
                               ("holdout", "D", "real scan, held-out rings"), ("lidar", "*", "own sparse input")):
        if kind in kinds_seen:
            seen[text] = ax.plot([], [], color="grey", marker=marker, linestyle="none")[0]
    for lv in levels:
        if lv.kind == "beams" and measured[lv.name]:
            ax.annotate(f"{lv.beams}b", (measured[lv.name], 0.02), xycoords=("data", "axes fraction"),
                        ha="center", fontsize=7, color="grey")
    ax.set_xscale("log")
    _percent_ticks(ax, sorted({lv.density for lv in levels if lv.density} or
                              {measured[lv.name] for lv in levels if measured[lv.name]}))
    _log_y_if_wide(ax)
    ax.set_xlabel("measured input density (% of pixels with sparse depth)")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{METRIC_TITLES[metric]} vs input density ({report.config.dataset} {report.config.split})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(list(seen.values()), list(seen.keys()), fontsize=8)
    save_figure(fig, path)


def _plot_vs_beams(report: Report, levels, models_, metric: str, path: Path) -> None:
    fig, ax = _new_figure()
    for i, m in enumerate(models_):
        pts = [(lv.beams, report.tables[lv.name].get(m.name, {}).get(metric)) for lv in levels]
        pts = sorted((x, y) for x, y in pts if y is not None)
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="s", color=f"C{i % 10}", label=m.name)
    beams = sorted(lv.beams for lv in levels)
    ax.set_xscale("log", base=2)
    ax.set_xticks(beams)
    ax.set_xticklabels([str(b) for b in beams])
    _log_y_if_wide(ax)
    ax.set_xlabel("LiDAR beams (scan lines kept)")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{METRIC_TITLES[metric]} vs LiDAR beams ({report.config.dataset} {report.config.split})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _percent_ticks(ax, ticks: list[float]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{100 * x:.3g}%"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _log_y_if_wide(ax) -> None:
    # A model that fails at some density (errors 100x the others) would flatten every
    # other curve on a linear axis; a log axis keeps them all readable.
    ys = [y for line in ax.get_lines() for y in np.asarray(line.get_ydata(), dtype=float) if y > 0]
    if ys and max(ys) / min(ys) > 20:
        ax.set_yscale("log")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "x"

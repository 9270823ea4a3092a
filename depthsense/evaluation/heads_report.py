"""The evaluation report's section on the extra heads: confidence and foreground.

``Report.heads`` maps level name -> model name -> the summary of a
:class:`depthsense.evaluation.heads_metrics.HeadsAccumulator` (only models built with extra heads
appear). This module turns it into Markdown lines (the sparsification plots are in
:mod:`depthsense.evaluation.plots`); the numbers are computed in :mod:`depthsense.evaluation.heads_metrics`.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["heads_markdown", "CONFIDENCE_LABELS"]

CONFIDENCE_LABELS = {
    "conf": "conf head",
    "distance": "distance to nearest measurement (baseline)",
}
"""How each confidence source is named in tables and plots."""


def heads_markdown(heads: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """Markdown lines: a confidence table and a foreground table (empty list without heads)."""
    if not any(heads.values()):
        return []
    lines = ["## Extra heads", ""]
    conf_rows, fg_rows = [], []
    for level, per_model in heads.items():
        for model, s in per_model.items():
            oracle_cut = s.get("oracle_rmse_cut_20")
            for name, c in s["confidence"].items():
                cut = c["rmse_cut_20"]
                conf_rows.append(
                    f"| {level} | {model} | {CONFIDENCE_LABELS.get(name, name)} | {c['curve'][0]:.0f} | "
                    f"{_pct(cut)} | {_pct(oracle_cut)} | {c['ause']:.1f} |")
            if s.get("fg") or s.get("depth_in_fg"):
                fg, reg = s.get("fg") or {}, s.get("depth_in_fg") or {}
                inside, outside = reg.get("inside", {}), reg.get("outside", {})
                fg_rows.append(
                    f"| {level} | {model} | {_num(fg.get('iou'), 3)} | {_num(fg.get('f1'), 3)} | "
                    f"{_num(inside.get('mae'), 0)} | {_num(inside.get('rmse'), 0)} | "
                    f"{_num(outside.get('mae'), 0)} | {_num(outside.get('rmse'), 0)} |")
    if conf_rows:
        lines += [
            "Confidence: sparsification (remove the least confident pixels first, RMSE of the rest, per "
            "image then averaged). `RMSE` = all pixels (mm); `-20 %` = RMSE reduction after removing the "
            "20 % least confident (oracle: the 20 % largest true errors); AUSE = area between the curve "
            "and the oracle's over 0-90 % removed (mm; lower is better).",
            "",
            "| level | model | confidence | RMSE (mm) | -20 % | oracle -20 % | AUSE (mm) |",
            "|---|---|---|---:|---:|---:|---:|",
            *conf_rows,
            "",
        ]
    if fg_rows:
        lines += [
            "Foreground mask (probability > 0.5; IoU and F1 over all pixels of all images) and depth error "
            "inside / outside the true foreground (mm, per image then averaged).",
            "",
            "| level | model | IoU | F1 | MAE in fg | RMSE in fg | MAE outside | RMSE outside |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
            *fg_rows,
            "",
        ]
    return lines


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _num(v: Any, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"

"""The metrics' names, units and constants: which metrics exist, what they are measured
in, which direction is better (:mod:`depthsense.metrics`)."""

from __future__ import annotations

__all__ = ["MIN_DEPTH_M", "WHDR_SIGMA", "WHDR_NUM_PAIRS", "DEFAULT_METRICS", "RELATIVE_METRICS", "METRIC_UNITS",
           "metric_unit", "HIGHER_IS_BETTER"]

MIN_DEPTH_M = 1e-3
"""Predictions are clamped to this depth (1 mm) in the inverse and ratio metrics."""

WHDR_SIGMA = 0.03
"""Default equality threshold of ``whdr`` on the depth ratio (3 %)."""

WHDR_NUM_PAIRS = 5000
"""Default number of ordinal pairs ``whdr`` samples per image."""

DEFAULT_METRICS: tuple[str, ...] = (
    "mae", "rmse", "imae", "irmse", "absrel", "sqrel", "delta1", "delta2", "delta3",
)
"""Metric-depth metrics reported by default (KITTI's four first)."""

RELATIVE_METRICS: tuple[str, ...] = ("ssi_absrel", "ssi_rmse", "ssi_delta1", "whdr")
"""Relative-depth metrics: after per-image scale-and-shift alignment, plus WHDR."""

METRIC_UNITS: dict[str, str] = {
    "mae": "mm",
    "rmse": "mm",
    "imae": "1/km",
    "irmse": "1/km",
    "absrel": "",
    "sqrel": "m",
    "delta1": "",
    "delta2": "",
    "delta3": "",
    "ssi_absrel": "",
    "ssi_rmse": "m",
    "ssi_delta1": "",
    "whdr": "",
}
"""Unit of each metric for report headers ("" = dimensionless ratio/fraction)."""


def metric_unit(metric: str, *, metric_depth: bool = True) -> str:
    """The unit of ``metric`` ("" = none) on ground truth that is, or is not, in metres.

    ``METRIC_UNITS`` gives metres for ``ssi_rmse`` (the aligned prediction is in the
    ground truth's unit); on relative ground truth (``metric_depth=False``: a data set
    whose ``has_metric_depth`` is False, e.g. ReDWeb) the relative metrics have no unit.
    Callers read the ability from the data set's class (``dataset_class(name)``), which
    this leaf cannot import.

    Raises:
        KeyError: an unknown metric name.
    """
    if not metric_depth and metric in RELATIVE_METRICS:
        return ""
    return METRIC_UNITS[metric]

HIGHER_IS_BETTER = frozenset({"delta1", "delta2", "delta3", "ssi_delta1"})
"""Metrics where larger is better (all others: smaller is better), for model selection."""

"""Evaluation: every model at every sparsity level -> a report (md/csv/json, plots, panels).

The public names of the stage, re-exported from the modules that define them::

    from depthsense.evaluation import EvalConfig, evaluate
"""

from depthsense.config import (
    DEFAULT_BASELINES,
    DEFAULT_BEAMS,
    DEFAULT_DENSITIES,
    DEFAULT_HOLDOUTS,
    EvalConfig,
    eval_config_from_args,
    eval_parser,
)
from depthsense.evaluation.report import CSV_COLUMNS, REPORT_FORMAT, TIME_METRIC, EvalModel, Level, Report
from depthsense.evaluation.run import checkpoint_names, evaluate, write_report

__all__ = [
    "EvalConfig",
    "Level",
    "EvalModel",
    "Report",
    "evaluate",
    "write_report",
    "eval_parser",
    "eval_config_from_args",
    "checkpoint_names",
    "DEFAULT_DENSITIES",
    "DEFAULT_BEAMS",
    "DEFAULT_BASELINES",
    "DEFAULT_HOLDOUTS",
    "CSV_COLUMNS",
    "TIME_METRIC",
    "REPORT_FORMAT",
]

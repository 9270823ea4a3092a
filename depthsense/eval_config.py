"""The options of an evaluation run: :class:`EvalConfig`, its defaults and the
``depthsense-evaluate`` parser.

Every field has a default and a help string (:func:`depthsense.options.option`); the
config is saved in every report so a result can be reproduced from its own file. What a
data set can be scored on is read from its class in the :mod:`depthsense.data` registry.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from depthsense.cli import UsageError
from depthsense.options import config_from_namespace, number_list, option, options_parser, split_list

__all__ = [
    "EvalConfig",
    "eval_parser",
    "eval_config_from_args",
    "uniform_level_name",
    "DEFAULT_DENSITIES",
    "DEFAULT_BEAMS",
    "DEFAULT_BASELINES",
    "DEFAULT_HOLDOUTS",
]

DEFAULT_DENSITIES: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
"""Uniform input densities (fraction of pixels) swept by default on metric data sets."""

DEFAULT_BEAMS: tuple[int, ...] = (64, 32, 16, 8)
"""LiDAR beam counts swept by default on KITTI-layout data sets."""

DEFAULT_BASELINES: tuple[str, ...] = ("ip_basic", "nearest", "colorization")
"""Non-learned baselines evaluated by default on data sets with sparse input."""

DEFAULT_HOLDOUTS: tuple[str, ...] = ("beams:2", "beams:4")
"""Hold-outs evaluated by default on real scans (``kitti_object``)."""


@dataclass(frozen=True)
class EvalConfig:
    """Everything an evaluation run needs; saved in ``report.json``.

    ``None`` in ``baselines``, ``densities`` and ``beams`` means "the data set's default"
    (:meth:`resolved` fills it in); an empty tuple means "none".
    """

    dataset: str = option("synthetic", "data set (the registry's names, listed by --help)", metavar="NAME",
                          cli_help=lambda: _dataset_help())
    data_root: str | None = option(None, "data set root folder (synthetic without it: the cache that "
                                         "depthsense-train generates, see depthsense.config.synthetic_cache_root)",
                                   metavar="DIR")
    rgb_root: str | None = option(None, "kitti only: folder of the raw KITTI RGB frames and calibration, "
                                        "if not under --data-root", metavar="DIR")
    split: str | None = option(None, "split to evaluate (needs ground truth: not KITTI's test); default: the data "
                                     "set's own (val; kitti_object report, rgbd all)", cli_help=lambda: _split_help())
    checkpoints: tuple = option((), "checkpoint files (.pt) to evaluate; NAME=PATH sets the column name; 'pretrained' "
                                    "is the shipped model", nargs="*", metavar="[NAME=]FILE", convert=tuple)
    baselines: tuple | None = option(
        None, "non-learned baselines by name (default ip_basic nearest; none on redweb); 'none' for none",
        nargs="*", metavar="NAME", convert=lambda given: _names(given),
    )
    densities: tuple | None = option(
        None, "uniform input densities in (0,1], e.g. 0.005,0.01 (default 0.5%..50%; none on redweb); 'none' to skip",
        nargs="+", metavar="D[,D...]",
        convert=lambda given: number_list(given, float, "--densities", "0.005,0.01,0.05"),
    )
    beams: tuple | None = option(
        None, "LiDAR beam counts, e.g. 64,32,16,8 (default on kitti/synthetic; none elsewhere); 'none' to skip",
        nargs="+", metavar="B[,B...]", convert=lambda given: number_list(given, int, "--beams", "64,32,16,8"),
    )
    holdout: tuple | None = option(
        None, "real-scan hold-outs, e.g. beams:2 beams:4 points:0.5 (default beams:2 beams:4 on kitti_object; "
        "kitti_object only); 'none' to skip",
        nargs="+", metavar="SPEC", convert=lambda given: _names(given),
    )
    patterns: tuple | None = option(
        None, "sensor patterns, e.g. samples:500 uniform:5% lines:16 holes:25% keypoints:1000 (default on rgbd; "
        "beams:K on kitti/synthetic); scored at the ground-truth pixels that are not input pixels; 'none' to skip",
        nargs="+", metavar="PATTERN", convert=lambda given: _names(given),
    )
    depth_unit: str | None = option(None, "rgbd only: unit of the depth PNGs: kitti (m x 256, default), mm, tum "
                                          "(m x 5000) or a number of stored values per metre", metavar="UNIT")
    lidar: bool = option(True, "also evaluate the data set's own sparse input (level 'lidar')",
                         flag="--no-lidar", action="store_false", cli_help="skip the 'lidar' level")
    max_images: int = option(0, "images per level, evenly spaced over the split (0: all)", metavar="N")
    seed: int = option(0, "seed of the uniform sparsification (per image: [seed, index])", metavar="N")
    device: str = option("auto", "auto | cpu | cuda | cuda:N")
    precision: str = option("fp32", "precision of the checkpoints' forward: fp32, or bf16 (autocast on CPUs with "
                                    "AVX512-BF16 or AMX, as depthsense-infer --precision bf16); baselines run as "
                                    "they are", choices=("fp32", "bf16"))
    out: str = option("reports/eval", "report directory (created; files in it are replaced)", metavar="DIR")
    panels: int = option(3, "qualitative panels panel_<i>.png to write", metavar="N")
    workers: int = option(0, "DataLoader worker processes loading samples (0: main process)", metavar="N")
    progress: bool = option(True, "show progress bars on stderr (default: on; --no-progress hides them)")

    def resolved(self) -> "EvalConfig":
        """Fill per-data-set defaults, normalise the sweeps and validate every value.

        Uniform densities are sorted ascending and beam counts descending, duplicates
        removed. Nothing is read from disk here.

        Raises:
            UsageError: unknown data set or baseline, missing data root, a density outside
                (0, 1], a beam count that does not divide 64, a sweep the data set cannot
                do (beams on nyu/redweb, densities or baselines on redweb), negative counts.
        """
        from depthsense import data
        from depthsense import models

        known = data.available_datasets()
        if self.dataset not in known:
            raise UsageError(f"--dataset {self.dataset!r} is unknown; known data sets: {', '.join(known)}")
        split = self.split if self.split else data.dataset_class(self.dataset).default_split
        if not self.data_root:
            raise UsageError(f"--dataset {self.dataset} needs --data-root DIR (the data set's root folder)")
        if self.rgb_root and self.dataset != "kitti":
            raise UsageError(f"--rgb-root is for --dataset kitti (raw RGB frames); {self.dataset} has its RGB "
                             "under --data-root")
        for name in ("max_images", "seed", "panels", "workers"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        # What the data set can be scored on is declared on its class (depthsense.data.DepthDataset).
        ds_class = data.dataset_class(self.dataset)
        relative = not ds_class.has_metric_depth  # e.g. redweb
        real_scans = ds_class.is_real_scan
        lidar_layout = ds_class.has_lidar and not real_scans
        by_pattern = bool(ds_class.default_patterns)  # no input of their own: scored under sensor patterns
        if self.depth_unit is not None:
            if self.dataset != "rgbd":
                raise UsageError(f"--depth-unit is for --dataset rgbd; {self.dataset} files have a fixed unit")
            from depthsense.io import parse_depth_unit

            try:
                parse_depth_unit(self.depth_unit)
            except ValueError as exc:
                raise UsageError(f"--depth-unit: {exc}") from None

        densities = (() if relative or real_scans or by_pattern else DEFAULT_DENSITIES) if self.densities is None \
            else tuple(self.densities)
        for d in densities:
            if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 < float(d) <= 1.0:
                raise UsageError(
                    f"--densities: {d!r} is outside (0, 1]; a density is the fraction of pixels with "
                    "sparse input, e.g. 0.05 for 5%"
                )
        densities = tuple(sorted({float(d) for d in densities}))
        names = [uniform_level_name(d) for d in densities]
        if len(set(names)) != len(names):
            raise UsageError(f"--densities {list(densities)}: two densities round to the same level name {names}")

        beams = (DEFAULT_BEAMS if lidar_layout else ()) if self.beams is None else tuple(self.beams)
        for b in beams:
            if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 64 or 64 % b:
                raise UsageError(f"--beams: {b!r} is not a divisor of 64; use e.g. 64,32,16,8")
        beams = tuple(sorted(set(beams), reverse=True))

        baselines = (() if relative else DEFAULT_BASELINES) if self.baselines is None else tuple(self.baselines)
        classical = sorted(n for n in models.available_models() if not models.model_class(n).learned)
        for b in baselines:
            if b not in models.available_models():
                raise UsageError(f"--baselines: unknown baseline {b!r}; known baselines: {', '.join(classical)}")
            if b not in classical:
                raise UsageError(
                    f"--baselines: {b!r} is a learned model; evaluate a trained one with --checkpoints "
                    f"RUN_DIR/best.pt (baselines: {', '.join(classical)})"
                )
        baselines = tuple(dict.fromkeys(baselines))

        if relative and densities:
            raise UsageError(f"--dataset {self.dataset} has no metric depth to sample sparse input from; pass "
                             "--densities none")
        if real_scans and densities:
            raise UsageError(
                f"--dataset {self.dataset} has no dense ground truth to sample --densities from; score real scans "
                "with --holdout beams:2 (and pass --densities none)"
            )
        holdout = (DEFAULT_HOLDOUTS if real_scans else ()) if self.holdout is None else tuple(self.holdout)
        from depthsense.data.lidar import parse_holdout

        specs = []
        for h in holdout:
            try:
                specs.append(str(parse_holdout(h)))
            except ValueError as exc:
                raise UsageError(f"--holdout: {exc}") from None
        holdout = tuple(dict.fromkeys(specs))
        if holdout and not real_scans:
            raise UsageError(
                f"--holdout needs real LiDAR scans (--dataset {' | '.join(data.datasets_with(is_real_scan=True))}); "
                f"--dataset {self.dataset} has no laser rings"
            )
        if beams and real_scans:
            raise UsageError(f"--dataset {self.dataset}: real scans are thinned by hold-out, which also scores the "
                             f"left-out rings: pass --holdout beams:2 (or beams:4 ...) instead of --beams "
                             f"{','.join(map(str, beams))}, or --beams none")
        if beams and not lidar_layout:
            raise UsageError(f"--dataset {self.dataset} has no LiDAR scan lines to thin; pass --beams none")
        if relative and baselines:
            raise UsageError(
                f"--dataset {self.dataset} has no sparse input for the baselines {list(baselines)}; "
                "pass --baselines none"
            )
        patterns = ds_class.default_patterns if self.patterns is None else tuple(self.patterns)
        from depthsense.data.patterns import parse_pattern

        parsed = []
        for spec in patterns:
            try:
                p = parse_pattern(spec)
            except ValueError as exc:
                raise UsageError(f"--patterns: {exc}") from None
            if p.high is not None:
                raise UsageError(f"--patterns {spec}: a range is for training mixes; evaluate one value, e.g. "
                                 f"{p.kind}:{p.value:g}{'%' if p.kind in ('uniform', 'holes') else ''}")
            if p.needs_lidar and not lidar_layout:
                hint = "score real scans with --holdout beams:K" if real_scans else f"use lines:{p.value:g}"
                raise UsageError(f"--patterns {spec}: --dataset {self.dataset} has no LiDAR scan to thin; {hint}")
            if relative or real_scans:
                raise UsageError(f"--patterns: --dataset {self.dataset} has no dense metric ground truth to make "
                                 "sensor patterns from" + ("; use --holdout" if real_scans else ""))
            parsed.append(str(p))
        patterns = tuple(dict.fromkeys(parsed))
        if not self.checkpoints and not baselines:
            raise UsageError("nothing to evaluate: pass --checkpoints FILE ... and/or --baselines NAME ...")
        lidar = bool(self.lidar and ds_class.own_input is not None)
        if not (densities or beams or holdout or patterns or lidar or self.checkpoints):  # baselines need sparse input
            raise UsageError(f"no sparsity level to evaluate: {self.no_level_fix()}")
        return dataclasses.replace(
            self,
            split=split,
            checkpoints=tuple(_checkpoint_spec(c) for c in self.checkpoints),
            baselines=baselines,
            densities=densities,
            beams=beams,
            holdout=holdout,
            patterns=patterns,
            lidar=lidar,
        )

    def no_level_fix(self) -> str:
        """What gives this data set a sparsity level to evaluate (the options that apply to it)."""
        from depthsense import data

        ds_class = data.dataset_class(self.dataset)
        if ds_class.is_real_scan:
            return "pass --holdout beams:2 (real scans are scored by hold-out)"
        metric = ds_class.has_metric_depth
        fixes = ["--densities 0.05"] if metric else []
        fixes += ["--beams 64,32"] if ds_class.has_lidar else []
        fixes += ["--patterns samples:500"] if metric and ds_class.has_dense_gt else []
        options = " or ".join(fixes) or "a monocular --checkpoints FILE"
        own = ds_class.own_input is not None
        return f"pass {options}" + (", or drop --no-lidar" if not self.lidar and own else "")

    def to_dict(self) -> dict:
        """JSON-able dict of every field (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "EvalConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return cls(**kw)

    def to_argv(self) -> list[str]:
        """Command-line arguments that rebuild this config with ``eval_config_from_args``."""
        argv = ["--dataset", self.dataset, *(["--split", self.split] if self.split else []), "--out", self.out]
        if self.data_root:
            argv += ["--data-root", str(self.data_root)]
        if self.rgb_root:
            argv += ["--rgb-root", str(self.rgb_root)]
        if self.checkpoints:
            argv += ["--checkpoints", *map(str, self.checkpoints)]
        if self.baselines is not None:
            argv += ["--baselines", *(self.baselines or ("none",))]
        if self.densities is not None:
            argv += ["--densities", ",".join(repr(float(d)) for d in self.densities) or "none"]
        if self.beams is not None:
            argv += ["--beams", ",".join(str(b) for b in self.beams) or "none"]
        if self.holdout is not None:
            argv += ["--holdout", *(self.holdout or ("none",))]
        if self.patterns is not None:
            argv += ["--patterns", *(self.patterns or ("none",))]
        if self.depth_unit is not None:
            argv += ["--depth-unit", str(self.depth_unit)]
        if not self.lidar:
            argv.append("--no-lidar")
        for name in ("max_images", "seed", "panels", "workers"):
            argv += ["--" + name.replace("_", "-"), str(getattr(self, name))]
        argv += ["--device", self.device]
        if self.precision != "fp32":
            argv += ["--precision", self.precision]
        if not self.progress:
            argv.append("--no-progress")
        return argv


def eval_parser() -> argparse.ArgumentParser:
    """The ``depthsense-evaluate`` parser, generated from :class:`EvalConfig`'s fields; its
    errors raise :class:`UsageError` (one line)."""
    return options_parser(
        EvalConfig,
        prog="depthsense-evaluate",
        description="Evaluate checkpoints and baselines at every sparsity level; write a report "
        "(report.md/csv/json, plots, panels) into --out.",
        defaults_in_help=True,
    )


def eval_config_from_args(argv: list[str] | None) -> EvalConfig:
    """Parse ``depthsense-evaluate`` arguments into an (unresolved) :class:`EvalConfig`.

    Raises:
        UsageError: an argument argparse rejects, or a sweep value that is not a number.
    """
    return config_from_namespace(EvalConfig, vars(eval_parser().parse_args(argv)))


def uniform_level_name(density: float) -> str:
    """The name of a uniform evaluation level: ``0.05`` -> ``"5%"``."""
    return f"{100 * density:g}%"


def _checkpoint_spec(spec: Any) -> str:
    """``pretrained`` (or ``NAME=pretrained``) -> the shipped model's file, as ``train --init`` takes it."""
    text = str(spec)
    name, _, path = text.rpartition("=")
    if path != "pretrained" or Path(text).exists():
        return text
    from depthsense.checkpoint import PRETRAINED_CHECKPOINT

    if not PRETRAINED_CHECKPOINT.is_file():
        raise UsageError(f"--checkpoints {text}: no shipped model in this installation ({PRETRAINED_CHECKPOINT}); "
                         "build it with `make pretrained`")
    return f"{name or 'pretrained'}={PRETRAINED_CHECKPOINT}"


def _names(given: Sequence[str]) -> tuple[str, ...]:
    """Names given space- or comma-separated; ``none`` stands for no name."""
    return tuple(name for name in split_list(given) if name.lower() != "none")


def _dataset_help() -> str:
    from depthsense import data

    return f"data set: {' | '.join(data.available_datasets())}"


def _split_help() -> str:
    from depthsense import data

    splits = ", ".join(f"{n} {data.dataset_class(n).default_split}" for n in data.available_datasets())
    return f"split to evaluate (needs ground truth: not KITTI's test; default: the data set's own: {splits})"

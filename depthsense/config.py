"""Run configurations (frozen dataclasses): ``TrainConfig``, ``EvalConfig`` and their parsers.

Every field has a default and a help string (``field(metadata={"help": ...})``); the
argparse parsers of ``tools/`` are generated from these, and the config is stored in
every checkpoint and report so a result can be reproduced from its own file. Model
options (``--model-arg``) are checked against the model's constructor here.

The command-line plumbing (:mod:`depthsense.cli`: ``run_cli``, ``UsageError``, parsers,
argument types) and the output guards and cache location (:mod:`depthsense.outputs`) live
in their own modules; their names are re-exported here, so ``from depthsense.config
import run_cli`` keeps working.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Sequence

from depthsense.cli import (  # re-exported: CLIs have always imported them from here
    DefaultsHelpFormatter,
    OneLineParser,
    UsageError,
    parse_crop,
    parse_kv,
    parse_size,
    print_note,
    report_problems,
    resolve_device,
    run_cli,
    warnings_as_notes,
    written_so_far,
)
from depthsense.outputs import (  # re-exported, as above
    cache_dir,
    check_output_dir,
    make_output_dir,
    refuse_output_inside,
    refuse_overwrite,
    refuse_shared_outputs,
    synthetic_cache_root,
)

__all__ = [
    "TrainConfig",
    "RUN_SETTINGS",
    "train_parser",
    "train_config_from_args",
    "parse_train_args",
    "resume_config",
    "resume_command",
    "EvalConfig",
    "eval_parser",
    "eval_config_from_args",
    "uniform_level_name",
    "DEFAULT_DENSITIES",
    "DEFAULT_BEAMS",
    "DEFAULT_BASELINES",
    "DEFAULT_HOLDOUTS",
    "COMPLETION_DATASETS",
    "OneLineParser",
    "DefaultsHelpFormatter",
    "resolve_device",
    "parse_crop",
    "parse_size",
    "parse_kv",
    "build_model_from_options",
    "cache_dir",
    "synthetic_cache_root",
    "run_cli",
    "print_note",
    "warnings_as_notes",
    "UsageError",
    "jsonable",
    "check_output_dir",
    "make_output_dir",
    "refuse_overwrite",
    "refuse_shared_outputs",
    "refuse_output_inside",
    "report_problems",
    "written_so_far",
]

COMPLETION_DATASETS = ("kitti", "synthetic", "nyu", "kitti_object")
"""Data sets with metric depth: they train completion models; ``redweb`` trains monocular."""


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved inside every checkpoint."""

    dataset: str = _f("synthetic", "data set: kitti | kitti_object | redweb | nyu | synthetic")
    data_root: str | None = _f(None, "data set root; synthetic without it generates a small set into the cache "
                                     "($DEPTHSENSE_CACHE or ~/.cache/depthsense; the path is printed)")
    rgb_root: str | None = _f(None, "kitti only: folder of the raw KITTI RGB frames and calibration, if not under --data-root")
    model: str | None = _f(None, "model name (default: sparse_unet for metric data sets, monocular for redweb)")
    model_args: dict = _f({}, "model options as key=value (repeatable), e.g. width=16 rgb=True")
    init: str | None = _f(
        None, "start from the weights of this checkpoint ('pretrained': the shipped model); its model and "
        "options are the defaults, --model-arg may add heads (new layers start fresh)"
    )
    loss: str | None = _f(None, "loss spec name:weight,... (default per data set)")
    density: float | None = _f(None, "sparse input = uniform sample of GT with this fraction of pixels "
                                     "(refused if it gives < 1 point per training sample)")
    beams: int | None = _f(None, "sparse input = LiDAR thinned to this many beams (64/32/16/8)")
    holdout: str | None = _f(
        None, "kitti_object (real scans, self-supervised): input = the scan without the held-out rings/points, "
        "loss on them; beams:K (ring phase drawn per sample and epoch) or points:F"
    )
    epochs: int = _f(10, "epochs to train (used when --steps is 0)")
    steps: int = _f(0, "optimiser steps to train (0: use --epochs)")
    batch_size: int = _f(4, "samples per step and process")
    lr: float = _f(1e-3, "peak learning rate (Adam, warm-up then cosine decay)")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    crop: tuple | None = _f(None, "training crop HxW (default per data set; 'none' for full frames)")
    workers: int = _f(2, "DataLoader worker processes")
    cache: bool = _f(False, "keep decoded frames in memory (small data sets, e.g. synthetic)")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N")
    amp: bool = _f(False, "mixed precision: bf16 autocast on CPU, fp16 + GradScaler on CUDA")
    out: str = _f("runs/train", "run directory: TensorBoard logs and checkpoints")
    resume: bool = _f(False, "continue from RUN_DIR/last.pt with the run's stored settings")
    override: bool = _f(False, "with --resume: let the options given now replace the run's stored ones")
    seed: int = _f(0, "seed of data order, augmentation and initialisation")
    log_every: int = _f(10, "steps between TensorBoard scalar logs")
    val_every: int = _f(0, "steps between validations (0: at the end of every epoch)")
    ckpt_every: int = _f(50, "steps between last.pt checkpoints (and at the end)")
    val_samples: int = _f(8, "validation images per validation (0: all)")
    synthetic_frames: int = _f(48, "frames generated for --dataset synthetic without --data-root")
    synthetic_size: tuple = _f((352, 1216), "HxW of generated synthetic frames")
    max_depth: float = _f(80.0, "depth that scales losses such as SSIM (m)")
    grad_clip: float = _f(0.0, "clip gradient norm to this value (0: off)")
    progress: bool = _f(True, "show progress bars on stderr (default: on; --no-progress hides them)")

    def resolved(self) -> "TrainConfig":
        """Fill per-data-set defaults (model, loss, crop) and validate values.

        Raises:
            UsageError: a value that cannot work (names the option and the fix).
        """
        completion = self.dataset in COMPLETION_DATASETS
        model = self.model or ("sparse_unet" if completion else "monocular")
        if self.loss is not None and not self.loss.strip():
            raise UsageError(f"--loss {self.loss!r} is empty; pass terms such as l1:1.0,ssim:0.2, or drop --loss "
                             "for the data set's default")
        # Held-out rings are lines of pixels: window losses (SSIM, edges) have nothing to compare there.
        default_loss = "l1:1.0,l2:0.1" if self.dataset == "kitti_object" else "l1:1.0,l2:0.1,ssim:0.2,edge:0.1"
        loss = self.loss if self.loss is not None else (default_loss if completion else "rank:1.0,ssi:0.5")
        crop = self.crop
        if crop is None:
            from depthsense import data

            crop = data.dataset_class(self.dataset).default_crop if self.dataset in data.available_datasets() else None
        elif crop == ():
            crop = None
        for name in ("batch_size",):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("epochs", "steps", "workers", "log_every", "val_every", "ckpt_every", "val_samples"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.steps == 0 and self.epochs == 0:
            raise UsageError("--steps 0 and --epochs 0: nothing to train; pass --steps N or --epochs N (N >= 1)")
        if self.rgb_root is not None and self.dataset != "kitti":
            raise UsageError(f"--rgb-root is for --dataset kitti (raw RGB frames); {self.dataset} has its RGB "
                             "under --data-root")
        for name, low, strict, meaning in _TRAIN_RANGES:
            value = getattr(self, name)
            if not (math.isfinite(value) and (value > low if strict else value >= low)):
                raise UsageError(f"--{name.replace('_', '-')} must be {'>' if strict else '>='} {low:g}, got {value} "
                                 f"({meaning})")
        if self.seed < 0:
            raise UsageError(f"--seed must be >= 0, got {self.seed} (it seeds numpy, which refuses negative seeds)")
        if self.density is not None and not 0 < self.density <= 1:
            raise UsageError(f"--density must be in (0, 1], got {self.density}")
        if self.beams is not None and self.beams not in (64, 32, 16, 8, 4, 2, 1):
            raise UsageError(f"--beams must divide 64 (64/32/16/8...), got {self.beams}")
        if self.holdout is not None and self.dataset != "kitti_object":
            raise UsageError(f"--holdout needs real scans (--dataset kitti_object); --dataset {self.dataset} has none")
        if self.dataset == "kitti_object":
            from depthsense.data.lidar import parse_holdout

            if self.holdout is None:
                raise UsageError(
                    "--dataset kitti_object has no dense ground truth: train self-supervised with --holdout beams:2 "
                    "(input = even rings, loss on the odd ones)"
                )
            try:
                parse_holdout(self.holdout)
            except ValueError as exc:
                raise UsageError(f"--holdout: {exc}") from None
            if self.density is not None:
                raise UsageError("--density samples dense ground truth; kitti_object has none (use --holdout)")
        if self.synthetic_frames < 4:
            raise UsageError(f"--synthetic-frames must be >= 4 (train and val both need frames), got {self.synthetic_frames}")
        return dataclasses.replace(self, model=model, loss=loss, crop=crop)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("crop", "synthetic_size"):
            if isinstance(kw.get(k), list):
                kw[k] = tuple(kw[k])
        return cls(**kw)


_TRAIN_RANGES: tuple[tuple[str, float, bool, str], ...] = (
    ("lr", 0.0, True, "the peak learning rate"),
    ("weight_decay", 0.0, False, "0 is off; a negative decay grows the weights"),
    ("grad_clip", 0.0, False, "0 is off; a negative norm cannot be clipped to"),
    ("max_depth", 0.0, True, "metres that scale the depth losses"),
)
"""Float options of :class:`TrainConfig` and their valid range: (name, bound, strict, why)."""


RUN_SETTINGS: tuple[str, ...] = (
    "dataset", "data_root", "rgb_root", "model", "model_args", "init", "loss", "density", "beams", "epochs", "steps",
    "batch_size", "lr", "weight_decay", "crop", "seed", "synthetic_frames", "synthetic_size", "max_depth",
    "grad_clip", "amp",
)
"""Fields of :class:`TrainConfig` that define *what* a run trains. ``--resume`` restores
them from the checkpoint; the others (``out``, ``workers``, ``device``, logging and
checkpoint intervals, ``progress``, ``cache``) only say how this process runs."""


def train_parser(defaults: bool = True) -> argparse.ArgumentParser:
    """The ``depthsense-train`` parser, generated from :class:`TrainConfig`'s fields.

    Args:
        defaults: False gives every option the default ``argparse.SUPPRESS``, so the
            parsed namespace holds only the options given on the command line.
    """
    p = OneLineParser(
        prog="depthsense-train",
        description="Train a depth-completion (kitti/nyu/synthetic) or monocular (redweb) model.",
        formatter_class=DefaultsHelpFormatter,
    )
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_ = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.name == "model_args":
            default = None
        if not defaults:
            default = argparse.SUPPRESS
        if f.name == "dataset":
            p.add_argument(flag, default=default, choices=("kitti", "kitti_object", "redweb", "nyu", "synthetic"),
                           help=help_)
        elif f.name == "progress":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_)
        elif f.type in ("bool", bool):
            p.add_argument(flag, action="store_true", default=default, help=help_)
        elif f.name == "model_args":
            p.add_argument("--model-arg", dest="model_args", action="append", metavar="KEY=VALUE", default=default,
                           help=help_)
        elif f.name in ("crop", "synthetic_size"):
            if f.default:  # shown as HxW; the parsed default stays None (= the dataclass default)
                help_ += f" (default: {'x'.join(str(v) for v in f.default)})"
            p.add_argument(flag, type=parse_crop, default=None if defaults else default, metavar="HxW", help=help_)
        else:
            kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(str(f.type), str)
            p.add_argument(flag, type=kind, default=default, help=help_)
    return p


def train_config_from_args(argv: list[str] | None) -> TrainConfig:
    """Parse CLI arguments into a :class:`TrainConfig` (not yet resolved)."""
    return parse_train_args(argv)[0]


def parse_train_args(argv: list[str] | None) -> tuple[TrainConfig, frozenset[str]]:
    """Parse ``depthsense-train`` arguments.

    Returns:
        ``(config, explicit)``: the (unresolved) :class:`TrainConfig` and the names of the
        fields given on the command line (what ``--resume`` must not silently replace).
    Raises:
        UsageError: an argument argparse rejects (one line).
    """
    ns = vars(train_parser().parse_args(argv))
    explicit = frozenset(vars(train_parser(defaults=False).parse_args(argv)))
    ns["model_args"] = parse_kv(ns.get("model_args"))
    if ns.get("synthetic_size") in (None, ()):
        ns.pop("synthetic_size", None)
    return TrainConfig(**ns), explicit


def resume_config(given: TrainConfig, stored: dict, explicit: Collection[str] | None = None,
                  source: str = "the checkpoint") -> tuple[TrainConfig, list[str]]:
    """The configuration a resumed run continues with.

    The run's stored :data:`RUN_SETTINGS` win over the defaults of ``given``; an option
    in ``explicit`` whose value contradicts the stored one is an error unless
    ``given.override`` is set, in which case the given value is used and a note says so.

    Args:
        given: the configuration of this invocation (resolved or not).
        stored: ``train_cfg`` of the checkpoint (a dict, as saved).
        explicit: names of the fields the user set; ``None`` means every field whose
            value differs from :class:`TrainConfig`'s default (for library callers).
        source: the checkpoint path, for messages.
    Returns:
        ``(config, notes)``: the resolved configuration and one line per overridden setting.
    Raises:
        UsageError: contradicting options without ``override`` (every one named with
            both values), or an invalid merged configuration.
    """
    given_r = given.resolved()
    base = TrainConfig.from_dict(stored).resolved()
    if explicit is None:
        default = TrainConfig()
        explicit = {f for f in RUN_SETTINGS if getattr(given, f) != getattr(default, f)}
    conflicts, chosen = [], {}
    for name in RUN_SETTINGS:
        old, new = getattr(base, name), getattr(given_r, name)
        if name in explicit and _setting_key(name, new) != _setting_key(name, old):
            conflicts.append((name, new, old))
            if given.override:
                chosen[name] = new
                continue
        chosen[name] = old
    if conflicts and not given.override:
        what = "; ".join(f"{_flag(n)} {_show(n, new)} but the run was trained with {_show(n, old)}"
                         for n, new, old in conflicts)
        raise UsageError(f"--resume: {what} ({source}). Drop the option(s) to continue the run as it was, "
                         "or pass --override to change them")
    notes = [f"--override: {_flag(n)} {_show(n, old)} -> {_show(n, new)}" for n, new, old in conflicts]
    return dataclasses.replace(given_r, **chosen).resolved(), notes


def resume_command(cfg: TrainConfig, prog: str = "depthsense-train") -> str:
    """The command that continues ``cfg``'s run: ``--out`` and ``--resume`` (the run's
    settings come from its ``last.pt``) plus the options of how this process ran
    (workers, device, intervals) that differ from their defaults."""
    import shlex

    default = TrainConfig()
    parts = [prog, "--out", shlex.quote(str(cfg.out)), "--resume"]
    for f in dataclasses.fields(TrainConfig):
        if f.name in RUN_SETTINGS or f.name in ("out", "resume", "override"):
            continue
        value = getattr(cfg, f.name)
        if value == getattr(default, f.name):
            continue
        if isinstance(value, bool):
            parts.append(_flag(f.name) if value else ("--no-progress" if f.name == "progress" else ""))
        else:
            parts += [_flag(f.name), shlex.quote(str(value))]
    return " ".join(p for p in parts if p)


def _flag(name: str) -> str:
    return "--model-arg" if name == "model_args" else "--" + name.replace("_", "-")


def _show(name: str, value: Any) -> str:
    if name in ("crop", "synthetic_size") and value:
        return "x".join(str(v) for v in value)
    if name == "model_args":
        return " ".join(f"{k}={v}" for k, v in sorted(dict(value).items())) or "(none)"
    return "none" if value is None or value == () else str(value)


def _setting_key(name: str, value: Any) -> Any:
    """A comparable form: paths resolved, tuples and lists alike."""
    if name in ("data_root", "rgb_root", "init") and value and value != "pretrained":
        return os.path.realpath(value)
    if name == "loss" and value:
        from depthsense.losses import parse_loss_spec

        try:
            return sorted(parse_loss_spec(value).items())  # "l1" == "l1:1.0"
        except (ValueError, KeyError):
            return value
    if isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, dict):
        return sorted((k, _setting_key(k, v)) for k, v in value.items())
    return value


# --------------------------------------------------------------------------- evaluation

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

    dataset: str = _f("synthetic", "data set (the registry's names, listed by --help)")
    data_root: str | None = _f(None, "data set root folder (synthetic without it: the cache that "
                                         "depthsense-train generates, see depthsense.config.synthetic_cache_root)")
    rgb_root: str | None = _f(None, "kitti only: folder of the raw KITTI RGB frames and calibration, "
                                        "if not under --data-root")
    split: str | None = _f(None, "split to evaluate (needs ground truth: not KITTI's test); default: the data "
                                 "set's own (val; kitti_object report, rgbd all)")
    checkpoints: tuple = _f((), "checkpoint files (.pt) to evaluate; NAME=PATH sets the column name; 'pretrained' "
                                "is the shipped model")
    baselines: tuple | None = _f(
        None, "non-learned baselines by name (default ip_basic nearest; none on redweb); 'none' for none"
    )
    densities: tuple | None = _f(
        None, "uniform input densities in (0,1], e.g. 0.005,0.01 (default 0.5%..50%; none on redweb); 'none' to skip"
    )
    beams: tuple | None = _f(
        None, "LiDAR beam counts, e.g. 64,32,16,8 (default on kitti/synthetic; none elsewhere); 'none' to skip"
    )
    holdout: tuple | None = _f(
        None, "real-scan hold-outs, e.g. beams:2 beams:4 points:0.5 (default beams:2 beams:4 on kitti_object; "
        "kitti_object only); 'none' to skip"
    )
    patterns: tuple | None = _f(
        None, "sensor patterns, e.g. samples:500 uniform:5% lines:16 holes:25% keypoints:1000 (default on rgbd; "
        "beams:K on kitti/synthetic); scored at the ground-truth pixels that are not input pixels; 'none' to skip"
    )
    depth_unit: str | None = _f(None, "rgbd only: unit of the depth PNGs: kitti (m x 256, default), mm, tum "
                                      "(m x 5000) or a number of stored values per metre")
    lidar: bool = _f(True, "also evaluate the data set's own sparse input (level 'lidar')")
    max_images: int = _f(0, "images per level, evenly spaced over the split (0: all)")
    seed: int = _f(0, "seed of the uniform sparsification (per image: [seed, index])")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N")
    out: str = _f("reports/eval", "report directory (created; files in it are replaced)")
    panels: int = _f(3, "qualitative panels panel_<i>.png to write")
    workers: int = _f(0, "DataLoader worker processes loading samples (0: main process)")
    progress: bool = _f(True, "show progress bars on stderr (default: on; --no-progress hides them)")

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
        redweb = not ds_class.has_metric_depth
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

        densities = (() if redweb or real_scans or by_pattern else DEFAULT_DENSITIES) if self.densities is None \
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

        baselines = (() if redweb else DEFAULT_BASELINES) if self.baselines is None else tuple(self.baselines)
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

        if redweb and densities:
            raise UsageError("--dataset redweb has no metric depth to sample sparse input from; pass --densities none")
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
                f"--holdout needs real LiDAR scans (--dataset {' | '.join(_real_scan_datasets())}); "
                f"--dataset {self.dataset} has no laser rings"
            )
        if beams and real_scans:
            raise UsageError(f"--dataset {self.dataset}: real scans are thinned by hold-out, which also scores the "
                             f"left-out rings: pass --holdout beams:2 (or beams:4 ...) instead of --beams "
                             f"{','.join(map(str, beams))}, or --beams none")
        if beams and not lidar_layout:
            raise UsageError(f"--dataset {self.dataset} has no LiDAR scan lines to thin; pass --beams none")
        if redweb and baselines:
            raise UsageError(
                f"--dataset redweb has no sparse input for the baselines {list(baselines)}; pass --baselines none"
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
            if redweb or real_scans:
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
        if not self.progress:
            argv.append("--no-progress")
        return argv


def eval_parser() -> argparse.ArgumentParser:
    """The ``depthsense-evaluate`` parser; its errors raise :class:`UsageError` (one line)."""
    # argparse %-formats help strings: a literal "%" must be doubled
    helps = {f.name: f.metadata.get("help", "").replace("%", "%%") for f in dataclasses.fields(EvalConfig)}
    for f in dataclasses.fields(EvalConfig):
        if isinstance(f.default, (str, int)) and not isinstance(f.default, bool):
            helps[f.name] += f" (default: {f.default})"
    p = OneLineParser(
        prog="depthsense-evaluate",
        description="Evaluate checkpoints and baselines at every sparsity level; write a report "
        "(report.md/csv/json, plots, panels) into --out.",
    )
    from depthsense import data

    known = data.available_datasets()
    p.add_argument("--dataset", default="synthetic", metavar="NAME",
                   help=f"data set: {' | '.join(known)} (default: synthetic)")
    p.add_argument("--data-root", default=None, metavar="DIR", help=helps["data_root"])
    p.add_argument("--rgb-root", default=None, metavar="DIR", help=helps["rgb_root"])
    splits = ", ".join(f"{n} {data.dataset_class(n).default_split}" for n in known)
    p.add_argument("--split", default=None, help=f"split to evaluate (needs ground truth: not KITTI's test; "
                                                 f"default: the data set's own: {splits})")
    p.add_argument("--checkpoints", nargs="*", default=[], metavar="[NAME=]FILE", help=helps["checkpoints"])
    p.add_argument("--baselines", nargs="*", default=None, metavar="NAME", help=helps["baselines"])
    p.add_argument("--densities", nargs="+", default=None, metavar="D[,D...]", help=helps["densities"])
    p.add_argument("--beams", nargs="+", default=None, metavar="B[,B...]", help=helps["beams"])
    p.add_argument("--holdout", nargs="+", default=None, metavar="SPEC", help=helps["holdout"])
    p.add_argument("--patterns", nargs="+", default=None, metavar="PATTERN", help=helps["patterns"])
    p.add_argument("--depth-unit", default=None, metavar="UNIT", help=helps["depth_unit"])
    p.add_argument("--no-lidar", dest="lidar", action="store_false", help="skip the 'lidar' level")
    for name in ("max_images", "seed", "panels", "workers"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(EvalConfig, name), metavar="N",
                       help=helps[name])
    p.add_argument("--device", default="auto", help=helps["device"])
    p.add_argument("--out", default="reports/eval", metavar="DIR", help=helps["out"])
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help=helps["progress"])
    return p


def eval_config_from_args(argv: list[str] | None) -> EvalConfig:
    """Parse ``depthsense-evaluate`` arguments into an (unresolved) :class:`EvalConfig`.

    Raises:
        UsageError: an argument argparse rejects, or a sweep value that is not a number.
    """
    ns = vars(eval_parser().parse_args(argv))
    ns["checkpoints"] = tuple(ns["checkpoints"] or ())
    if ns["baselines"] is not None:
        ns["baselines"] = tuple(b for b in _split_list(ns["baselines"]) if b.lower() != "none")
    if ns["densities"] is not None:
        ns["densities"] = _parse_numbers(ns["densities"], float, "--densities", "0.005,0.01,0.05")
    if ns["beams"] is not None:
        ns["beams"] = _parse_numbers(ns["beams"], int, "--beams", "64,32,16,8")
    if ns["holdout"] is not None:
        ns["holdout"] = tuple(h for h in _split_list(ns["holdout"]) if h.lower() != "none")
    if ns["patterns"] is not None:
        ns["patterns"] = tuple(h for h in _split_list(ns["patterns"]) if h.lower() != "none")
    return EvalConfig(**ns)


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


def _split_list(values: Sequence[str]) -> list[str]:
    return [v.strip() for item in values for v in str(item).split(",") if v.strip()]


def _parse_numbers(values: Sequence[str], kind: type, flag: str, example: str) -> tuple:
    items = _split_list(values)
    if len(items) == 1 and items[0].lower() == "none":
        return ()
    out = []
    for item in items:
        try:
            out.append(kind(item))
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise UsageError(f"{flag}: {item!r} is not {what}; expected e.g. {flag} {example} (or none)") from None
    return tuple(out)


def _real_scan_datasets() -> list[str]:
    from depthsense import data

    return [n for n in data.available_datasets() if data.dataset_class(n).is_real_scan]


def uniform_level_name(density: float) -> str:
    """The name of a uniform evaluation level: ``0.05`` -> ``"5%"``."""
    return f"{100 * density:g}%"


def build_model_from_options(name: str, options: dict | None = None, option: str = "--model-arg"):
    """``depthsense.models.build_model(name, **options)`` with user-facing errors.

    Option values are checked against the types of the constructor's defaults before
    the model is built (``width=abc`` is "expected an integer", not a comparison error
    from inside the constructor), and constructor errors become one line naming the
    option.

    Raises:
        UsageError: an unknown option, a value of the wrong type, or a value the model
            refuses (``ValueError``/``TypeError``/``RuntimeError`` from its constructor,
            which only ever sees these user-given values).
        KeyError: unknown model name (the message lists the known names).
    """
    import inspect

    from depthsense import models

    options = dict(options or {})
    params = inspect.signature(models.model_class(name).__init__).parameters  # KeyError lists the known names
    given = " ".join(f"{k}={v}" for k, v in options.items())
    for key, value in options.items():
        param = params.get(key)
        if param is None or key == "self":
            continue  # build_model names the unknown option and lists the known ones
        expected = _option_type(param.default)
        if expected is not None and not _fits(value, expected):
            raise UsageError(
                f"{option} {key}={value!r}: {name} expects {_TYPE_WORDS[expected]} for {key} "
                f"(default {param.default!r})"
            )
    try:
        return models.build_model(name, **options)
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. torch: "negative dimension -3"
        raise UsageError(f"{option} {given}: {name} cannot be built: {str(exc).strip().splitlines()[0]}") from None


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _option_type(default: Any) -> type | None:
    for kind in (bool, int, float, str):  # bool first: it is an int too
        if isinstance(default, kind):
            return kind
    return None


def _fits(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def jsonable(x: Any) -> Any:
    """Plain JSON-able data from configs and results: tuples to lists, tensors and numpy
    scalars to numbers (large tensors to a short description), non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if _is_tensor(x):
        return jsonable(x.tolist()) if x.numel() <= 64 else f"<tensor {tuple(x.shape)}>"
    if _is_numpy_scalar(x):
        return jsonable(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "numel")


def _is_numpy_scalar(x: Any) -> bool:
    return type(x).__module__ == "numpy" and hasattr(x, "item") and getattr(x, "ndim", 1) == 0

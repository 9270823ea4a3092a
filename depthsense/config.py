"""The options of a training run: :class:`TrainConfig`, its parser and ``--resume``.

Every field has a default and a help string (:func:`depthsense.options.option`); the
``depthsense-train`` parser is generated from them, and the config is stored in every
checkpoint so a run can be reproduced (and resumed, :func:`resume_config`) from its own
file.

``depthsense.config`` is also where the CLIs import their options from: the evaluation
and inference options (:mod:`depthsense.eval_config`, :mod:`depthsense.infer_config`), the
options machinery (:mod:`depthsense.options`), the command-line plumbing
(:mod:`depthsense.cli`: ``run_cli``, ``UsageError``, parsers, argument types) and the
output guards and cache location (:mod:`depthsense.outputs`) live in their own modules;
their names are re-exported here, so ``from depthsense.config import run_cli`` keeps
working.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Collection

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
from depthsense.eval_config import (  # re-exported, as above
    DEFAULT_BASELINES,
    DEFAULT_BEAMS,
    DEFAULT_DENSITIES,
    DEFAULT_HOLDOUTS,
    EvalConfig,
    eval_config_from_args,
    eval_parser,
    uniform_level_name,
)
from depthsense.infer_config import InferConfig, infer_config_from_args, infer_parser  # re-exported, as above
from depthsense.options import (  # re-exported, as above (config_from_namespace and options_parser are used here)
    build_model_from_options,
    config_from_namespace,
    jsonable,
    option,
    options_parser,
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
    "InferConfig",
    "infer_parser",
    "infer_config_from_args",
    "COMPLETION_DATASETS",
    "completion_datasets",
    "training_datasets",
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


def training_datasets() -> list[str]:
    """The data sets ``depthsense-train`` takes (their class's ``can_train``), from the registry."""
    from depthsense import data

    return data.datasets_with(can_train=True)


def completion_datasets() -> tuple[str, ...]:
    """The training data sets with metric depth: they train completion models (the others,
    relative depth such as ``redweb``, train monocular ones)."""
    from depthsense import data

    return tuple(data.datasets_with(can_train=True, has_metric_depth=True))


def __getattr__(name: str) -> Any:
    # COMPLETION_DATASETS, as the engine imports it, is read from the data-set registry when
    # it is used: importing depthsense.config does not import the data sets (and torch).
    if name == "COMPLETION_DATASETS":
        return completion_datasets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved inside every checkpoint."""

    dataset: str = option("synthetic", "data set (the registry's names that can train, listed by --help)",
                          choices=training_datasets, cli_help=lambda: "data set: " + " | ".join(training_datasets()))
    data_root: str | None = option(None, "data set root; synthetic without it generates a small set into the cache "
                                         "($DEPTHSENSE_CACHE or ~/.cache/depthsense; the path is printed)")
    rgb_root: str | None = option(None, "kitti only: folder of the raw KITTI RGB frames and calibration, if not under --data-root")
    model: str | None = option(None, "model name (default: sparse_unet for metric data sets, monocular for redweb)")
    model_args: dict = option({}, "model options as key=value (repeatable), e.g. width=16 rgb=True",
                              flag="--model-arg", action="append", metavar="KEY=VALUE", parse_default=None,
                              convert=parse_kv)
    init: str | None = option(
        None, "start from the weights of this checkpoint ('pretrained': the shipped model); its model and "
        "options are the defaults, --model-arg may add heads (new layers start fresh)"
    )
    loss: str | None = option(None, "loss spec name:weight,... (default per data set)")
    density: float | None = option(None, "sparse input = uniform sample of GT with this fraction of pixels "
                                         "(refused if it gives < 1 point per training sample)")
    beams: int | None = option(None, "sparse input = LiDAR thinned to this many beams (64/32/16/8)")
    holdout: str | None = option(
        None, "kitti_object (real scans, self-supervised): input = the scan without the held-out rings/points, "
        "loss on them; beams:K (ring phase drawn per sample and epoch) or points:F"
    )
    epochs: int = option(10, "epochs to train (used when --steps is 0)")
    steps: int = option(0, "optimiser steps to train (0: use --epochs)")
    batch_size: int = option(4, "samples per step and process")
    lr: float = option(1e-3, "peak learning rate (Adam, warm-up then cosine decay)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    crop: tuple | None = option(None, "training crop HxW (default per data set; 'none' for full frames)",
                                type=parse_crop, metavar="HxW")
    workers: int = option(2, "DataLoader worker processes")
    cache: bool = option(False, "keep decoded frames in memory (small data sets, e.g. synthetic)")
    device: str = option("auto", "auto | cpu | cuda | cuda:N")
    amp: bool = option(False, "mixed precision: bf16 autocast on CPU, fp16 + GradScaler on CUDA")
    out: str = option("runs/train", "run directory: TensorBoard logs and checkpoints")
    resume: bool = option(False, "continue from RUN_DIR/last.pt with the run's stored settings")
    override: bool = option(False, "with --resume: let the options given now replace the run's stored ones")
    seed: int = option(0, "seed of data order, augmentation and initialisation")
    log_every: int = option(10, "steps between TensorBoard scalar logs")
    val_every: int = option(0, "steps between validations (0: at the end of every epoch)")
    ckpt_every: int = option(50, "steps between last.pt checkpoints (and at the end)")
    val_samples: int = option(8, "validation images per validation (0: all)")
    synthetic_frames: int = option(48, "frames generated for --dataset synthetic without --data-root")
    synthetic_size: tuple = option((352, 1216), "HxW of generated synthetic frames", type=parse_crop, metavar="HxW",
                                   parse_default=None, show=lambda size: "x".join(map(str, size)),
                                   convert=lambda size: size or None)  # "none": the default
    max_depth: float = option(80.0, "depth that scales losses such as SSIM (m)")
    grad_clip: float = option(0.0, "clip gradient norm to this value (0: off)")
    progress: bool = option(True, "show progress bars on stderr (default: on; --no-progress hides them)")

    def resolved(self) -> "TrainConfig":
        """Fill per-data-set defaults (model, loss, crop) and validate values.

        Raises:
            UsageError: a value that cannot work (names the option and the fix).
        """
        from depthsense import data

        completion = self.dataset in completion_datasets()
        # What the data set can do is declared on its class (depthsense.data.DepthDataset).
        real_scans = self.dataset in data.datasets_with(is_real_scan=True)
        model = self.model or ("sparse_unet" if completion else "monocular")
        if self.loss is not None and not self.loss.strip():
            raise UsageError(f"--loss {self.loss!r} is empty; pass terms such as l1:1.0,ssim:0.2, or drop --loss "
                             "for the data set's default")
        # Held-out rings are lines of pixels: window losses (SSIM, edges) have nothing to compare there.
        default_loss = "l1:1.0,l2:0.1" if real_scans else "l1:1.0,l2:0.1,ssim:0.2,edge:0.1"
        loss = self.loss if self.loss is not None else (default_loss if completion else "rank:1.0,ssi:0.5")
        crop = self.crop
        if crop is None:
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
        if self.holdout is not None and not real_scans:
            real = " | ".join(data.datasets_with(can_train=True, is_real_scan=True))
            raise UsageError(f"--holdout needs real scans (--dataset {real}); --dataset {self.dataset} has none")
        if real_scans:
            from depthsense.data.lidar import parse_holdout

            if self.holdout is None:
                raise UsageError(
                    f"--dataset {self.dataset} has no dense ground truth: train self-supervised with --holdout "
                    "beams:2 (input = even rings, loss on the odd ones)"
                )
            try:
                parse_holdout(self.holdout)
            except ValueError as exc:
                raise UsageError(f"--holdout: {exc}") from None
            if self.density is not None:
                raise UsageError(f"--density samples dense ground truth; {self.dataset} has none (use --holdout)")
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
    return options_parser(
        TrainConfig,
        prog="depthsense-train",
        description="Train a depth-completion (kitti/nyu/synthetic) or monocular (redweb) model.",
        defaults=defaults,
    )


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
    config = config_from_namespace(TrainConfig, vars(train_parser().parse_args(argv)))
    explicit = frozenset(vars(train_parser(defaults=False).parse_args(argv)))
    return config, explicit


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
    f = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    return f.metadata.get("flag", "--" + name.replace("_", "-"))


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

"""The options of the sparse-classification experiment: :class:`ClassifyConfig`, its
command-line parser (``depthsense-classify``) and the names of nets and sparsity levels.

Used by :mod:`depthsense.experiments.classify` (the run) and :mod:`depthsense.experiments.classify_report`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass

from depthsense.cli import UsageError
from depthsense.data.classification import available_image_sets
from depthsense.models.classifier import POOLS
from depthsense.options import config_from_namespace, option, options_parser, split_list

__all__ = [
    "ClassifyConfig",
    "classify_parser",
    "classify_config_from_args",
    "level_name",
    "NETS",
    "DEFAULT_LEVELS",
]

NETS: dict[str, tuple[str, bool]] = {
    "convnet": ("convnet", False),
    "convnet_bn": ("convnet", True),
    "sparse": ("sparse", False),
    "sparse_bn": ("sparse", True),
}
"""Net name -> (classifier kind, BatchNorm)."""

DEFAULT_LEVELS: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95)
"""Sparsity levels (fraction of pixels dropped) swept by default."""


@dataclass(frozen=True)
class ClassifyConfig:
    """Everything one classification experiment needs; saved in ``report.json``."""

    dataset: str = option("digits", "image set: digits (rendered, no download) | mnist | caltech101")
    data_root: str | None = option(None, "folder of mnist's IDX files or caltech101's class folders")
    levels: tuple = option(DEFAULT_LEVELS, "sparsity levels = fraction of pixels dropped, in [0,1), e.g. 0,0.5,0.9",
                           type=lambda text: _float_list(text), metavar="S[,S...]")
    train_level: float = option(0.5, "protocol (b): the one level the nets are trained at")
    protocols: str = option("ab", "a: train+test at each level; b: train at --train-level, test at all; ab: both")
    nets: tuple = option(tuple(NETS), "nets to compare: " + ", ".join(NETS),
                         type=lambda text: tuple(split_list([text])), metavar="NAME[,NAME...]")
    epochs: int = option(5, "training epochs per net and level")
    batch_size: int = option(64, "images per training step")
    lr: float = option(3e-3, "peak learning rate (Adam, one-cycle schedule)")
    width: int = option(8, "channels of the first conv (then 2x, 4x, 4x)")
    first_kernel: int = option(7, "side of the first conv's kernel (odd)")
    pool: str = option("max", "pooling in both nets: max | avg (the sparse net pools observed positions only)")
    train_images: int = option(0, "training images (0: digits renders 6000, others use all); seeded subset")
    test_images: int = option(0, "test images (0: digits renders 4000, others use all); seeded subset")
    image_size: int | None = option(None, "image side (digits: 28, caltech101: 64; mnist is 28)")
    seed: int = option(0, "seed of data, initialisation, data order and dropped pixels")
    jobs: int = option(2, "training jobs run side by side, one CPU thread each")
    out: str = option("reports/classify", "report directory (created; files in it are replaced)")
    progress: bool = option(True, "show a progress bar", flag="--no-progress", action="store_false",
                            cli_help="hide the progress bar")

    def resolved(self) -> "ClassifyConfig":
        """Validate every value; sort and de-duplicate the levels and nets.

        Raises:
            UsageError: an unknown data set, net, protocol or pooling; a level outside
                [0, 1); a count, rate or size that cannot work (names the option).
        """
        if self.dataset not in available_image_sets():
            raise UsageError(f"--dataset {self.dataset!r} is unknown; known: {', '.join(available_image_sets())}")
        levels = tuple(sorted({float(v) for v in self.levels}))
        if not levels:
            raise UsageError("--levels: give at least one sparsity level, e.g. 0,0.5,0.9")
        for v in (*levels, float(self.train_level)):
            if not 0.0 <= v < 1.0:
                raise UsageError(f"sparsity level {v!r} is outside [0, 1); it is the fraction of pixels dropped")
        if len({level_name(v) for v in levels}) != len(levels):
            raise UsageError(f"--levels {list(levels)}: two levels share a name; use at most 4 decimals")
        protocols = "".join(p for p in "ab" if p in self.protocols)
        if not protocols or set(self.protocols) - set("ab"):
            raise UsageError(f"--protocols {self.protocols!r}: use a, b or ab")
        unknown = [n for n in self.nets if n not in NETS]
        if unknown or not self.nets:
            raise UsageError(f"--nets {list(self.nets)}: known nets are {', '.join(NETS)}")
        for name in ("epochs", "batch_size", "width", "jobs"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("train_images", "test_images", "seed"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr must be > 0, got {self.lr}")
        if self.first_kernel < 1 or self.first_kernel % 2 == 0:
            raise UsageError(f"--first-kernel must be odd and >= 1, got {self.first_kernel}")
        if self.pool not in POOLS:
            raise UsageError(f"--pool {self.pool!r}: use {' or '.join(POOLS)}")
        if self.image_size is not None and self.image_size < 8:
            raise UsageError(f"--image-size must be >= 8, got {self.image_size}")
        nets = tuple(n for n in NETS if n in self.nets)  # registry order: convnet, convnet_bn, sparse, sparse_bn
        return dataclasses.replace(self, levels=levels, train_level=float(self.train_level), protocols=protocols,
                                   nets=nets)

    def to_dict(self) -> dict:
        """JSON-able dict of every field."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_argv(self) -> list[str]:
        """Command-line arguments that rebuild this config with :func:`classify_config_from_args`."""
        argv: list[str] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if f.name == "progress":
                argv += [] if value else ["--no-progress"]
            elif value is None:
                continue
            elif isinstance(value, tuple):
                argv += [flag, ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)]
            else:
                argv += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        return argv


def level_name(level: float) -> str:
    """``0.9`` -> ``"90%"`` (the row label and JSON key of a sparsity level)."""
    return f"{100 * level:.4g}%"


def classify_parser() -> argparse.ArgumentParser:
    """The ``depthsense-classify`` parser, generated from :class:`ClassifyConfig`'s fields."""
    return options_parser(
        ClassifyConfig,
        prog="depthsense-classify",
        description="Train a ConvNet and the same net from sparsity-invariant convolutions (with and without "
        "BatchNorm) on images with dropped pixels; report accuracy per sparsity level (md/csv/json/png).",
        defaults_in_help=True,
    )


def classify_config_from_args(argv: list[str] | None) -> ClassifyConfig:
    """Parse ``depthsense-classify`` arguments into an (unresolved) :class:`ClassifyConfig`.

    Raises:
        UsageError: an argument argparse rejects (one line).
    """
    return config_from_namespace(ClassifyConfig, vars(classify_parser().parse_args(argv)))


# --------------------------------------------------------------------------- helpers


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers separated by commas, e.g. 0,0.5,0.9") from None

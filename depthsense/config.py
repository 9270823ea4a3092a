"""Run configurations (frozen dataclasses) and the small helpers every CLI shares.

Every field has a default and a help string (``field(metadata={"help": ...})``); the
argparse parsers of ``tools/`` are generated from these, and the config is stored in
every checkpoint and report so a result can be reproduced from its own file.
"""

from __future__ import annotations

import argparse
import ast
import math
import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from depthsense.errors import DepthSenseError

__all__ = [
    "TrainConfig",
    "train_parser",
    "train_config_from_args",
    "COMPLETION_DATASETS",
    "resolve_device",
    "parse_crop",
    "parse_kv",
    "cache_dir",
    "run_cli",
    "UsageError",
    "jsonable",
    "make_output_dir",
]

COMPLETION_DATASETS = ("kitti", "synthetic", "nyu", "kitti_object")
"""Data sets with metric depth: they train completion models; ``redweb`` trains monocular."""


class UsageError(DepthSenseError, ValueError):
    """A command-line argument that cannot work (reported as one line, exit 2)."""


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved inside every checkpoint."""

    dataset: str = _f("synthetic", "data set: kitti | kitti_object | redweb | nyu | synthetic")
    data_root: str | None = _f(None, "data set root; synthetic without it generates a small set into the cache")
    model: str | None = _f(None, "model name (default: sparse_unet for metric data sets, monocular for redweb)")
    model_args: dict = _f({}, "model options as key=value (repeatable), e.g. width=16 rgb=True")
    loss: str | None = _f(None, "loss spec name:weight,... (default per data set)")
    density: float | None = _f(None, "sparse input = uniform sample of GT with this fraction of pixels")
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
    resume: bool = _f(False, "continue from RUN_DIR/last.pt")
    seed: int = _f(0, "seed of data order, augmentation and initialisation")
    log_every: int = _f(10, "steps between TensorBoard scalar logs")
    val_every: int = _f(0, "steps between validations (0: at the end of every epoch)")
    ckpt_every: int = _f(50, "steps between last.pt checkpoints (and at the end)")
    val_samples: int = _f(8, "validation images per validation (0: all)")
    synthetic_frames: int = _f(48, "frames generated for --dataset synthetic without --data-root")
    synthetic_size: tuple = _f((352, 1216), "HxW of generated synthetic frames")
    max_depth: float = _f(80.0, "depth that scales losses such as SSIM (m)")
    grad_clip: float = _f(0.0, "clip gradient norm to this value (0: off)")
    progress: bool = _f(True, "show a progress bar")

    def resolved(self) -> "TrainConfig":
        """Fill per-data-set defaults (model, loss, crop) and validate values.

        Raises:
            UsageError: a value that cannot work (names the option and the fix).
        """
        completion = self.dataset in COMPLETION_DATASETS
        model = self.model or ("sparse_unet" if completion else "monocular")
        # Held-out rings are lines of pixels: window losses (SSIM, edges) have nothing to compare there.
        default_loss = "l1:1.0,l2:0.1" if self.dataset == "kitti_object" else "l1:1.0,l2:0.1,ssim:0.2,edge:0.1"
        loss = self.loss or (default_loss if completion else "rank:1.0,ssi:0.5")
        crop = self.crop
        if crop is None:
            crop = {"kitti": (256, 1216), "kitti_object": (256, 1216), "synthetic": (256, 608), "nyu": (448, 576),
                    "redweb": (320, 320)}.get(
                self.dataset, None
            )
        elif crop == ():
            crop = None
        for name in ("batch_size",):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("epochs", "steps", "workers", "log_every", "val_every", "ckpt_every", "val_samples"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise UsageError(f"--lr must be > 0, got {self.lr}")
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


def train_parser() -> argparse.ArgumentParser:
    """The ``depthsense-train`` parser, generated from :class:`TrainConfig`'s fields."""
    p = argparse.ArgumentParser(
        prog="depthsense-train",
        description="Train a depth-completion (kitti/nyu/synthetic) or monocular (redweb) model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_ = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.name == "dataset":
            p.add_argument(flag, default=default, choices=("kitti", "kitti_object", "redweb", "nyu", "synthetic"),
                           help=help_)
        elif f.name == "progress":
            p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
        elif f.type in ("bool", bool):
            p.add_argument(flag, action="store_true", help=help_)
        elif f.name == "model_args":
            p.add_argument("--model-arg", dest="model_args", action="append", metavar="KEY=VALUE", help=help_)
        elif f.name in ("crop", "synthetic_size"):
            p.add_argument(flag, type=parse_crop, default=None, metavar="HxW", help=help_)
        else:
            kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(str(f.type), str)
            p.add_argument(flag, type=kind, default=default, help=help_)
    return p


def train_config_from_args(argv: list[str] | None) -> TrainConfig:
    """Parse CLI arguments into a :class:`TrainConfig` (not yet resolved)."""
    ns = vars(train_parser().parse_args(argv))
    ns["model_args"] = parse_kv(ns.get("model_args"))
    if ns.get("synthetic_size") in (None, ()):
        ns.pop("synthetic_size", None)
    return TrainConfig(**ns)


def resolve_device(spec: str = "auto"):
    """``auto`` -> cuda when available, else cpu; validates explicit choices.

    Raises:
        UsageError: cuda asked for but not available, or an unknown device string.
    """
    import torch

    spec = (spec or "auto").lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto")
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {spec}: only cpu and cuda are supported")
    return dev


def parse_crop(text: str) -> tuple | None:
    """``"256x1216"`` -> (256, 1216); ``"none"`` -> () (meaning: no crop)."""
    if text.lower() in ("none", "full", "0"):
        return ()
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"crop {text!r}: expected HxW such as 256x1216, or none") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"crop {text!r}: both sides must be >= 16 pixels")
    return (h, w)


def parse_kv(items: list[str] | None) -> dict:
    """``["width=16", "rgb=True", "name=x"]`` -> {"width": 16, "rgb": True, "name": "x"}."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--model-arg {item!r}: expected key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            low = value.strip().lower()
            out[key.strip()] = {"true": True, "false": False}.get(low, value.strip())
    return out


def make_output_dir(out: Path, what: str = "output directory") -> None:
    """Create ``out`` (parents too) and prove it is writable.

    Raises:
        UsageError: ``out`` is a file, or cannot be created or written (one line, with the fix).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory; choose a {what}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {out}: not writable ({exc.strerror}); choose a writable {what}") from None


def cache_dir() -> Path:
    """Where generated data goes: ``$DEPTHSENSE_CACHE`` or ``~/.cache/depthsense``."""
    root = os.environ.get("DEPTHSENSE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "depthsense")
    return Path(root)


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a CLI ``main``: user errors become one line on stderr and exit code 2.

    Bugs (anything that is not a :class:`DepthSenseError`, a ``KeyError`` from a
    registry lookup, or a file-system error on a user path) still raise.
    """
    from depthsense.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "depthsense"
    try:
        return main(argv)
    except DepthSenseError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        msg = str(exc.args[0]) if exc.args else ""
        if "known" not in msg:  # not a registry's "unknown name; known names: ..." -> a bug
            raise
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


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

"""Checkpoints: atomic save, safe load (``weights_only=True``), model rebuilt from config.

Format (ARCHITECTURE.md section 2)::

    {"format": 1, "model": name, "model_cfg": {...}, "state_dict": {...},
     "train_cfg": {...}, "step": n, "metrics": {...},
     # training state, present in last.pt / best.pt written by the trainer:
     "optimizer": ..., "scheduler": ..., "scaler": ..., "rng": {...}, "progress": {...}}

Only tensors, numbers, strings, lists and dicts are stored, so ``torch.load(...,
weights_only=True)`` can read it and a checkpoint can never run code on load.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from depthsense.errors import CheckpointError
from depthsense.io import atomic_output

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "build_model_from_checkpoint", "load_state_dict_strict"]

FORMAT = 1
_REQUIRED = ("format", "model", "model_cfg", "state_dict")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (a checkpoint dict with at least the required keys) atomically.

    A crash while writing leaves the previous file under ``path`` intact.
    """
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a DepthSense checkpoint.

    Raises:
        CheckpointError: missing file, not a torch file, a pickle that needs code to
            load (refused by ``weights_only``), or not a DepthSense checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "not found"
        raise CheckpointError(f"{path}: checkpoint {what}; pass the .pt file a training run wrote (e.g. RUN_DIR/best.pt).")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsupported object"
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects that could run code "
            f"({first[:160]}). DepthSense checkpoints hold only tensors and plain data; "
            "re-export it with depthsense or only load files you trust."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}). "
            "Was the file truncated? Use RUN_DIR/last.pt or best.pt from a finished run."
        ) from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _REQUIRED):
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path}: not a DepthSense checkpoint (found {keys}; expected keys {list(_REQUIRED)}). "
            "A bare state_dict cannot say which model it belongs to; train with depthsense-train."
        )
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {ckpt['format']!r}; this DepthSense reads format {FORMAT}.")
    return ckpt


def build_model_from_checkpoint(
    ckpt: dict[str, Any] | str | os.PathLike, device: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild the model a checkpoint was trained with and load its weights (eval mode).

    Raises:
        CheckpointError: unknown model name, or weights that do not fit the model.
    """
    from depthsense import models  # local: depthsense.checkpoint must not import models at module import

    path = "<checkpoint>"
    if not isinstance(ckpt, dict):
        path = str(ckpt)
        ckpt = load_checkpoint(ckpt, map_location="cpu")
    name = ckpt["model"]
    try:
        model = models.build_model(name, **dict(ckpt["model_cfg"]))
    except KeyError as exc:
        raise CheckpointError(f"{path}: {exc.args[0] if exc.args else exc}") from None
    except TypeError as exc:
        raise CheckpointError(f"{path}: model {name!r} cannot be built from the stored config ({exc}).") from None
    load_state_dict_strict(model, ckpt["state_dict"], source=path)
    return model.to(device).eval()


def load_state_dict_strict(model: nn.Module, state_dict: dict, source: str = "<checkpoint>") -> None:
    """``load_state_dict`` with an error naming the first missing / unexpected keys.

    Raises:
        CheckpointError: key or shape mismatch.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not fit {type(model).__name__}: "
            f"{len(missing)} missing (first: {missing[:3]}), {len(unexpected)} unexpected (first: {unexpected[:3]}). "
            "Was it trained with another model or config?"
        )
    wrong = [(k, tuple(state_dict[k].shape), tuple(v.shape)) for k, v in own.items() if tuple(state_dict[k].shape) != tuple(v.shape)]
    if wrong:
        k, got, want = wrong[0]
        raise CheckpointError(
            f"{source}: {len(wrong)} tensors have the wrong shape (first: {k} is {got}, model expects {want}). "
            "Was it trained with another width/depth config?"
        )
    model.load_state_dict(state_dict)

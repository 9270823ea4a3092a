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
import pickletools
import warnings
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from torch import nn

from depthsense.errors import CheckpointError
from depthsense.io import atomic_output, os_error_in, quiet_stderr

__all__ = ["FORMAT", "PRETRAINED_CHECKPOINT", "save_checkpoint", "load_checkpoint", "build_model_from_checkpoint",
           "load_state_dict_strict"]

FORMAT = 1

PRETRAINED_CHECKPOINT = Path(__file__).resolve().parent / "pretrained" / "completion.pt"
"""The shipped completion model (package data, made by ``make pretrained``): what
:class:`depthsense.inference.Predictor` uses when given neither a checkpoint nor a model,
and what ``depthsense-train --init pretrained`` starts from."""
_REQUIRED = ("format", "model", "model_cfg", "state_dict")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (a checkpoint dict with at least the required keys) atomically.

    A crash or a failed write (full disk) leaves the previous file under ``path`` intact.

    Raises:
        DepthFileError: the file cannot be written (names it and the cause, e.g. "No
            space left on device").
    """
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    with atomic_output(path) as tmp:
        # Through a Python file object, so a failed write is an OSError (ENOSPC...) that
        # atomic_output turns into one line; torch's zip writer wraps it in a RuntimeError
        # ("unexpected pos") whose traceback would hide the cause.
        try:
            with open(tmp, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
        except RuntimeError as exc:
            cause = os_error_in(exc)
            if cause is None:
                raise
            raise cause from None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a DepthSense checkpoint.

    Raises:
        CheckpointError: missing file; a file that is no PyTorch file (text, JSON,
            random bytes, another zip, a plain pickle) or a damaged one; a pickle that
            needs code to load (refused by ``weights_only``; the message names the
            globals it asks for); or not a DepthSense checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "not found"
        raise CheckpointError(f"{path}: checkpoint {what}; pass the .pt file a training run wrote (e.g. RUN_DIR/best.pt).")
    _check_container(path)
    try:
        with warnings.catch_warnings(), quiet_stderr():  # torch's own warnings would precede our one line
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(_unpickling_message(path, exc)) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)}). "
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


def _check_container(path: Path) -> None:
    """Refuse files that are not a PyTorch file at all, before torch reads them.

    ``torch.save`` writes a zip archive holding ``<name>/data.pkl`` (older versions: a
    pickle stream). Anything else (text, JSON, random bytes, another zip) is reported as
    what it is; it is neither a checkpoint nor a security problem.

    Raises:
        CheckpointError: naming what the file looks like.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror}).") from None
    fix = "pass the .pt file a DepthSense training run wrote (RUN_DIR/best.pt or last.pt)."
    if not head:
        raise CheckpointError(f"{path}: empty file, not a checkpoint; {fix}")
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            raise CheckpointError(
                f"{path}: damaged zip archive (truncated or corrupt checkpoint?); {fix}") from None
        if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise CheckpointError(f"{path}: a zip archive ({shown}) that is not a PyTorch checkpoint; {fix}")
        return
    if head[:1] == b"\x80":  # a pickle stream: plain pickle or the legacy torch format
        return
    kind = "text (JSON?)" if head.lstrip()[:1] in (b"{", b"[") else (
        "text" if head.isascii() else "unknown binary data")
    raise CheckpointError(f"{path}: {kind}, not a PyTorch checkpoint (corrupt or the wrong file); {fix}")


def _unpickling_message(path: Path, exc: Exception) -> str:
    """A security refusal only when the pickle really asks for code; corrupt data otherwise."""
    globals_, ok = _pickle_globals(path)
    harmless = ("torch", "collections.OrderedDict", "builtins.set", "builtins.frozenset", "_codecs.encode", "numpy")
    suspicious = [g for g in globals_ if not g.startswith(harmless)]
    if suspicious:
        return (
            f"{path}: refused to load: the file holds Python objects that could run code when loaded "
            f"({', '.join(suspicious[:3])}). DepthSense checkpoints hold only tensors and plain data; "
            "re-export it with depthsense or only load files you trust."
        )
    if not ok:
        return (f"{path}: damaged checkpoint: its pickle data is corrupt ({_first_line(exc)}). "
                "Use RUN_DIR/last.pt or best.pt from a finished run.")
    return (f"{path}: a plain pickle, not a PyTorch checkpoint (torch.save writes a zip archive); "
            "pass the .pt file a DepthSense training run wrote.")


def _pickle_globals(path: Path) -> tuple[list[str], bool]:
    """Globals (``module.name``) a pickle would import, read without unpickling anything.

    Returns:
        ``(globals, parsed)``: parsed False when the opcode stream is not a valid pickle.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next(n for n in z.namelist() if n.endswith("data.pkl"))
                data = z.read(name)
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile, StopIteration, ValueError):
        return [], False
    found: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _pos in pickletools.genops(data):
            if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                found.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
            if op.name == "STOP":
                break
    except (ValueError, EOFError, IndexError, KeyError, pickle.UnpicklingError):
        return found, False
    return list(dict.fromkeys(found)), True


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


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


def load_state_dict_strict(model: nn.Module, state_dict: dict, source: str = "<checkpoint>",
                          optional: Collection[str] = ()) -> tuple[list[str], list[str]]:
    """``load_state_dict`` with an error naming the first missing / unexpected keys.

    Args:
        optional: names of top-level submodules (e.g. a model's extra heads) whose
            weights may be absent from ``state_dict`` (they keep their initialisation)
            or present without the module (they are dropped).
    Returns:
        ``(fresh, dropped)``: the optional submodules that kept their initialisation and
        those whose stored weights were not used (both empty without ``optional``).
    Raises:
        CheckpointError: key or shape mismatch.
    """
    own = model.state_dict()
    opt = set(optional)

    def top(key: str) -> str:
        return key.split(".", 1)[0]

    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    fresh = sorted({top(k) for k in missing if top(k) in opt})
    dropped = sorted({top(k) for k in unexpected if top(k) in opt})
    missing = [k for k in missing if top(k) not in opt]
    unexpected = [k for k in unexpected if top(k) not in opt]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not fit {type(model).__name__}: "
            f"{len(missing)} missing (first: {missing[:3]}), {len(unexpected)} unexpected (first: {unexpected[:3]}). "
            "Was it trained with another model or config?"
        )
    state_dict = {k: v for k, v in state_dict.items() if k in own}
    wrong = [(k, tuple(state_dict[k].shape), tuple(v.shape)) for k, v in own.items()
             if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if wrong:
        k, got, want = wrong[0]
        raise CheckpointError(
            f"{source}: {len(wrong)} tensors have the wrong shape (first: {k} is {got}, model expects {want}). "
            "Was it trained with another width/depth config?"
        )
    model.load_state_dict(state_dict, strict=not fresh)
    return fresh, dropped

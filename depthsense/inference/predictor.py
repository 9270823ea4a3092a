"""The :class:`Predictor`: load a depth model once, predict many images of any size.

Output files: :mod:`depthsense.inference.writers`; folder pairing and the KITTI test
layout: :mod:`depthsense.inference.folders`; ONNX export:
:mod:`depthsense.inference.onnx_export`. ``tools/infer.py`` (``depthsense-infer``) is a
thin shell around this package.

Behaviour worth knowing:

* **Model choice.** ``Predictor(checkpoint=...)`` rebuilds the model stored in a
  DepthSense checkpoint (``weights_only=True``: a checkpoint can never run code);
  ``Predictor(model="ip_basic")`` uses a classical model that has no weights. With
  neither, the pretrained completion model shipped in the package
  (:data:`PRETRAINED_CHECKPOINT`, made by ``make pretrained``) is used and
  ``default_model_used`` is True so that callers can say so; if that file is missing
  (a source tree without it), :data:`DEFAULT_MODEL` (``ip_basic``) is. A learned model
  name without a checkpoint is refused (untrained weights would produce meaningless
  depth). :func:`pretrained_about` gives what the shipped model was trained on, the
  command that made it and its scores.
* **Any input size.** Every model pads internally to the multiple it needs and crops
  back, so ``predict`` returns exactly (H,W) for any H,W (tested for every registered
  model at odd sizes).
* **All-zero sparse depth is an error**, not a warning: a completion model (learned or
  classical) has nothing to complete, and the classical fill of nothing is an all-zero
  map that would look like a successful run. :meth:`Predictor.predict_files` raises
  :class:`DepthFileError` naming the file; :meth:`Predictor.predict` raises
  :class:`ShapeError`.
* **Runtime.** ``runtime="torch"`` (default) runs the PyTorch model; ``"onnxruntime"``
  runs its exported ONNX graph with ONNX Runtime on the CPU
  (:class:`depthsense.inference.onnx_runtime.OnnxRuntimeModel`: exported once into the
  cache, pre-fills computed beside the graph). Both give the same depth within float
  rounding (tests/test_onnx_runtime.py, on a real KITTI frame).
* **Relative depth.** A model without sparse input (``monocular``) predicts relative
  depth with unknown scale and shift, larger = farther (``Predictor.relative``; written
  by :func:`depthsense.inference.writers.relative_to_uint16`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from depthsense.checkpoint import PRETRAINED_CHECKPOINT, build_model_from_checkpoint, load_checkpoint
from depthsense.config import UsageError, build_model_from_options, resolve_device
from depthsense.errors import CheckpointError, DepthFileError, ShapeError
from depthsense.io import parse_depth_unit, read_depth, read_rgb
from depthsense.precision import precision_context
from depthsense.models import forward_outputs

__all__ = ["DEFAULT_MODEL", "PRETRAINED_CHECKPOINT", "Predictor", "Prediction", "pretrained_about"]

DEFAULT_MODEL = "ip_basic"
"""Classical model used when no checkpoint is given and the package holds no pretrained one."""


@dataclass
class Prediction:
    """One prediction with the inputs it was made from.

    Attributes:
        depth: (H,W) float32: metres (every pixel > 0) or, if ``relative``, unnormalised
            relative depth (larger = farther).
        rgb: (H,W,3) float32 [0,1] image (None if not read).
        sparse: (H,W) float32 sparse input in metres (None for RGB-only models).
        relative: True for relative (monocular) depth.
        image_path, sparse_path: the files read (None for arrays).
        conf: (H,W) float32 confidence in [0,1] (models with a ``conf`` head), else None.
        fg: (H,W) float32 foreground probability in [0,1] (``fg`` head), else None.
        depth_unit: the unit the sparse file was read in (``kitti`` unless told), which the
            depth is written back in; ``"npy"`` when it was a ``.npy`` of metres.
    """

    depth: np.ndarray
    rgb: np.ndarray | None = None
    sparse: np.ndarray | None = None
    relative: bool = False
    image_path: Path | None = None
    sparse_path: Path | None = None
    conf: np.ndarray | None = None
    fg: np.ndarray | None = None
    depth_unit: str = "kitti"


class Predictor:
    """Load a depth model once and predict many images.

    Args:
        checkpoint: path of a DepthSense checkpoint (``RUN_DIR/best.pt``); the model is
            rebuilt from the config stored in it.
        model: a registry name. Without ``checkpoint`` it must be a classical model
            (``ip_basic``, ``nearest``); with one it must match the checkpoint's model
            (a check, e.g. ``--model monocular``).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
            ``torch.device``.
        model_args: constructor options of a classical model (e.g. ``{"blur":
            "bilateral"}``); not allowed with a checkpoint, whose config is used.
        depth_unit: unit of the sparse depth files :meth:`read_inputs` reads (``kitti``).
        runtime: ``"torch"`` or ``"onnxruntime"`` (learned depth-only models on the CPU;
            the first use exports the graph into the cache, 10-60 s).
        precision: ``"fp32"`` (default) or ``"bf16"`` (autocast, on CPUs/GPUs with native
            bf16 only; see :mod:`depthsense.precision`).
        log: called with one line per stage of such an export.

    Attributes:
        model: the ``nn.Module`` in eval mode on ``device``.
        name: its registry name.
        default_model_used: True when neither ``checkpoint`` nor ``model`` was given.
        relative: True when the model predicts relative depth (needs no sparse input).
        needs_rgb, needs_sparse: what :meth:`predict` requires.
        heads: the model's extra heads (``("conf", "fg")``, or empty), see :meth:`predict_heads`.
        checkpoint, step: the checkpoint path and training step (None for classical).
        runtime: ``"torch"`` or ``"onnxruntime"``; ``onnx`` the
            :class:`~depthsense.inference.onnx_runtime.OnnxRuntimeModel` (or None).

    Raises:
        CheckpointError: unreadable / foreign / code-carrying checkpoint, or weights
            that do not fit (naming the first missing and unexpected keys).
        UsageError: a learned model name without a checkpoint, a model name that
            contradicts the checkpoint, bad ``model_args``, an unknown ``runtime`` (the
            message names the alternatives), or ``onnxruntime`` for a classical model, a
            model with extra heads or a CUDA device.
        KeyError: unknown model name (the message lists the known names).
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        model: str | None = None,
        device: str | torch.device = "auto",
        model_args: dict[str, Any] | None = None,
        *,
        depth_unit: str | float | None = None,
        runtime: str = "torch",
        precision: str = "fp32",
        log: Callable[[str], None] | None = None,
    ) -> None:
        from depthsense.inference.onnx_runtime import OnnxRuntimeModel, check_runtime
        from depthsense.precision import check_precision

        self.runtime = check_runtime(runtime)
        try:
            self.depth_unit = parse_depth_unit(depth_unit)
        except ValueError as exc:
            raise UsageError(f"--depth-unit: {exc}") from None
        self.device = resolve_device(device) if isinstance(device, str) or device is None else torch.device(device)
        self.precision = check_precision(precision, self.device, self.runtime)
        model_args = dict(model_args or {})
        self.default_model_used = checkpoint is None and model is None
        if self.default_model_used and model_args:  # would silently swap the shipped model for ip_basic
            raise UsageError(
                f"--model-arg {' '.join(f'{k}={v}' for k, v in model_args.items())}: options of a classical model; "
                "pass --model ip_basic (or nearest) with them. The shipped model keeps the options it was trained "
                "with (depthsense-infer --about)."
            )
        self.pretrained = self.default_model_used and PRETRAINED_CHECKPOINT.is_file()
        if self.pretrained:
            checkpoint = PRETRAINED_CHECKPOINT
        self.checkpoint: Path | None = None
        self.step: int | None = None
        if checkpoint is not None:
            if model_args:
                raise UsageError(
                    f"--model-arg {sorted(model_args)}: a checkpoint stores its model's options; "
                    "drop --model-arg when passing --checkpoint."
                )
            self.checkpoint = Path(checkpoint)
            ckpt = load_checkpoint(self.checkpoint, map_location="cpu")
            if model is not None and model != ckpt["model"]:
                raise UsageError(
                    f"--model {model} but {self.checkpoint} holds a {ckpt['model']!r} model; "
                    f"drop --model or pass a {model} checkpoint."
                )
            try:
                net = build_model_from_checkpoint(ckpt, self.device)
            except CheckpointError as exc:  # name the file instead of "<checkpoint>"
                raise CheckpointError(str(exc).replace("<checkpoint>", str(self.checkpoint), 1)) from None
            self.step = int(ckpt.get("step", 0) or 0)
        else:
            name = model or DEFAULT_MODEL
            net = build_model_from_options(name, model_args)
            if getattr(net, "learned", True):
                raise UsageError(
                    f"--model {name} is a learned model and needs trained weights: pass "
                    "--checkpoint RUN_DIR/best.pt (written by depthsense-train), or use a classical "
                    "model without a checkpoint (--model ip_basic or --model nearest)."
                )
            net = net.to(self.device)
        self.onnx: OnnxRuntimeModel | None = None
        if self.runtime == "onnxruntime":
            if self.device.type != "cpu":
                raise UsageError(f"--runtime onnxruntime runs on the CPU; got --device {self.device}. Pass "
                                 "--device cpu, or --runtime torch for the GPU")
            self.onnx = OnnxRuntimeModel(net.eval(), log=log)
        # channels_last is faster on CPU for every learned model in fp32 (1.1-1.4x at
        # 1216x352, benchmarks/README.md), but not under bf16 autocast (no faster than
        # fp32 channels_last there); classical models are numpy/OpenCV and unaffected.
        self.channels_last: bool = (self.device.type == "cpu" and bool(getattr(net, "learned", True))
                                    and self.onnx is None and self.precision == "fp32")
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.model: nn.Module = net.eval()
        self.name: str = net.name
        self.needs_rgb: bool = bool(net.needs_rgb)
        self.needs_sparse: bool = bool(net.needs_sparse)
        self.relative: bool = not self.needs_sparse
        self.heads: tuple[str, ...] = tuple(getattr(net, "heads", ()))

    # ------------------------------------------------------------------ description

    def describe(self) -> str:
        """One line: which model, from where, what it outputs."""
        if self.pretrained:
            src = f"the pretrained {self.name} shipped with DepthSense ({self.checkpoint.name}; depthsense-infer --about)"
        elif self.checkpoint is not None:
            src = f"{self.name} from {self.checkpoint} (step {self.step})"
        else:
            src = f"{self.name} (classical, no learned weights)"
        kind = "RELATIVE depth (not metres)" if self.relative else "metric depth (metres)"
        via = f" via onnxruntime ({self.onnx.path})" if self.onnx is not None else ""
        via += " in bf16" if self.precision == "bf16" else ""
        return f"{src} on {self.device}{via}; outputs {kind}"

    # ------------------------------------------------------------------ prediction

    def predict(self, rgb=None, sparse=None) -> np.ndarray:
        """Predict one depth map.

        Args:
            rgb: (H,W,3) image, float in [0,1] (or uint8, divided by 255); required when
                ``needs_rgb``, ignored by depth-only models.
            sparse: (H,W) sparse depth in metres, 0 = missing; required when
                ``needs_sparse``, ignored by RGB-only (monocular) models.
        Returns:
            (H,W) float32: metres, > 0 everywhere (pixels the model left at 0 are
            filled from the nearest predicted pixel, with a :class:`PredictionWarning`
            counting them; another warns of input points beyond the model's
            ``max_depth``) or, for a relative model, unnormalised relative depth (larger
            = farther).
        Raises:
            ShapeError: a required input is missing, shapes/dtypes are wrong, image and
                depth sizes differ, sparse depth has no valid pixel or holds NaN/negative
                values.
            CheckpointError: the model produced NaN/Inf (broken weights).
        """
        return self.predict_heads(rgb, sparse)["depth"]

    def predict_heads(self, rgb=None, sparse=None) -> dict[str, np.ndarray]:
        """Predict depth and every extra head of the model in one forward pass.

        Args, Raises: as :meth:`predict`.
        Returns:
            ``{"depth": (H,W)}`` plus, for the heads in :attr:`heads`, ``"conf"`` (H,W)
            float32 confidence in [0,1] and ``"fg"`` (H,W) float32 foreground probability.
        """
        rgb_a = _check_rgb(rgb) if rgb is not None else None
        sparse_a = _check_sparse(sparse) if sparse is not None else None
        if self.needs_rgb and rgb_a is None:
            raise ShapeError(f"model {self.name!r} needs the RGB image; pass rgb= (H,W,3) in [0,1].")
        if self.needs_sparse and sparse_a is None:
            raise ShapeError(
                f"model {self.name!r} completes sparse depth; pass sparse= (H,W) metres (0 = missing), "
                "or use a monocular checkpoint for RGB-only relative depth."
            )
        if rgb_a is not None and sparse_a is not None and rgb_a.shape[:2] != sparse_a.shape:
            raise ShapeError(
                f"image is {_hw(rgb_a.shape)} but sparse depth is {_hw(sparse_a.shape)} (HxW); they must "
                "have the same size (crop or resize them together)."
            )
        if self.needs_sparse and not (sparse_a > 0).any():
            raise ShapeError(
                "sparse depth has no valid pixel (all 0): there is nothing to complete. Pass the "
                "projected LiDAR/sparse depth of this image."
            )
        size = sparse_a.shape if self.needs_sparse else rgb_a.shape[:2]
        if sparse_a is not None:
            _warn_beyond_range(sparse_a, self.model)
        with torch.inference_mode():
            s = m = r = None
            if self.needs_sparse:
                s = torch.from_numpy(sparse_a).to(self.device)[None, None]
                m = (s > 0).to(s.dtype)
            if self.needs_rgb:
                r = torch.from_numpy(rgb_a).to(self.device).permute(2, 0, 1)[None].contiguous()
            if self.channels_last:
                s, m, r = (None if t is None else t.contiguous(memory_format=torch.channels_last) for t in (s, m, r))
            with precision_context(self.precision, self.device):  # fp32 for onnxruntime
                y = forward_outputs(self.onnx if self.onnx is not None else self.model, s, m, r)  # no heads in ONNX
            out = {}
            for key in ("depth", "conf", "fg"):
                if key not in y:
                    continue
                if tuple(y[key].shape) != (1, 1, *size):  # every model pads/crops itself: a bug otherwise
                    raise RuntimeError(f"model {self.name!r} returned {key} {tuple(y[key].shape)} for input {size}")
                out[key] = y[key][0, 0].float().cpu().numpy()
        bad = sum(int((~np.isfinite(v)).sum()) for v in out.values())
        if bad:
            src = self.checkpoint or self.name
            raise CheckpointError(
                f"{src}: the model produced {bad} NaN/Inf values; its weights are broken "
                "(diverged training?). Use an earlier checkpoint (RUN_DIR/best.pt)."
            )
        if not self.relative:
            out["depth"] = _fill_unpredicted(out["depth"], sparse_a, self.name)
        return out

    def read_inputs(
        self, image_path: str | os.PathLike, sparse_path: str | os.PathLike | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Read and validate the files this model needs (without predicting).

        The image is always read (it fixes the size and colours point clouds).

        Returns:
            ``(rgb (H,W,3) float32 [0,1], sparse (H,W) float32 metres or None)``.
        Raises:
            DepthFileError: unreadable/truncated/wrong-format files (from depthsense.io),
                image and depth of different sizes (naming both files and sizes), or
                sparse depth without a single valid pixel.
            UsageError: sparse depth missing for a completion model, or given to an
                RGB-only model.
        """
        image_path = Path(image_path)
        if sparse_path is None and self.needs_sparse:
            raise UsageError(
                f"{image_path}: no sparse depth given, but {self.name!r} completes sparse depth. "
                "Pass the sparse depth PNG after the image (infer.py IMAGE SPARSE.png), or for "
                "RGB-only relative depth pass a monocular checkpoint (--checkpoint RUN_DIR/best.pt "
                "trained with depthsense-train --dataset redweb)."
            )
        if sparse_path is not None and not self.needs_sparse:
            raise UsageError(
                f"{sparse_path}: {self.name!r} predicts relative depth from the image alone and "
                "does not use sparse depth; drop the sparse depth argument, or pass a "
                "depth-completion checkpoint."
            )
        rgb = read_rgb(image_path)
        if sparse_path is None:
            return rgb, None
        sparse_path = Path(sparse_path)
        sparse = read_depth(sparse_path, self.depth_unit)
        if sparse.shape != rgb.shape[:2]:
            raise DepthFileError(
                f"{sparse_path}: sparse depth is {_hw(sparse.shape)} but image {image_path} is "
                f"{_hw(rgb.shape)} (HxW); the depth must be projected into this image at the same "
                "size. Pass the matching pair (or crop both the same way)."
            )
        if not (sparse > 0).any():
            raise DepthFileError(
                f"{sparse_path}: no valid depth pixels (every pixel is 0); depth completion has "
                "nothing to complete. Pass the projected LiDAR/sparse depth of this image, or use "
                "a monocular checkpoint without sparse depth."
            )
        return rgb, sparse

    def predict_files(
        self, image_path: str | os.PathLike, sparse_path: str | os.PathLike | None = None
    ) -> Prediction:
        """Read, validate and predict one image (and its sparse depth).

        Returns:
            :class:`Prediction` with depth, rgb, sparse and the paths.
        Raises:
            As :meth:`read_inputs` and :meth:`predict`.
        """
        rgb, sparse = self.read_inputs(image_path, sparse_path)
        heads = self.predict_heads(rgb, sparse)
        return Prediction(
            depth=heads["depth"],
            conf=heads.get("conf"),
            fg=heads.get("fg"),
            rgb=rgb,
            sparse=sparse,
            relative=self.relative,
            image_path=Path(image_path),
            sparse_path=None if sparse_path is None else Path(sparse_path),
            depth_unit="npy" if sparse_path is not None and Path(sparse_path).suffix.lower() == ".npy"
            else self.depth_unit.name,
        )


# --------------------------------------------------------------------------- the shipped model


def pretrained_about(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """What the shipped model is: training data, command, time and scores (``about`` record).

    Raises:
        CheckpointError: the package holds no pretrained checkpoint, or it has no record.
    """
    path = Path(path) if path is not None else PRETRAINED_CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"{path}: no pretrained model in this installation; build it with `make pretrained`.")
    about = load_checkpoint(path, map_location="cpu").get("about")
    if not isinstance(about, dict):
        raise CheckpointError(f"{path}: the checkpoint carries no 'about' record (not made by `make pretrained`).")
    return about


# --------------------------------------------------------------------------- helpers


class PredictionWarning(UserWarning):
    """Something about a prediction worth a note: filled pixels, inputs beyond the model's range."""


def _fill_unpredicted(depth: np.ndarray, sparse: np.ndarray | None, name: str) -> np.ndarray:
    """Metric depth with every pixel > 0: pixels a model left at 0 m (no prediction, or a
    learned output clamped to 0) take the value of the nearest predicted pixel (of the
    nearest input point when the model predicted nothing); a :class:`PredictionWarning`
    counts them."""
    holes = ~(depth > 0)
    if not holes.any():
        return depth
    from scipy import ndimage

    source = depth if not holes.all() or sparse is None else sparse
    valid = source > 0
    if not valid.any():
        return depth
    _, (iy, ix) = ndimage.distance_transform_edt(~valid, return_indices=True)
    warnings.warn(f"{int(holes.sum())} of {depth.size} pixels {name} left at 0 m (no prediction) were filled from "
                  f"the nearest {'predicted pixel' if source is depth else 'input point'}", PredictionWarning,
                  stacklevel=4)
    return np.where(holes, source[iy, ix], depth).astype(np.float32)


def _warn_beyond_range(sparse: np.ndarray, net: nn.Module) -> None:
    """Warn when sparse input lies beyond the depth a learned model was built for (``max_depth``)."""
    limit = dict(getattr(net, "config", {}) or {}).get("max_depth", getattr(net, "max_depth", None))
    if not isinstance(limit, (int, float)) or not getattr(net, "learned", True):
        return
    beyond = sparse > float(limit)
    if beyond.any():
        warnings.warn(f"{int(beyond.sum())} input point(s) lie beyond the model's range of {float(limit):g} m (up to "
                      f"{float(sparse.max()):.1f} m); it predicts at most {float(limit):g} m there", PredictionWarning,
                      stacklevel=4)


def _hw(shape) -> str:
    return f"{shape[0]}x{shape[1]}"


def _check_rgb(rgb) -> np.ndarray:
    a = rgb.detach().cpu().numpy() if isinstance(rgb, torch.Tensor) else np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ShapeError(f"rgb must be (H,W,3); got shape {a.shape}.")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(a.dtype, np.floating):
        raise ShapeError(f"rgb must be float in [0,1] (or uint8); got dtype {a.dtype}.")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all() or a.min() < -1e-3 or a.max() > 1 + 1e-3:
        raise ShapeError(
            f"rgb values span [{np.nanmin(a):.3g}, {np.nanmax(a):.3g}]; expected float in [0,1] "
            "(divide 8-bit values by 255)."
        )
    return a


def _check_sparse(sparse) -> np.ndarray:
    a = sparse.detach().cpu().numpy() if isinstance(sparse, torch.Tensor) else np.asarray(sparse)
    if a.ndim != 2:
        raise ShapeError(f"sparse depth must be (H,W) metres; got shape {a.shape}.")
    if not np.issubdtype(a.dtype, np.floating):
        raise ShapeError(
            f"sparse depth must be float metres; got dtype {a.dtype} (KITTI PNG values: divide by 256, "
            "or read the file with depthsense.io.read_depth)."
        )
    a = np.ascontiguousarray(a, dtype=np.float32)
    bad = int((~np.isfinite(a)).sum() + (a < 0).sum())
    if bad:
        raise ShapeError(f"sparse depth has {bad} NaN/Inf/negative values; mark missing depth with 0.")
    return a

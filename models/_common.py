"""Shared plumbing of every depth model: the registry, the base class, input checks, padding.

Every model is an :class:`DepthModel` with one forward API (ARCHITECTURE.md section 2)::

    forward(sparse, mask, rgb=None) -> (B,1,H,W)

and is built by name through :func:`build_model`, which looks the name up in a registry
filled by the :func:`register_model` decorator next to each class.
"""

from __future__ import annotations

import inspect
import json
from typing import Callable, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.check import Dims, check_shape
from depthsense.errors import ShapeError

__all__ = [
    "DepthModel",
    "register_model",
    "build_model",
    "model_class",
    "available_models",
    "forward_outputs",
    "pad_to_multiple",
    "crop_to",
    "plain_conv",
    "DEFAULT_MAX_DEPTH",
]

DEFAULT_MAX_DEPTH = 80.0
"""Depth (metres) that maps to 1.0 inside the learned models (KITTI LiDAR reaches ~80 m)."""

_REGISTRY: dict[str, type["DepthModel"]] = {}

M = TypeVar("M", bound=type)


class DepthModel(nn.Module):
    """Base class of all DepthSense models.

    Subclasses set the class attributes below, call ``self._store_config(...)`` with their
    constructor arguments, and implement ``forward(sparse, mask, rgb=None)``; they call
    :meth:`check_inputs` first.

    Attributes:
        name: registry name (set by :func:`register_model`).
        needs_rgb: forward requires ``rgb`` (B,3,H,W) in [0,1].
        needs_sparse: forward requires ``sparse`` (B,1,H,W) metres (0 = missing).
        learned: has trainable parameters (False for the classical baselines).
        heads: the extra output heads beyond depth (e.g. ``("conf", "fg")`` for a
            ``sparse_unet`` built with ``heads="depth,conf,fg"``); empty for most models.
            A model with heads returns a dict from ``forward(..., return_heads=True)``
            (``depth`` plus each head's tensors); ``forward`` without it always returns
            the depth tensor.
        config: the constructor arguments as a JSON-able dict, so that
            ``build_model(model.name, **model.config)`` rebuilds the same architecture.
    """

    name: str = ""
    needs_rgb: bool = False
    needs_sparse: bool = True
    learned: bool = True
    heads: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.config: dict = {}

    def _store_config(self, **kwargs) -> None:
        try:
            json.dumps(kwargs)
        except TypeError as e:  # a bug in a subclass, not a user error
            raise TypeError(f"{type(self).__name__}: config must be JSON-able, got {kwargs!r}") from e
        self.config = dict(kwargs)

    def check_inputs(
        self, sparse: Tensor | None, mask: Tensor | None, rgb: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """Validate the forward inputs and return them cleaned.

        Args:
            sparse: (B,1,H,W) depth in metres, 0 = missing; may be None only when
                ``needs_sparse`` is False.
            mask: (B,1,H,W) validity, float {0,1} (bool accepted); None means ``sparse > 0``.
            rgb: (B,3,H,W) in [0,1]; may be None unless ``needs_rgb``.
        Returns:
            ``(sparse, mask, rgb)`` with the mask binarised to sparse's float dtype and
            sparse set to exactly 0 where the mask is 0 (so whatever is stored under
            missing pixels, even NaN, can never reach the network).
        Raises:
            ShapeError: a required input is missing, or a tensor has the wrong rank,
                channel count, dtype or size (the message says what was expected).
        """
        who = f"model {self.name or type(self).__name__!r}"
        dims = None
        if sparse is None:
            if self.needs_sparse:
                raise ShapeError(
                    f"{who} needs sparse depth (B,1,H,W) in metres (0 = missing); got None. "
                    "Pass sparse= and mask=, or use an RGB-only model such as 'monocular'."
                )
            if mask is not None:
                raise ShapeError(f"{who}: mask given without sparse depth; pass both or neither.")
        else:
            dims = _check_input(sparse, "B,1,H,W", "sparse", who)
            if mask is None:
                mask = (sparse > 0).to(sparse.dtype)
            else:
                _check_input(mask, "B,1,H,W", "mask", who, dims, "One (B,1,H,W) mask marks the valid depth pixels.")
                mask = (mask > 0).to(sparse.dtype)
            sparse = torch.where(mask > 0, sparse, torch.zeros((), dtype=sparse.dtype, device=sparse.device))
        if rgb is None:
            if self.needs_rgb:
                raise ShapeError(
                    f"{who} needs rgb (B,3,H,W) float in [0,1]; got None. Pass rgb=, or use a "
                    "depth-only model (e.g. 'sparse_unet' without rgb=True)."
                )
        else:
            _check_input(rgb, "B,3,H,W", "rgb", who, dims, "Resize or crop rgb and sparse together before the model.")
        return sparse, mask, rgb

    def to_metres(self, y: Tensor, max_depth: float) -> Tensor:
        """Scale a normalised prediction back to metres (``y * max_depth``).

        In eval mode the result is clamped to ``[0, max_depth]``: reported depth is never
        negative nor beyond the range the model was built for, however far outside its
        training density the input is (a normalised convolution whose window sees one
        point can otherwise return that point times k^2 times a weight). In training mode
        it is left raw, because a clamp there would stop the gradient of every pixel
        predicted outside the range (the loss already pulls them back).
        """
        y = y * max_depth
        return y if self.training else y.clamp(0.0, max_depth)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config.items())


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`DepthModel` subclass under ``name``.

    Raises:
        ValueError: ``name`` is already registered to another class.
    """

    def deco(cls: M) -> M:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def build_model(name: str, **cfg) -> DepthModel:
    """Build a registered model by name.

    Args:
        name: a registry name, see :func:`available_models`.
        **cfg: constructor options of that model (e.g. ``width=16`` for 'sparse_unet').
    Returns:
        The model (in training mode, on the CPU).
    Raises:
        KeyError: unknown name (the message lists the known names).
        TypeError: an option the model does not accept (the message lists its options).
    """
    cls = model_class(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(cfg) - set(accepted))
    if unknown:
        raise TypeError(
            f"model {name!r} does not accept option(s) {', '.join(unknown)}; "
            f"its options are: {', '.join(accepted) or '(none)'}"
        )
    return cls(**cfg)


def available_models() -> list[str]:
    """Sorted registry names."""
    return sorted(_REGISTRY)


def model_class(name: str) -> type[DepthModel]:
    """The class registered under ``name``, to read its attributes (``learned``,
    ``needs_rgb``, ``needs_sparse``, its constructor's options) without building a model.

    Raises:
        KeyError: unknown name (the message lists the known names).
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(available_models())}")
    return _REGISTRY[name]


def forward_outputs(model: Callable[..., Tensor | dict[str, Tensor]], sparse: Tensor | None, mask: Tensor | None,
                    rgb: Tensor | None = None) -> dict[str, Tensor]:
    """Run a depth model and return every output it has, as one dict.

    The one place that asks whether a model has extra heads: training, validation,
    evaluation and inference all call models through it, so each of them sees the same
    dict whatever the model.

    Args:
        model: a :class:`DepthModel`, the same wrapped in ``DistributedDataParallel`` /
            ``DataParallel`` (its ``module`` declares the heads), or any callable with
            the ``model(sparse, mask, rgb)`` API and no ``heads`` (e.g. an ONNX runtime).
        sparse, mask, rgb: the forward inputs (ARCHITECTURE.md section 2); ``sparse``
            and ``mask`` None for an RGB-only model.
    Returns:
        ``{"depth": (B,1,H,W)}`` for a model without heads; for a model with heads what
        ``model(sparse, mask, rgb, return_heads=True)`` returns: ``depth`` plus each
        head's tensors (``conf``, ``scale``, ``fg``, ``fg_logit``). Tensors are as the
        model made them (no dtype change, e.g. bfloat16 under autocast).

    Examples:
        >>> net = build_model("sparse_convnet")
        >>> sparse = torch.zeros(1, 1, 8, 8); sparse[0, 0, 2, 3] = 5.0
        >>> sorted(forward_outputs(net, sparse, None))
        ['depth']
    """
    core = model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model
    if getattr(core, "heads", ()):
        return dict(model(sparse, mask, rgb, return_heads=True))
    return {"depth": model(sparse, mask, rgb)}


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "constant") -> Tensor:
    """Pad the bottom and right of (B,C,H,W) ``x`` so H and W are multiples of ``multiple``.

    Args:
        mode: ``"constant"`` (zeros: use for sparse depth and its mask, so padding is
            "missing") or ``"replicate"`` (use for RGB and dense features).
    Returns:
        The padded tensor; undo with :func:`crop_to`.

    Always calls ``F.pad``, even with zero amounts: a Python "nothing to pad" branch would
    be frozen into a traced or exported graph (ONNX, torch.export) at the example's size
    and give wrong shapes at others. The copy it costs is of the 1-3 input channels only.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Undo :func:`pad_to_multiple`: keep the top-left (H,W) of (B,C,H',W') ``x``."""
    h, w = size
    return x[..., :h, :w]


def plain_conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    """``nn.Conv2d`` with "same" padding and SparseConv2d's init (Kaiming normal, zero bias).

    PyTorch's default init has about a third of that variance; using the same init as
    the sparse layers keeps the dense baselines a fair peer.
    """
    conv = nn.Conv2d(cin, cout, k, stride, padding=k // 2)
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
    nn.init.zeros_(conv.bias)
    return conv


def _check_input(t: Tensor, spec: str, arg: str, who: str, dims: Dims | None = None, hint: str = "") -> Dims:
    """A forward input's shape (``check_shape``) and dtype (float; bool for a mask)."""
    if isinstance(t, Tensor) and t.dim() == len(spec.split(",")) - 1:
        hint = " ".join(filter(None, ["Add the batch dimension with .unsqueeze(0).", hint]))
    dims = check_shape(t, spec, arg, where=who, dims=dims, hint=hint)
    if not t.is_floating_point() and not (arg == "mask" and t.dtype == torch.bool):
        raise ShapeError(
            f"{who}: {arg} must be a float tensor (metres for depth, [0,1] for rgb, {{0,1}} "
            f"for mask); got dtype {t.dtype}. Convert with .float()"
            + (" (and /255 for uint8 images)." if arg == "rgb" else ".")
        )
    return dims

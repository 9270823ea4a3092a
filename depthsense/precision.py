"""Numeric precision of a PyTorch forward: :class:`~depthsense.inference.Predictor`'s and
``depthsense-evaluate --precision``'s.

``fp32`` (the default) runs the model as trained. ``bf16`` runs its convolutions and
matrix products in bfloat16 under ``torch.autocast`` and returns float32 depth: on CPUs
with bf16 instructions (AVX512-BF16 or AMX, e.g. Xeon Sapphire Rapids and later) it is
faster; without them PyTorch emulates bf16 and is slower than fp32, so it is refused
there rather than offered. Accuracy and speed of each precision are measured in
``benchmarks/README.md``; the default stays fp32, which is never slower than itself.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager

import torch
from torch import nn

from depthsense.cli import UsageError

__all__ = ["PRECISIONS", "bf16_support", "check_precision", "precision_context", "run_in_precision"]

PRECISIONS = ("fp32", "bf16")
"""Precisions ``Predictor(precision=...)`` and ``depthsense-infer --precision`` accept."""


def bf16_support(device: torch.device) -> str | None:
    """None when ``device`` runs bf16 natively, else why not (one clause for a message)."""
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else f"{device} has no bf16 support"
    if device.type != "cpu":
        return f"bf16 is not offered on {device.type} devices"
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(probe is not None and probe() for probe in probes):
        return None
    return "this CPU has no bf16 instructions (AVX512-BF16 or AMX), where bf16 runs slower than fp32"


def check_precision(precision: str, device: torch.device, runtime: str = "torch") -> str:
    """Return ``precision`` if ``device`` and ``runtime`` can run it.

    Raises:
        UsageError: an unknown name (naming the alternatives), bf16 with a runtime other
            than torch, or bf16 on a device without native bf16 (see :func:`bf16_support`).
    """
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: unsupported; use one of {', '.join(PRECISIONS)}")
    if precision == "bf16":
        if runtime != "torch":
            raise UsageError(f"--precision bf16 runs with --runtime torch; --runtime {runtime} runs fp32. "
                             "Drop one of them")
        reason = bf16_support(device)
        if reason is not None:
            raise UsageError(f"--precision bf16: {reason}; use --precision fp32")
    return precision


def precision_context(precision: str, device: torch.device) -> ContextManager:
    """The context a forward pass runs in: autocast to bf16, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def run_in_precision(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """``model`` with its forward run under :func:`precision_context` and every output
    tensor returned in float32 (unchanged for fp32)."""
    if precision == "fp32":
        return model
    forward = model.forward

    def in_precision(*args: Any, **kwargs: Any) -> Any:
        with precision_context(precision, device):
            out = forward(*args, **kwargs)
        if isinstance(out, dict):
            return {k: v.float() if torch.is_tensor(v) else v for k, v in out.items()}
        return out.float()

    model.forward = in_precision
    return model

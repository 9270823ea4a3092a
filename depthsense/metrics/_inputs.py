"""What every metric does first: check and flatten ``pred``, ``gt`` and ``mask`` to (B,N)
with a validity mask, and the masked per-image reductions over it."""

from __future__ import annotations

import torch
from torch import Tensor

from depthsense.check import check_shape
from depthsense.errors import ShapeError

__all__: list[str] = []  # private helpers of the package

def _prepare(pred: Tensor, gt: Tensor, mask: Tensor | None, where: str) -> tuple[Tensor, Tensor, Tensor]:
    """Validate and flatten to (B,N) compute-dtype pred/gt and a (B,N) bool validity."""
    p4, g4 = _as_b1hw(pred, "pred", where), _as_b1hw(gt, "gt", where)
    for name, x in (("pred", p4), ("gt", g4)):
        if not x.is_floating_point():
            raise ShapeError(
                f"{where}: {name} has dtype {x.dtype}; expected float depth in metres "
                "(raw KITTI PNG values must be divided by 256 first)."
            )
    check_shape(p4, "B,1,H,W", "pred", where=where, dims=check_shape(g4, "B,1,H,W", "gt"),
                hint="Crop or resize the prediction to the GT first.")
    if p4.device != g4.device:
        raise ShapeError(f"{where}: pred is on {p4.device} but gt on {g4.device}; move them together.")
    dtype = torch.promote_types(p4.dtype, g4.dtype)
    if dtype.itemsize < 4:  # fp16/bf16 overflow on squared errors in mm
        dtype = torch.float32
    p4, g4 = p4.to(dtype), g4.to(dtype)
    valid = (g4 > 0) & torch.isfinite(g4)
    if mask is not None:
        m4 = _as_b1hw(mask, "mask", where)
        try:
            fits = torch.broadcast_shapes(m4.shape, g4.shape) == g4.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ShapeError(
                f"{where}: mask {tuple(mask.shape)} does not broadcast to gt {tuple(g4.shape)}; "
                "expected (B,1,H,W) or (1,1,H,W) with the GT's H and W."
            )
        valid = valid & (m4.to(g4.device) != 0)
    b = g4.shape[0]
    return p4.reshape(b, -1), g4.reshape(b, -1), valid.expand_as(g4).reshape(b, -1)


def _as_b1hw(x: Tensor, name: str, where: str) -> Tensor:
    check_shape(x, "B,1,H,W|B,H,W|H,W", name, where=where, hint="Depth is a single-channel image.")
    return x[None, None] if x.ndim == 2 else x[:, None] if x.ndim == 3 else x


def _count(valid: Tensor, dtype: torch.dtype) -> Tensor:
    return valid.sum(dim=1).to(dtype)


def _masked_mean(x: Tensor, valid: Tensor, count: Tensor) -> Tensor:
    return torch.where(valid, x, 0).sum(dim=1) / count.clamp_min(1)


def _acc_dtype(device: torch.device) -> torch.dtype:
    # Sums over a whole data set want float64; MPS has none.
    return torch.float32 if device.type == "mps" else torch.float64

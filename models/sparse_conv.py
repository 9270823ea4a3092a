"""Sparsity-invariant convolution (Uhrig et al., "Sparsity Invariant CNNs", 3DV 2017).

A :class:`SparseConv2d` convolves only the valid pixels and renormalises by how many
valid pixels each window saw; the validity mask is carried to the next layer by
max-pooling with the same kernel, stride and padding::

    y  = conv(x * m, W) * k^2 / count + b       count = conv(m, 1_k)  (one box filter)
    m' = maxpool_k(m)

and ``y = 0`` wherever ``m' = 0`` (no valid pixel in the window: no NaN, no Inf).

Parametrisation. The paper writes ``conv(x*m, W) / count``. We normalise by the valid
*fraction* ``count / k^2`` instead, i.e. we store ``W_paper / k^2``. The two define the
same function family and the same sparsity invariance, but ours has two practical
advantages: (1) with a full mask the layer *is* ``nn.Conv2d`` (same output, same
weights), so the standard Kaiming initialisation keeps activations at unit variance
through deep stacks; (2) Adam's per-parameter step size then matches that of a plain
convolution. Reproductions that used ``/count`` with PyTorch's default initialisation
shrank activations ~k^2-fold per layer and did not learn without BatchNorm.
``paper_weight`` gives the weights in the paper's convention.

Masks are float {0,1} tensors of shape (B,1,H,W), one mask for all channels.
"""

from __future__ import annotations

import cv2
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.check import check_shape

__all__ = [
    "SparseConv2d",
    "SparseMaxPool2d",
    "sparse_upsample",
    "sparse_concat",
    "sparse_add",
    "check_mask",
    "cat_channels",
]

_EPS = 1e-6


class SparseConv2d(nn.Module):
    """Sparsity-invariant 2-D convolution.

    Args:
        in_ch, out_ch: channels.
        kernel_size: int or (kh, kw).
        stride: int or pair.
        padding: int or pair; ``None`` gives "same" padding ``k // 2`` (odd kernels).
        bias: add a learned bias after normalisation (only where the new mask is 1).
        init_density: expected fraction of valid input pixels, used only to initialise.
            A window seeing c of k^2 pixels averages c random weights, whose spread grows
            like sqrt(k^2/c); scaling the initial weights by sqrt(init_density) keeps unit
            variance at that density. Leave 1.0 for layers fed by a dense mask (every
            layer after the first at LiDAR density); pass e.g. 0.05 for the first layer.

    ``forward(x, mask) -> (y, new_mask)`` with x (B,in_ch,H,W), mask (B,1,H,W) float {0,1};
    y (B,out_ch,H',W'), new_mask (B,1,H',W').

    Raises:
        ShapeError: a mask that is not (B,1,H,W) with x's B, H, W.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | None = None,
        bias: bool = True,
        init_density: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0.0 < init_density <= 1.0:
            raise ValueError(f"init_density must be in (0, 1], got {init_density}")
        self.init_density = float(init_density)
        kh, kw = _pair(kernel_size)
        if padding is None:
            if kh % 2 == 0 or kw % 2 == 0:
                raise ValueError(f"padding=None needs an odd kernel; got kernel_size={kernel_size}")
            padding = (kh // 2, kw // 2)
        self.in_ch, self.out_ch = in_ch, out_ch
        self.kernel_size = (kh, kw)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_ch)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Kaiming (fan_in, ReLU gain): with the fraction normalisation this keeps unit
        # variance wherever windows are full, exactly as for a plain convolution.
        nn.init.kaiming_normal_(self.weight, mode="fan_in", nonlinearity="relu")
        with torch.no_grad():
            self.weight.mul_(self.init_density**0.5)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @property
    def paper_weight(self) -> Tensor:
        """Weights in the paper's ``conv(x*m, W)/count`` convention (``weight * k^2``)."""
        return self.weight * (self.kernel_size[0] * self.kernel_size[1])

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        mask = check_mask(x, mask).detach()
        frac, new_mask = _window_fraction(mask, self.kernel_size, self.stride, self.padding)
        # scale = k^2/count where the window saw data, 0 elsewhere (so y is 0 there).
        scale = new_mask / frac.clamp_min(_EPS)
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad)
        )
        if needs_grad and not torch.is_autocast_enabled(x.device.type):
            y = _SparseConvFunction.apply(x, self.weight, self.bias, mask, scale, new_mask, self.stride, self.padding)
            return y, new_mask
        y = F.conv2d(x * mask, self.weight, None, self.stride, self.padding)
        if not needs_grad:  # inference: epilogue in place on the fresh conv output
            y.mul_(scale)
            if self.bias is not None:
                y.addcmul_(self.bias.view(1, -1, 1, 1).to(y.dtype), new_mask.to(y.dtype))
            return y, new_mask
        if self.bias is None:
            return y * scale, new_mask
        # y*scale + b*new_mask: bias only where the window saw data.
        return torch.addcmul(self.bias.view(1, -1, 1, 1) * new_mask, y, scale), new_mask

    def extra_repr(self) -> str:
        return (
            f"{self.in_ch}, {self.out_ch}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, bias={self.bias is not None}"
        )


class SparseMaxPool2d(nn.Module):
    """Value-aware downsampling: max over the *valid* pixels of each window.

    Invalid pixels never win the max (a plain max-pool would let a 0 "missing" value
    beat negative features, or average it in). Windows with no valid pixel give 0 and
    mask 0.

    ``forward(x, mask) -> (y, new_mask)``; mask (B,1,H,W) float {0,1}.
    """

    def __init__(self, kernel_size: int | tuple[int, int] = 2, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride) if stride is not None else self.kernel_size
        self.padding = _pair(padding)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        mask = check_mask(x, mask)
        neg = torch.finfo(x.dtype).min
        y = F.max_pool2d(x.masked_fill(mask == 0, neg), self.kernel_size, self.stride, self.padding)
        with torch.no_grad():
            new_mask = F.max_pool2d(mask, self.kernel_size, self.stride, self.padding)
        return y * new_mask, new_mask


def sparse_upsample(
    x: Tensor, mask: Tensor, scale_factor: int = 2, size: tuple[int, int] | None = None
) -> tuple[Tensor, Tensor]:
    """Nearest-neighbour upsampling of features and their mask together.

    Nearest keeps the invariant ``x == 0 where mask == 0`` and never blends a valid
    value with a missing one (bilinear would).

    Args:
        x: (B,C,h,w); mask: (B,1,h,w).
        scale_factor: integer factor, ignored when ``size`` is given.
        size: output (H,W).
    Returns:
        (B,C,H,W) features and (B,1,H,W) mask.
    """
    mask = _as_dtype(mask, x)
    kwargs = {"size": size} if size is not None else {"scale_factor": scale_factor}
    return F.interpolate(x, mode="nearest", **kwargs), F.interpolate(mask, mode="nearest", **kwargs)


def sparse_concat(xs: list[Tensor], masks: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Concatenate feature maps with different masks along channels.

    Each part is zeroed outside its own mask; the result's mask is their union (max),
    so a following :class:`SparseConv2d` normalises by pixels where any part is valid.
    """
    if len(xs) != len(masks) or not xs:
        raise ValueError("sparse_concat needs as many masks as feature maps (at least one)")
    parts = [x * _as_dtype(m, x) for x, m in zip(xs, masks)]
    union = masks[0]
    for m in masks[1:]:
        union = torch.maximum(union, m)
    return cat_channels(parts), union


def _channels_last(x: Tensor) -> bool:
    """True when ``x`` is laid out channels_last and not also plain contiguous (C > 1)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def cat_channels(parts: list[Tensor]) -> Tensor:
    """``torch.cat(parts, 1)`` that stays channels_last when the multi-channel parts are.

    ``torch.cat`` falls back to NCHW when one input's layout is ambiguous (a one-channel
    map is both layouts at once); the next convolution then pays a full NCHW->NHWC copy
    (at 1216x352 with 17 channels about 60 ms of the shipped model's 130 ms forward).
    Without autograd the result is written straight into a channels_last tensor; with
    autograd (training runs NCHW) it is the plain ``torch.cat``.
    """
    if torch.is_grad_enabled() and any(p.requires_grad for p in parts):
        return torch.cat(parts, dim=1)
    if not any(_channels_last(p) for p in parts):
        return torch.cat(parts, dim=1)
    shape = list(parts[0].shape)
    shape[1] = sum(p.shape[1] for p in parts)
    out = torch.empty(shape, dtype=parts[0].dtype, device=parts[0].device, memory_format=torch.channels_last)
    return torch.cat(parts, dim=1, out=out)


def sparse_add(x1: Tensor, m1: Tensor, x2: Tensor, m2: Tensor) -> tuple[Tensor, Tensor]:
    """Mask-weighted fusion ``(m1*x1 + m2*x2) / (m1 + m2)`` (HMS-Net style skip fusion).

    Where both are valid it is the mean, where one is valid it is that one, where none
    is valid it is 0. Returns the fused features and the union mask.
    """
    m1, m2 = _as_dtype(m1, x1), _as_dtype(m2, x2)
    total = m1 + m2
    y = (x1 * m1 + x2 * m2) / total.clamp_min(1.0)
    return y, (total > 0).to(x1.dtype)


def check_mask(x: Tensor, mask: Tensor) -> Tensor:
    """Validate ``mask`` against features ``x`` and return it as x's float dtype.

    The check of a public layer's input (:class:`SparseConv2d`, :class:`SparseMaxPool2d`,
    the classifier's ``SparseBatchNorm2d``); the helpers that only ever receive what such
    a layer returned (upsampling, concatenation, fusion, masked pooling) do not repeat it.

    Raises:
        ShapeError: x not 4-D, or mask not (B,1,H,W) with x's B, H and W.
    """
    dims = check_shape(x, "B,C,H,W", "features")
    check_shape(mask, "B,1,H,W", "mask", dims=dims, hint="One mask is shared by all channels.")
    return _as_dtype(mask, x)


def _as_dtype(mask: Tensor, x: Tensor) -> Tensor:
    return mask if mask.dtype == x.dtype else mask.to(x.dtype)


class _SparseConvFunction(torch.autograd.Function):
    """Training path of :class:`SparseConv2d` with in-place epilogues.

    Same maths as the plain-ops path; it exists for speed. Autograd's generic graph
    allocates a fresh full-size tensor for every elementwise step (x*m, b*m', the
    addcmul, and each of their gradients); on CPU each such allocation is a round of
    page faults. Here the normalisation and bias are applied in place on the conv
    output, the input gradient is masked in place, and the bias gradient is a
    reduction that allocates nothing full-size.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, mask, scale, new_mask, stride, padding):
        xm = x * mask
        y = F.conv2d(xm, weight, None, stride, padding)
        y.mul_(scale)
        if bias is not None:
            y.addcmul_(bias.view(1, -1, 1, 1), new_mask)
        ctx.save_for_backward(xm, weight, mask, scale, new_mask)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return y

    @staticmethod
    def backward(ctx, grad):
        xm, weight, mask, scale, new_mask = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_y = grad * scale
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad_y, xm, weight, None, list(ctx.stride), list(ctx.padding), [1, 1], False, [0, 0], 1,
            [need_x, need_w, False],
        )
        if grad_x is not None:
            grad_x.mul_(mask)
        grad_b = None
        if ctx.has_bias and need_b:
            grad_b = torch.einsum("bchw,bhw->c", grad, new_mask[:, 0])
        return grad_x, grad_w, grad_b, None, None, None, None, None


def _window_fraction(mask: Tensor, kernel, stride, padding) -> tuple[Tensor, Tensor]:
    """Valid fraction of every window (count/k^2) and the new mask, without autograd.

    One single-channel box filter. On CPU with stride 1 and "same" padding it runs
    through OpenCV's ``boxFilter`` (running sums: ~50x faster than ``avg_pool2d`` at
    k=11 and exact for {0,1} masks); elsewhere (CUDA, strides, tracing for export or
    compile) through ``avg_pool2d``. For a {0,1} mask max-pooling the mask equals
    ``fraction > 0``, so the new mask needs no second pooling pass.
    """
    with torch.no_grad():
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        if _can_use_opencv(mask, kernel, stride, padding):
            frac = torch.empty_like(mask)
            for b in range(mask.shape[0]):
                frac[b, 0] = torch.from_numpy(
                    cv2.boxFilter(mask[b, 0].numpy(), -1, (kw, kh), normalize=True, borderType=cv2.BORDER_CONSTANT)
                )
        else:
            frac = F.avg_pool2d(mask, (kh, kw), (sh, sw), (ph, pw), count_include_pad=True)
        new_mask = (frac > 0.5 / (kh * kw)).to(mask.dtype)
    return frac, new_mask


def _can_use_opencv(mask: Tensor, kernel, stride, padding) -> bool:
    return (
        mask.device.type == "cpu"
        and mask.dtype in (torch.float32, torch.float64)
        and stride == (1, 1)
        and padding == (kernel[0] // 2, kernel[1] // 2)
        and kernel[0] % 2 == 1
        and kernel[1] % 2 == 1
        and mask.is_contiguous()
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()
        and not torch.compiler.is_exporting()
        and not torch.onnx.is_in_onnx_export()
    )


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(i) for i in v)
    if len(v) != 2:
        raise ValueError(f"expected an int or a pair, got {v}")
    return v  # type: ignore[return-value]


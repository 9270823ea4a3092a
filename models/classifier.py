"""Image classifiers for the sparse-classification experiment: a small ConvNet and its sparse twin.

Both nets have the same layers and parameter count::

    conv kxk (C -> w)      [BN]  ReLU  pool 2      k = first_kernel (default 7)
    conv 3x3 (w -> 2w)     [BN]  ReLU  pool 2
    conv 3x3 (2w -> 4w)    [BN]  ReLU  pool 2
    conv 3x3 (4w -> 4w)    [BN]  ReLU
    global average pool -> linear (4w -> classes)

``pool`` is max-pooling (default) or average pooling, the same kind in both nets. A large
first kernel is Uhrig et al.'s recipe for sparse input: at 90 % missing a 7x7 window still
sees about five observed pixels (a 5x5 one about two and a half, and 7 % of them none).

On 28x28 digits the last conv sees 3x3 positions whose receptive fields cover the whole
digit, so the global average keeps the digit's layout (with the pooling after the
third conv removed, a 6 and a 9 would differ only in where local features sit).

and one forward API, ``forward(image, mask) -> logits``: ``image`` (B,C,H,W) in [0,1],
``mask`` (B,1,H,W) float {0,1} (1 = pixel observed, one mask for all channels), logits
(B,classes).

* :class:`ConvNetClassifier` sees ``image * mask`` (a dropped pixel reads as 0) through
  plain ``nn.Conv2d`` / ``nn.BatchNorm2d`` / ``nn.MaxPool2d`` and a plain global mean:
  the usual baseline of the published reproductions.
* :class:`SparseConvNetClassifier` uses :class:`~depthsense.models.sparse_conv.SparseConv2d`
  (normalised by the observed pixels of each window), carries the mask through
  :class:`~depthsense.models.sparse_conv.SparseMaxPool2d`, normalises BatchNorm statistics
  and the global average over observed positions only (:class:`SparseBatchNorm2d`,
  :func:`masked_global_avg_pool`). What is stored under a dropped pixel never reaches the
  logits.

These are not depth models and are not in the depth-model registry (whose API is
``forward(sparse, mask, rgb)``); build them with :func:`build_classifier`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.check import check_shape
from depthsense.models.sparse_conv import SparseConv2d, SparseMaxPool2d, check_mask

__all__ = [
    "ConvNetClassifier",
    "SparseConvNetClassifier",
    "SparseBatchNorm2d",
    "masked_global_avg_pool",
    "masked_avg_pool2d",
    "masked_batch_norm",
    "build_classifier",
    "CLASSIFIER_KINDS",
    "POOLS",
]

CLASSIFIER_KINDS: tuple[str, ...] = ("convnet", "sparse")
"""Names accepted by :func:`build_classifier`."""

POOLS: tuple[str, ...] = ("max", "avg")
"""Pooling kinds accepted by the classifiers."""

_EPS = 1e-5


def build_classifier(kind: str, in_ch: int, num_classes: int, width: int = 8, batchnorm: bool = False,
                     first_kernel: int = 7, pool: str = "max", init_density: float = 1.0) -> nn.Module:
    """Build ``"convnet"`` (:class:`ConvNetClassifier`) or ``"sparse"`` (:class:`SparseConvNetClassifier`).

    Args:
        kind: one of :data:`CLASSIFIER_KINDS`.
        in_ch: image channels (1 grey, 3 RGB).
        num_classes: output logits.
        width: channels of the first conv (then 2x, 4x, 4x).
        batchnorm: BatchNorm after every convolution.
        first_kernel: side of the first convolution's kernel (odd).
        pool: ``"max"`` or ``"avg"`` (:data:`POOLS`).
        init_density: expected fraction of observed pixels, used only to initialise the
            sparse net's first layer (see ``SparseConv2d``); ignored by the ConvNet.
    Raises:
        KeyError: unknown ``kind`` (the message lists the known kinds).
        ValueError: an even or non-positive ``first_kernel``, an unknown ``pool``.

    Examples:
        >>> net = build_classifier("sparse", in_ch=1, num_classes=10, width=8)
        >>> net(torch.rand(2, 1, 28, 28), torch.ones(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    if kind == "convnet":
        return ConvNetClassifier(in_ch, num_classes, width, batchnorm, first_kernel, pool)
    if kind == "sparse":
        return SparseConvNetClassifier(in_ch, num_classes, width, batchnorm, first_kernel, pool, init_density)
    raise KeyError(f"unknown classifier {kind!r}; known classifiers: {', '.join(CLASSIFIER_KINDS)}")


class ConvNetClassifier(nn.Module):
    """The dense baseline: plain convolutions on ``image * mask``.

    Args:
        in_ch: image channels.
        num_classes: output logits.
        width: channels of the first conv (then 2x, 4x, 4x).
        batchnorm: ``nn.BatchNorm2d`` after every convolution (its bias replaces the conv's).
        first_kernel: side of the first kernel (odd).
        pool: ``"max"`` or ``"avg"``.

    ``forward(image, mask) -> (B,num_classes)`` logits; image (B,in_ch,H,W), mask (B,1,H,W).

    Raises:
        ShapeError: image not 4-D with ``in_ch`` channels, or a mask that does not fit it.
    """

    sparse = False

    def __init__(self, in_ch: int, num_classes: int, width: int = 8, batchnorm: bool = False,
                 first_kernel: int = 7, pool: str = "max") -> None:
        super().__init__()
        self.in_ch, self.pool = in_ch, _check_pool(pool)
        chans = _channels(in_ch, width)
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, k, padding=k // 2, bias=not batchnorm)
            for cin, cout, k in zip(chans[:-1], chans[1:], _kernels(first_kernel))
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) if batchnorm else nn.Identity() for c in chans[1:])
        self.head = nn.Linear(chans[-1], num_classes)
        for conv in self.convs:
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        mask = _check_inputs(image, mask, self.in_ch)
        x = image * mask
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = F.relu(norm(conv(x)))
            if i < len(self.convs) - 1:
                x = F.max_pool2d(x, 2) if self.pool == "max" else F.avg_pool2d(x, 2)
        return self.head(x.mean(dim=(2, 3)))


class SparseConvNetClassifier(nn.Module):
    """The same net from sparsity-invariant layers; the mask travels with the features.

    Args:
        in_ch: image channels.
        num_classes: output logits.
        width: channels of the first conv (then 2x, 4x, 4x).
        batchnorm: :class:`SparseBatchNorm2d` (statistics over observed positions only)
            after every convolution.
        first_kernel: side of the first kernel (odd).
        pool: ``"max"``: :class:`~depthsense.models.sparse_conv.SparseMaxPool2d` (max over
            observed positions); ``"avg"``: :func:`masked_avg_pool2d` (mean over them).
        init_density: expected observed fraction, scales the first layer's initial weights
            (``SparseConv2d(init_density=...)``); later layers see nearly full masks.

    ``forward(image, mask) -> (B,num_classes)`` logits. Pixels where ``mask`` is 0 do not
    influence the logits; an all-zero mask gives the head's bias (no NaN).

    Raises:
        ShapeError: image not 4-D with ``in_ch`` channels, or a mask that does not fit it.
    """

    sparse = True

    def __init__(self, in_ch: int, num_classes: int, width: int = 8, batchnorm: bool = False,
                 first_kernel: int = 7, pool: str = "max", init_density: float = 1.0) -> None:
        super().__init__()
        self.in_ch, self.pool = in_ch, _check_pool(pool)
        chans = _channels(in_ch, width)
        self.convs = nn.ModuleList(
            SparseConv2d(cin, cout, k, bias=not batchnorm, init_density=init_density if i == 0 else 1.0)
            for i, (cin, cout, k) in enumerate(zip(chans[:-1], chans[1:], _kernels(first_kernel)))
        )
        self.norms = nn.ModuleList(SparseBatchNorm2d(c) if batchnorm else nn.Identity() for c in chans[1:])
        self._max_pool = SparseMaxPool2d(2)
        self.head = nn.Linear(chans[-1], num_classes)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        mask = _check_inputs(image, mask, self.in_ch)
        x = image
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x, mask = conv(x, mask)
            if isinstance(norm, SparseBatchNorm2d):
                x, mask = norm(x, mask)
            x = F.relu(x)
            if i < len(self.convs) - 1:
                x, mask = self._max_pool(x, mask) if self.pool == "max" else masked_avg_pool2d(x, mask, 2)
        return self.head(masked_global_avg_pool(x, mask))


class SparseBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose batch statistics come from observed positions only.

    A sparse layer's output is 0 wherever its window saw nothing; counting those zeros
    would pull the mean toward 0 by an amount that depends on the sparsity, which is
    exactly what a sparsity-invariant net must not depend on. Same arguments, parameters
    and running buffers as ``nn.BatchNorm2d`` (so the state dict matches);
    ``forward(x, mask) -> (y, mask)``, y zero where mask is 0.
    """

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        mask = check_mask(x, mask)
        use_batch = self.training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm2d
                momentum = 1.0 / float(self.num_batches_tracked)
        y = masked_batch_norm(
            x, mask, self.running_mean if self.track_running_stats else None,
            self.running_var if self.track_running_stats else None,
            self.weight, self.bias, use_batch, momentum, self.eps,
        )
        return y, mask


def masked_batch_norm(x: Tensor, mask: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                      weight: Tensor | None, bias: Tensor | None, use_batch_stats: bool, momentum: float = 0.1,
                      eps: float = _EPS) -> Tensor:
    """Batch normalisation with statistics over the positions where ``mask`` is 1.

    Args:
        x: (B,C,H,W) features.
        mask: (B,1,H,W) float {0,1}.
        running_mean, running_var: (C,) buffers, updated in place (unbiased variance,
            ``momentum`` as in ``nn.BatchNorm2d``) when ``use_batch_stats``; used instead
            of the batch statistics otherwise.
        weight, bias: (C,) affine parameters or ``None``.
        use_batch_stats: normalise by this batch's masked statistics (training).
        momentum: running-average factor.
        eps: added to the variance.
    Returns:
        (B,C,H,W), zero where mask is 0. A batch with no observed position gives 0 and
        leaves the running statistics alone.
    """
    if use_batch_stats:
        count = mask.sum()
        n = count.clamp_min(1.0)
        mean = (x * mask).sum(dim=(0, 2, 3)) / n
        centred = (x - mean.view(1, -1, 1, 1)) * mask
        var = (centred * centred).sum(dim=(0, 2, 3)) / n
        if running_mean is not None and running_var is not None and float(count) > 1:
            with torch.no_grad():
                unbiased = var * (count / (count - 1))
                running_mean.lerp_(mean.detach(), momentum)
                running_var.lerp_(unbiased.detach(), momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("masked_batch_norm: running statistics are needed when use_batch_stats is False")
        mean, var = running_mean, running_var
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return (x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)) * mask


def masked_global_avg_pool(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of every channel over the positions where ``mask`` is 1.

    Args:
        x: (B,C,H,W) features.
        mask: (B,1,H,W) float {0,1}.
    Returns:
        (B,C); 0 for an image whose mask is empty (never NaN).
    """
    mask = mask.to(x.dtype)
    return (x * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp_min(1.0)


def masked_avg_pool2d(x: Tensor, mask: Tensor, kernel_size: int = 2) -> tuple[Tensor, Tensor]:
    """Average pooling over observed positions only (stride = kernel, no padding).

    Args:
        x: (B,C,H,W) features.
        mask: (B,1,H,W) float {0,1}.
        kernel_size: window side.
    Returns:
        (B,C,H//k,W//k) means over each window's observed positions (0 where it has
        none) and the pooled mask (1 where the window had an observed position).
    """
    mask = mask.to(x.dtype)
    frac = F.avg_pool2d(mask, kernel_size)
    new_mask = (frac > 0).to(x.dtype)
    return F.avg_pool2d(x * mask, kernel_size) / frac.clamp_min(_EPS) * new_mask, new_mask


def _kernels(first_kernel: int) -> tuple[int, ...]:
    if first_kernel < 1 or first_kernel % 2 == 0:
        raise ValueError(f"first_kernel must be odd and >= 1, got {first_kernel}")
    return (first_kernel, 3, 3, 3)


def _check_pool(pool: str) -> str:
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    return pool


def _channels(in_ch: int, width: int) -> list[int]:
    if in_ch < 1 or width < 1:
        raise ValueError(f"in_ch and width must be >= 1, got in_ch={in_ch}, width={width}")
    return [in_ch, width, 2 * width, 4 * width, 4 * width]


def _check_inputs(image: Tensor, mask: Tensor, in_ch: int) -> Tensor:
    dims = check_shape(image, f"B,{in_ch},H,W", "image", where="classifier")
    check_shape(mask, "B,1,H,W", "mask", where="classifier", dims=dims, hint="One mask is shared by all channels.")
    return mask.to(image.dtype)

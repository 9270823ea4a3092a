"""Structure losses: SSIM (via kornia) and a gradient-edge loss.

Both compare local structure rather than single pixels, so they need whole
neighbourhoods; how each handles missing ground truth is stated on the function.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.check import check_shape
from depthsense.losses.registry import register_loss
from depthsense.losses.pixel import check_pair, masked_mean, valid_mask

__all__ = ["ssim_loss", "ssim_map", "edge_loss", "sobel_gradient", "erode_mask", "SSIMLoss", "EdgeLoss"]

DEFAULT_MAX_DEPTH = 80.0
"""Depth (metres) mapped to 1 before SSIM; KITTI evaluates up to 80 m."""


def ssim_loss(
    pred: Tensor,
    gt: Tensor,
    mask: Tensor | None = None,
    max_depth: float = DEFAULT_MAX_DEPTH,
    window_size: int = 11,
) -> Tensor:
    """Structural dissimilarity ``(1 - SSIM) / 2`` averaged over valid ground truth.

    Convention: kornia's ``kornia.losses.ssim_loss`` returns ``clamp((1-SSIM)/2, 0, 1)``;
    this is the same per-pixel quantity, so the loss is 0 for identical maps and at most
    1. The SSIM map is kornia's ``kornia.metrics.ssim(p, g, window_size, max_val=1.0,
    eps=0.0)`` (kornia's Gaussian window with sigma 1.5, reflect padding, C1 = 0.01^2,
    C2 = 0.03^2), needed as a *map* to average it over valid pixels only. It is
    evaluated by :func:`ssim_map`, which filters the five moment maps in one grouped
    channels-last convolution instead of kornia's five single-channel ones: the same
    numbers (tested against kornia), several times faster with autograd on CPU.

    Scaling: both maps are clamped to ``[0, max_depth]`` and divided by ``max_depth``, so
    SSIM sees values in [0, 1] (no gradient where the prediction lies outside; the L1/L2
    terms handle that).

    Missing ground truth: an SSIM window that straddles holes would compare the
    prediction with zeros. Holes of the ground truth are therefore filled with the
    *detached* prediction (the hole then agrees with the prediction and pulls nothing;
    detached so that the network cannot raise the score by editing the filler), and
    the loss map is averaged over valid ground-truth pixels only. With sparse GT the
    windows consist mostly of filler and the term becomes weak, not wrong.

    Args:
        pred: (B,1,H,W) predicted depth (metres).
        gt: (B,1,H,W) ground-truth depth, 0 = missing.
        mask: (B,1,H,W) {0,1}; default ``gt > 0``.
        max_depth: metres mapped to 1 (> 0).
        window_size: odd Gaussian window size; H and W must exceed ``window_size // 2``.
    Returns:
        Scalar in [0, 1]; 0 for an empty mask.
    Raises:
        ShapeError: mismatching shapes (see :func:`depthsense.losses.pixel.check_pair`).
        ValueError: ``max_depth <= 0`` or an even / too large ``window_size``.
    """
    pred, gt = check_pair(pred, gt, "ssim_loss")
    mask = valid_mask(gt, mask, "ssim_loss")
    _check_ssim_args(max_depth, window_size, pred.shape[-2:])
    scale = 1.0 / float(max_depth)
    p = pred.clamp(0.0, max_depth) * scale
    g = torch.where(mask, gt.clamp(0.0, max_depth) * scale, p.detach())
    loss_map = ((1.0 - ssim_map(p, g, window_size)) * 0.5).clamp(0.0, 1.0)
    return masked_mean(loss_map, mask)


def ssim_map(x: Tensor, y: Tensor, window_size: int = 11) -> Tensor:
    """SSIM index map, equal to ``kornia.metrics.ssim(x, y, window_size, 1.0, eps=0.0)``.

    eps = 0 because the denominator is at least C1*C2 = 9e-8 > 0 anyway, while kornia's
    default eps = 1e-12 would leave a loss of ~5e-6 between two identical black images.

    Args:
        x, y: (B,1,H,W) images with data range 1; H, W > ``window_size // 2``.
        window_size: odd number of taps of kornia's Gaussian window (sigma 1.5).
    Returns:
        (B,1,H,W) SSIM map in [-1, 1].
    Raises:
        ShapeError: x and y differ in shape or are not single-channel (B,1,H,W).
    """
    hint = "Compare multi-channel images channel by channel."
    check_shape(y, "B,1,H,W", "y", where="ssim_map", dims=check_shape(x, "B,1,H,W", "x", where="ssim_map", hint=hint),
                hint=hint)
    c1, c2 = 0.01**2, 0.03**2
    taps = kornia.filters.get_gaussian_kernel1d(window_size, 1.5, device=x.device, dtype=x.dtype).reshape(-1)
    r = window_size // 2
    # Local means of x, y, x^2, y^2, xy in one separable, grouped (depthwise) pass:
    # channels-last lets oneDNN run it as one depthwise kernel; kornia's per-map
    # single-channel convolutions are several times slower forward and backward on CPU.
    # Padding x and y first (reflect commutes with pointwise products) and stacking on
    # the last axis builds the channels-last input without a layout copy.
    xp = F.pad(x, (r, r, r, r), mode="reflect")
    yp = F.pad(y, (r, r, r, r), mode="reflect")
    stack = torch.stack([xp, yp, xp * xp, yp * yp, xp * yp], dim=-1).squeeze(1).permute(0, 3, 1, 2)
    row = taps.view(1, 1, 1, -1).expand(5, 1, 1, window_size).contiguous()
    col = taps.view(1, 1, -1, 1).expand(5, 1, window_size, 1).contiguous()
    # Under autocast the convolutions would run in half precision, and the variances
    # E[x^2] - mu^2 cancel catastrophically there (kornia disables autocast too).
    with torch.autocast(device_type=x.device.type, enabled=False):
        moments = F.conv2d(F.conv2d(stack, row, groups=5), col, groups=5)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.split(1, dim=1)
    mu_xy = mu_x * mu_y
    mu_xx = mu_x * mu_x
    mu_yy = mu_y * mu_y
    num = (2.0 * mu_xy + c1) * (2.0 * (e_xy - mu_xy) + c2)
    den = (mu_xx + mu_yy + c1) * ((e_xx - mu_xx) + (e_yy - mu_yy) + c2)
    return num / den


def sobel_gradient(x: Tensor) -> Tensor:
    """Normalised Sobel derivatives, equal to ``kornia.filters.spatial_gradient(x)``.

    Same kernels (divided by 8, so a ramp of slope s gives s), same sign, same
    replicated border, same layout; computed as a separable sum of shifted slices,
    which on CPU runs ~8x faster than kornia's single-channel convolution in forward +
    backward (benchmarks/bench_losses.py). Tests check values and gradients against
    kornia.

    Args:
        x: (B,C,H,W) floating tensor.
    Returns:
        (B,C,2,H,W): d/dx (along W) and d/dy (along H).
    """
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    smooth_v = p[..., :-2, :] + 2.0 * p[..., 1:-1, :] + p[..., 2:, :]  # [1,2,1] along H
    smooth_h = p[..., :-2] + 2.0 * p[..., 1:-1] + p[..., 2:]  # [1,2,1] along W
    dx = smooth_v[..., 2:] - smooth_v[..., :-2]
    dy = smooth_h[..., 2:, :] - smooth_h[..., :-2, :]
    return torch.stack([dx, dy], dim=2) * 0.125


def edge_loss(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Masked L1 distance between the Sobel gradients of prediction and ground truth.

    Gradients are ``kornia.filters.spatial_gradient`` (normalised Sobel, so a ramp of
    slope s metres/pixel gives s), evaluated by the equivalent, faster
    :func:`sobel_gradient`. A ground-truth gradient is only trusted where the
    whole 3x3 Sobel window is valid, i.e. on the mask eroded by a 3x3 min-pool (pixels
    outside the image do not invalidate a border pixel: the border is replicated).
    Per valid pixel the loss is ``|dx_p - dx_g| + |dy_p - dy_g|``, averaged over valid
    pixels. A constant offset between prediction and GT gives exactly 0 (up to
    rounding); with very sparse GT (LiDAR) the eroded mask is nearly empty, so this
    term is meant for dense or semi-dense ground truth.

    Args:
        pred: (B,1,H,W) predicted depth (metres).
        gt: (B,1,H,W) ground truth, 0 = missing.
        mask: (B,1,H,W) {0,1}; default ``gt > 0``.
    Returns:
        Scalar in metres/pixel; 0 when no pixel has a fully valid neighbourhood.
    Raises:
        ShapeError: mismatching shapes.
    """
    pred, gt = check_pair(pred, gt, "edge_loss")
    mask = valid_mask(gt, mask, "edge_loss")
    inner = erode_mask(mask)
    # Sobel is linear, so grad(pred) - grad(gt) = grad(pred - gt): one filter pass
    # instead of two. On the eroded mask the whole window is valid, so the value
    # standing in for missing GT never reaches a counted pixel.
    residual = pred - torch.where(mask, gt, torch.zeros_like(gt))
    diff = sobel_gradient(residual).abs().sum(dim=2)  # (B,1,H,W): |ddx| + |ddy|
    return masked_mean(diff, inner)


def erode_mask(mask: Tensor) -> Tensor:
    """3x3 erosion: a pixel stays valid only if its whole in-image 3x3 window is valid.

    Args:
        mask: (B,1,H,W) bool or {0,1} float.
    Returns:
        (B,1,H,W) bool.
    """
    m = mask > 0
    # Separable 3x3 min-pool as logical ANDs of shifted slices (outside pixels are
    # ignored); ~10x cheaper than a float max_pool2d on CPU.
    rows = m.clone()
    rows[..., :, 1:] &= m[..., :, :-1]
    rows[..., :, :-1] &= m[..., :, 1:]
    out = rows.clone()
    out[..., 1:, :] &= rows[..., :-1, :]
    out[..., :-1, :] &= rows[..., 1:, :]
    return out


@register_loss("ssim")
class SSIMLoss(nn.Module):
    """Module form of :func:`ssim_loss`.

    Args:
        max_depth: metres mapped to 1 before SSIM (default 80).
        window_size: odd Gaussian window size (default 11, sigma 1.5 as in Wang et al.).

    ``forward(pred, gt, mask=None, rgb=None) -> scalar``; ``rgb`` is ignored.
    """

    def __init__(self, max_depth: float = DEFAULT_MAX_DEPTH, window_size: int = 11) -> None:
        super().__init__()
        _check_ssim_args(max_depth, window_size, None)
        self.max_depth = float(max_depth)
        self.window_size = int(window_size)

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        return ssim_loss(pred, gt, mask, self.max_depth, self.window_size)

    def extra_repr(self) -> str:
        return f"max_depth={self.max_depth}, window_size={self.window_size}"


@register_loss("edge")
class EdgeLoss(nn.Module):
    """Module form of :func:`edge_loss` (no hyper-parameters).

    ``forward(pred, gt, mask=None, rgb=None) -> scalar``; ``rgb`` is ignored.
    """

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None) -> Tensor:
        return edge_loss(pred, gt, mask)


def _check_ssim_args(max_depth: float, window_size: int, hw: torch.Size | None) -> None:
    if not max_depth > 0:
        raise ValueError(f"ssim: max_depth must be > 0 metres, got {max_depth}")
    if int(window_size) != window_size or window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"ssim: window_size must be a positive odd integer, got {window_size}")
    if hw is not None and min(hw) <= window_size // 2:
        raise ValueError(
            f"ssim: image of size {tuple(hw)} is too small for window_size={window_size}; "
            f"H and W must exceed {window_size // 2} (use a smaller window_size)."
        )

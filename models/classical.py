"""Non-learned depth completion baselines: IP-Basic (Ku et al. 2018), nearest fill, a
masked-average pyramid fill and colour-guided colorization (Levin et al. 2004, NYU Depth
v2's own fill).

``ip_basic`` is the "fast" pipeline of Ku, Harakeh and Waslander, "In Defense of Classical
Image Processing: Fast Depth Completion on the CPU" (CRV 2018), step for step as published
(written here with OpenCV from the paper and the authors' description of the pipeline):

1. invert valid depth (> 0.1 m), ``d_inv = max_depth - d`` (empty stays 0), so that the
   max-based morphology below prefers *closer* points, which occlude farther ones;
2. dilate with a 5x5 diamond kernel;
3. close small holes (5x5 full kernel);
4. fill the still-empty pixels (inverted value < 0.1) from a 7x7 dilation;
5. (``extrapolate``) extend each column's topmost value to the top of the image;
6. fill the still-empty pixels from a 31x31 dilation;
7. 5x5 median blur of the whole image, then a 5x5 Gaussian blur written back to the
   filled pixels only (``blur="gaussian"``) or a bilateral blur (``"bilateral"``);
8. invert back the filled pixels.

Our only addition is step 9 (``fill_holes``, on by default): pixels the pipeline leaves
empty (holes taller than the 31x31 window between sparse scan lines, e.g. at 16 or 8
beams) get the value of the repeated 31x31 dilation of step 6 *before* the blurs, so a
completion never returns 0 (= "no depth") inside the image. It changes no pixel the
published pipeline fills: ``fill_holes=False`` reproduces the published output exactly.
Two details of the published pipeline are kept on purpose because they are what users
compare with: the blurs mix empty (0) pixels into the border of filled regions (their
depth is pulled towards ``max_depth`` there), and the default is the Gaussian blur with
extrapolation, which scored best in our real-scan protocol (``data/lidar.py``).
Depths above ``max_depth - 0.5`` are clipped (not dropped) before the inversion.

``nearest`` copies, into every pixel, the depth of the nearest valid pixel (Euclidean
distance, OpenCV's labelled distance transform).

``colorization`` is the fill NYU Depth v2 uses for its dense depth maps (the toolbox's
``fill_depth_colorization``, after Levin, Lischinski and Weiss, "Colorization using
Optimization", SIGGRAPH 2004): depth is propagated to every pixel by solving one sparse
linear system in which each pixel equals a weighted mean of its 8 neighbours, weighted by
how alike their grey values are, ``w = exp(-(g_n - g_p)^2 / s_p)``, normalised per pixel.
The per-pixel ``s_p`` is 0.6 x the grey-value variance of the 3x3 window, at least
``-min_n (g_n - g_p)^2 / ln 0.01`` (the most similar neighbour keeps weight >= 0.01) and at
least 2e-6; measured pixels are tied to their value with weight ``alpha`` (1). As in the
toolbox, depth is divided by the frame's largest measured depth before the solve and
multiplied back after (values above it cannot occur). The solve uses SciPy's sparse LU
(SuperLU): a few seconds per 640x480 frame, so it is a reference, not a real-time fill.

All work per image on CPU numpy float32 arrays (:func:`ip_basic_fill`,
:func:`nearest_fill`, :func:`colorization_fill`) and are wrapped in the common model API
(no parameters to learn, ``learned = False``; the result goes back to the input's device
and dtype).

Speed (benchmarks/bench_models.py, one core, 1216x352 LiDAR frame): a few ms per frame
each. All steps are whole-image OpenCV/numpy operations on float32; the top extension is
a vectorised per-column argmax.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from depthsense.errors import ShapeError
from depthsense.models._common import DepthModel, register_model

__all__ = ["IPBasic", "NearestFill", "PyramidFill", "Colorization", "ip_basic_fill", "nearest_fill", "pyramid_fill",
           "colorization_fill", "BLURS"]

BLURS = ("gaussian", "bilateral")

_EMPTY = 0.1  # metres: input depth and inverted values at or below this are "empty" (as published)
_MARGIN = 0.5  # depths are clipped to max_depth - _MARGIN so a valid point never inverts to ~0
_DIAMOND_5 = np.array(
    [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]], dtype=np.uint8
)
_FULL_5 = np.ones((5, 5), np.uint8)
_FULL_7 = np.ones((7, 7), np.uint8)
_FULL_31 = np.ones((31, 31), np.uint8)


def ip_basic_fill(
    depth: np.ndarray,
    max_depth: float = 100.0,
    extrapolate: bool = True,
    blur: str = "gaussian",
    fill_holes: bool = True,
) -> np.ndarray:
    """Complete one sparse depth map with IP-Basic's fast pipeline (see the module docstring).

    Args:
        depth: (H,W) metres, 0 (or anything <= 0.1 m) = missing. Values above
            ``max_depth - 0.5`` are clipped.
        max_depth: inversion constant in metres (above any depth of interest).
        extrapolate: extend each column's topmost value to the top of the image; without
            it the region above the highest points is filled only as far as the 31x31
            dilation reaches (and by ``fill_holes``).
        blur: ``"gaussian"`` or ``"bilateral"`` (keeps depth edges sharper).
        fill_holes: fill what the published pipeline leaves empty (see step 9); False
            gives the published output exactly, zeros included.
    Returns:
        (H,W) float32 metres; 0 only where nothing could be filled (no input at all, or
        ``fill_holes=False``).
    Raises:
        ShapeError: ``depth`` is not 2-D.
        ValueError: unknown ``blur``.
    """
    if depth.ndim != 2:
        raise ShapeError(f"ip_basic_fill: depth must be (H,W); got shape {depth.shape}")
    if blur not in BLURS:
        raise ValueError(f"ip_basic_fill: blur must be one of {BLURS}; got {blur!r}")
    d = np.asarray(depth, dtype=np.float32)
    # 1. Inversion: closer points get larger values, so max-filters let them win. (In-place
    # ufuncs: np.where with temporaries cost as much as all the morphology together.)
    inv = np.minimum(d, np.float32(max_depth - _MARGIN))
    np.subtract(np.float32(max_depth), inv, out=inv)
    np.copyto(inv, np.float32(0), where=d <= _EMPTY)

    inv = cv2.dilate(inv, _DIAMOND_5)  # 2.
    inv = cv2.morphologyEx(inv, cv2.MORPH_CLOSE, _FULL_5)  # 3.
    _fill_empty(inv, cv2.dilate(inv, _FULL_7))  # 4.
    if extrapolate:  # 5.
        _extend_to_top(inv)
    _fill_empty(inv, cv2.dilate(inv, _FULL_31))  # 6.
    holes = _repeat_large_fill(inv) if fill_holes and (inv < _EMPTY).any() else None

    inv = cv2.medianBlur(inv, 5)  # 7.
    if blur == "bilateral":
        inv = cv2.bilateralFilter(inv, 5, 1.5, 2.0)
    else:
        filled = inv > _EMPTY
        np.copyto(inv, cv2.GaussianBlur(inv, (5, 5), 0), where=filled)
    empty = inv <= _EMPTY
    if holes is not None:  # 9.
        np.copyto(inv, holes, where=empty)
        empty = inv <= _EMPTY
    np.subtract(np.float32(max_depth), inv, out=inv)  # 8.
    np.copyto(inv, np.float32(0), where=empty)
    return inv


def nearest_fill(depth: np.ndarray) -> np.ndarray:
    """Fill every pixel with the depth of its nearest valid pixel (Euclidean distance).

    Args:
        depth: (H,W) metres, 0 = missing.
    Returns:
        (H,W) float32; valid pixels unchanged; all zeros when no pixel is valid.
    Raises:
        ShapeError: ``depth`` is not 2-D.
    """
    if depth.ndim != 2:
        raise ShapeError(f"nearest_fill: depth must be (H,W); got shape {depth.shape}")
    d = np.ascontiguousarray(depth, dtype=np.float32)
    valid = d > 0
    if not valid.any():
        return np.zeros_like(d)
    # Distance to the nearest *zero* pixel of src, so valid pixels are the zeros; with
    # DIST_LABEL_PIXEL every valid pixel gets its own label, shared by the pixels it is
    # nearest to. A lookup table from label to depth then fills the image.
    src = (~valid).astype(np.uint8)
    _, labels = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros(int(labels.max()) + 1, np.float32)
    lut[labels[valid]] = d[valid]
    return lut[labels]


def colorization_fill(depth: np.ndarray, rgb: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Fill depth guided by the image (Levin et al. 2004 as in the NYU toolbox; module docstring).

    Args:
        depth: (H,W) metres, 0 = missing.
        rgb: (H,W,3) float in [0,1].
        alpha: weight tying each measured pixel to its value (the toolbox's default, 1).
    Returns:
        (H,W) float32 metres: every pixel filled (measured pixels move slightly: the tie is
        soft, as published); all zeros when nothing is measured.
    Raises:
        ShapeError: ``depth`` not (H,W) or ``rgb`` not (H,W,3) of the same size.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import spsolve

    if depth.ndim != 2 or rgb.shape != (*depth.shape, 3):
        raise ShapeError(f"colorization_fill: depth (H,W) and rgb (H,W,3) of one size; got {depth.shape} "
                         f"and {rgb.shape}")
    d = np.asarray(depth, np.float64)
    known = d > 0
    if not known.any():
        return np.zeros(d.shape, np.float32)
    top = float(d[known].max())
    h, w = d.shape
    n = h * w
    grey = np.asarray(rgb, np.float64) @ np.array([0.2989, 0.5870, 0.1140])  # MATLAB's rgb2gray weights
    # The 8 neighbours of every pixel as shifted copies of a NaN-padded image (NaN = off the image).
    pad = np.pad(grey, 1, constant_values=np.nan)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    nb = np.stack([pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in offsets])  # (8,H,W)
    inside = ~np.isnan(nb)
    window = np.concatenate([nb, grey[None]])
    var = np.nanvar(window, axis=0)  # population variance of the window, centre included
    diff2 = (nb - grey[None]) ** 2
    csig = np.maximum(0.6 * var, -np.nanmin(diff2, axis=0) / np.log(0.01))
    csig = np.maximum(csig, 2e-6)
    wts = np.where(inside, np.exp(-np.where(inside, diff2, 0.0) / csig[None]), 0.0)
    wts /= wts.sum(axis=0, keepdims=True)
    idx = np.arange(n).reshape(h, w)
    pad_idx = np.pad(idx, 1, constant_values=-1)
    cols_nb = np.stack([pad_idx[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in offsets])
    rows = np.concatenate([np.broadcast_to(idx, cols_nb.shape)[inside], idx.ravel()])
    cols = np.concatenate([cols_nb[inside], idx.ravel()])
    vals = np.concatenate([-wts[inside], 1.0 + alpha * known.ravel()])
    system = csr_matrix((vals, (rows, cols)), shape=(n, n))
    rhs = alpha * known.ravel() * np.minimum(d.ravel() / top, 1.0)
    out = spsolve(system, rhs).reshape(h, w) * top
    return np.clip(out, 0.0, None).astype(np.float32)


def pyramid_fill(depth: np.ndarray) -> np.ndarray:
    """Fill every pixel from a masked-average image pyramid ("push-pull").

    Push: halve the image repeatedly, each coarse pixel the mean of the valid fine pixels
    under it. Pull: from the coarsest level up, every fine pixel keeps its own value where
    it has one and takes the bilinearly upsampled coarser level elsewhere, blended by how
    much of its 2x2 footprint was valid. A smooth interpolation of the points (unlike
    nearest's constant cells), in a few milliseconds per frame.

    Args:
        depth: (H,W) metres, 0 = missing.
    Returns:
        (H,W) float32; valid pixels unchanged; all zeros when no pixel is valid.
    Raises:
        ShapeError: ``depth`` is not 2-D.
    """
    if depth.ndim != 2:
        raise ShapeError(f"pyramid_fill: depth must be (H,W); got shape {depth.shape}")
    d = np.ascontiguousarray(depth, dtype=np.float32)
    valid = (d > 0).astype(np.float32)
    if not valid.any():
        return np.zeros_like(d)
    values, weights = [d * valid], [valid]
    while max(values[-1].shape) > 1:
        v, w = values[-1], weights[-1]
        size = ((v.shape[1] + 1) // 2, (v.shape[0] + 1) // 2)
        sv = cv2.resize(v * w, size, interpolation=cv2.INTER_AREA)
        sw = cv2.resize(w, size, interpolation=cv2.INTER_AREA)
        values.append(np.where(sw > 0, sv / np.maximum(sw, 1e-12), 0.0).astype(np.float32))
        weights.append(np.minimum(sw * 4.0, 1.0).astype(np.float32))  # 1 as soon as a quarter was valid
    out = values[-1]
    for v, w in zip(values[-2::-1], weights[-2::-1]):
        up = cv2.resize(out, (v.shape[1], v.shape[0]), interpolation=cv2.INTER_LINEAR)
        out = w * v + (1.0 - w) * up
    np.copyto(out, d, where=d > 0)
    return out.astype(np.float32)


@register_model("ip_basic")
class IPBasic(DepthModel):
    """IP-Basic (Ku et al. 2018) in the common model API; see :func:`ip_basic_fill`.

    Args:
        extrapolate: extend the topmost values of each column to the image top.
        blur: ``"gaussian"`` or ``"bilateral"``.
        max_depth: inversion constant (metres); depths above ``max_depth - 0.5`` clip.
        fill_holes: fill the pixels the published pipeline leaves empty (default True).

    ``forward(sparse, mask, rgb=None) -> (B,1,H,W)`` metres, computed per image on the
    CPU with OpenCV (no gradient), returned on ``sparse``'s device and dtype.

    Raises:
        ShapeError: missing sparse input or mismatched shapes.
        ValueError: unknown ``blur``.
    """

    needs_rgb = False
    needs_sparse = True
    learned = False

    def __init__(
        self, extrapolate: bool = True, blur: str = "gaussian", max_depth: float = 100.0, fill_holes: bool = True
    ) -> None:
        super().__init__()
        if blur not in BLURS:
            raise ValueError(f"ip_basic: blur must be one of {BLURS}; got {blur!r}")
        self._store_config(
            extrapolate=bool(extrapolate), blur=str(blur), max_depth=float(max_depth), fill_holes=bool(fill_holes)
        )

    def forward(self, sparse: Tensor, mask: Tensor | None, rgb: Tensor | None = None) -> Tensor:
        sparse, _, _ = self.check_inputs(sparse, mask, None)
        return _per_image(sparse, lambda d: ip_basic_fill(d, **self.config))


@register_model("nearest")
class NearestFill(DepthModel):
    """Nearest-valid-pixel fill in the common model API; see :func:`nearest_fill`.

    ``forward(sparse, mask, rgb=None) -> (B,1,H,W)`` metres (no options, no gradient).
    """

    needs_rgb = False
    needs_sparse = True
    learned = False

    def __init__(self) -> None:
        super().__init__()
        self._store_config()

    def forward(self, sparse: Tensor, mask: Tensor | None, rgb: Tensor | None = None) -> Tensor:
        sparse, _, _ = self.check_inputs(sparse, mask, None)
        return _per_image(sparse, nearest_fill)


@register_model("colorization")
class Colorization(DepthModel):
    """Colour-guided colorization fill (NYU's own); see :func:`colorization_fill`.

    Args:
        alpha: weight tying measured pixels to their values (default 1, as in the toolbox).

    ``forward(sparse, mask, rgb) -> (B,1,H,W)`` metres; needs the image (no gradient,
    CPU, a few seconds per VGA frame).
    """

    needs_rgb = True
    needs_sparse = True
    learned = False

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"colorization: alpha must be > 0; got {alpha!r}")
        self._store_config(alpha=float(alpha))

    def forward(self, sparse: Tensor, mask: Tensor | None, rgb: Tensor | None = None) -> Tensor:
        sparse, _, rgb = self.check_inputs(sparse, mask, rgb)
        images = rgb.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
        with torch.no_grad():
            arr = sparse.detach().to("cpu", torch.float32).numpy()
            out = np.stack([colorization_fill(arr[b, 0], images[b], self.config["alpha"])
                            for b in range(arr.shape[0])])[:, None]
        return torch.from_numpy(out).to(device=sparse.device, dtype=sparse.dtype)


@register_model("pyramid")
class PyramidFill(DepthModel):
    """Masked-average pyramid ("push-pull") fill in the common model API; see :func:`pyramid_fill`."""

    needs_rgb = False
    needs_sparse = True
    learned = False

    def __init__(self) -> None:
        super().__init__()
        self._store_config()

    def forward(self, sparse: Tensor, mask: Tensor | None, rgb: Tensor | None = None) -> Tensor:
        sparse, _, _ = self.check_inputs(sparse, mask, None)
        return _per_image(sparse, pyramid_fill)


def _fill_empty(inv: np.ndarray, candidate: np.ndarray) -> None:
    """In place: take ``candidate`` where ``inv`` is still empty, keep filled pixels."""
    np.copyto(inv, candidate, where=inv < _EMPTY)


def _repeat_large_fill(inv: np.ndarray) -> np.ndarray:
    """A copy of ``inv`` with every empty pixel filled by repeated 31x31 dilations.

    Each pass reaches 15 more pixels; the loop ends when nothing is empty (or nothing is
    filled at all, e.g. an empty input).
    """
    full = inv.copy()
    while True:
        empty = full < _EMPTY
        if not empty.any() or empty.all():
            return full
        np.copyto(full, cv2.dilate(full, _FULL_31), where=empty)


def _extend_to_top(inv: np.ndarray) -> None:
    """In place: copy each column's topmost filled value into every pixel above it."""
    top = (inv > _EMPTY).argmax(axis=0)  # first filled row per column (0 if none)
    top_val = inv[top, np.arange(inv.shape[1])]  # an empty column reads 0: extends nothing
    rows = int(top.max())  # only the band above the highest first-row needs writing
    if rows == 0:
        return
    above = np.arange(rows)[:, None] < top[None, :]
    np.copyto(inv[:rows], np.broadcast_to(top_val, (rows, inv.shape[1])), where=above)


def _per_image(sparse: Tensor, fill) -> Tensor:
    with torch.no_grad():
        arr = sparse.detach().to("cpu", torch.float32).numpy()
        out = np.stack([fill(arr[b, 0]) for b in range(arr.shape[0])])[:, None]
    return torch.from_numpy(out).to(device=sparse.device, dtype=sparse.dtype)

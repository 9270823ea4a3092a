"""Pictures of depth: colourised depth and error maps, LiDAR overlays, panels, grids.

Every function accepts numpy arrays or torch tensors (any device; they are copied to the
host, this module is for previews only) and returns uint8 RGB images (H,W,3), except
``tensorboard_grid`` which returns a float (3,H,W) tensor for ``SummaryWriter.add_image``.

Colour conventions:

* Depth: **near = bright, far = dark** (default colormap ``"magma"``, whose luminance
  increases monotonically along the map, so the brightness ordering survives greyscale
  printing and colour-blind viewers). Values are mapped linearly between ``vmin`` and
  ``vmax``; by default these are the 2nd and 98th percentiles of the valid values, robust
  to a few outliers. Missing depth (0, negative, NaN, Inf) is **pure black**; the colormap
  is sampled from ``CMAP_LOW`` upwards so that the farthest valid depth is a dark colour
  that is still distinguishable from black.
* Error: ``|pred - gt|`` where the ground truth is valid, small = dark, large = bright
  (``"inferno"``), 0..``vmax`` with ``vmax`` the 98th percentile by default; black where
  the ground truth is missing.

Panels use one ``vmin``/``vmax`` for every depth tile and one error ``vmax`` for every
error tile, so colours are comparable across models, and end with a colour bar for each
of the two scales (:func:`colorbar`: the ramp with its end values and unit), so a
reader can tell which colour is how many metres. :func:`with_colorbar` puts the same bar
under a single preview (``depthsense-infer``'s ``*_color.png``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import cv2
import numpy as np
import torch

from depthsense.errors import ShapeError

__all__ = [
    "CMAP_LOW",
    "PANEL_TITLE_HEIGHT",
    "COLORBAR_HEIGHT",
    "colorbar",
    "with_colorbar",
    "depth_range",
    "colorize_depth",
    "colorize_error",
    "sparse_overlay",
    "colorize_confidence",
    "mask_overlay",
    "make_panel",
    "tensorboard_grid",
]

CMAP_LOW = 0.12
"""Colormap position of the farthest depth (0 would be indistinguishable from black)."""

PANEL_TITLE_HEIGHT = 16
"""Height in pixels of the title strip above each tile of ``make_panel``."""

COLORBAR_HEIGHT = 28
"""Height in pixels of :func:`colorbar` (a 10-pixel ramp over an 18-pixel row of labels)."""

_RAMP_HEIGHT = 10

_PERCENTILES = (2.0, 98.0)


def depth_range(*depths, percentiles: tuple[float, float] = _PERCENTILES) -> tuple[float, float] | None:
    """Robust display range over the valid values of one or more depth maps.

    Args:
        *depths: numpy arrays or tensors of depth (any shape); invalid = <= 0 or non-finite.
        percentiles: lower and upper percentile of the pooled valid values.
    Returns:
        ``(vmin, vmax)`` with ``vmin < vmax``, or ``None`` if no value is valid.
    """
    vals = [d[_valid(d)] for d in (_to_numpy(x).astype(np.float64) for x in depths if x is not None)]
    vals = [v for v in vals if v.size]
    if not vals:
        return None
    pooled = np.concatenate(vals)
    lo, hi = np.percentile(pooled, percentiles)
    lo, hi = float(lo), float(hi)
    if not hi > lo:  # constant depth: any non-empty range works, keep it tight
        hi = lo + max(abs(lo) * 1e-3, 1e-6)
    return lo, hi


def colorize_depth(depth, vmin: float | None = None, vmax: float | None = None,
                   cmap: str = "magma") -> np.ndarray:
    """Colourise a depth map, near = bright, far = dark, missing = black.

    Args:
        depth: (H,W), (1,H,W) or (1,1,H,W) numpy array or tensor, metres; 0 = missing.
        vmin, vmax: display range in metres (depths outside are clipped); each defaults to
            the 2nd / 98th percentile of the valid depths.
        cmap: a matplotlib colormap name.
    Returns:
        (H,W,3) uint8 RGB.
    Raises:
        ShapeError: not a single 2-D depth map.
        ValueError: ``vmin >= vmax``.
        KeyError: unknown colormap.
    """
    d = _as_hw(depth, "depth")
    valid = _valid(d)
    vmin, vmax = _resolve_range(d, valid, vmin, vmax)
    t = (vmax - d) / (vmax - vmin)  # 1 at vmin (near), 0 at vmax (far)
    return _apply_cmap(t, valid, cmap)


def colorize_error(pred, gt, vmax: float | None = None, cmap: str = "inferno") -> np.ndarray:
    """Colourise ``|pred - gt|`` where ``gt`` is valid; black elsewhere.

    A non-finite prediction at a valid pixel is also black (there is no error to show).

    Args:
        pred, gt: (H,W)-like depth maps in metres (see ``colorize_depth``).
        vmax: error in metres shown brightest; defaults to the 98th percentile of the
            errors (errors above are clipped).
        cmap: a matplotlib colormap name; small errors dark, large bright.
    Returns:
        (H,W,3) uint8 RGB.
    Raises:
        ShapeError: shapes differ or are not 2-D maps.
    """
    p, g = _as_hw(pred, "pred"), _as_hw(gt, "gt")
    if p.shape != g.shape:
        raise ShapeError(f"colorize_error: pred {p.shape} and gt {g.shape} differ; expected one (H,W).")
    err, valid = _abs_error(p, g)
    if vmax is None:
        vmax = _error_vmax([err[valid]])
    elif not vmax > 0:
        raise ValueError(f"colorize_error: vmax={vmax}; expected a positive error in metres.")
    return _apply_cmap(err / vmax, valid, cmap)


def sparse_overlay(rgb, sparse, radius: int = 1, vmin: float | None = None,
                   vmax: float | None = None, cmap: str = "magma") -> np.ndarray:
    """Draw sparse depth points (e.g. LiDAR) over an image, coloured by depth.

    Each valid point becomes a disc of ``radius`` pixels; where discs overlap the nearer
    point wins (it would occlude the farther one).

    Args:
        rgb: (H,W,3) or (3,H,W) image, float in [0,1] or uint8; ``None`` draws on black.
        sparse: (H,W)-like sparse depth in metres, 0 = no point.
        radius: disc radius in pixels (0 = single pixels).
        vmin, vmax, cmap: colour mapping as in ``colorize_depth`` (range from the points).
    Returns:
        (H,W,3) uint8 RGB.
    Raises:
        ShapeError: image and depth sizes differ.
    """
    s = _as_hw(sparse, "sparse")
    base = np.zeros(s.shape + (3,), np.uint8) if rgb is None else _rgb_uint8(rgb)
    if base.shape[:2] != s.shape:
        raise ShapeError(
            f"sparse_overlay: image is {base.shape[:2]} but sparse depth {s.shape}; "
            "expected the same H and W."
        )
    if radius < 0:
        raise ValueError(f"sparse_overlay: radius={radius}; expected >= 0 pixels.")
    valid = _valid(s)
    vmin, vmax = _resolve_range(s, valid, vmin, vmax)
    near = np.where(valid, s, np.inf).astype(np.float32)
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        near = cv2.erode(near, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=np.inf)
    drawn = np.isfinite(near)
    colour = colorize_depth(np.where(drawn, near, 0.0), vmin, vmax, cmap)
    out = base.copy()
    out[drawn] = colour[drawn]
    return out


def colorbar(width: int, vmin: float, vmax: float, cmap: str = "magma", unit: str = "m",
             kind: str = "depth", labels: tuple[str, str] | None = None) -> np.ndarray:
    """A horizontal colour bar: the ramp of the colour mapping with its end values.

    Args:
        width: bar width in pixels (>= 1); the end values are written only where they
            fit, so a narrow image (a 1-pixel column) gets the bare ramp.
        vmin, vmax: the mapped range (``vmin < vmax``), e.g. metres.
        cmap: the colormap of the image it explains.
        unit: appended to the numbers (``"m"``; ``""`` for none).
        kind: ``"depth"`` (left = ``vmin`` = near = bright, as :func:`colorize_depth`) or
            ``"error"`` (left = ``vmin`` small = dark, as :func:`colorize_error`).
        labels: texts for the left and right ends instead of the numbers (e.g. ``("near",
            "far")`` for relative depth, which has no unit).
    Returns:
        (COLORBAR_HEIGHT, width, 3) uint8 RGB.
    Raises:
        ValueError: ``vmin >= vmax``, ``width < 1`` or an unknown ``kind``.
    """
    if not float(vmax) > float(vmin):
        raise ValueError(f"colorbar: vmin={vmin}, vmax={vmax}; expected vmin < vmax.")
    if width < 1:
        raise ValueError(f"colorbar: width={width}; expected >= 1 pixel.")
    if kind not in ("depth", "error"):
        raise ValueError(f"colorbar: kind={kind!r}; expected 'depth' or 'error'.")
    t = np.linspace(0.0, 1.0, width)
    t = 1.0 - t if kind == "depth" else t  # colorize_depth: near (vmin) maps to the bright end
    ramp = _lut(cmap)[np.rint(t * 255.0).astype(np.intp)]
    bar = np.full((COLORBAR_HEIGHT, width, 3), 48, np.uint8)  # the title strips' grey, not "no depth" black
    bar[:_RAMP_HEIGHT] = ramp[None]
    suffix = f" {unit}" if unit else ""
    left, right = labels if labels is not None else (f"{_num(vmin)}{suffix}", f"{_num(vmax)}{suffix}")
    font, scale, y = cv2.FONT_HERSHEY_SIMPLEX, 0.35, COLORBAR_HEIGHT - 5
    (rw, _), _ = cv2.getTextSize(right, font, scale, 1)
    (lw, _), _ = cv2.getTextSize(left, font, scale, 1)
    if lw + rw + 6 > width:  # the labels would overlap or be cut: the ramp alone
        return bar
    cv2.putText(bar, left, (1, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(bar, right, (max(0, width - rw - 2), y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    if labels is None and width >= 240:  # room for the middle value
        mid = f"{_num((vmin + vmax) / 2)}{suffix}"
        (mw, _), _ = cv2.getTextSize(mid, font, scale, 1)
        cv2.putText(bar, mid, ((width - mw) // 2, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return bar


def with_colorbar(image: np.ndarray, vmin: float, vmax: float, cmap: str = "magma", unit: str = "m",
                  kind: str = "depth", labels: tuple[str, str] | None = None) -> np.ndarray:
    """``image`` (H,W,3) uint8 with :func:`colorbar` underneath: (H + COLORBAR_HEIGHT, W, 3)."""
    img = _rgb_uint8(image)
    return np.concatenate([img, colorbar(img.shape[1], vmin, vmax, cmap, unit, kind, labels)], axis=0)


def colorize_confidence(conf, cmap: str = "viridis") -> np.ndarray:
    """Colourise a confidence map in [0,1]: 0 dark, 1 bright (with ``colorbar(kind="error")``).

    Args:
        conf: (H,W) (or (1,H,W), (1,1,H,W)) array or tensor in [0,1].
    Returns:
        (H,W,3) uint8 RGB.
    """
    c = _as_hw(conf, "conf").astype(np.float32)
    return _apply_cmap(c, np.ones(c.shape, bool), cmap)


def mask_overlay(rgb, mask, colour: tuple[int, int, int] = (255, 40, 200), alpha: float = 0.55) -> np.ndarray:
    """The image with ``mask`` (> 0.5) tinted in ``colour`` and its outline drawn.

    Args:
        rgb: (H,W,3) float [0,1] or uint8 image.
        mask: (H,W) {0,1} (or probability) of the same size.
    Returns:
        (H,W,3) uint8 RGB.
    Raises:
        ShapeError: sizes differ.
    """
    img = _rgb_uint8(rgb).copy()
    m = _as_hw(mask, "mask") > 0.5
    if m.shape != img.shape[:2]:
        raise ShapeError(f"mask_overlay: mask {m.shape} and image {img.shape[:2]} differ in size.")
    tint = np.array(colour, np.float32)
    img[m] = np.rint((1 - alpha) * img[m] + alpha * tint).astype(np.uint8)
    edge = m & ~cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    img[edge] = colour
    return img


def make_panel(rgb, sparse, preds: Mapping[str, object], gt=None, *,
               vmin: float | None = None, vmax: float | None = None,
               err_vmax: float | None = None, cmap: str = "magma",
               err_cmap: str = "inferno", radius: int = 1) -> np.ndarray:
    """A vertical panel comparing predictions, each tile under a title strip.

    Tiles from top to bottom: ``rgb``, ``sparse`` (points over the image), each
    prediction (in ``preds`` order), then, if ``gt`` is given, ``gt`` and one error map
    ``err <name>`` per prediction, and last the colour bars: ``depth [m]`` and, with
    ``gt``, ``error [m]``. All depth tiles share one ``vmin``/``vmax`` (default:
    ``depth_range`` of ``gt`` if given, else of ``sparse``, else of the predictions) and all
    error tiles share one ``err_vmax`` (default: 98th percentile of all errors).

    Args:
        rgb: (H,W,3) / (3,H,W) image, float [0,1] or uint8.
        sparse: (H,W)-like sparse depth in metres.
        preds: name -> (H,W)-like depth prediction in metres.
        gt: optional (H,W)-like ground truth in metres.
    Returns:
        uint8 RGB of shape ``(n_tiles * (PANEL_TITLE_HEIGHT + H) + n_bars *
        (PANEL_TITLE_HEIGHT + COLORBAR_HEIGHT), W, 3)`` with ``n_bars`` 2 with ``gt``, else 1.
    Raises:
        ShapeError: inputs of different sizes.
    """
    base = _rgb_uint8(rgb)
    h, w = base.shape[:2]
    maps = {"sparse": _as_hw(sparse, "sparse")}
    maps.update({name: _as_hw(p, f"preds[{name!r}]") for name, p in preds.items()})
    g = None if gt is None else _as_hw(gt, "gt")
    for name, m in list(maps.items()) + ([("gt", g)] if g is not None else []):
        if m.shape != (h, w):
            raise ShapeError(f"make_panel: {name} is {m.shape} but rgb is {(h, w)}; expected the same H and W.")
    if vmin is None or vmax is None:
        rng = None
        for source in ([g] if g is not None else []) + [maps["sparse"]] + [maps[n] for n in preds]:
            rng = depth_range(source)
            if rng is not None:
                break
        rng = rng or (0.0, 1.0)
        vmin = rng[0] if vmin is None else vmin
        vmax = rng[1] if vmax is None else vmax

    tiles = [("rgb", base),
             ("sparse", sparse_overlay(base, maps["sparse"], radius, vmin, vmax, cmap))]
    tiles += [(name, colorize_depth(maps[name], vmin, vmax, cmap)) for name in preds]
    if g is not None:
        tiles.append(("gt", colorize_depth(g, vmin, vmax, cmap)))
        errors = {name: _abs_error(maps[name], g) for name in preds}
        if err_vmax is None:
            err_vmax = _error_vmax([e[v] for e, v in errors.values()])
        tiles += [(f"err {name}", colorize_error(maps[name], g, err_vmax, err_cmap)) for name in preds]
    tiles.append(("depth [m]", colorbar(w, vmin, vmax, cmap)))
    if g is not None:
        tiles.append(("error [m]", colorbar(w, 0.0, err_vmax, err_cmap, kind="error")))
    return np.concatenate([_titled(tile, title) for title, tile in tiles], axis=0)


def tensorboard_grid(batch: Mapping[str, object], pred, max_images: int = 4,
                     cmap: str = "magma") -> torch.Tensor:
    """An image grid for ``SummaryWriter.add_image`` (CHW, float in [0,1]).

    For each of the first ``max_images`` samples one column of five tiles, top to
    bottom: rgb, sparse input (points on black), prediction, ground truth, error map;
    columns side by side. Depth tiles of a sample share the range of its ground truth
    (else of its sparse input); a missing ``rgb`` or ``gt`` key gives a black tile.

    Args:
        batch: dict with ``sparse`` (B,1,H,W) and optionally ``rgb`` (B,3,H,W) and
            ``gt`` (B,1,H,W) tensors (ARCHITECTURE.md batch layout).
        pred: (B,1,H,W) predicted depth in metres.
        max_images: number of samples shown.
    Returns:
        float32 CPU tensor (3, 5*H, n*W), values in [0,1].
    Raises:
        ShapeError: ``pred`` is not (B,1,H,W) or does not match ``sparse``.
        ValueError: ``max_images < 1``.
    """
    if max_images < 1:
        raise ValueError(f"tensorboard_grid: max_images={max_images}; expected >= 1.")
    p = _to_numpy(pred).astype(np.float32)
    if p.ndim != 4 or p.shape[1] != 1:
        raise ShapeError(f"tensorboard_grid: pred has shape {p.shape}; expected (B,1,H,W).")
    b, _, h, w = p.shape
    sparse = _batch_maps(batch.get("sparse"), "sparse", p.shape)
    gt = _batch_maps(batch.get("gt"), "gt", p.shape)
    rgb = batch.get("rgb")
    rgb = None if rgb is None else _to_numpy(rgb)
    if rgb is not None and (rgb.ndim != 4 or rgb.shape[0] != b or rgb.shape[1] != 3 or rgb.shape[2:] != (h, w)):
        raise ShapeError(f"tensorboard_grid: rgb has shape {rgb.shape}; expected {(b, 3, h, w)}.")
    black = np.zeros((h, w, 3), np.uint8)
    columns = []
    for k in range(min(b, max_images)):
        s_k = sparse[k] if sparse is not None else np.zeros((h, w), np.float32)
        g_k = gt[k] if gt is not None else None
        rng = depth_range(g_k) or depth_range(s_k) or depth_range(p[k, 0]) or (0.0, 1.0)
        tiles = [
            black if rgb is None else _rgb_uint8(rgb[k]),
            sparse_overlay(None, s_k, 0, *rng, cmap),
            colorize_depth(p[k, 0], *rng, cmap),
            black if g_k is None else colorize_depth(g_k, *rng, cmap),
            black if g_k is None else colorize_error(p[k, 0], g_k),
        ]
        columns.append(np.concatenate(tiles, axis=0))
    grid = np.concatenate(columns, axis=1)
    return torch.from_numpy(np.ascontiguousarray(grid.transpose(2, 0, 1))).float().div_(255.0)


# --------------------------------------------------------------------------- helpers


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32 if x.is_floating_point() else x.dtype).numpy()
    return np.asarray(x)


def _as_hw(x, name: str) -> np.ndarray:
    a = _to_numpy(x)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ShapeError(
            f"{name} has shape {_to_numpy(x).shape}; expected one depth map (H,W), (1,H,W) "
            "or (1,1,H,W). Index the batch first, e.g. depth[0]."
        )
    return a.astype(np.float32, copy=False)


def _valid(d: np.ndarray) -> np.ndarray:
    return np.isfinite(d) & (d > 0)


def _resolve_range(d: np.ndarray, valid: np.ndarray, vmin, vmax) -> tuple[float, float]:
    if vmin is None or vmax is None:
        auto = depth_range(np.where(valid, d, 0.0)) or (0.0, 1.0)
        vmin = auto[0] if vmin is None else vmin
        vmax = auto[1] if vmax is None else vmax
    if not float(vmax) > float(vmin):
        raise ValueError(f"display range vmin={vmin}, vmax={vmax}; expected vmin < vmax (metres).")
    return float(vmin), float(vmax)


def _abs_error(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = _valid(g) & np.isfinite(p)
    return np.where(valid, np.abs(p - g), 0.0).astype(np.float32), valid


def _error_vmax(errors: list[np.ndarray]) -> float:
    pooled = np.concatenate([e.ravel() for e in errors]) if errors else np.zeros(0)
    vmax = float(np.percentile(pooled, _PERCENTILES[1])) if pooled.size else 0.0
    return vmax if vmax > 0 else 1e-3  # perfect prediction: everything shows as dark


@lru_cache(maxsize=16)
def _lut(cmap: str) -> np.ndarray:
    import matplotlib

    try:
        cm = matplotlib.colormaps[cmap]
    except KeyError:
        raise KeyError(
            f"unknown colormap {cmap!r}; use a matplotlib name such as 'magma', 'inferno', "
            "'turbo' or 'viridis'."
        ) from None
    table = cm(np.linspace(CMAP_LOW, 1.0, 256))[:, :3]
    return np.clip(np.rint(table * 255.0), 0, 255).astype(np.uint8)


def _apply_cmap(t: np.ndarray, valid: np.ndarray, cmap: str) -> np.ndarray:
    idx = np.rint(np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0) * 255.0).astype(np.intp)
    out = _lut(cmap)[idx]
    out[~valid] = 0
    return out


def _rgb_uint8(rgb) -> np.ndarray:
    a = _to_numpy(rgb)
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ShapeError(f"rgb has shape {_to_numpy(rgb).shape}; expected (H,W,3) or (3,H,W).")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    return np.clip(np.rint(a.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def _num(v: float) -> str:
    return f"{v:.3g}"


def _titled(tile: np.ndarray, title: str) -> np.ndarray:
    # Dark grey, not black: black means "no depth" in the tiles below.
    strip = np.full((PANEL_TITLE_HEIGHT, tile.shape[1], 3), 48, np.uint8)
    cv2.putText(strip, title, (2, PANEL_TITLE_HEIGHT - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def _batch_maps(x, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    if x is None:
        return None
    a = _to_numpy(x).astype(np.float32, copy=False)
    if a.shape != shape:
        raise ShapeError(f"tensorboard_grid: {name} has shape {a.shape}; expected {shape} like pred.")
    return a[:, 0]

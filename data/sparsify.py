"""Density control for sparse depth input: uniform keep-fraction, keep-N, LiDAR beam thinning.

Pure numpy functions on (H,W) float32 depth maps in metres with 0 = missing. Every
random choice comes from an explicit ``np.random.Generator`` so that a dataset can make
its sparsification deterministic per ``(seed, index)``
(``np.random.default_rng([seed, index])``); beam thinning needs no randomness.

Evaluation sweeps (ARCHITECTURE.md section 4, after Uhrig et al. 2017) use

* ``uniform(gt, f, rng)``: a uniform random sample of the valid GT pixels such that
  ``round(f * H * W)`` pixels are valid (capped by how many valid pixels GT has);
* ``keep_n(gt, n, rng)``: exactly ``n`` points (NYU's 500-point protocol);
* ``thin_beams(sparse, K, B)``: a 64-beam scan thinned to ``B`` beams by keeping every
  ``64 / B``-th scan line.

Scan-line grouping (:func:`scanline_ids`). Each valid pixel ``(u, v)`` with depth ``z``
is back-projected with ``K`` into camera coordinates (x right, y down, z forward). The
LiDAR sits ``lidar_height_offset`` = h metres above the camera (KITTI: velodyne ~1.73 m,
camera ~1.65 m above ground, so 0.08 m) and ``lidar_behind_offset`` = b metres behind it
(real KITTI: 0.27 m, from ``Tr_velo_to_cam``; default 0), i.e. at ``(0, -h, -b)``; the
elevation of the point seen from there is ``atan2(-(y + h), hypot(x, z + b))``. (The
KITTI loader reads h and b from ``calib_velo_to_cam.txt``.) Points of one laser share,
up to pixel and depth quantisation, one elevation, while neighbouring lasers of an
HDL-64E are 1/3 to 1/2 degree apart. The method: sort the elevations (highest first),
and split the sorted list at every gap of at least ``min_gap_deg`` degrees, keeping at
most the ``total_beams - 1`` largest such gaps. This needs no guess of how many lasers
fall inside the image (on KITTI only about 40 of 64 do). Lines are numbered 0, 1, ...
from the top (highest elevation) down, over the lines visible in the frame; a laser
that returns nothing in the frame therefore shifts the numbering of those below it,
and thinning keeps every ``64 / B``-th *visible* line.

Ignoring the LiDAR's offsets is not harmless: at 5 m range, 8 cm of height is ~0.9 deg
and, for a ground point, 27 cm of depth another ~0.9 deg, i.e. about two beam spacings,
so near and far points of one laser would be assigned to different lines. Errors the
model does not describe (per-laser offsets of a real HDL-64E, motion during the sweep)
still blur near-range points; when the lines cannot be separated at all,
:func:`thin_beams` warns instead of silently keeping everything.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = [
    "KITTI_K",
    "KITTI_SIZE",
    "uniform",
    "keep_n",
    "thin_beams",
    "scanline_ids",
    "elevation_angles",
    "default_intrinsics",
    "apply_sparsity",
    "check_sparsity_args",
    "LIDAR_HEIGHT_OFFSET",
    "LIDAR_BEHIND_OFFSET",
    "TOTAL_BEAMS",
    "MIN_GAP_DEG",
]

# The LiDAR geometry every function here (and the data sets and sensor patterns) defaults to.
LIDAR_HEIGHT_OFFSET = 0.08
"""Metres the LiDAR sits above the camera (KITTI: velodyne ~1.73 m, camera ~1.65 m above ground)."""

LIDAR_BEHIND_OFFSET = 0.0
"""Metres the LiDAR sits behind the camera (real KITTI: 0.27, from ``Tr_velo_to_cam``)."""

TOTAL_BEAMS = 64
"""Beams of the sensor the scans come from (an HDL-64E); ``beams`` must divide it."""

MIN_GAP_DEG = 0.1
"""Smallest elevation gap (degrees) that separates two scan lines."""

KITTI_K = np.array(
    [[721.5377, 0.0, 609.5593], [0.0, 721.5377, 172.854], [0.0, 0.0, 1.0]], dtype=np.float64
)
"""KITTI ``P_rect_02[:, :3]`` of the 2011_09_26 drives, the usual stand-in for unknown K."""

KITTI_SIZE = (375, 1242)
"""(H, W) of the KITTI image that :data:`KITTI_K` belongs to."""


def uniform(depth: np.ndarray, fraction_of_pixels: float, rng: np.random.Generator) -> np.ndarray:
    """Keep a uniform random sample of valid pixels: ``round(f * H * W)`` of them.

    Args:
        depth: (H,W) depth in metres, 0 = missing (usually the ground truth).
        fraction_of_pixels: target density ``f`` in (0, 1], as a fraction of *all*
            pixels (not of the valid ones), e.g. 0.05 for 5%.
        rng: source of randomness.
    Returns:
        (H,W) float32 copy with all but the sampled pixels set to 0. When ``depth`` has
        fewer valid pixels than requested, all of them are kept.
    Raises:
        ValueError: ``fraction_of_pixels`` outside (0, 1] or ``depth`` not 2-D.
    """
    depth = _check_depth(depth, "uniform")
    f = float(fraction_of_pixels)
    if not (0.0 < f <= 1.0):
        raise ValueError(
            f"uniform: fraction_of_pixels={fraction_of_pixels!r}; expected a density in "
            "(0, 1], e.g. 0.05 for 5% of the pixels."
        )
    return _keep_random(depth, int(round(f * depth.size)), rng)


def keep_n(depth: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Keep exactly ``n`` uniformly chosen valid pixels (all of them if fewer are valid).

    Args:
        depth: (H,W) depth in metres, 0 = missing.
        n: number of points to keep, >= 0.
        rng: source of randomness.
    Returns:
        (H,W) float32 copy with ``min(n, #valid)`` non-zero pixels.
    Raises:
        ValueError: negative or non-integer ``n``.
    """
    depth = _check_depth(depth, "keep_n")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"keep_n: n={n!r}; expected an integer number of points >= 0.")
    return _keep_random(depth, int(n), rng)


def thin_beams(
    depth: np.ndarray,
    K: np.ndarray | None,
    beams: int,
    lidar_height_offset: float = LIDAR_HEIGHT_OFFSET,
    total_beams: int = TOTAL_BEAMS,
    min_gap_deg: float = MIN_GAP_DEG,
    lidar_behind_offset: float = LIDAR_BEHIND_OFFSET,
) -> np.ndarray:
    """Simulate a LiDAR with fewer beams: keep every ``total_beams // beams``-th scan line.

    Args:
        depth: (H,W) sparse LiDAR depth in metres, 0 = missing.
        K: (3,3) camera intrinsics of ``depth``; ``None`` or all zeros uses
            :func:`default_intrinsics` (KITTI scaled to the image).
        beams: beams to keep, a divisor of ``total_beams`` (64, 32, 16, 8, ...).
        lidar_height_offset, total_beams, min_gap_deg, lidar_behind_offset: the LiDAR
            geometry of :func:`scanline_ids`.
    Returns:
        (H,W) float32 copy keeping lines 0, s, 2s, ... (``s = total_beams // beams``,
        numbered from the top, see :func:`scanline_ids`). Deterministic.
    Raises:
        ValueError: ``beams`` not a positive divisor of ``total_beams``; bad ``K``.
    Warns:
        RuntimeWarning: fewer than ``beams`` lines were found in a scan of 500+ points:
            the sensor had fewer than ``total_beams`` beams, or the lines could not be
            separated (wrong ``K`` or offsets).
    """
    depth = _check_depth(depth, "thin_beams")
    if (
        isinstance(beams, bool)
        or not isinstance(beams, (int, np.integer))
        or not 1 <= beams <= total_beams
        or total_beams % beams
    ):
        raise ValueError(
            f"thin_beams: beams={beams!r}; expected a divisor of total_beams={total_beams} "
            "such as 64, 32, 16 or 8."
        )
    if beams == total_beams:
        return depth.copy()
    step = total_beams // int(beams)
    ids = scanline_ids(depth, K, lidar_height_offset, total_beams, min_gap_deg, lidar_behind_offset)
    n_lines = int(ids.max()) + 1
    if n_lines < beams and int((ids >= 0).sum()) >= 500:
        warnings.warn(
            f"thin_beams: only {n_lines} scan line(s) found among {int((ids >= 0).sum())} points, "
            f"fewer than the {beams} beams requested: either the input comes from a sensor with "
            f"fewer than total_beams={total_beams} beams, or its lines are smeared together (check "
            "K and the LiDAR offsets lidar_height_offset / lidar_behind_offset). The thinned "
            f"density will not match a real {beams}-beam sensor.",
            RuntimeWarning,
            stacklevel=2,
        )
    keep = (ids >= 0) & (ids % step == 0)
    return np.where(keep, depth, np.float32(0.0)).astype(np.float32)


def scanline_ids(
    depth: np.ndarray,
    K: np.ndarray | None,
    lidar_height_offset: float = LIDAR_HEIGHT_OFFSET,
    total_beams: int = TOTAL_BEAMS,
    min_gap_deg: float = MIN_GAP_DEG,
    lidar_behind_offset: float = LIDAR_BEHIND_OFFSET,
) -> np.ndarray:
    """Group the valid pixels of a LiDAR depth map into scan lines.

    Args:
        depth: (H,W) sparse depth in metres, 0 = missing.
        K: (3,3) intrinsics or ``None`` / zeros for :func:`default_intrinsics`.
        lidar_height_offset: metres the LiDAR sits above the camera (:data:`LIDAR_HEIGHT_OFFSET`).
        total_beams: beams of the sensor; at most this many lines are formed (:data:`TOTAL_BEAMS`).
        min_gap_deg: elevation gap (degrees) that separates two lines (:data:`MIN_GAP_DEG`).
        lidar_behind_offset: metres the LiDAR sits behind the camera (:data:`LIDAR_BEHIND_OFFSET`).
    Returns:
        (H,W) int32: line index (0 = highest elevation) per valid pixel, -1 elsewhere.
    Raises:
        ValueError: bad ``K`` or ``depth``.
    """
    depth = _check_depth(depth, "scanline_ids")
    ids = np.full(depth.shape, -1, dtype=np.int32)
    valid = depth > 0
    if not valid.any():
        return ids
    v, u = np.nonzero(valid)
    angles = _elevations(u, v, depth[valid], _resolve_K(K, depth.shape), lidar_height_offset, lidar_behind_offset)
    order = np.argsort(-angles, kind="stable")  # highest elevation (top line) first
    gaps = angles[order[:-1]] - angles[order[1:]]  # >= 0
    split = gaps >= math.radians(min_gap_deg)
    max_splits = max(int(total_beams) - 1, 0)
    if split.sum() > max_splits:
        # More candidate gaps than lines the sensor has: keep only the widest ones.
        keep = np.zeros_like(split)
        if max_splits > 0:
            widest = np.argpartition(-gaps, max_splits - 1)[:max_splits]
            keep[widest] = True
        split = keep
    line_sorted = np.concatenate([[0], np.cumsum(split)]).astype(np.int32)
    line = np.empty_like(line_sorted)
    line[order] = line_sorted
    ids[valid] = line
    return ids


def elevation_angles(
    depth: np.ndarray,
    K: np.ndarray | None,
    lidar_height_offset: float = LIDAR_HEIGHT_OFFSET,
    lidar_behind_offset: float = LIDAR_BEHIND_OFFSET,
) -> np.ndarray:
    """Elevation (radians, up positive) of each pixel's 3-D point seen from the LiDAR.

    Args:
        depth: (H,W) depth (camera z) in metres.
        K: (3,3) intrinsics, or ``None`` / zeros for :func:`default_intrinsics`.
        lidar_height_offset: metres the LiDAR sits above the camera (``h``).
        lidar_behind_offset: metres the LiDAR sits behind the camera (``b``).
    Returns:
        (H,W) float64 ``atan2(-(y + h), hypot(x, z + b))`` with (x, y, z) the
        back-projected point (y down); meaningless where depth is 0.
    """
    depth = _check_depth(depth, "elevation_angles")
    v, u = np.mgrid[0 : depth.shape[0], 0 : depth.shape[1]]
    K = _resolve_K(K, depth.shape)
    return _elevations(u, v, depth, K, lidar_height_offset, lidar_behind_offset)


def default_intrinsics(height: int, width: int) -> np.ndarray:
    """KITTI-like intrinsics scaled to an image of ``height`` x ``width`` pixels.

    The focal length scales with the width (square pixels are kept); the principal
    point keeps KITTI's relative position.

    Returns:
        (3,3) float64 K.
    """
    kh, kw = KITTI_SIZE
    s = width / kw
    K = KITTI_K.copy()
    K[0, 0] = K[1, 1] = KITTI_K[0, 0] * s
    K[0, 2] = KITTI_K[0, 2] * s
    K[1, 2] = KITTI_K[1, 2] * height / kh
    return K


def apply_sparsity(
    sparse: np.ndarray | None,
    gt: np.ndarray | None,
    K: np.ndarray | None,
    rng: np.random.Generator,
    density: float | None = None,
    beams: int | None = None,
    num_points: int | None = None,
    lidar_height_offset: float = LIDAR_HEIGHT_OFFSET,
    lidar_behind_offset: float = LIDAR_BEHIND_OFFSET,
) -> np.ndarray:
    """The sparse input a dataset yields under one sparsity setting (full frame).

    Args:
        sparse: (H,W) measured sparse depth, or ``None`` when the data set has none.
        gt: (H,W) ground truth, or ``None`` (e.g. KITTI's test split).
        K: (3,3) intrinsics or ``None`` / zeros (used only by ``beams``).
        rng: source of randomness, e.g. ``np.random.default_rng([seed, index])``.
        density: sample ``uniform(source, density)``; ``source`` is ``gt`` when
            available, otherwise ``sparse``.
        beams: ``thin_beams(sparse, K, beams)``.
        num_points: ``keep_n(source, num_points)``.
        lidar_height_offset, lidar_behind_offset: LiDAR mount for ``beams``.
    Returns:
        (H,W) float32 sparse depth; ``sparse`` itself (as float32) when no option is set.
    Raises:
        ValueError: more than one option, invalid values, or nothing to sample from.
    """
    check_sparsity_args(density, beams, num_points)
    if density is None and num_points is None:
        if beams is not None:
            if sparse is None:
                raise ValueError("beams thinning needs a measured sparse input; this sample has none.")
            return thin_beams(
                sparse, K, beams, lidar_height_offset=lidar_height_offset, lidar_behind_offset=lidar_behind_offset
            )
        if sparse is None:
            raise ValueError("no sparse input and no density/num_points to sample one from GT.")
        return np.asarray(sparse, dtype=np.float32)
    source = gt if gt is not None else sparse
    if source is None:
        raise ValueError("density/num_points need ground truth or a sparse input to sample from.")
    if density is not None:
        return uniform(source, density, rng)
    return keep_n(source, num_points, rng)


def check_sparsity_args(density: float | None, beams: int | None, num_points: int | None) -> None:
    """Validate the sparsity options of :func:`apply_sparsity`.

    Raises:
        ValueError: more than one of ``density``, ``beams``, ``num_points`` set, or a value
            out of range (density in (0,1]; beams in 64/32/16/8/...; num_points >= 0).
    """
    given = [n for n, v in (("density", density), ("beams", beams), ("num_points", num_points)) if v is not None]
    if len(given) > 1:
        raise ValueError(
            f"sparsity options {given} were all set; choose one: density (fraction of "
            "pixels sampled from GT), num_points (exact count from GT) or beams "
            "(scan-line thinning of the LiDAR input)."
        )
    if density is not None and not (isinstance(density, (int, float, np.floating)) and 0.0 < float(density) <= 1.0):
        raise ValueError(f"density={density!r}; expected a fraction of pixels in (0, 1], e.g. 0.05.")
    if beams is not None and (
        isinstance(beams, bool) or not isinstance(beams, (int, np.integer)) or not 1 <= beams <= TOTAL_BEAMS
        or TOTAL_BEAMS % beams
    ):
        raise ValueError(f"beams={beams!r}; expected a divisor of {TOTAL_BEAMS} such as 64, 32, 16 or 8.")
    if num_points is not None and (
        isinstance(num_points, bool) or not isinstance(num_points, (int, np.integer)) or num_points < 0
    ):
        raise ValueError(f"num_points={num_points!r}; expected an integer >= 0, e.g. 500.")


# --------------------------------------------------------------------------- helpers


def _elevations(u, v, z, K: np.ndarray, height: float, behind: float) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    x = (np.asarray(u, np.float64) - K[0, 2]) * z / K[0, 0]
    y = (np.asarray(v, np.float64) - K[1, 2]) * z / K[1, 1]
    return np.arctan2(-(y + float(height)), np.hypot(x, z + float(behind)))


def _keep_random(depth: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    flat = depth.reshape(-1)
    valid = np.flatnonzero(flat > 0)
    out = np.zeros(flat.shape, dtype=np.float32)
    if n >= valid.size:
        out[valid] = flat[valid]
    elif n > 0:
        chosen = rng.choice(valid, size=n, replace=False)
        out[chosen] = flat[chosen]
    return out.reshape(depth.shape)


def _check_depth(depth: np.ndarray, fn: str) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"{fn}: depth must be (H,W); got shape {depth.shape}.")
    return depth.astype(np.float32, copy=False)


def _resolve_K(K: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if K is None:
        return default_intrinsics(*shape)
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K must be (3,3); got shape {K.shape}.")
    if not np.any(K):
        return default_intrinsics(*shape)
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise ValueError(f"K has non-positive focal lengths fx={K[0, 0]}, fy={K[1, 1]}.")
    return K

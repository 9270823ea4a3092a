"""Real LiDAR scans: Velodyne ``.bin`` files, KITTI calibration, projection, rings, hold-out.

The one place where a real scan becomes sparse depth (ARCHITECTURE.md section 6).

Files:

* a scan is KITTI's Velodyne format: N x 4 little-endian float32 ``(x, y, z,
  reflectance)`` in the LiDAR frame (x forward, y left, z up; metres), 16 bytes a point
  (:func:`read_velodyne`);
* a calibration (:func:`read_calibration`) comes in one of KITTI's two styles:

  - KITTI object: one file with ``P2`` (3x4), ``R0_rect`` (3x3) and ``Tr_velo_to_cam``
    (3x4) lines, ``name: v v v ...``;
  - KITTI raw: ``calib_cam_to_cam.txt`` (``P_rect_02``, ``R_rect_00``) plus
    ``calib_velo_to_cam.txt`` (``R`` 3x3, ``T`` 3x1) in the same folder.

  Every key appears once: a key given twice (even with the same values) or a key that
  is not one word is an error naming the file and the key, never the last line wins.

Projection (:func:`project_points`): ``x_img = P2 . R0_rect . Tr_velo_to_cam . [x y z 1]``;
a point is kept when its camera depth ``z = x_img[2]`` exceeds 0.1 m and its pixel
``(round(x_img[0]/z), round(x_img[1]/z))`` lies inside the image; where several points
land in one pixel the nearest wins. Depth maps are metres, float32, 0 = no point.

Rings (:func:`ring_ids`). KITTI stores a scan ring after ring (laser by laser), each ring
a full turn that starts and ends in front of the car. A new ring starts where the azimuth
``atan2(y, x)`` crosses from below 0 to 0 or above with both points within 30 degrees of
0; ring 0 is the top beam and a full HDL-64E scan has 64. Because every ring starts and
ends in front of the car, a scan cropped to the camera's view keeps its ring boundaries
(and gets the same rings). A scan where the rule gives an implausible count (a crop
without the front, points in another order, another sensor) is a :class:`LidarError`,
never a silent wrong split.

Hold-out (:func:`holdout_split`), for scoring a completion on a real scan without dense
ground truth: ``beams:K`` gives the model the rings with ``ring % K == phase`` and scores
it at the pixels of the other rings (pixels holding an input point are dropped from the
target); ``points:F`` holds out a seeded random fraction F of the points (for scans
without rings). ``--beams N`` thinning keeps every (64/N)-th ring (:func:`keep_rings`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depthsense.errors import DepthFileError
from depthsense.io import parse_key_values

__all__ = [
    "LidarError",
    "LidarWarning",
    "Calibration",
    "ProjectedScan",
    "HoldoutSpec",
    "FULL_SCAN_RINGS",
    "MIN_DEPTH",
    "MAX_RANGE",
    "MAX_REFLECTANCE",
    "MIN_IN_IMAGE",
    "read_velodyne",
    "read_calibration",
    "project_points",
    "project_file",
    "ring_ids",
    "keep_rings",
    "parse_holdout",
    "holdout_split",
]

FULL_SCAN_RINGS = 64
"""Rings (laser beams) of a complete HDL-64E scan."""

MIN_DEPTH = 0.1
"""Camera depth (m) a point must exceed to be projected."""

MAX_RANGE = 500.0
"""Largest plausible |x|, |y| or |z| (m) of a return: no automotive LiDAR reaches it (the
HDL-64E ~120 m). A coordinate beyond it means a file in another format (float64,
big-endian, millimetres), never a real point."""

MAX_REFLECTANCE = 255.0
"""Reflectance is 0..1 in KITTI and 0..255 (intensity) in some exports; outside 0..255
the column is not reflectance."""

MIN_IN_IMAGE = 0.01
"""A scan of 1000 points or more with a smaller fraction landing in the image gets a
warning (a full KITTI scan puts 14-18 % there, a front crop more)."""

_RING_WINDOW_DEG = 30.0  # both sides of a ring start lie within this of azimuth 0
_MIN_RINGS, _MAX_RINGS = 60, 68  # plausible ring counts of a full 64-beam scan
_OBJECT_KEYS = ("P{cam}", "R0_rect", "Tr_velo_to_cam")
_RAW_CAM_FILE = "calib_cam_to_cam.txt"
_RAW_VELO_FILE = "calib_velo_to_cam.txt"


class LidarError(DepthFileError):
    """A scan or calibration cannot be used (names the file, what is wrong and the fix)."""


class LidarWarning(UserWarning):
    """A scan that projects but probably not as meant (one line naming the file)."""


@dataclass(frozen=True)
class Calibration:
    """Camera projection of LiDAR points.

    Attributes:
        P: (3,4) rectified projection of the camera (``P2`` / ``P_rect_02``).
        R0: (3,3) rectifying rotation (``R0_rect`` / ``R_rect_00``).
        Tr: (3,4) LiDAR -> camera rigid transform (``Tr_velo_to_cam`` / ``[R | T]``).
        source: the file(s) it was read from, for messages.
    """

    P: np.ndarray
    R0: np.ndarray
    Tr: np.ndarray
    source: str = ""

    @property
    def velo_to_image(self) -> np.ndarray:
        """(3,4) float64 ``P . [R0 0; 0 1] . [Tr; 0 0 0 1]``."""
        r0 = np.eye(4)
        r0[:3, :3] = self.R0
        tr = np.eye(4)
        tr[:3, :] = self.Tr
        return self.P @ r0 @ tr

    @property
    def K(self) -> np.ndarray:
        """(3,3) float32 intrinsics of the rectified camera, ``P[:, :3]``."""
        return np.asarray(self.P[:, :3], np.float32)

    @property
    def lidar_offsets(self) -> tuple[float, float]:
        """(metres above, metres behind) the camera of the LiDAR origin."""
        origin = self.R0 @ self.Tr[:, 3]  # LiDAR origin in rectified camera coordinates
        return float(-origin[1]), float(-origin[2])


@dataclass(frozen=True)
class ProjectedScan:
    """The points of one scan that fall inside an image.

    Attributes:
        rows, cols: (M,) int64 pixel of each kept point.
        depth: (M,) float32 camera depth in metres.
        index: (M,) int64 position of each kept point in the scan file (for rings).
        size: (H, W) of the image.
    """

    rows: np.ndarray
    cols: np.ndarray
    depth: np.ndarray
    index: np.ndarray
    size: tuple[int, int]

    def depth_map(self, keep: np.ndarray | None = None) -> np.ndarray:
        """(H,W) float32 metres of the kept points (all when ``keep`` is None), 0 elsewhere;
        where several points share a pixel the nearest wins.

        Args:
            keep: (M,) bool selection of points.
        """
        h, w = self.size
        out = np.zeros(h * w, np.float32)
        sel = slice(None) if keep is None else np.asarray(keep, bool)
        pix = self.rows[sel] * w + self.cols[sel]
        depth = self.depth[sel]
        if pix.size:
            # Sort by pixel, then depth: the first entry of each pixel is its nearest point
            # (deterministic, unlike fancy assignment with repeated indices).
            order = np.lexsort((depth, pix))
            pix, depth = pix[order], depth[order]
            first = np.ones(pix.size, bool)
            first[1:] = pix[1:] != pix[:-1]
            out[pix[first]] = depth[first]
        return out.reshape(h, w)


@dataclass(frozen=True)
class HoldoutSpec:
    """A parsed hold-out: ``kind`` ``"beams"`` with integer ``k``, or ``"points"`` with
    ``fraction`` in (0, 1). ``str(spec)`` gives the spec back (``"beams:2"``)."""

    kind: str
    k: int = 0
    fraction: float = 0.0

    def __str__(self) -> str:
        return f"beams:{self.k}" if self.kind == "beams" else f"points:{self.fraction:g}"

    @property
    def needs_rings(self) -> bool:
        return self.kind == "beams"


def read_velodyne(path: str | os.PathLike) -> np.ndarray:
    """Read a KITTI Velodyne scan and check that it is one.

    Args:
        path: ``.bin`` file of N x 4 little-endian float32 (x, y, z, reflectance).
    Returns:
        (N,4) float32.
    Raises:
        LidarError: missing/unreadable file, an empty scan, a size that is not a multiple
            of 16 bytes, or values no LiDAR gives: NaN/Inf, a coordinate beyond
            :data:`MAX_RANGE`, a reflectance outside 0..:data:`MAX_REFLECTANCE`. The
            message names the likely cause when the bytes fit another layout ("looks like
            float64: re-save as float32 N x 4", big-endian, N x 3, millimetres).
    """
    path = Path(path)
    raw = _read_bytes(path, "scan", "a Velodyne scan file (.bin, N x 4 float32)")
    if len(raw) == 0:
        raise LidarError(f"{path}: empty scan (0 bytes); expected N x 4 float32 (x, y, z, reflectance).")
    if len(raw) % 16:
        raise LidarError(
            f"{path}: {len(raw)} bytes is not a multiple of 16; a KITTI Velodyne scan is N x 4 float32 "
            f"(x, y, z, reflectance). {_likely_layout(raw)}"
        )
    pts = np.frombuffer(raw, dtype="<f4").reshape(-1, 4).astype(np.float32)
    problem = _implausible(pts)
    if problem:
        raise LidarError(f"{path}: {problem}. {_likely_layout(raw)}")
    return pts


def read_calibration(path: str | os.PathLike, camera: int = 2) -> Calibration:
    """Read a KITTI calibration in either style (see the module docstring).

    Args:
        path: a KITTI-object calibration file (``calib/000000.txt``), a KITTI-raw
            ``calib_cam_to_cam.txt`` (its ``calib_velo_to_cam.txt`` must sit next to it),
            or a folder holding both raw files.
        camera: camera index of ``P<camera>`` / ``P_rect_0<camera>`` (2 = left colour).
    Returns:
        The :class:`Calibration`.
    Raises:
        LidarError: missing file, a missing key (named), a key given twice or not one word
            (:func:`depthsense.io.parse_key_values`), a matrix with the wrong number of
            values, or non-numeric values.
    """
    path = Path(path)
    if path.is_dir():
        cam_file, velo_file = path / _RAW_CAM_FILE, path / _RAW_VELO_FILE
        if not cam_file.is_file():
            raise LidarError(
                f"{path}: folder holds no {_RAW_CAM_FILE}; pass a KITTI-object calib/<id>.txt or the "
                f"KITTI-raw date folder with {_RAW_CAM_FILE} and {_RAW_VELO_FILE}."
            )
        return _read_raw(cam_file, velo_file, camera)
    values = _read_key_values(path)
    if path.name == _RAW_CAM_FILE or (f"P_rect_0{camera}" in values and f"P{camera}" not in values):
        return _read_raw(path, path.with_name(_RAW_VELO_FILE), camera, values)
    keys = [k.format(cam=camera) for k in _OBJECT_KEYS]
    missing = [k for k in keys if k not in values]
    if missing:
        raise LidarError(
            f"{path}: calibration has no {', '.join(repr(k) for k in missing)} line; a KITTI-object "
            f"calibration holds {', '.join(keys)} (or pass KITTI-raw {_RAW_CAM_FILE} with {_RAW_VELO_FILE})."
        )
    return Calibration(
        P=_matrix(values, keys[0], (3, 4), path),
        R0=_matrix(values, "R0_rect", (3, 3), path),
        Tr=_matrix(values, "Tr_velo_to_cam", (3, 4), path),
        source=str(path),
    )


def project_points(points: np.ndarray, calib: Calibration, size: tuple[int, int]) -> ProjectedScan:
    """Project LiDAR points into an image of ``size`` (see the module docstring).

    Args:
        points: (N,>=3) x, y, z in the LiDAR frame, metres.
        calib: the camera projection.
        size: (H, W) of the image.
    Returns:
        The :class:`ProjectedScan` of the points in front of the camera and inside the image.
    """
    h, w = int(size[0]), int(size[1])
    xyz1 = np.empty((len(points), 4), np.float64)
    xyz1[:, :3] = points[:, :3]
    xyz1[:, 3] = 1.0
    img = xyz1 @ calib.velo_to_image.T
    z = img[:, 2]
    front = z > MIN_DEPTH
    idx = np.flatnonzero(front)
    z = z[idx]
    u = np.round(img[idx, 0] / z)
    v = np.round(img[idx, 1] / z)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    return ProjectedScan(
        rows=v[inside].astype(np.int64),
        cols=u[inside].astype(np.int64),
        depth=z[inside].astype(np.float32),
        index=idx[inside],
        size=(h, w),
    )


def project_file(path: str | os.PathLike, calib: Calibration, size: tuple[int, int]) -> tuple[np.ndarray, ProjectedScan]:
    """Read a scan file and project it (:func:`read_velodyne` + :func:`project_points`).

    Returns:
        ``(points, scan)``: the (N,4) scan in file order and its projection.
    Raises:
        LidarError: a bad file (see :func:`read_velodyne`), or no point of the scan lands in
            the image (the scan, calibration and image do not belong together).
    Warns:
        LidarWarning: fewer than :data:`MIN_IN_IMAGE` of a scan's points (1000 or more)
            land in the image: a near-empty depth map is almost always a wrong file.
    """
    points = read_velodyne(path)
    scan = project_points(points, calib, size)
    if scan.depth.size == 0:
        raise LidarError(
            f"{path}: none of its {len(points)} points lands in the {size[1]}x{size[0]} image with the "
            f"calibration {calib.source or '(given)'}; the scan, calibration and image do not belong together."
        )
    if len(points) >= 1000 and scan.depth.size < MIN_IN_IMAGE * len(points):
        warnings.warn(
            f"{path}: only {scan.depth.size} of its {len(points)} points ({100 * scan.depth.size / len(points):.2f}%) "
            f"land in the {size[1]}x{size[0]} image (a full KITTI scan puts 14-18% there); check that the scan "
            f"(N x 4 float32), the calibration {calib.source or '(given)'} and the image size belong together",
            LidarWarning, stacklevel=2,
        )
    return points, scan


def ring_ids(points: np.ndarray, source: str | os.PathLike = "<scan>", expected: int = FULL_SCAN_RINGS) -> np.ndarray:
    """The laser ring of every point of a KITTI-ordered scan (0 = top beam).

    Args:
        points: (N,>=2) the scan in file order.
        source: file name for the error message.
        expected: rings of a full scan (64 for the HDL-64E).
    Returns:
        (N,) int64 ring ids 0..R-1.
    Raises:
        LidarError: the rule finds an implausible number of rings (not within 60-68 for 64
            beams), e.g. a scan cropped to a view without the front, or re-ordered points.
    """
    az = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
    prev, nxt = az[:-1], az[1:]
    start = (prev < 0) & (nxt >= 0) & (prev > -_RING_WINDOW_DEG) & (nxt < _RING_WINDOW_DEG)
    rings = np.zeros(len(points), np.int64)
    rings[1:] = np.cumsum(start)
    count = int(rings[-1]) + 1 if len(points) else 0
    lo, hi = (_MIN_RINGS, _MAX_RINGS) if expected == FULL_SCAN_RINGS else (expected, expected)
    if not lo <= count <= hi:
        raise LidarError(
            f"{source}: found {count} laser rings where a full {expected}-beam scan has {expected}; ring-based "
            "hold-out and --beams need a scan stored ring after ring, as KITTI's .bin (full, or cropped to the "
            "front). For other scans use a points:F hold-out."
        )
    return rings


def keep_rings(rings: np.ndarray, beams: int, total: int = FULL_SCAN_RINGS) -> np.ndarray:
    """(N,) bool: the points of every ``total // beams``-th ring (ring % step == 0).

    Raises:
        ValueError: ``beams`` does not divide ``total``.
    """
    if isinstance(beams, bool) or not isinstance(beams, (int, np.integer)) or beams < 1 or total % beams:
        raise ValueError(f"beams={beams!r} is not a divisor of {total}; use e.g. 32, 16 or 8")
    return rings % (total // int(beams)) == 0


def parse_holdout(spec: str) -> HoldoutSpec:
    """Parse ``"beams:K"`` (K = 2, 4, 8, 16, 32 or 64: divides the 64 rings) or ``"points:F"`` (0 < F < 1).

    Raises:
        ValueError: anything else (what is wrong, then the accepted forms, which agree).
    """
    text = str(spec).strip()
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    form = "use beams:K with K = 2, 4, 8, 16, 32 or 64 (e.g. beams:2) or points:F with 0 < F < 1 (e.g. points:0.5)"
    if not sep:
        raise ValueError(f"hold-out {text!r} does not parse; {form}")
    if kind == "beams":
        try:
            k = int(value)
        except ValueError:
            raise ValueError(f"hold-out {text!r}: K must be an integer; {form}") from None
        if k < 2 or FULL_SCAN_RINGS % k:
            why = "K = 1 holds no ring out" if k == 1 else (f"K = {k} does not divide the 64 rings" if k > 1
                                                              else "K must be positive")
            raise ValueError(f"hold-out {text!r}: {why}; {form}")
        return HoldoutSpec("beams", k=k)
    if kind == "points":
        try:
            f = float(value)
        except ValueError:
            raise ValueError(f"hold-out {text!r}: F must be a number; {form}") from None
        if not 0.0 < f < 1.0:
            raise ValueError(f"hold-out {text!r}: F must be in (0, 1); {form}")
        return HoldoutSpec("points", fraction=f)
    raise ValueError(f"hold-out {text!r}: unknown kind {kind!r}; {form}")


def holdout_split(
    scan: ProjectedScan,
    spec: HoldoutSpec,
    rings: np.ndarray | None = None,
    phase: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a projected scan into model input and scoring target.

    Args:
        scan: the projected scan.
        spec: ``beams:K`` or ``points:F``.
        rings: (N,) ring id of every point *of the whole scan* (:func:`ring_ids`); needed
            for ``beams``.
        phase: ``beams`` only: the input is the rings with ``ring % K == phase``.
        rng: ``points`` only: the source of the random choice (seed it for repeatability).
    Returns:
        ``(input, target)``, (H,W) float32 metres each; no pixel is valid in both (target
        pixels that hold an input point are dropped).
    Raises:
        ValueError: ``beams`` without ``rings``, a phase outside 0..K-1, ``points`` without
            ``rng``.
    """
    if spec.kind == "beams":
        if rings is None:
            raise ValueError("beams hold-out needs the scan's ring ids (ring_ids)")
        if not 0 <= phase < spec.k:
            raise ValueError(f"phase {phase} outside 0..{spec.k - 1} for {spec}")
        is_input = rings[scan.index] % spec.k == phase
    else:
        if rng is None:
            raise ValueError("points hold-out needs a seeded numpy Generator (rng)")
        is_input = rng.random(scan.depth.size) >= spec.fraction
    inp = scan.depth_map(is_input)
    target = scan.depth_map(~is_input)
    target[inp > 0] = 0.0
    return inp, target


# --------------------------------------------------------------------------- helpers


def _read_bytes(path: Path, what: str, expected: str) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise LidarError(f"{path}: is a folder; expected {expected}.") from None
    except FileNotFoundError:
        raise LidarError(f"{path}: {what} file not found; pass {expected}.") from None
    except OSError as exc:
        raise LidarError(f"{path}: cannot read the {what} ({exc.strerror}).") from None


def _implausible(pts: np.ndarray) -> str:
    """What no LiDAR gives in (N,4) points: '' when nothing, else one clause."""
    n = len(pts)
    bad = ~np.isfinite(pts[:, :3]).all(axis=1)
    if bad.any():
        return f"{int(bad.sum())} of {n} points have NaN/Inf coordinates (first at point {int(np.argmax(bad))})"
    bad = ~np.isfinite(pts[:, 3])
    if bad.any():
        return f"{int(bad.sum())} of {n} points have a NaN/Inf reflectance (first at point {int(np.argmax(bad))})"
    far = np.abs(pts[:, :3]).max(axis=1) > MAX_RANGE
    if far.any():
        return (f"{int(far.sum())} of {n} points lie beyond {MAX_RANGE:g} m (up to {float(np.abs(pts[:, :3]).max()):.3g} "
                f"m), farther than any LiDAR measures")
    lo, hi = float(pts[:, 3].min()), float(pts[:, 3].max())
    if lo < 0 or hi > MAX_REFLECTANCE:
        return (f"its reflectance column spans {lo:.3g}..{hi:.3g}, outside 0..{MAX_REFLECTANCE:g} (KITTI: 0..1), "
                "so it is not reflectance")
    return ""


def _likely_layout(raw: bytes) -> str:
    """The sentence naming what the bytes probably are, and the fix."""
    def fits(dtype: str, cols: int, scale: float = 1.0) -> bool:
        if len(raw) % (np.dtype(dtype).itemsize * cols):
            return False
        with np.errstate(all="ignore"):  # garbage read as numbers overflows; that is the point
            pts = np.frombuffer(raw, dtype=dtype).reshape(-1, cols).astype(np.float64)
            if cols == 3:
                pts = np.concatenate([pts, np.zeros((len(pts), 1))], 1)
            pts[:, :3] /= scale
            # a real scan: nothing implausible, and most points more than 1 m away
            return len(pts) > 0 and not _implausible(pts) and bool((np.abs(pts[:, :3]).max(axis=1) > 1.0).mean() > 0.5)
    fix = "re-save it as N x 4 little-endian float32 (x, y, z, reflectance), e.g. points.astype('<f4').tofile(path)"
    if fits("<f8", 4):
        return f"It looks like float64: {fix}."
    if fits(">f4", 4):
        return f"It looks like big-endian float32: {fix}."
    if fits("<f4", 3):
        return f"It looks like N x 3 float32 (no reflectance column): {fix}."
    if fits("<f4", 4, 1000.0):
        return "Its x, y, z look like millimetres: divide them by 1000 and re-save as N x 4 float32 metres."
    if len(raw) % 8 == 0 and (fits("<f2", 4) or fits("<i2", 4)):
        return f"It looks like N x 4 2-byte values (float16/int16): {fix}."
    return "The file is truncated, corrupt or not a KITTI Velodyne .bin: re-extract it."


def _read_key_values(path: Path) -> dict[str, str]:
    text = _read_bytes(path, "calibration", "KITTI's calib/<id>.txt or calib_cam_to_cam.txt").decode(
        "utf-8", errors="replace")
    try:
        return parse_key_values(text, path)
    except DepthFileError as exc:  # a key given twice, ... : LidarError like every calibration problem here
        raise LidarError(str(exc)) from None


def _matrix(values: dict[str, str], key: str, shape: tuple[int, int], path: Path) -> np.ndarray:
    try:
        nums = np.array([float(v) for v in values[key].split()], np.float64)
    except ValueError:
        raise LidarError(f"{path}: '{key}' holds non-numeric values; expected {shape[0] * shape[1]} numbers.") from None
    if nums.size != shape[0] * shape[1]:
        raise LidarError(
            f"{path}: '{key}' has {nums.size} values; a {shape[0]}x{shape[1]} matrix needs "
            f"{shape[0] * shape[1]} (row-major). Re-extract the calibration file."
        )
    if not np.isfinite(nums).all():
        raise LidarError(f"{path}: '{key}' holds NaN/Inf values. Re-extract the calibration file.")
    return nums.reshape(shape)


def _read_raw(cam_file: Path, velo_file: Path, camera: int, cam_values: dict[str, str] | None = None) -> Calibration:
    cam_values = _read_key_values(cam_file) if cam_values is None else cam_values
    p_key = f"P_rect_0{camera}"
    missing = [k for k in (p_key, "R_rect_00") if k not in cam_values]
    if missing:
        raise LidarError(
            f"{cam_file}: calibration has no {', '.join(repr(k) for k in missing)} line; KITTI-raw "
            f"{_RAW_CAM_FILE} holds {p_key} and R_rect_00."
        )
    if not velo_file.is_file():
        raise LidarError(
            f"{velo_file}: not found; KITTI-raw calibration needs {_RAW_VELO_FILE} (R, T) next to {cam_file.name}."
        )
    velo_values = _read_key_values(velo_file)
    missing = [k for k in ("R", "T") if k not in velo_values]
    if missing:
        raise LidarError(
            f"{velo_file}: calibration has no {', '.join(repr(k) for k in missing)} line; "
            f"{_RAW_VELO_FILE} holds R (3x3) and T (3x1)."
        )
    tr = np.concatenate([_matrix(velo_values, "R", (3, 3), velo_file), _matrix(velo_values, "T", (3, 1), velo_file)], 1)
    return Calibration(
        P=_matrix(cam_values, p_key, (3, 4), cam_file),
        R0=_matrix(cam_values, "R_rect_00", (3, 3), cam_file),
        Tr=tr,
        source=f"{cam_file} + {velo_file.name}",
    )

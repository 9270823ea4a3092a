"""Reading and writing depth maps, RGB images, HDF5 samples and intrinsics.

Depth on disk follows the KITTI depth-completion convention: a single-channel 16-bit
PNG whose value is ``round(depth_m * 256)``; 0 means "no measurement". In memory depth
is float32 metres with 0 for missing (ARCHITECTURE.md section 2).

Every reader validates what it is handed and raises :class:`DepthFileError` whose
message names the file, what was found, what was expected and the fix. Every writer
writes a temporary file in the destination directory and ``os.replace``-s it, so a
crash never leaves half a file under the real name.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import cv2
import numpy as np

from depthsense.atomic import (  # re-exported: io has always been where writers came from
    WriteError,
    atomic_output,
    atomic_outputs,
    atomic_write_bytes,
    atomic_write_files,
    os_error_in,
    remove_stale_temps,
)
from depthsense.errors import DepthFileError, ShapeError

__all__ = [
    "DepthFileError",
    "ShapeError",
    "WriteError",
    "KITTI_DEPTH_SCALE",
    "MAX_DEPTH_M",
    "MAX_PIXELS",
    "MAX_SIDE",
    "DepthUnit",
    "DEPTH_UNITS",
    "parse_depth_unit",
    "read_depth",
    "write_depth",
    "read_rgb",
    "write_rgb",
    "encode_rgb",
    "write_image",
    "read_mask",
    "write_mask",
    "encode_mask",
    "encode_depth",
    "encode_image",
    "read_h5",
    "read_intrinsics",
    "parse_key_values",
    "atomic_write_bytes",
    "atomic_output",
    "atomic_write_files",
    "atomic_outputs",
    "remove_stale_temps",
    "os_error_in",
    "png_info",
    "quiet_stderr",
]

KITTI_DEPTH_SCALE = 256.0
"""On-disk value = round(depth_m * KITTI_DEPTH_SCALE)."""

MAX_DEPTH_M = 65535 / KITTI_DEPTH_SCALE
"""Largest depth a KITTI uint16 PNG can hold (255.996 m)."""

DEPTH_UNITS: dict[str, float] = {"kitti": KITTI_DEPTH_SCALE, "mm": 1000.0, "tum": 5000.0}
"""Named depth-PNG units: stored value per metre (KITTI m x 256; RealSense, Kinect and NYU
millimetres; TUM RGB-D m x 5000). A ``.npy`` file always holds float metres."""

PLAUSIBLE_DEPTH_M = 1000.0
"""No depth sensor we read measures beyond this: a larger value means a wrong unit."""


@dataclass(frozen=True)
class DepthUnit:
    """How a depth PNG stores metres: ``value = round(depth_m * scale)``.

    Attributes:
        name: ``kitti``, ``mm``, ``tum`` or the scale as text (``--depth-scale 4000``).
        scale: stored value per metre (> 0).
    """

    name: str
    scale: float

    def __str__(self) -> str:
        return self.name if self.name in DEPTH_UNITS else f"scale {self.scale:g}/m"

    @property
    def max_m(self) -> float:
        """Largest depth a uint16 PNG holds in this unit (metres)."""
        return 65535.0 / self.scale


def parse_depth_unit(spec: "str | float | DepthUnit | None" = None) -> DepthUnit:
    """``"kitti"`` (default), ``"mm"``, ``"tum"`` or a positive number of stored values per metre.

    Raises:
        ValueError: an unknown name or a scale that is not a positive finite number.
    """
    if isinstance(spec, DepthUnit):
        return spec
    if spec is None:
        return DepthUnit("kitti", KITTI_DEPTH_SCALE)
    text = str(spec).strip().lower()
    if text in DEPTH_UNITS:
        return DepthUnit(text, DEPTH_UNITS[text])
    try:
        scale = float(text)
    except ValueError:
        raise ValueError(f"depth unit {spec!r} is unknown; use kitti (m x 256), mm (millimetres: RealSense, Kinect, "
                         "NYU), tum (m x 5000) or a number of stored values per metre") from None
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"depth scale {spec!r} must be a positive number of stored values per metre (e.g. 1000 "
                         "for millimetres)")
    named = [k for k, v in DEPTH_UNITS.items() if v == scale]
    return DepthUnit(named[0] if named else f"{scale:g}", scale)

MAX_PIXELS = 100_000_000
"""Largest image (H x W) read or made: absurd sizes are refused before any memory is allocated."""
MAX_SIDE = 1_000_000
"""Longest PNG side libpng writes or reads (its default user limit)."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}


# --------------------------------------------------------------------------- depth


def read_depth(path: str | os.PathLike, unit: "str | float | DepthUnit | None" = None) -> np.ndarray:
    """Read a depth map: a 16-bit PNG in ``unit`` (default KITTI) or a ``.npy`` of metres.

    Args:
        path: a single-channel 16-bit PNG, value = round(depth * unit scale), 0 = invalid;
            or a ``.npy`` (H,W) float array in metres (0, NaN or Inf = invalid).
        unit: the PNG's unit (:func:`parse_depth_unit`): ``kitti`` (m x 256, default),
            ``mm``, ``tum`` (m x 5000) or a scale; ignored for ``.npy``.
    Returns:
        (H,W) float32 depth in metres; 0 where invalid.
    Raises:
        DepthFileError: missing file, not a PNG, truncated PNG, 8-bit or multi-channel
            PNG, a ``.npy`` that is not a 2-D number array, negative depth, or depth beyond
            any sensor's range in the given unit (the message names the file and the fix).
    """
    path = Path(path)
    unit = parse_depth_unit(unit)
    if path.suffix.lower() == ".npy":
        return _read_depth_npy(path)
    data = _read_bytes(path, "depth map")
    info = png_info(data, path)
    if info["bit_depth"] != 16:
        raise DepthFileError(
            f"{path}: {info['bit_depth']}-bit {info['colour']} PNG; KITTI depth is a "
            "16-bit single-channel PNG (value = depth*256). Re-save it as uint16 "
            "(e.g. depthsense.io.write_depth), not as an 8-bit visualisation."
        )
    if info["colour_type"] != 0:
        raise DepthFileError(
            f"{path}: 16-bit {info['colour']} PNG; depth must be a single-channel "
            "(greyscale) PNG. Did you pass the colourised preview or the RGB image? "
            "Pass the raw uint16 depth PNG."
        )
    raw = _decode(data, path, "depth map")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise DepthFileError(
            f"{path}: decoded to {raw.dtype} with shape {raw.shape}; expected a (H,W) "
            "uint16 depth PNG. Re-save it as a single-channel uint16 PNG."
        )
    depth = raw.astype(np.float32) / np.float32(unit.scale)
    _check_plausible(depth, path, unit)
    return depth


def _read_depth_npy(path: Path) -> np.ndarray:
    _check_file(path, "depth map")
    try:
        arr = np.load(path, allow_pickle=False)  # never unpickle a user's file
    except (ValueError, OSError, EOFError) as exc:
        raise DepthFileError(f"{path}: not a readable .npy array ({exc}); save depth with "
                             "numpy.save(path, depth_in_metres.astype('float32'))") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_:
        raise DepthFileError(f"{path}: .npy holds {getattr(arr, 'dtype', type(arr))}; expected a float (H,W) "
                             "array of depth in metres")
    arr = np.squeeze(arr) if arr.ndim > 2 else arr
    if arr.ndim != 2:
        raise DepthFileError(f"{path}: .npy array has shape {arr.shape}; expected (H,W) depth in metres")
    depth = arr.astype(np.float32)
    depth[~np.isfinite(depth)] = 0.0  # NaN / Inf: the usual marks of "no depth" in float maps
    if (depth < 0).any():
        raise DepthFileError(f"{path}: {int((depth < 0).sum())} negative depth values (min {depth.min():.3f}); "
                             "depth in metres is >= 0 with 0 = missing")
    _check_plausible(depth, path, DepthUnit("m", 1.0))
    return depth


def _check_plausible(depth: np.ndarray, path: Path, unit: DepthUnit) -> None:
    top = float(depth.max(initial=0.0))
    if top > PLAUSIBLE_DEPTH_M:
        hint = ("a .npy depth map holds metres: divide millimetres by 1000 before saving" if unit.name == "m" else
                f"it is not depth in {unit}; pass the file's unit (--depth-unit kitti|mm|tum or --depth-scale N)")
        raise DepthFileError(f"{path}: depth values reach {top:.0f} m, beyond any depth sensor; {hint}")


def write_depth(path: str | os.PathLike, depth, unit: "str | float | DepthUnit | None" = None) -> None:
    """Write metric depth as a uint16 PNG (value = round(depth * unit scale)) or ``.npy``, atomically.

    Args:
        path: destination ``.png`` (or ``.npy``: float32 metres); its directory must exist.
        depth: (H,W), (1,H,W) or (1,1,H,W) float array or tensor in metres, 0 = invalid.
        unit: the PNG's unit (default KITTI, m x 256; :func:`parse_depth_unit`).
    Raises:
        DepthFileError: non-float, NaN/Inf or negative values, wrong shape, or an
            unwritable destination (full disk included). Values beyond the unit's range
            (255.996 m in KITTI units, 65.535 m in millimetres) are clipped with a warning.
    """
    atomic_write_bytes(path, encode_depth(path, depth, unit))


def encode_depth(path: str | os.PathLike, depth, unit: "str | float | DepthUnit | None" = None) -> bytes:
    """The bytes :func:`write_depth` writes (validated; ``path`` names the file in errors).

    Raises:
        DepthFileError: as :func:`write_depth`, except for writing.
    """
    path = Path(path)
    arr = _to_numpy(depth)
    arr = _squeeze_to_2d(arr, path)
    if not np.issubdtype(arr.dtype, np.floating):
        raise DepthFileError(
            f"{path}: write_depth got a {arr.dtype} array; it expects float depth in "
            "metres (it does the *256 scaling itself). Convert with .astype(np.float32) "
            "(and divide by 256 if the values are already KITTI-scaled)."
        )
    if not np.all(np.isfinite(arr)):
        bad = int((~np.isfinite(arr)).sum())
        raise DepthFileError(
            f"{path}: depth has {bad} NaN/Inf values; mark missing depth with 0 instead "
            "(e.g. np.nan_to_num(depth, nan=0.0, posinf=0.0))."
        )
    if arr.min(initial=0.0) < 0:
        bad = int((arr < 0).sum())
        raise DepthFileError(
            f"{path}: depth has {bad} negative values (min {arr.min():.3f} m); depth is "
            "a distance >= 0 with 0 meaning missing. Clip or zero them before writing."
        )
    if path.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, arr.astype(np.float32), allow_pickle=False)
        return buf.getvalue()
    unit = parse_depth_unit(unit)
    if arr.max(initial=0.0) > unit.max_m:
        warnings.warn(
            f"{path}: {int((arr > unit.max_m).sum())} depth values exceed "
            f"{unit.max_m:.3f} m, the uint16 limit in {unit} units; they were clipped.",
            stacklevel=3,
        )
    scaled = np.clip(np.rint(arr.astype(np.float64) * unit.scale), 0, 65535)
    return encode_image(path, scaled.astype(np.uint16))


# --------------------------------------------------------------------------- RGB


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a binary mask PNG (e.g. a foreground mask): 8-bit single channel, 0 or 255.

    Args:
        path: an 8-bit greyscale PNG; any value > 127 counts as 1.
    Returns:
        (H,W) float32 in {0, 1}.
    Raises:
        DepthFileError: missing file, not a PNG, or a 16-bit or colour PNG.
    """
    path = Path(path)
    data = _read_bytes(path, "mask")
    info = png_info(data, path)
    if info["bit_depth"] != 8 or info["colour_type"] != 0:
        raise DepthFileError(
            f"{path}: {info['bit_depth']}-bit {info['colour']} PNG; a mask is an 8-bit single-channel "
            "PNG with 0 (background) and 255 (foreground). Re-save it with depthsense.io.write_mask."
        )
    raw = _decode(data, path, "mask")
    return (raw > 127).astype(np.float32)


def write_mask(path: str | os.PathLike, mask) -> None:
    """Write a binary mask as an 8-bit PNG (0 / 255), atomically.

    Args:
        mask: (H,W), (1,H,W) or (1,1,H,W) array or tensor; values > 0.5 are foreground.
    Raises:
        DepthFileError: wrong shape or an unwritable destination.
    """
    atomic_write_bytes(path, encode_mask(path, mask))


def encode_mask(path: str | os.PathLike, mask) -> bytes:
    """The bytes :func:`write_mask` writes (``path`` names the file in errors)."""
    arr = _squeeze_to_2d(_to_numpy(mask), Path(path))
    return encode_image(path, np.where(arr > 0.5, 255, 0).astype(np.uint8))


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read a colour image.

    Args:
        path: PNG/JPEG/...: 8-bit or 16-bit, RGB, RGBA (alpha dropped) or 8-bit grey
            (replicated to three channels).
    Returns:
        (H,W,3) float32 RGB in [0,1].
    Raises:
        DepthFileError: missing, unreadable or truncated file, or a 16-bit single
            channel image (a depth map handed in as the image).
    """
    path = Path(path)
    data = _read_bytes(path, "image")
    if data.startswith(_PNG_SIGNATURE):
        png_info(data, path)  # validates the header and detects truncation
    elif data.startswith(b"\xff\xd8") and b"\xff\xd9" not in data[-64:]:
        raise DepthFileError(
            f"{path}: truncated JPEG (no end-of-image marker); the download or copy "
            "was cut short. Copy the file again."
        )
    img = _decode(data, path, "image")
    if img.ndim == 2:
        if img.dtype != np.uint8:
            raise DepthFileError(
                f"{path}: single-channel {img.dtype} image looks like a depth map, not an "
                "RGB image; give the camera image (8-bit colour) as the image and the depth map as the depth."
            )
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise DepthFileError(f"{path}: image has {img.shape[2]} channels; expected 1, 3 or 4.")
    scale = 255.0 if img.dtype == np.uint8 else 65535.0
    return np.ascontiguousarray(img, dtype=np.float32) / np.float32(scale)


def write_rgb(path: str | os.PathLike, rgb) -> None:
    """Write an RGB image atomically (format from the extension).

    Args:
        rgb: (H,W,3) float in [0,1] (clipped) or uint8, RGB channel order.
    """
    atomic_write_bytes(path, encode_rgb(path, rgb))


def encode_rgb(path: str | os.PathLike, rgb) -> bytes:
    """The bytes :func:`write_rgb` writes (format from ``path``'s extension).

    Raises:
        ShapeError: not (H,W,3). DepthFileError: encoder failure.
    """
    path = Path(path)
    arr = _to_numpy(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ShapeError(f"{path}: write_rgb expects (H,W,3), got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return encode_image(path, cv2.cvtColor(arr, cv2.COLOR_RGB2BGR))


def write_image(path: str | os.PathLike, array: np.ndarray) -> None:
    """Encode ``array`` (OpenCV channel order) by the path's extension and write atomically.

    Raises:
        DepthFileError: unknown extension, encoder failure or unwritable destination.
    """
    atomic_write_bytes(path, encode_image(path, array))


def encode_image(path: str | os.PathLike, array: np.ndarray) -> bytes:
    """The bytes of ``array`` (OpenCV channel order) encoded by ``path``'s extension.

    Raises:
        DepthFileError: unknown extension, a PNG side above :data:`MAX_SIDE`, or encoder
            failure.
    """
    path = Path(path)
    ext = path.suffix.lower() or ".png"
    if ext == ".png" and max(array.shape[:2]) > MAX_SIDE:
        raise DepthFileError(f"{path}: a {array.shape[1]}x{array.shape[0]} image; a PNG side may be at most "
                             f"{MAX_SIDE:,} pixels (libpng). Write a smaller image.")
    try:
        ok, buf = cv2.imencode(ext, array)
    except cv2.error as exc:
        raise DepthFileError(f"{path}: cannot encode a {array.dtype} image as {ext}: {exc}") from None
    if not ok:
        raise DepthFileError(f"{path}: OpenCV could not encode a {array.dtype} image as {ext}.")
    return buf.tobytes()


# --------------------------------------------------------------------------- HDF5, intrinsics


def read_h5(path: str | os.PathLike, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Read datasets ``keys`` from an HDF5 file.

    Raises:
        DepthFileError: missing file, not HDF5 / corrupt, or a key missing (the message
            lists the keys present).
    """
    import h5py  # local: only NYU-style data needs it

    path = Path(path)
    _check_file(path, "HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in keys if k not in f]
            if missing:
                raise DepthFileError(
                    f"{path}: HDF5 file lacks {missing}; it has {sorted(f.keys())}. "
                    "Expected the sparse-to-dense NYU layout with 'rgb' and 'depth'."
                )
            return {k: np.asarray(f[k][()]) for k in keys}
    except DepthFileError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise DepthFileError(
            f"{path}: not a readable HDF5 file ({exc}). Re-download or re-convert it."
        ) from None


def read_intrinsics(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """Read a 3x3 camera matrix K.

    Accepts KITTI depth_selection intrinsics files (9 numbers, row-major), a 3x4
    projection matrix (12 numbers, K = P[:, :3]), or a calibration file of ``name: v v
    ...`` lines together with ``key`` (e.g. ``"P_rect_02"``).

    Raises:
        DepthFileError: missing file, non-numeric text, wrong number of values, a
            matrix whose focal lengths are not positive, or (with ``key``) a calibration
            file that :func:`parse_key_values` refuses (a key given twice, ...).
    """
    path = Path(path)
    text = _read_bytes(path, "intrinsics file").decode("utf-8", errors="replace")
    names = [ln.split(":", 1)[0].strip() for ln in text.splitlines() if ":" in ln]
    if key is not None:
        lines = parse_key_values(text, path)
        if key not in lines:
            raise DepthFileError(
                f"{path}: no line '{key}: ...' in the calibration file; its keys are "
                f"{', '.join(names[:12]) or 'none'}."
            )
        text = lines[key]
    try:
        values = np.array([float(v) for v in text.replace(",", " ").split()], dtype=np.float64)
    except ValueError:
        hint = (f" It is a 'name: values' calibration file: choose the line with --calib-key "
                f"(key= in Python), one of {', '.join(names[:12])}." if names and key is None else "")
        raise DepthFileError(
            f"{path}: intrinsics must be 9 numbers (K row-major) or 12 (P 3x4); found "
            f"non-numeric text.{hint}"
        ) from None
    if values.size == 9:
        k = values.reshape(3, 3)
    elif values.size == 12:
        k = values.reshape(3, 4)[:, :3]
    else:
        raise DepthFileError(
            f"{path}: found {values.size} numbers; intrinsics must be 9 (K 3x3) or 12 (P 3x4)."
        )
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise DepthFileError(f"{path}: focal lengths fx={k[0, 0]}, fy={k[1, 1]} must be positive.")
    return k


def parse_key_values(text: str, path: str | os.PathLike = "<text>") -> dict[str, str]:
    """Parse a calibration file of ``name: v v v ...`` lines (KITTI's calib files).

    Blank lines and ``#`` comments are skipped; a value may hold colons
    (``calib_time: 09-Jan-2012 13:57:47``). Every reader of such files uses this, so a
    file that could mean two things is refused everywhere, never read as its last line.

    Args:
        text: the file's content.
        path: the file, for messages.
    Returns:
        ``{name: the text after the first colon}`` in file order.
    Raises:
        DepthFileError: a name given twice (also with the same values, or differing only
            in case), a name that is not one word (``P2 old: ...``), or a line without a
            ``name:`` (names the file, the line and the key).
    """
    out: dict[str, str] = {}
    first_line: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition(":")
        key = key.strip()
        if not sep or not key:
            raise DepthFileError(
                f"{path}: line {number} ({stripped[:40]!r}) is not 'name: values'; every line of a calibration "
                "file is 'name: v v v ...' (e.g. 'P2: ...'). Fix or delete the line."
            )
        if len(key.split()) != 1:
            raise DepthFileError(
                f"{path}: line {number}: key {key!r} is not one word; a calibration key is one name such as "
                f"'P2' or 'P_rect_02'. Fix or delete the line, so that no key is ambiguous."
            )
        seen = first_line.get(key.lower())
        if seen is not None:
            same = "the same values" if value.split() == out[seen[1]].split() else "different values"
            name = repr(key) if key == seen[1] else f"{seen[1]!r} / {key!r}"
            raise DepthFileError(
                f"{path}: key {name} appears on lines {seen[0]} and {number} ({same}); a calibration key must "
                "appear once. Delete the wrong line."
            )
        first_line[key.lower()] = (number, key)
        out[key] = value
    return out


# --------------------------------------------------------------------------- helpers


def png_info(data: bytes, path: Path | str = "<bytes>") -> dict:
    """Parse a PNG's IHDR and check it is complete.

    Returns:
        dict with ``width``, ``height``, ``bit_depth``, ``colour_type``, ``colour``.
    Raises:
        DepthFileError: not a PNG, a broken header, a truncated file or an image too
            large to decode.
    """
    if not data.startswith(_PNG_SIGNATURE):
        kind = _sniff(data)
        raise DepthFileError(
            f"{path}: not a PNG file (looks like {kind}); depth maps must be 16-bit PNGs "
            "(KITTI convention: uint16, depth*256)."
        )
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise DepthFileError(f"{path}: PNG header is damaged (no IHDR chunk). Copy the file again.")
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", data[16:26])
    if b"IEND" not in data[-12:]:
        raise DepthFileError(
            f"{path}: truncated PNG (no IEND chunk); the write or copy was cut short. "
            "Copy or export the file again."
        )
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise DepthFileError(f"{path}: PNG of {width}x{height} pixels is empty or too large.")
    return {
        "width": width,
        "height": height,
        "bit_depth": bit_depth,
        "colour_type": colour_type,
        "colour": _PNG_COLOUR_TYPES.get(colour_type, f"colour-type-{colour_type}"),
    }


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence what C libraries (libpng, libtorch) print on file descriptor 2 meanwhile.

    Our own one-line error says what went wrong; their messages would appear above it
    without the file name. Python-level output (``sys.stderr``) is flushed first.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise DepthFileError(f"{path}: {what} not found; check the path.")
    if not path.is_file():
        raise DepthFileError(f"{path}: is a directory, not a {what}; pass a file.")


def _read_bytes(path: Path, what: str) -> bytes:
    _check_file(path, what)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DepthFileError(f"{path}: cannot read {what} ({exc.strerror}); check permissions.") from None
    if not data:
        raise DepthFileError(f"{path}: empty file; expected a {what}.")
    return data


def _decode(data: bytes, path: Path, what: str) -> np.ndarray:
    with quiet_stderr():  # libpng prints "bad adaptive filter value" & co. above our own message
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DepthFileError(
            f"{path}: cannot be decoded as an image ({_sniff(data)}); it is corrupt or not "
            f"a {what}. Copy or export it again as PNG."
        )
    if img.size > 4 * MAX_PIXELS:
        raise DepthFileError(f"{path}: image of shape {img.shape} is too large.")
    return img


def _sniff(data: bytes) -> str:
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data.startswith(b"\x89HDF"):
        return "HDF5"
    if data[:64].isascii():
        return "text"
    return "unknown binary data"


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _squeeze_to_2d(arr: np.ndarray, path: Path) -> np.ndarray:
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.size == 0:
        raise DepthFileError(
            f"{path}: depth must be (H,W) (or (1,H,W), (1,1,H,W)); got shape {arr.shape}."
        )
    return arr

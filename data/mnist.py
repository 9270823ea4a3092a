"""MNIST (or Fashion-MNIST) from its original IDX files, gzipped or not.

The IDX format (LeCun et al.): two zero bytes, a type byte (0x08 uint8, 0x09 int8,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), a byte with the number of
dimensions ``n``, ``n`` big-endian uint32 sizes, then the values, big-endian, row-major.
:func:`read_idx` checks all of it, including that the file holds exactly the bytes its
header announces (a truncated download is an error, not a short array).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from depthsense.errors import DatasetError

__all__ = ["read_idx", "load_mnist", "MNIST_FILES"]

MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The four files ``load_mnist`` reads (each may also be ``<name>.gz``)."""

_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_EXPECTED = (
    "--dataset mnist expects " + ", ".join(MNIST_FILES.values()) + " (each optionally .gz) in --data-root"
)


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` is decompressed on the fly).

    Args:
        path: the file.
    Returns:
        The array with the header's shape and dtype (native byte order).
    Raises:
        DatasetError: missing or unreadable file, bad magic bytes, unknown type code, or a
            size that differs from what the header announces (one line naming the file).

    Examples:
        >>> import tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
        >>> _ = open(f, "wb").write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
        >>> read_idx(f)
        array([7, 8, 9], dtype=uint8)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (its first bytes are not 00 00 <type> <ndim>)")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise DatasetError(f"{path}: unknown IDX type code 0x{code:02x}; expected one of "
                           + ", ".join(f"0x{c:02x}" for c in _IDX_TYPES))
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(v) for v in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DatasetError(
            f"{path}: {what}: {len(data)} bytes, but its header (shape {shape}, {dtype.name}) needs "
            f"{expected}; download the file again"
        )
    values = np.frombuffer(data, dtype, offset=4 + 4 * ndim).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def load_mnist(root: str | Path) -> dict[str, np.ndarray]:
    """Read MNIST's four IDX files from ``root``.

    Args:
        root: folder with :data:`MNIST_FILES` (each plain or ``.gz``).
    Returns:
        ``train_images`` (60000,1,28,28) uint8, ``train_labels`` (60000,) int64,
        ``test_images``, ``test_labels`` (10000 of each for MNIST; any sizes that agree).
    Raises:
        DatasetError: ``root`` missing, a file missing or malformed, images that are not
            (N,H,W) uint8, labels that are not (N,) in 0..9 or whose N differs (one line
            naming the file and the expected files).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder; {_EXPECTED}")
    out: dict[str, np.ndarray] = {}
    paths: dict[str, Path] = {}
    for key, name in MNIST_FILES.items():
        path = paths[key] = _find(root, name)
        try:
            arr = read_idx(path)
        except DatasetError as exc:
            raise DatasetError(f"{exc}; {_EXPECTED}") from None
        if key.endswith("images"):
            if arr.ndim != 3 or arr.dtype != np.uint8:
                raise DatasetError(f"{path}: expected (N,H,W) uint8 images, got {arr.shape} {arr.dtype}; {_EXPECTED}")
            arr = arr[:, None]
        else:
            if arr.ndim != 1 or arr.dtype.kind not in "ui" or (arr.size and (arr.min() < 0 or arr.max() > 9)):
                raise DatasetError(f"{path}: expected (N,) labels 0..9, got {arr.shape} {arr.dtype}; {_EXPECTED}")
            arr = arr.astype(np.int64)
            images = out[key.replace("labels", "images")]
            if len(arr) != len(images):
                raise DatasetError(f"{path}: {len(arr)} labels for {len(images)} images; {_EXPECTED}")
        out[key] = arr
    train, test = out["train_images"].shape[-2:], out["test_images"].shape[-2:]
    if train != test:  # one net sees both: it would fail later on a mask of the wrong shape
        raise DatasetError(f"{paths['test_images']}: {test[0]}x{test[1]} images, but {paths['train_images']} holds "
                           f"{train[0]}x{train[1]}; the training and test images must have one size (MNIST: 28x28)")
    return out


def _find(root: Path, name: str) -> Path:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{root}: missing {name}[.gz]; {_EXPECTED}")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as exc:  # unreadable, or a broken / truncated .gz
        raise DatasetError(f"{path}: cannot read ({exc}); download the file again") from None

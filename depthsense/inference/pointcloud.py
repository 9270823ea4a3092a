"""Back-projection of a depth map into a camera-frame point cloud, and a PLY writer.

Pinhole model with the camera matrix ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``: the
pixel in column ``u`` and row ``v`` (0-based, pixel centres at integers, as in KITTI's
calibration) with z-depth ``Z`` (metres along the optical axis, the quantity KITTI depth
PNGs store) is the point::

    X = (u - cx) * Z / fx      (right)
    Y = (v - cy) * Z / fy      (down)
    Z                          (forward)

in the camera frame (OpenCV convention). Pixels with depth 0 (missing), negative or
non-finite depth give no point.
"""

from __future__ import annotations

import io as _io
import os

import numpy as np

from depthsense.errors import ShapeError
from depthsense.io import atomic_write_bytes

__all__ = ["depth_to_points", "write_ply", "ply_bytes"]


def depth_to_points(depth, K) -> tuple[np.ndarray, np.ndarray]:
    """Back-project every valid pixel of ``depth``.

    Args:
        depth: (H,W) z-depth in metres, 0 = missing (numpy array or tensor).
        K: (3,3) camera matrix for this image size (fx, fy > 0).
    Returns:
        ``(points, valid)``: (N,3) float32 camera-frame XYZ in metres, row-major pixel
        order (row v, then column u), and the (H,W) bool mask of the N pixels used.
    Raises:
        ShapeError: depth not 2-D, K not 3x3 or with non-positive focal lengths.
    """
    d = _as_2d(depth)
    k = _check_k(K)
    valid = np.isfinite(d) & (d > 0)
    v, u = np.nonzero(valid)
    z = d[v, u].astype(np.float64)
    x = (u - k[0, 2]) * z / k[0, 0]
    y = (v - k[1, 2]) * z / k[1, 1]
    return np.stack([x, y, z], axis=1).astype(np.float32), valid


def write_ply(path: str | os.PathLike, depth, K, rgb=None, binary: bool = True) -> int:
    """Write the point cloud of ``depth`` as a PLY file (one vertex per valid pixel), atomically.

    Args:
        path: destination ``.ply``; its directory must exist.
        depth: (H,W) z-depth in metres, 0 = missing.
        K: (3,3) camera matrix (see the module docstring for the projection).
        rgb: optional (H,W,3) colour, float in [0,1] or uint8; adds ``red green blue``
            uchar properties to every vertex.
        binary: ``binary_little_endian 1.0`` (compact, default) or ``ascii 1.0``.
    Returns:
        The number of vertices written (= number of valid depth pixels).
    Raises:
        ShapeError: bad depth / K / rgb shapes or an rgb of another size than depth.
        DepthFileError: the destination cannot be written.
    """
    data, n = ply_bytes(depth, K, rgb, binary)
    atomic_write_bytes(path, data)
    return n


def ply_bytes(depth, K, rgb=None, binary: bool = True) -> tuple[bytes, int]:
    """The content :func:`write_ply` writes, and its number of vertices.

    Raises:
        ShapeError: as :func:`write_ply`.
    """
    points, valid = depth_to_points(depth, K)
    colours = None
    if rgb is not None:
        colours = _rgb_uint8(rgb, valid.shape)[valid]
    n = points.shape[0]
    props = ["property float x", "property float y", "property float z"]
    if colours is not None:
        props += ["property uchar red", "property uchar green", "property uchar blue"]
    header = "\n".join(
        [
            "ply",
            f"format {'binary_little_endian' if binary else 'ascii'} 1.0",
            "comment DepthSense point cloud: camera frame, x right, y down, z forward, metres",
            f"element vertex {n}",
            *props,
            "end_header",
        ]
    ) + "\n"
    if binary:
        fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
        if colours is not None:
            fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        rec = np.empty(n, dtype=fields)
        rec["x"], rec["y"], rec["z"] = points[:, 0], points[:, 1], points[:, 2]
        if colours is not None:
            rec["red"], rec["green"], rec["blue"] = colours[:, 0], colours[:, 1], colours[:, 2]
        body = rec.tobytes()
    else:
        buf = _io.StringIO()
        if colours is None:
            np.savetxt(buf, points, fmt="%.6g")
        else:
            for p, c in zip(points, colours):
                buf.write(f"{p[0]:.6g} {p[1]:.6g} {p[2]:.6g} {c[0]} {c[1]} {c[2]}\n")
        body = buf.getvalue().encode("ascii")
    return header.encode("ascii") + body, n


# --------------------------------------------------------------------------- helpers


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_2d(depth) -> np.ndarray:
    d = _to_numpy(depth)
    while d.ndim > 2 and d.shape[0] == 1:
        d = d[0]
    if d.ndim != 2:
        raise ShapeError(f"point cloud: depth must be (H,W); got shape {_to_numpy(depth).shape}.")
    return d.astype(np.float32, copy=False)


def _check_k(K) -> np.ndarray:
    k = np.asarray(_to_numpy(K), dtype=np.float64)
    if k.shape != (3, 3):
        raise ShapeError(f"point cloud: K must be the 3x3 camera matrix; got shape {k.shape}.")
    if not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0):
        raise ShapeError(
            f"point cloud: K has focal lengths fx={k[0, 0]}, fy={k[1, 1]}; both must be positive "
            "and finite (pass the intrinsics of this image)."
        )
    return k


def _rgb_uint8(rgb, size: tuple[int, int]) -> np.ndarray:
    a = _to_numpy(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[:2] != tuple(size):
        raise ShapeError(
            f"point cloud: rgb has shape {a.shape}; expected {(size[0], size[1], 3)} like the depth map."
        )
    if a.dtype == np.uint8:
        return a
    return np.clip(np.rint(a.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)

"""Procedural street world with a 64-beam LiDAR simulator, written in KITTI or ReDWeb layout.

No real data set can be downloaded here, so this module renders one (ARCHITECTURE.md
section 4). Every frame is an independent street scene drawn from
``numpy.random.default_rng(SeedSequence([seed, index]))``: the same ``(seed, index)``
gives the same arrays and byte-identical files.

World and camera
    Right-handed camera frame: x right, y down, z forward (metres). The camera sits at
    the origin, :data:`CAMERA_HEIGHT` (1.65 m) above a ground plane ``y = 1.65``; the
    camera/LiDAR rig has a small random yaw, pitch and roll, which is how road slope
    shows up in the image. The scene holds a road, raised sidewalks (curb 10-18 cm),
    building boxes at varied setbacks with gaps (side streets), parked cars and a car
    ahead (body box + cabin box), poles (vertical cylinders) and trees (trunk cylinder +
    sphere crown). The sky is at infinity.

    Intrinsics are KITTI's camera 2 as seen in depth completion's 1216x352 crop
    (fx = fy = 721.5377, cx = 596.5593, cy = 149.854), scaled by ``width/1216`` (focal
    length, cx) and ``height/352`` (cy) for other sizes; see :func:`kitti_intrinsics`.

Ground truth
    Dense z-depth along the optical axis (metres) from vectorised ray casting against
    the analytic primitives (ray-plane, ray-box slabs, ray-cylinder, ray-sphere; the
    nearest hit wins). Sky and anything farther than :data:`MAX_DEPTH` (80 m) is 0, and
    so is everything above the LiDAR's top beam (+0.5 deg): KITTI's ground truth is
    accumulated LiDAR and has none there either, so no method is scored on pixels no
    input can reach.

Foreground mask
    ``fg`` (H,W) bool: the pixels whose nearest camera-ray hit is a foreground object,
    i.e. a car (body or cabin) or a pole, no farther than 80 m
    (:data:`depthsense.data.synthetic_world.FOREGROUND_MATERIALS`; the world has no
    pedestrians, and trees count as background). Unlike the ground truth it is not cut
    at the LiDAR's top beam: an object is an object in the image wherever it is seen.
    Written as an 8-bit PNG (0/255) in ``fg/`` next to the ground truth.

RGB
    Float [0,1] (H,W,3), saved as 8-bit: per-object albedo and procedural texture
    (asphalt noise and lane markings, sidewalk tiles, facade window grids, car glass,
    foliage noise), Lambert shading from a random sun using the hit normal, a sky
    gradient, distance haze and mild uniform noise (standard deviation 0.01). Colour edges
    therefore coincide with depth edges.

LiDAR
    HDL-64E-like (:data:`HDL64E_ELEVATIONS_DEG`: 32 beams from +2.0 to -8.33 deg, 32
    from -8.83 to -24.8 deg) with azimuth step :attr:`LidarSpec.az_step_deg` (0.17 deg,
    the HDL-64E at 10 Hz), mounted at 1.73 m height, 0.27 m behind and 0.06 m right of
    the camera (KITTI's rig). Only the camera-facing sector and the beams that can land
    in the image are cast. Ranges get Gaussian noise (1.5 cm) and 3 % random drop-outs;
    points are moved to the camera frame, projected with K, rounded to the nearest
    pixel, limited to 0 < z <= 80 m and z-buffered (the nearer point wins). Because the
    LiDAR looks from another place it sees some surfaces the camera cannot, and those
    points appear next to occluding edges (bleed-through), as in real KITTI.

    Density is about 4.4 % of pixels at 1216x352 (4.2-4.6 % over seeds; the scan
    lines are ~4-6 px apart, points ~2 px apart along a line). A physical sensor's
    point count does not depend on the image size, so by default a narrower image gets
    a proportionally coarser sensor (:meth:`LidarSpec.for_image`: ``round(64 s)``
    beams, azimuth step ``0.17/s`` deg, ``s = width/1216``), which keeps KITTI's
    pixel spacing and a density of ~4-4.4 % at any size (4.3 % at 320x96, 4.1 % at
    216x64). Pass ``lidar=LidarSpec()`` to keep the full HDL-64E instead: its density
    then grows about like ``0.044 * (1216*352) / (W*H)`` until points merge (44 % at
    320x96).

KITTI layout (``generate(layout="kitti")``), for N frames split by :func:`split_counts`
(frames are rendered with indices 0..N-1 in the order train, val, val_selection, test)::

    OUT/train/<drive>_sync/proj_depth/velodyne_raw/image_02/<frame:010d>.png   uint16, depth*256
    OUT/train/<drive>_sync/proj_depth/groundtruth/image_02/<frame:010d>.png
    OUT/train/<drive>_sync/proj_depth/fg/image_02/<frame:010d>.png             8-bit 0/255 foreground
    OUT/val/<drive>_sync/proj_depth/{velodyne_raw,groundtruth,fg}/image_02/<frame>.png
    OUT/<date>/<drive>_sync/image_02/data/<frame>.png                          RGB (raw layout)
    OUT/<date>/calib_cam_to_cam.txt   (P_rect_02: 12 numbers, K = P[:, :3])
    OUT/<date>/calib_velo_to_cam.txt  (R, T: p_cam = R p_velo + T, camera 2's frame)
    OUT/depth_selection/val_selection_cropped/image/<drive>_sync_image_<frame>_image_02.png
    OUT/depth_selection/val_selection_cropped/velodyne_raw/<drive>_sync_velodyne_raw_<frame>_image_02.png
    OUT/depth_selection/val_selection_cropped/groundtruth_depth/<drive>_sync_groundtruth_depth_<frame>_image_02.png
    OUT/depth_selection/val_selection_cropped/fg/<drive>_sync_fg_<frame>_image_02.png
    OUT/depth_selection/val_selection_cropped/intrinsics/<drive>_sync_image_<frame>_image_02.txt
    OUT/depth_selection/test_depth_completion_anonymous/{image,velodyne_raw}/<i:010d>.png
    OUT/depth_selection/test_depth_completion_anonymous/intrinsics/<i:010d>.txt

``<date>`` is :data:`KITTI_DATE`, drives are ``2011_09_26_drive_0001`` ... numbered in
the order train, val, val_selection, each holding at most ``frames_per_drive`` frames
numbered from 5 (KITTI depth completion has no depth for a drive's first five frames).
All images keep the rendered size (nothing is cropped), and every frame shares one K.
Intrinsics files are the 9 numbers of K, row-major, on one line.

ReDWeb layout (``generate(layout="redweb")``)::

    OUT/Imgs/synth_<index:06d>.jpg   RGB
    OUT/RDs/synth_<index:06d>.png    8-bit relative depth, see relative_depth_u8

Relative depth mapping (:func:`relative_depth_u8`): over valid GT pixels (0 < d <= 80)
``value = round(254 * (log d - log d_min) / (log d_max - log d_min))`` with the image's
own min/max, so 0 = nearest, 254 = farthest (larger = farther, monotone); 255 = sky /
invalid. If all valid depths are equal they map to 0. Readers use ``valid = value !=
255`` and relative depth ``(value + 1) / 255``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from depthsense.data.synthetic_world import (  # LidarSpec and the elevations: re-exported
    CAMERA_HEIGHT,
    HDL64E_ELEVATIONS_DEG,
    MAX_DEPTH,
    LidarSpec,
    camera_rays,
    cast_rays,
    foreground_mask,
    sample_rig,
    sample_scene,
    screen_slices,
    shade,
    simulate_lidar,
)
from depthsense.data.dataset import INCOMPLETE_MARKER
from depthsense.errors import DepthFileError
from depthsense.io import atomic_write_bytes, write_depth, write_image, write_mask, write_rgb

__all__ = [
    "KITTI_DATE",
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "MIN_SIZE",
    "MAX_PIXELS",
    "check_frame_size",
    "MAX_DEPTH",
    "CAMERA_HEIGHT",
    "LIDAR_HEIGHT",
    "FRAMES_PER_DRIVE",
    "FIRST_FRAME",
    "HDL64E_ELEVATIONS_DEG",
    "LAYOUTS",
    "LidarSpec",
    "SyntheticFrame",
    "render_frame",
    "generate",
    "split_counts",
    "kitti_intrinsics",
    "drive_name",
    "frame_name",
    "relative_depth_u8",
    "write_kitti_frame",
    "write_redweb_frame",
]

KITTI_DATE = "2011_09_26"
"""Date prefix of every synthetic drive (the KITTI raw recording day it imitates)."""

DEFAULT_HEIGHT = 352
DEFAULT_WIDTH = 1216
MIN_SIZE = 32
"""Smallest height/width accepted; below it the scene is a handful of pixels."""

MAX_PIXELS = 16_000_000
"""Largest frame (height x width) rendered: the renderer holds ~200 bytes a pixel
(float64 rays, hits, normals, shading), ~3.2 GB at this size (KITTI's 352x1216 is 0.4 MP)."""
_BYTES_PER_PIXEL = 200

LIDAR_HEIGHT = 1.73
FRAMES_PER_DRIVE = 20
FIRST_FRAME = 5
"""KITTI depth completion numbers a drive's frames from 5 (it needs +-5 neighbours)."""

LAYOUTS = ("kitti", "redweb")

# KITTI camera 2 (2011_09_26) in depth completion's 1216x352 crop of the 1242x375 image.
_KITTI_F = 721.5377
_KITTI_CX = 609.5593 - 13.0
_KITTI_CY = 172.854 - 23.0


# --------------------------------------------------------------------------- public API


@dataclass
class SyntheticFrame:
    """One rendered frame.

    Attributes:
        rgb: (H,W,3) float32 in [0,1].
        gt: (H,W) float32 z-depth in metres, 0 = sky or beyond 80 m.
        sparse: (H,W) float32 projected LiDAR z-depth in metres, 0 = no point.
        K: (3,3) float64 camera matrix.
        beam: (H,W) int16 index (into ``LidarSpec.elevations_deg()``, 0 = top) of the
            beam whose point was kept at each pixel, -1 where ``sparse`` is 0.
        fg: (H,W) bool foreground-object mask: pixels whose nearest hit is a car (body
            or cabin) or a pole within 80 m (``synthetic_world.FOREGROUND_MATERIALS``).
    """

    rgb: np.ndarray
    gt: np.ndarray
    sparse: np.ndarray
    K: np.ndarray
    beam: np.ndarray
    fg: np.ndarray

    @property
    def density(self) -> float:
        """Fraction of pixels with a LiDAR point."""
        return float(np.count_nonzero(self.sparse)) / self.sparse.size


def kitti_intrinsics(height: int = DEFAULT_HEIGHT, width: int = DEFAULT_WIDTH) -> np.ndarray:
    """KITTI camera-2 intrinsics for a ``height`` x ``width`` image.

    At 352x1216 this is K of depth completion's cropped images; other sizes scale f and
    cx by ``width/1216`` and cy by ``height/352`` (same horizontal field of view).

    Returns:
        (3,3) float64 K.
    """
    s = width / DEFAULT_WIDTH
    return np.array(
        [
            [_KITTI_F * s, 0.0, _KITTI_CX * s],
            [0.0, _KITTI_F * s, _KITTI_CY * height / DEFAULT_HEIGHT],
            [0.0, 0.0, 1.0],
        ],
        dtype=np.float64,
    )


def check_frame_size(height: int, width: int) -> None:
    """Refuse a frame size before anything is allocated or written.

    Raises:
        ValueError: a side below :data:`MIN_SIZE` or not an integer, or more than
            :data:`MAX_PIXELS` pixels (the message gives the memory it would need).
    """
    _check_int("height", height, MIN_SIZE)
    _check_int("width", width, MIN_SIZE)
    if height * width > MAX_PIXELS:
        raise ValueError(
            f"height x width = {height}x{width} is {height * width / 1e6:,.0f} megapixels a frame; rendering needs "
            f"~{_BYTES_PER_PIXEL} bytes a pixel (~{height * width * _BYTES_PER_PIXEL / 1e9:,.0f} GB), so frames are "
            f"limited to {MAX_PIXELS / 1e6:.0f} MP (~{MAX_PIXELS * _BYTES_PER_PIXEL / 1e9:.1f} GB); KITTI is 352x1216."
        )


def render_frame(
    seed: int,
    index: int,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    *,
    lidar: LidarSpec | None = None,
) -> SyntheticFrame:
    """Render frame ``index`` of the world seeded by ``seed``.

    Args:
        seed, index: non-negative ints; the frame's generator is seeded from both.
        height, width: image size in pixels (>= :data:`MIN_SIZE`).
        lidar: sensor model; default ``LidarSpec.for_image(height, width)`` (the
            HDL-64E at 1216 wide, a proportionally coarser one for smaller images).
    Returns:
        :class:`SyntheticFrame` (rgb, gt, sparse, K, beam, fg).
    Raises:
        ValueError: negative or non-integer seed/index, or a size outside
            :func:`check_frame_size`.
    """
    _check_int("seed", seed, 0)
    _check_int("index", index, 0)
    check_frame_size(height, width)
    lidar = LidarSpec.for_image(height, width) if lidar is None else lidar
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    K = kitti_intrinsics(height, width)
    rot = sample_rig(rng)
    scene = sample_scene(rng)

    dirs = camera_rays(K, height, width, rot)
    def visible(lo, hi):
        return screen_slices(lo, hi, rot, K, height, width)

    t, pid, slices = cast_rays(scene, (0.0, 0.0, 0.0), dirs, visible)
    gt = np.where(t <= MAX_DEPTH, t, np.float32(0.0)).astype(np.float32)
    rgb = shade(scene, rng, dirs, t, pid, slices)
    sparse, beam = simulate_lidar(scene, rng, rot, K, height, width, lidar)
    gt = _limit_to_lidar_fov(gt, K, lidar)
    fg = foreground_mask(scene, pid, t)
    return SyntheticFrame(rgb=rgb, gt=gt, sparse=sparse, K=K, beam=beam, fg=fg)


def _limit_to_lidar_fov(gt: np.ndarray, K: np.ndarray, lidar: LidarSpec, margin_deg: float = 0.5) -> np.ndarray:
    """Zero ground truth above the LiDAR's top beam, as in KITTI.

    KITTI's ground truth is accumulated LiDAR, so it only exists inside the sensor's
    vertical field of view; the image rows above the top beam have none. Keeping a
    dense ray-cast GT there would score every completion method on pixels that no
    input can reach. Elevation is measured from the LiDAR origin in the rig frame (the
    camera and LiDAR share the rig's pitch and roll).
    """
    h, w = gt.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = gt.astype(np.float64)
    x = (u - K[0, 2]) / K[0, 0] * z - lidar.offset_m[0]
    y = (v - K[1, 2]) / K[1, 1] * z - lidar.offset_m[1]
    elevation = np.degrees(np.arctan2(-y, np.hypot(x, z - lidar.offset_m[2])))
    top = float(lidar.elevations_deg()[0]) + margin_deg
    return np.where((gt > 0) & (elevation <= top), gt, np.float32(0.0)).astype(np.float32)


def split_counts(frames: int) -> dict[str, int]:
    """How :func:`generate` distributes ``frames`` frames in the KITTI layout.

    test = val_selection = max(1, round(0.05 N)) when N >= 4, else 0;
    val = max(1, round(0.15 N)) when N >= 2, else 0; train = the rest (>= 1).
    E.g. N=1 -> 1/0/0/0, 2 -> 1/1/0/0, 3 -> 2/1/0/0, 4 -> 1/1/1/1, 10 -> 6/2/1/1,
    100 -> 75/15/5/5 (train/val/val_selection/test).

    Raises:
        ValueError: ``frames`` < 1.
    """
    _check_int("frames", frames, 1)
    small = max(1, round(0.05 * frames)) if frames >= 4 else 0
    val = max(1, round(0.15 * frames)) if frames >= 2 else 0
    return {"train": frames - val - 2 * small, "val": val, "val_selection": small, "test": small}


def drive_name(number: int) -> str:
    """KITTI drive name without the ``_sync`` suffix, e.g. ``2011_09_26_drive_0001``."""
    return f"{KITTI_DATE}_drive_{number:04d}"


def frame_name(frame: int) -> str:
    """KITTI's 10-digit frame stem, e.g. ``0000000005``."""
    return f"{frame:010d}"


def relative_depth_u8(gt: np.ndarray) -> np.ndarray:
    """Map metric depth to ReDWeb-style 8-bit relative depth.

    Args:
        gt: (H,W) float depth in metres, 0 (or negative) = invalid.
    Returns:
        (H,W) uint8: 0..254 = normalised log depth (larger = farther), 255 = invalid.
    """
    gt = np.asarray(gt, dtype=np.float64)
    out = np.full(gt.shape, 255, dtype=np.uint8)
    valid = gt > 0
    if not valid.any():
        return out
    logd = np.log(gt[valid])
    lo, hi = float(logd.min()), float(logd.max())
    if hi - lo < 1e-9:
        out[valid] = 0
    else:
        out[valid] = np.rint(254.0 * (logd - lo) / (hi - lo)).astype(np.uint8)
    return out


def generate(
    out_dir: str | os.PathLike,
    layout: str = "kitti",
    frames: int = 10,
    seed: int = 0,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    *,
    splits: Mapping[str, int] | None = None,
    lidar: LidarSpec | None = None,
    frames_per_drive: int = FRAMES_PER_DRIVE,
    progress: bool = False,
) -> dict:
    """Render ``frames`` frames and write them under ``out_dir`` in ``layout``.

    While it writes, ``out_dir`` holds :data:`depthsense.data.INCOMPLETE_MARKER`
    (``.incomplete``), removed only after the last file: a set left unfinished by a
    crash, a full disk or kill -9 stays marked, and data-set loaders refuse it.

    Args:
        out_dir: output root; created if missing. Existing files of the same names are
            replaced atomically, others are left alone.
        layout: ``"kitti"`` or ``"redweb"`` (trees in the module docstring).
        frames: number of frames (>= 1), rendered with indices 0..frames-1.
        seed: world seed (>= 0).
        height, width: image size (>= :data:`MIN_SIZE`).
        splits: KITTI only: counts for ``train``/``val``/``val_selection``/``test``
            summing to ``frames``; default :func:`split_counts`.
        lidar: sensor model, default ``LidarSpec.for_image(height, width)``.
        frames_per_drive: KITTI only: frames per drive folder (>= 1).
        progress: show a tqdm progress bar.
    Returns:
        Summary dict: ``out_dir``, ``layout``, ``frames``, ``seed``, ``height``,
        ``width``, ``splits`` (counts), ``drives`` (names per split, KITTI), ``files``
        (number written), ``mean_density`` (LiDAR), ``mean_gt_density``, ``K``.
    Raises:
        ValueError: unknown layout, bad counts or sizes (the message names the argument),
            before anything is written.
        DepthFileError: ``out_dir`` cannot be created or written, or a write fails (e.g.
            a full disk): the message says how many frames were written and that the
            folder stays marked incomplete.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}; known layouts: {', '.join(LAYOUTS)}.")
    _check_int("frames", frames, 1)
    _check_int("seed", seed, 0)
    check_frame_size(height, width)
    _check_int("frames_per_drive", frames_per_drive, 1)
    counts = _resolve_splits(frames, splits) if layout == "kitti" else {"all": frames}
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DepthFileError(
            f"{out}: cannot create the output directory ({exc.strerror}); choose a writable directory."
        ) from None
    if not os.access(out, os.W_OK):
        raise DepthFileError(f"{out}: output directory is not writable; choose a writable directory.")

    jobs = _kitti_jobs(counts, frames_per_drive) if layout == "kitti" else [("redweb", None, None)] * frames
    marker = out / INCOMPLETE_MARKER
    atomic_write_bytes(marker, (f"depthsense-make-synthetic --layout {layout} --frames {frames} --seed {seed} "
                                f"--height {height} --width {width} was writing this folder\n").encode())
    bar = None
    if progress:
        from tqdm import tqdm  # local: only needed for interactive runs

        bar = tqdm(total=frames, desc=f"synthetic/{layout}", unit="frame")
    files = 0
    done = 0
    density = gt_density = 0.0
    K = kitti_intrinsics(height, width)
    try:
        if layout == "kitti":
            files += _write_calib(out, K, height, width, lidar or LidarSpec.for_image(height, width))
        for index, (split, drive, frame) in enumerate(jobs):
            f = render_frame(seed, index, height, width, lidar=lidar)
            density += f.density
            gt_density += float(np.count_nonzero(f.gt)) / f.gt.size
            if layout == "kitti":
                files += len(write_kitti_frame(out, f, split, drive, frame))
            else:
                files += len(write_redweb_frame(out, f, f"synth_{index:06d}"))
            done += 1
            if bar is not None:
                bar.update(1)
    except (DepthFileError, OSError) as exc:  # a full disk: say what is there, and that it is marked
        first = str(exc) if isinstance(exc, DepthFileError) else f"{exc.filename}: {exc.strerror}."
        raise DepthFileError(
            f"{first} {out} holds {done} of {frames} frames ({files} files) and stays marked incomplete by "
            f"{marker.name}, so no loader reads it: free space and run the command again, or delete {out}."
        ) from None
    finally:
        if bar is not None:
            bar.close()
    marker.unlink()
    drives: dict[str, list[str]] = {}
    for split, drive, _ in jobs:
        if drive is not None and drive_name(drive) not in drives.setdefault(split, []):
            drives[split].append(drive_name(drive))
    return {
        "out_dir": str(out),
        "layout": layout,
        "frames": frames,
        "seed": seed,
        "height": height,
        "width": width,
        "splits": counts,
        "drives": drives,
        "files": files,
        "mean_density": density / frames,
        "mean_gt_density": gt_density / frames,
        "K": K.tolist(),
    }


def write_kitti_frame(
    out_dir: str | os.PathLike, frame: SyntheticFrame, split: str, drive: int | None, number: int
) -> list[Path]:
    """Write one frame into the KITTI tree under ``out_dir`` (see the module docstring).

    Args:
        split: ``train``, ``val``, ``val_selection`` or ``test``.
        drive: drive number (ignored for ``test``).
        number: KITTI frame number (train/val/val_selection) or anonymous index (test).
    Returns:
        The paths written.
    Raises:
        ValueError: unknown split. DepthFileError: unwritable destination.
    """
    out = Path(out_dir)
    stem = frame_name(number)
    if split in ("train", "val", "val_selection") and drive is None:
        raise ValueError(f"write_kitti_frame: split {split!r} needs a drive number.")
    if split in ("train", "val"):
        seq = f"{drive_name(drive)}_sync"
        proj = out / split / seq / "proj_depth"
        targets = [
            (out / KITTI_DATE / seq / "image_02" / "data" / f"{stem}.png", "rgb"),
            (proj / "velodyne_raw" / "image_02" / f"{stem}.png", "sparse"),
            (proj / "groundtruth" / "image_02" / f"{stem}.png", "gt"),
            (proj / "fg" / "image_02" / f"{stem}.png", "fg"),
        ]
    elif split == "val_selection":
        seq = f"{drive_name(drive)}_sync"
        sel = out / "depth_selection" / "val_selection_cropped"
        targets = [
            (sel / "image" / f"{seq}_image_{stem}_image_02.png", "rgb"),
            (sel / "velodyne_raw" / f"{seq}_velodyne_raw_{stem}_image_02.png", "sparse"),
            (sel / "groundtruth_depth" / f"{seq}_groundtruth_depth_{stem}_image_02.png", "gt"),
            (sel / "fg" / f"{seq}_fg_{stem}_image_02.png", "fg"),
            (sel / "intrinsics" / f"{seq}_image_{stem}_image_02.txt", "K"),
        ]
    elif split == "test":
        test = out / "depth_selection" / "test_depth_completion_anonymous"
        targets = [
            (test / "image" / f"{stem}.png", "rgb"),
            (test / "velodyne_raw" / f"{stem}.png", "sparse"),
            (test / "intrinsics" / f"{stem}.txt", "K"),
        ]
    else:
        raise ValueError(f"write_kitti_frame: split={split!r}; known: train, val, val_selection, test.")
    for path, what in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        if what == "rgb":
            write_rgb(path, frame.rgb)
        elif what == "fg":
            write_mask(path, frame.fg)
        elif what == "K":
            atomic_write_bytes(path, (" ".join(f"{v:.6e}" for v in frame.K.ravel()) + "\n").encode())
        else:
            write_depth(path, getattr(frame, what))
    return [path for path, _ in targets]


def write_redweb_frame(out_dir: str | os.PathLike, frame: SyntheticFrame, name: str) -> list[Path]:
    """Write ``Imgs/<name>.jpg`` and ``RDs/<name>.png`` (:func:`relative_depth_u8`).

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    (out / "Imgs").mkdir(parents=True, exist_ok=True)
    (out / "RDs").mkdir(parents=True, exist_ok=True)
    img, rd = out / "Imgs" / f"{name}.jpg", out / "RDs" / f"{name}.png"
    write_rgb(img, frame.rgb)
    write_image(rd, relative_depth_u8(frame.gt))
    return [img, rd]


# --------------------------------------------------------------------------- writers


def _resolve_splits(frames: int, splits: Mapping[str, int] | None) -> dict[str, int]:
    if splits is None:
        return split_counts(frames)
    known = ("train", "val", "val_selection", "test")
    unknown = sorted(set(splits) - set(known))
    if unknown:
        raise ValueError(f"splits has unknown keys {unknown}; known: {', '.join(known)}.")
    counts = {k: int(splits.get(k, 0)) for k in known}
    if any(v < 0 for v in counts.values()) or sum(counts.values()) != frames:
        raise ValueError(
            f"splits={counts} must be non-negative and sum to frames={frames}."
        )
    return counts


def _kitti_jobs(counts: Mapping[str, int], per_drive: int) -> list[tuple[str, int | None, int]]:
    """(split, drive number or None, frame number) for every frame, in render order."""
    jobs: list[tuple[str, int | None, int]] = []
    drive = 0
    for split in ("train", "val", "val_selection"):
        for i in range(counts[split]):
            if i % per_drive == 0:
                drive += 1
            jobs.append((split, drive, FIRST_FRAME + i % per_drive))
    jobs.extend(("test", None, i) for i in range(counts["test"]))
    return jobs


def _write_calib(out: Path, K: np.ndarray, h: int, w: int, lidar: LidarSpec) -> int:
    """KITTI raw calibration files for the synthetic date (cam_to_cam and velo_to_cam)."""
    day = out / KITTI_DATE
    day.mkdir(parents=True, exist_ok=True)

    def row(values) -> str:
        return " ".join(f"{float(v):.6e}" for v in np.ravel(values))

    p0 = np.hstack([K, np.zeros((3, 1))])
    # Camera 2 sits 0.06 m left of camera 0 (KITTI): P_rect_02 carries fx * 0.06.
    p2 = np.hstack([K, np.array([[K[0, 0] * 0.06], [0.0], [0.0]])])
    cam = "\n".join(
        [
            "calib_time: 01-Jan-2011 00:00:00",
            f"S_rect_00: {row([w, h])}",
            f"R_rect_00: {row(np.eye(3))}",
            f"P_rect_00: {row(p0)}",
            f"S_rect_02: {row([w, h])}",
            f"R_rect_02: {row(np.eye(3))}",
            f"P_rect_02: {row(p2)}",
            "",
        ]
    )
    # Velodyne axes: x forward, y left, z up -> camera x = -y_v, y = -z_v, z = x_v.
    r_velo = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    velo = "\n".join(
        ["calib_time: 01-Jan-2011 00:00:00", f"R: {row(r_velo)}", f"T: {row(lidar.offset_m)}", ""]
    )
    atomic_write_bytes(day / "calib_cam_to_cam.txt", cam.encode())
    atomic_write_bytes(day / "calib_velo_to_cam.txt", velo.encode())
    return 2


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r}; expected an integer >= {minimum}.")

"""Procedural indoor world: rooms and table tops seen by a pinhole RGB-D camera.

The second synthetic world next to the street (:mod:`depthsense.data.synthetic`), for the
sensors users have indoors (Kinect, RealSense, a few SfM points). Every frame is an
independent scene drawn from ``numpy.random.default_rng(SeedSequence([seed, index, 7]))``:
the same ``(seed, index)`` gives the same arrays and byte-identical files.

Scene
    A room 2.5-8 m wide, 2.5-10 m deep and 2.3-3.2 m high (floor, ceiling, four walls), a
    door and a window or two set into the walls, pictures on the walls, and 3-10 pieces of
    furniture standing on the floor along the walls or in the middle: tables (top and four
    legs) with small objects on them (boxes, cans, bottles, balls), chairs, shelves filled
    with books, cabinets, sofas, beds, floor lamps and plants. Everything is an
    axis-aligned box, a vertical cylinder or a sphere (the street world's ray caster,
    :mod:`depthsense.data.synthetic_world`), so depth edges are exact.

Camera
    640x480 by default; focal length 450-1100 px (log-uniform; NYU and TUM ~520, RealSense
    ~615, YCB-Video's Xtion 1066), principal point within 12 px of the centre. Two kinds of
    views: a room view (camera 0.5-1.8 m above the floor, any heading, pitch -35..+10 deg)
    and, one frame in three, a table-top view (the camera 0.3-0.9 m above a table looking
    down 30-75 deg at the objects on it, as a grasping robot does).

Ground truth
    z-depth from the ray cast, valid in [0.2, 10] m (what a depth camera measures), with a
    depth camera's noise (Gaussian, sigma = k (1 mm + 1.9 mm (z - 0.4 m)^2), k in 0.5-1.5)
    and its missing pixels (``holes`` of :mod:`depthsense.data.patterns`: 1-8 % at depth
    edges, dark and shiny surfaces and in blobs), so it looks like the real frames'
    ground truth it stands in for.

RGB
    Per-object albedo with procedural textures (wood, tiles, carpet, fabric, paint, pictures,
    book spines), 1-3 point lights under the ceiling plus ambient light and sometimes a
    window's daylight, Lambert shading with distance fall-off, specular highlights on
    glossy surfaces, then a camera: exposure, white balance, vignetting, slight blur and
    sensor noise. Colour edges coincide with depth edges, and pictures, tiles and book
    spines add colour edges that are not depth edges.

Written in the RGB-D folder layout (:mod:`depthsense.data.rgbd`)::

    OUT/<source>/rgb/<index:06d>.png   OUT/<source>/gt/<index:06d>.png (KITTI units)
    OUT/<source>/K/<index:06d>.txt
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from depthsense.data.patterns import holes
from depthsense.data.synthetic_world import Prim, Scene, camera_rays, cast_rays, screen_slices, surface_normals
from depthsense.data.synthetic_world import texture_lookup, wrap_mod
from depthsense.errors import DepthFileError
from depthsense.io import atomic_write_bytes, write_depth, write_rgb

__all__ = ["IndoorFrame", "render_indoor", "generate_indoor", "INDOOR_SIZE", "MIN_DEPTH", "MAX_DEPTH",
           "DEFAULT_SOURCE"]

INDOOR_SIZE = (480, 640)
"""(H, W) of the default render (VGA, like Kinect, RealSense and NYU)."""

MIN_DEPTH, MAX_DEPTH = 0.2, 10.0
"""Range (m) of the simulated depth camera; depth outside it is missing (0)."""

DEFAULT_SOURCE = "synthetic_indoor"
"""Source folder name :func:`generate_indoor` writes."""

# Texture kinds (per primitive; index into _TEXTURES).
_PLAIN, _WOOD, _TILES, _CARPET, _FABRIC, _PICTURE, _GLOSSY, _WINDOW = range(8)
_PAINT = np.array([[0.92, 0.9, 0.85], [0.85, 0.88, 0.9], [0.9, 0.85, 0.78], [0.75, 0.8, 0.72],
                   [0.95, 0.95, 0.95], [0.8, 0.72, 0.68], [0.6, 0.68, 0.78]], np.float32)
_WOODS = np.array([[0.55, 0.38, 0.22], [0.7, 0.52, 0.32], [0.42, 0.28, 0.18], [0.8, 0.66, 0.48],
                   [0.3, 0.2, 0.14]], np.float32)


@dataclass
class IndoorFrame:
    """One rendered indoor frame.

    Attributes:
        rgb: (H,W,3) float32 in [0,1].
        gt: (H,W) float32 z-depth in metres with sensor noise and holes, 0 = missing.
        K: (3,3) float64 camera matrix.
        clean: (H,W) float32 noise-free, hole-free depth (0 outside [0.2, 10] m).
    """

    rgb: np.ndarray
    gt: np.ndarray
    K: np.ndarray
    clean: np.ndarray


def render_indoor(seed: int, index: int, height: int = INDOOR_SIZE[0], width: int = INDOOR_SIZE[1]) -> IndoorFrame:
    """Render frame ``index`` of the indoor world seeded by ``seed`` (module docstring).

    Raises:
        ValueError: negative seed or index, or a size below 32 pixels.
    """
    for name, value, low in (("seed", seed, 0), ("index", index, 0), ("height", height, 32), ("width", width, 32)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}={value!r}; expected an integer >= {low}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 7]))
    f = float(np.exp(rng.uniform(np.log(450.0), np.log(1100.0)))) * width / 640.0
    K = np.array([[f, 0.0, width / 2 - 0.5 + rng.uniform(-12, 12) * width / 640],
                  [0.0, f * rng.uniform(0.99, 1.01), height / 2 - 0.5 + rng.uniform(-12, 12) * height / 480],
                  [0.0, 0.0, 1.0]])
    room = _sample_room(rng)
    rot = _sample_view(rng, room)
    dirs = camera_rays(K, height, width, rot)

    def visible(lo, hi):
        return screen_slices(lo, hi, rot, K, height, width, near=0.02)

    t, pid, slices = cast_rays(room.scene, (0.0, 0.0, 0.0), dirs, visible, ground_y=room.floor_y)
    clean = np.where((t >= MIN_DEPTH) & (t <= MAX_DEPTH), t, np.float32(0.0)).astype(np.float32)
    rgb = _shade(room, rng, dirs, t, pid, slices)
    k = rng.uniform(0.5, 1.5)
    sigma = k * (0.001 + 0.0019 * (clean - 0.4) ** 2)
    gt = np.where(clean > 0, clean + sigma * rng.standard_normal(clean.shape).astype(np.float32), 0.0)
    gt = holes(np.maximum(gt, 0.0).astype(np.float32), float(np.exp(rng.uniform(np.log(2.0), np.log(25.0)))), rng, rgb)
    if rng.random() < 0.3:  # a registered depth map's invalid border (NYU, Kinect v1)
        top, bottom, left, right = (int(v) for v in rng.integers(0, int(0.08 * min(height, width)) + 1, 4))
        gt[:top] = 0.0
        gt[height - bottom:] = 0.0
        gt[:, :left] = 0.0
        gt[:, width - right:] = 0.0
    return IndoorFrame(rgb=rgb, gt=gt, K=K, clean=clean)


def generate_indoor(out_dir: str | os.PathLike, frames: int = 10, seed: int = 0, height: int = INDOOR_SIZE[0],
                    width: int = INDOOR_SIZE[1], *, source: str = DEFAULT_SOURCE, progress: bool = False) -> dict:
    """Render ``frames`` frames into ``out_dir/<source>/{rgb,gt,K}/`` (RGB-D folder layout).

    Returns:
        Summary: ``out_dir``, ``source``, ``frames``, ``seed``, ``height``, ``width``,
        ``files``, ``mean_gt_density`` and the depth range over all frames.
    Raises:
        ValueError: bad counts or sizes. DepthFileError: an unwritable destination.
    """
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames={frames!r}; expected an integer >= 1")
    out = Path(out_dir) / source
    try:
        for sub in ("rgb", "gt", "K"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DepthFileError(f"{out}: cannot create the output folders ({exc.strerror}); choose a writable "
                             "directory") from None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=frames, desc="synthetic/indoor", unit="frame")
    density, lo, hi = 0.0, np.inf, 0.0
    try:
        for i in range(frames):
            fr = render_indoor(seed, i, height, width)
            stem = f"{i:06d}"
            write_rgb(out / "rgb" / f"{stem}.png", fr.rgb)
            write_depth(out / "gt" / f"{stem}.png", fr.gt)
            atomic_write_bytes(out / "K" / f"{stem}.txt", (" ".join(f"{v:.6f}" for v in fr.K.ravel()) + "\n").encode())
            valid = fr.gt[fr.gt > 0]
            density += valid.size / fr.gt.size
            if valid.size:
                lo, hi = min(lo, float(valid.min())), max(hi, float(valid.max()))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {"out_dir": str(Path(out_dir)), "source": source, "frames": frames, "seed": seed, "height": height,
            "width": width, "files": 3 * frames, "mean_gt_density": density / frames,
            "depth_range_m": [lo if np.isfinite(lo) else 0.0, hi]}


# --------------------------------------------------------------------------- scene


@dataclass
class _Room:
    scene: Scene
    styles: list[tuple[int, float, tuple[float, float, float]]]  # per prim: texture, scale, second colour
    floor_style: tuple[int, float, tuple[float, float, float]]
    floor_colour: np.ndarray
    floor_y: float
    bounds: tuple[float, float, float, float]  # x0, x1, z0, z1 of the room's inside
    lights: np.ndarray  # (L,3) positions
    light_rgb: np.ndarray  # (L,3) intensities
    ambient: float
    daylight: np.ndarray | None  # (3,) unit direction towards the window light, or None
    table: tuple[float, float, float, float, float] | None  # x0, x1, z0, z1, top y of the table-top view
    furniture: list[tuple[float, float, float, float]]  # footprints x0, x1, z0, z1 of what stands on the floor


class _Builder:
    def __init__(self) -> None:
        self.prims: list[Prim] = []
        self.styles: list[tuple[int, float, tuple[float, float, float]]] = []

    def box(self, lo, hi, colour, texture=_PLAIN, scale=1.0, second=(0.0, 0.0, 0.0)) -> None:
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        self._add(Prim("box", _f(lo), _f(hi), 0, _f(colour), ()), texture, scale, second)

    def cyl(self, x, z, r, top, bottom, colour, texture=_PLAIN) -> None:
        self._add(Prim("cyl", (x - r, top, z - r), (x + r, bottom, z + r), 0, _f(colour), _f((x, z, r))), texture,
                  1.0, (0, 0, 0))

    def sph(self, x, y, z, r, colour, texture=_PLAIN) -> None:
        self._add(Prim("sph", (x - r, y - r, z - r), (x + r, y + r, z + r), 0, _f(colour), _f((x, y, z, r))),
                  texture, 1.0, (0, 0, 0))

    def _add(self, prim: Prim, texture: int, scale: float, second) -> None:
        self.prims.append(prim)
        self.styles.append((int(texture), float(scale), _f(second)))


def _f(v) -> tuple[float, ...]:
    return tuple(float(c) for c in np.ravel(v))


def _sample_room(rng: np.random.Generator) -> _Room:
    b = _Builder()
    tabletop = rng.random() < 1 / 3
    cam_h = rng.uniform(1.0, 1.6) if tabletop else rng.uniform(0.5, 1.8)
    floor_y = cam_h  # world: camera at the origin, y down, the floor at y = cam_h
    width, depth, height = rng.uniform(2.5, 8.0), rng.uniform(2.5, 10.0), rng.uniform(2.3, 3.2)
    x0 = -rng.uniform(0.4, width - 0.4)
    z0 = -rng.uniform(0.4, depth - 0.4)
    x1, z1 = x0 + width, z0 + depth
    ceil = floor_y - height
    wall = _PAINT[rng.integers(len(_PAINT))] * rng.uniform(0.75, 1.05)
    th = 0.1
    b.box((x0 - th, ceil - th, z0 - th), (x1 + th, ceil, z1 + th), _PAINT[rng.integers(len(_PAINT))])  # ceiling
    for lo, hi in (((x0 - th, ceil, z0 - th), (x0, floor_y, z1 + th)), ((x1, ceil, z0 - th), (x1 + th, floor_y, z1 + th)),
                   ((x0, ceil, z0 - th), (x1, floor_y, z0)), ((x0, ceil, z1), (x1, floor_y, z1 + th))):
        b.box(lo, hi, wall, _PLAIN if rng.random() < 0.8 else _FABRIC, rng.uniform(0.5, 2.0))
    # Skirting boards, a door, windows and pictures on the walls.
    sides = [("x0", x0), ("x1", x1), ("z0", z0), ("z1", z1)]
    for name, pos in sides:
        if rng.random() < 0.6:
            _on_wall(b, name, pos, (x0, x1, z0, z1), floor_y - 0.1, floor_y, rng.uniform(0.01, 0.02),
                     _WOODS[rng.integers(len(_WOODS))] * 1.1, None, full=True)
    door_side = sides[rng.integers(4)]
    _on_wall(b, door_side[0], door_side[1], (x0, x1, z0, z1), floor_y - rng.uniform(1.95, 2.1), floor_y,
             rng.uniform(0.02, 0.05), _WOODS[rng.integers(len(_WOODS))], rng, size=rng.uniform(0.8, 1.0),
             texture=_WOOD)
    for _ in range(int(rng.integers(0, 3))):
        side = sides[rng.integers(4)]
        top = ceil + rng.uniform(0.2, 0.5)
        _on_wall(b, side[0], side[1], (x0, x1, z0, z1), top, top + rng.uniform(1.0, 1.6), 0.01,
                 np.array([0.8, 0.88, 0.95]), rng, size=rng.uniform(0.8, 2.0), texture=_WINDOW)
    for _ in range(int(rng.integers(1, 7))):
        side = sides[rng.integers(4)]
        top = ceil + rng.uniform(0.6, 1.4)
        _on_wall(b, side[0], side[1], (x0, x1, z0, z1), top, top + rng.uniform(0.3, 0.9), rng.uniform(0.01, 0.04),
                 rng.uniform(0.1, 0.9, 3), rng, size=rng.uniform(0.3, 1.2), texture=_PICTURE)

    table = None
    placed: list[tuple[float, float, float, float]] = []
    if tabletop:
        # The table the camera looks down at, 0.3-0.9 m below the camera.
        top_y = floor_y - rng.uniform(0.65, 0.8)
        top_y = max(top_y, rng.uniform(0.3, 0.9))  # camera at least 0.3 m above the top
        w, d = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.2)
        cx, cz = rng.uniform(-0.3, 0.3), rng.uniform(0.3, 0.8)
        table = (cx - w / 2, cx + w / 2, cz - d / 2, cz + d / 2, top_y)
        _table(b, rng, table, floor_y, objects=int(rng.integers(5, 16)))
        placed.append(table[:4])
    for _ in range(int(rng.integers(5, 15))):
        kind = rng.choice(["table", "chair", "shelf", "cabinet", "sofa", "bed", "lamp", "plant"],
                          p=[0.2, 0.17, 0.15, 0.14, 0.1, 0.06, 0.08, 0.1])
        _furniture(b, rng, str(kind), (x0, x1, z0, z1), floor_y, placed)

    n_lights = int(rng.integers(1, 4))
    lights = np.stack([rng.uniform([x0 + 0.3, ceil + 0.05, z0 + 0.3], [x1 - 0.3, ceil + 0.5, z1 - 0.3])
                       for _ in range(n_lights)])
    warm = rng.uniform(0.0, 1.0, n_lights)[:, None]
    light_rgb = (warm * np.array([1.0, 0.85, 0.65]) + (1 - warm) * np.array([0.95, 0.97, 1.0])) \
        * rng.uniform(0.6, 1.4, (n_lights, 1))
    daylight = None
    if rng.random() < 0.4:
        v = rng.normal(size=3)
        v[1] = -abs(v[1]) - 0.3  # from above
        daylight = v / np.linalg.norm(v)
    floor_tex = int(rng.choice([_WOOD, _TILES, _CARPET, _PLAIN], p=[0.4, 0.3, 0.2, 0.1]))
    floor_col = _WOODS[rng.integers(len(_WOODS))] if floor_tex == _WOOD else rng.uniform(0.3, 0.85) * \
        np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.7, 1.0)])
    tex_fine = rng.random((256, 256), dtype=np.float32)
    tex_coarse = np.pad(rng.random((256, 256), dtype=np.float32), 16, mode="wrap")
    tex_coarse = cv2.GaussianBlur(tex_coarse, (0, 0), 4.0)[16:-16, 16:-16]
    tex_coarse = (tex_coarse - tex_coarse.min()) / max(float(np.ptp(tex_coarse)), 1e-6)
    scene = Scene(b.prims, (0.0, 0.0, 0.0), np.array([0.0, -1.0, 0.0]), tex_fine, tex_coarse.astype(np.float32))
    return _Room(scene=scene, styles=b.styles, floor_style=(floor_tex, rng.uniform(0.3, 0.7), _f(floor_col * 0.7)),
                 floor_colour=np.asarray(floor_col, np.float32), floor_y=floor_y, bounds=(x0, x1, z0, z1),
                 lights=lights, light_rgb=light_rgb.astype(np.float32), ambient=float(rng.uniform(0.2, 0.45)),
                 daylight=daylight, table=table, furniture=placed)


def _sample_view(rng: np.random.Generator, room: _Room) -> np.ndarray:
    """World-from-camera rotation: heading, pitch (down < 0) and a little roll."""
    if room.table is not None:
        x0, x1, z0, z1, _ = room.table
        yaw = math.atan2((x0 + x1) / 2, (z0 + z1) / 2) + rng.uniform(-0.2, 0.2)
        pitch = -math.radians(rng.uniform(30.0, 75.0))
    elif room.furniture and rng.random() < 0.75:  # look at something, as people point cameras
        x0, x1, z0, z1 = room.furniture[rng.integers(len(room.furniture))]
        cx, cz = (x0 + x1) / 2, (z0 + z1) / 2
        yaw = math.atan2(cx, cz) + rng.uniform(-0.35, 0.35)
        down = math.atan2(room.floor_y - 0.6, max(math.hypot(cx, cz), 0.5))  # towards ~0.6 m above the floor
        pitch = -down + math.radians(rng.uniform(-12.0, 12.0))
    else:
        yaw = rng.uniform(-math.pi, math.pi)
        pitch = math.radians(rng.uniform(-35.0, 10.0))
    roll = math.radians(rng.uniform(-4.0, 4.0))
    cy, sy, cp, sp, cr, sr = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return r_yaw @ r_pitch @ r_roll


def _on_wall(b: _Builder, side: str, pos: float, bounds, top: float, bottom: float, proud: float, colour,
             rng: np.random.Generator | None, size: float = 0.0, texture: int = _PLAIN, full: bool = False) -> None:
    """A thin panel (door, window, picture, skirting) on the inside of a wall."""
    x0, x1, z0, z1 = bounds
    along = (x0, x1) if side in ("z0", "z1") else (z0, z1)
    if full:
        a0, a1 = along
    else:
        span = along[1] - along[0]
        size = min(size, span - 0.2)
        if size <= 0.1:
            return
        a0 = along[0] + 0.1 + rng.uniform(0.0, span - size - 0.2)
        a1 = a0 + size
    inward = 1.0 if side in ("x0", "z0") else -1.0
    n0, n1 = sorted((pos, pos + inward * proud))
    if side in ("z0", "z1"):
        b.box((a0, top, n0), (a1, bottom, n1), colour, texture, 1.0, tuple(np.asarray(colour) * 0.6))
    else:
        b.box((n0, top, a0), (n1, bottom, a1), colour, texture, 1.0, tuple(np.asarray(colour) * 0.6))


def _free(placed, x0, x1, z0, z1, clear: float = 0.05) -> bool:
    if x0 - 0.35 < 0.0 < x1 + 0.35 and z0 - 0.35 < 0.0 < z1 + 0.35:
        return False  # never around the camera
    return all(x1 + clear <= a0 or a1 + clear <= x0 or z1 + clear <= c0 or c1 + clear <= z0
               for a0, a1, c0, c1 in placed)


def _furniture(b: _Builder, rng: np.random.Generator, kind: str, room, floor_y: float, placed: list) -> None:
    x0, x1, z0, z1 = room
    sizes = {"table": (0.8, 1.8, 0.6, 1.0), "chair": (0.4, 0.5, 0.4, 0.5), "shelf": (0.6, 1.6, 0.25, 0.4),
             "cabinet": (0.5, 1.5, 0.4, 0.6), "sofa": (1.5, 2.4, 0.8, 1.0), "bed": (1.4, 2.0, 1.9, 2.1),
             "lamp": (0.3, 0.4, 0.3, 0.4), "plant": (0.3, 0.6, 0.3, 0.6)}[kind]
    for _ in range(20):  # rejection sampling of a free footprint
        w, d = rng.uniform(sizes[0], sizes[1]), rng.uniform(sizes[2], sizes[3])
        if rng.random() < 0.5:
            w, d = d, w
        if x1 - x0 < w + 0.1 or z1 - z0 < d + 0.1:
            return
        if rng.random() < 0.6 and kind not in ("table", "chair"):  # against a wall
            side = rng.integers(4)
            px = [x0 + 0.02, x1 - w - 0.02, rng.uniform(x0, x1 - w), rng.uniform(x0, x1 - w)][side]
            pz = [rng.uniform(z0, z1 - d), rng.uniform(z0, z1 - d), z0 + 0.02, z1 - d - 0.02][side]
        else:
            px, pz = rng.uniform(x0 + 0.05, x1 - w - 0.05), rng.uniform(z0 + 0.05, z1 - d - 0.05)
        if _free(placed, px, px + w, pz, pz + d):
            break
    else:
        return
    placed.append((px, px + w, pz, pz + d))
    fy = floor_y
    wood = _WOODS[rng.integers(len(_WOODS))]
    if kind == "table":
        _table(b, rng, (px, px + w, pz, pz + d, fy - rng.uniform(0.7, 0.78)), fy, objects=int(rng.integers(1, 10)))
    elif kind == "chair":
        seat = fy - rng.uniform(0.42, 0.48)
        col = wood if rng.random() < 0.6 else rng.uniform(0.1, 0.8, 3)
        b.box((px, seat - 0.04, pz), (px + w, seat, pz + d), col, _WOOD, 1.0, col * 0.7)
        back = rng.integers(4)
        bx = [(px, px + 0.04), (px + w - 0.04, px + w), (px, px + w), (px, px + w)][back]
        bz = [(pz, pz + d), (pz, pz + d), (pz, pz + 0.04), (pz + d - 0.04, pz + d)][back]
        b.box((bx[0], seat - rng.uniform(0.4, 0.5), bz[0]), (bx[1], seat, bz[1]), col, _WOOD, 1.0, col * 0.7)
        for lx, lz in ((px + 0.03, pz + 0.03), (px + w - 0.03, pz + 0.03), (px + 0.03, pz + d - 0.03),
                       (px + w - 0.03, pz + d - 0.03)):
            b.cyl(lx, lz, 0.018, seat, fy, col * 0.8)
    elif kind == "shelf":
        top = fy - rng.uniform(1.0, 2.1)
        b.box((px, top, pz), (px + w, fy, pz + d), wood, _WOOD, 1.0, wood * 0.7)
        n = int(rng.integers(3, 6))
        level = np.linspace(top + 0.03, fy - 0.05, n + 1)
        # Open shelves: carve the front by placing books in front of a recessed back panel.
        along_x = w >= d
        for k in range(n):
            lo, hi = level[k] + 0.02, level[k + 1]
            a, e = (px, px + w) if along_x else (pz, pz + d)
            pos = a + 0.02
            while pos < e - 0.05:
                bw = rng.uniform(0.015, 0.06)
                bh = (hi - lo) * rng.uniform(0.6, 0.95)
                col = rng.uniform(0.05, 0.9, 3)
                front = (pz + d + rng.uniform(0.0, 0.03)) if along_x else (px + w + rng.uniform(0.0, 0.03))
                if along_x:
                    b.box((pos, hi - bh, pz + 0.02), (pos + bw, hi, front), col)
                else:
                    b.box((px + 0.02, hi - bh, pos), (front, hi, pos + bw), col)
                pos += bw + (rng.uniform(0.0, 0.01) if rng.random() < 0.85 else rng.uniform(0.05, 0.2))
    elif kind == "cabinet":
        top = fy - rng.uniform(0.5, 1.2)
        col = wood if rng.random() < 0.5 else _PAINT[rng.integers(len(_PAINT))] * rng.uniform(0.6, 1.0)
        b.box((px, top, pz), (px + w, fy, pz + d), col, _WOOD if rng.random() < 0.5 else _GLOSSY, 1.0, col * 0.6)
        if rng.random() < 0.7:  # something on top
            _small_objects(b, rng, (px, px + w, pz, pz + d, top), int(rng.integers(1, 4)))
    elif kind == "sofa":
        col = rng.uniform(0.1, 0.7, 3)
        seat = fy - rng.uniform(0.4, 0.48)
        b.box((px, seat, pz), (px + w, fy, pz + d), col, _FABRIC, 2.0)
        arm = 0.18
        if w >= d:
            b.box((px, seat - rng.uniform(0.35, 0.5), pz + d - 0.2), (px + w, seat, pz + d), col, _FABRIC, 2.0)
            b.box((px, seat - 0.2, pz), (px + arm, seat, pz + d - 0.2), col, _FABRIC, 2.0)
            b.box((px + w - arm, seat - 0.2, pz), (px + w, seat, pz + d - 0.2), col, _FABRIC, 2.0)
        else:
            b.box((px + w - 0.2, seat - rng.uniform(0.35, 0.5), pz), (px + w, seat, pz + d), col, _FABRIC, 2.0)
    elif kind == "bed":
        b.box((px, fy - 0.3, pz), (px + w, fy, pz + d), wood, _WOOD, 1.0, wood * 0.7)
        sheet = rng.uniform(0.5, 0.95, 3)
        b.box((px + 0.03, fy - rng.uniform(0.5, 0.6), pz + 0.03), (px + w - 0.03, fy - 0.3, pz + d - 0.03), sheet,
              _FABRIC, 3.0)
    elif kind == "lamp":
        cx, cz = px + w / 2, pz + d / 2
        h = rng.uniform(1.2, 1.8)
        b.cyl(cx, cz, rng.uniform(0.12, 0.18), fy - 0.03, fy, (0.2, 0.2, 0.2), _GLOSSY)
        b.cyl(cx, cz, 0.015, fy - h, fy, (0.3, 0.3, 0.3), _GLOSSY)
        b.cyl(cx, cz, rng.uniform(0.15, 0.2), fy - h - 0.25, fy - h + 0.02, rng.uniform(0.7, 1.0, 3))
    else:  # plant
        cx, cz = px + w / 2, pz + d / 2
        r = min(w, d) / 2
        pot = fy - rng.uniform(0.25, 0.45)
        b.cyl(cx, cz, r * 0.6, pot, fy, rng.uniform(0.3, 0.7, 3) * np.array([1.0, 0.6, 0.4]))
        b.sph(cx, pot - r * 0.9, cz, r, np.array([0.2, 0.45, 0.15]) * rng.uniform(0.6, 1.2), _CARPET)


def _table(b: _Builder, rng: np.random.Generator, table, floor_y: float, objects: int) -> None:
    x0, x1, z0, z1, top = table
    col = _WOODS[rng.integers(len(_WOODS))] if rng.random() < 0.7 else rng.uniform(0.1, 0.95) * np.ones(3)
    tex = _WOOD if rng.random() < 0.7 else _GLOSSY
    b.box((x0, top, z0), (x1, top + rng.uniform(0.025, 0.05), z1), col, tex, 1.0, col * 0.7)
    r = rng.uniform(0.02, 0.04)
    for lx, lz in ((x0 + 0.05, z0 + 0.05), (x1 - 0.05, z0 + 0.05), (x0 + 0.05, z1 - 0.05), (x1 - 0.05, z1 - 0.05)):
        b.cyl(lx, lz, r, top + 0.03, floor_y, col * 0.8)
    _small_objects(b, rng, table, objects)


def _small_objects(b: _Builder, rng: np.random.Generator, surface, n: int) -> None:
    """Boxes, cans, bottles, balls, books and monitors standing on a surface (y = top)."""
    x0, x1, z0, z1, top = surface
    for _ in range(n):
        kind = rng.choice(["box", "can", "bottle", "ball", "book", "monitor", "mug"],
                          p=[0.28, 0.18, 0.12, 0.1, 0.14, 0.06, 0.12])
        col = rng.uniform(0.02, 0.95, 3)
        cx, cz = rng.uniform(x0 + 0.06, x1 - 0.06), rng.uniform(z0 + 0.06, z1 - 0.06)
        glossy = _GLOSSY if rng.random() < 0.35 else (_PICTURE if rng.random() < 0.3 else _PLAIN)
        if kind == "box":
            w, d, h = rng.uniform(0.04, 0.3, 3)
            b.box((cx - w / 2, top - h, cz - d / 2), (cx + w / 2, top, cz + d / 2), col, glossy)
        elif kind in ("can", "mug"):
            r, h = rng.uniform(0.03, 0.06), rng.uniform(0.07, 0.18)
            b.cyl(cx, cz, r, top - h, top, col, glossy)
        elif kind == "bottle":
            r, h = rng.uniform(0.03, 0.045), rng.uniform(0.18, 0.32)
            b.cyl(cx, cz, r, top - h * 0.7, top, col, _GLOSSY)
            b.cyl(cx, cz, r * 0.35, top - h, top - h * 0.7, col, _GLOSSY)
        elif kind == "ball":
            r = rng.uniform(0.03, 0.1)
            b.sph(cx, top - r, cz, r, col, glossy)
        elif kind == "book":
            w, d, h = rng.uniform(0.12, 0.25), rng.uniform(0.15, 0.3), rng.uniform(0.015, 0.05)
            b.box((cx - w / 2, top - h, cz - d / 2), (cx + w / 2, top, cz + d / 2), col, _PICTURE)
        else:  # monitor: a thin dark slab on a foot
            w, h = rng.uniform(0.35, 0.6), rng.uniform(0.25, 0.4)
            b.box((cx - w / 2, top - 0.12 - h, cz - 0.015), (cx + w / 2, top - 0.12, cz + 0.015), (0.03, 0.03, 0.035),
                  _GLOSSY)
            b.box((cx - 0.03, top - 0.12, cz - 0.01), (cx + 0.03, top, cz + 0.01), (0.1, 0.1, 0.1))


# --------------------------------------------------------------------------- shading


def _shade(room: _Room, rng: np.random.Generator, dirs: np.ndarray, t: np.ndarray, pid: np.ndarray,
           slices: list) -> np.ndarray:
    """(H,W,3) float32 RGB in [0,1] of the camera rays' hits (module docstring)."""
    h, w = t.shape
    scene = room.scene
    hit = np.isfinite(t)
    tt = np.where(hit, t, np.float32(0.0))
    x, y, z = dirs[0] * tt, dirs[1] * tt, dirs[2] * tt
    normal = surface_normals(scene, (x, y, z), np.where(hit, pid, 0).astype(np.int16), slices)
    ax, ay, az = np.abs(normal[0]), np.abs(normal[1]), np.abs(normal[2])
    dom_x = (ax >= ay) & (ax >= az)
    dom_y = ~dom_x & (ay >= az)
    ta = np.where(dom_x, z, x)
    tb = np.where(dom_y, z, y)

    idx = np.maximum(pid.astype(np.int64) - 1, 0)
    colours = np.array([p.colour for p in scene.prims] or [(0.5, 0.5, 0.5)], np.float32)
    seconds = np.array([s[2] for s in room.styles] or [(0.0, 0.0, 0.0)], np.float32)
    kinds = np.array([s[0] for s in room.styles] or [_PLAIN], np.int64)
    scales = np.array([s[1] for s in room.styles] or [1.0], np.float32)
    floor = pid == 0
    albedo = colours[idx]
    second = seconds[idx]
    kind = np.where(floor, room.floor_style[0], kinds[idx])
    scale = np.where(floor, room.floor_style[1], scales[idx])
    albedo[floor] = room.floor_colour
    second[floor] = room.floor_style[2]

    fine = texture_lookup(scene.tex_fine, ta * 40.0, tb * 40.0)
    coarse = texture_lookup(scene.tex_coarse, ta * 3.0 / scale, tb * 3.0 / scale)
    mix = np.zeros((h, w), np.float32)  # 0: albedo, 1: second colour
    mod = 0.94 + 0.06 * fine
    wood = kind == _WOOD
    grain = 0.5 + 0.5 * np.sin(tb * 60.0 / scale + coarse * 9.0)
    mix[wood] = (0.6 * grain + 0.4 * (wrap_mod(ta / (0.12 * scale), 1.0) < 0.04))[wood]
    tiles = kind == _TILES
    grout = (wrap_mod(ta / scale, 1.0) < 0.03) | (wrap_mod(tb / scale, 1.0) < 0.03)
    mix[tiles] = grout[tiles]
    mod[tiles] *= (0.9 + 0.2 * coarse)[tiles]
    carpet = kind == _CARPET
    mod[carpet] = (0.7 + 0.5 * fine * (0.6 + 0.4 * coarse))[carpet]
    fabric = kind == _FABRIC
    mod[fabric] = (0.8 + 0.25 * fine + 0.15 * coarse)[fabric]
    picture = kind == _PICTURE
    blocks = np.floor(texture_lookup(scene.tex_coarse, ta * 9.0, tb * 9.0) * 5.0)
    palette = rng.uniform(0.05, 0.95, (6, 3)).astype(np.float32)
    albedo[picture] = palette[np.clip(blocks, 0, 5).astype(np.int64)][picture]
    window = kind == _WINDOW
    mix[window] = 0.0

    colour = albedo * (1.0 - mix[..., None]) + second * mix[..., None]
    colour *= mod[..., None]

    # Lighting: ambient + point lights with fall-off (+ daylight), Lambert, Blinn-Phong highlights.
    pts = np.stack([x, y, z])
    view = -dirs / np.maximum(np.linalg.norm(dirs, axis=0, keepdims=True), 1e-6)
    light = np.full((h, w, 3), room.ambient, np.float32)
    spec = np.zeros((h, w), np.float32)
    glossy = kind == _GLOSSY
    shine = rng.uniform(20.0, 80.0)
    for pos, rgb in zip(room.lights, room.light_rgb):
        vec = pos[:, None, None].astype(np.float32) - pts
        dist = np.maximum(np.linalg.norm(vec, axis=0), 1e-3)
        ldir = vec / dist
        lam = np.maximum((normal * ldir).sum(0), 0.0) / (1.0 + (dist / 3.0) ** 2)
        light += lam[..., None] * rgb
        half = ldir + view
        half /= np.maximum(np.linalg.norm(half, axis=0, keepdims=True), 1e-6)
        spec += np.where(glossy, np.maximum((normal * half).sum(0), 0.0) ** shine, 0.0) * float(rgb.mean())
    if room.daylight is not None:
        sun = -room.daylight.astype(np.float32)
        lam = np.maximum((normal * sun[:, None, None]).sum(0), 0.0)
        light += (0.5 * lam)[..., None] * np.array([1.0, 0.98, 0.95], np.float32)
    img = colour * light + spec[..., None] * 0.8
    img[window] = (np.array([0.85, 0.92, 1.0], np.float32) * (1.3 + 0.4 * coarse[..., None]))[window]
    img[~hit] = 0.0

    # The camera: exposure, white balance, vignetting, blur, noise, gamma.
    img *= rng.uniform(0.75, 1.0) / max(float(np.quantile(img, 0.97)), 1e-3)
    img *= rng.uniform(0.9, 1.1, 3).astype(np.float32)
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((u - w / 2) / (w / 2)) ** 2 + ((v - h / 2) / (h / 2)) ** 2
    img *= (1.0 - rng.uniform(0.0, 0.25) * r2 / 2.0)[..., None]
    img = np.clip(img, 0.0, 1.0) ** np.float32(1.0 / rng.uniform(1.4, 2.2))
    sigma = rng.uniform(0.0, 0.9)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += rng.normal(0.0, rng.uniform(0.003, 0.02), img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)

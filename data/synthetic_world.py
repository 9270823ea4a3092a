"""The synthetic street world: scene sampling, ray casting, shading and the LiDAR simulator.

The renderer behind :mod:`depthsense.data.synthetic` (which holds the public API, the
frame record and the KITTI/ReDWeb writers; its docstring describes the world, camera,
ground truth, RGB and LiDAR models). Everything here works on numpy arrays and a
:class:`Scene` of analytic primitives; nothing reads or writes files.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

__all__ = [
    "CAMERA_HEIGHT",
    "MAX_DEPTH",
    "Prim",
    "Scene",
    "sample_rig",
    "sample_scene",
    "camera_rays",
    "cast_rays",
    "screen_slices",
    "shade",
    "surface_normals",
    "wrap_mod",
    "texture_lookup",
    "simulate_lidar",
    "LidarSpec",
    "HDL64E_ELEVATIONS_DEG",
    "LIDAR_NATIVE_WIDTH",
    "FOREGROUND_MATERIALS",
    "foreground_mask",
]

CAMERA_HEIGHT = 1.65
"""Camera height above the ground plane ``y = CAMERA_HEIGHT`` (metres)."""

MAX_DEPTH = 80.0
"""Ground truth and LiDAR depth beyond this many metres is set to 0 (invalid)."""

HDL64E_ELEVATIONS_DEG: tuple[float, ...] = tuple(
    round(float(e), 4)
    for e in np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.8, 32)])
)
"""Elevation of the 64 beams, top first: upper block 1/3 deg apart, lower block ~1/2 deg."""

LIDAR_NATIVE_WIDTH = 1216
"""Image width (KITTI depth completion's crop) at which :class:`LidarSpec` is the HDL-64E itself."""

_EPS = 1e-4  # smallest accepted ray parameter: ignores self-hits at the origin

# --------------------------------------------------------------------------- scene


@dataclass
class Prim:
    kind: str  # "box" | "cyl" | "sph"
    lo: tuple[float, float, float]  # axis-aligned bounds (for culling and boxes)
    hi: tuple[float, float, float]
    material: int
    colour: tuple[float, float, float]
    params: tuple[float, ...] = ()  # cyl: (cx, cz, r); sph: (cx, cy, cz, r); building: window grid


@dataclass
class Scene:
    prims: list[Prim]
    road: tuple[float, float, float]  # left edge x, right edge x, centre-line x
    sun: np.ndarray  # (3,) unit vector towards the sun, world frame
    tex_fine: np.ndarray  # (256,256) float32 noise in [0,1]
    tex_coarse: np.ndarray  # (256,256) float32 smooth noise in [0,1]


_M_GROUND, _M_SIDEWALK, _M_BUILDING, _M_CAR, _M_CABIN, _M_POLE, _M_TRUNK, _M_CROWN = range(8)

FOREGROUND_MATERIALS: tuple[int, ...] = (_M_CAR, _M_CABIN, _M_POLE)
"""Materials of the foreground objects: cars (body and cabin) and poles. Ground,
sidewalks, buildings and trees (trunk and crown) are background: the world has no
pedestrians, and trees are vegetation ("stuff"), not the objects a planner tracks."""


def foreground_mask(scene: Scene, pid: np.ndarray, t: np.ndarray, max_depth: float = MAX_DEPTH) -> np.ndarray:
    """Pixels whose nearest hit is a foreground object (:data:`FOREGROUND_MATERIALS`).

    Args:
        scene: the scene that was cast.
        pid: (H,W) int16 primitive ids from :func:`cast_rays` (-1 none, 0 ground,
            k = ``scene.prims[k-1]``).
        t: (H,W) hit distance (z-depth for camera rays); objects farther than
            ``max_depth`` are background, like the ground truth there (0).
    Returns:
        (H,W) bool.
    """
    mat_of = np.array([-1, _M_GROUND] + [p.material for p in scene.prims], dtype=np.int16)
    return np.isin(mat_of[pid.astype(np.int64) + 1], FOREGROUND_MATERIALS) & (t <= max_depth)

_FACADE_TINTS = np.array(
    [
        [1.0, 0.9, 0.78],
        [0.9, 0.9, 0.95],
        [1.0, 0.78, 0.66],
        [0.8, 0.85, 0.9],
        [0.95, 0.95, 0.85],
        [0.75, 0.55, 0.45],
    ]
)


def sample_rig(rng: np.random.Generator) -> np.ndarray:
    """World-from-camera rotation: small yaw, pitch (road slope) and roll."""
    yaw, pitch, roll = np.deg2rad(rng.uniform([-4.0, -1.5, -1.0], [4.0, 1.5, 1.0]))
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return r_yaw @ r_pitch @ r_roll


def sample_scene(rng: np.random.Generator) -> Scene:
    g = CAMERA_HEIGHT
    road_l, road_r = -rng.uniform(3.5, 7.5), rng.uniform(4.0, 8.0)
    curb = rng.uniform(0.10, 0.18)
    prims: list[Prim] = []

    def box(lo, hi, material, colour, params=()):
        prims.append(_prim("box", lo, hi, material, colour, params))

    for side in (-1.0, 1.0):
        edge = road_r if side > 0 else road_l
        walk = rng.uniform(1.5, 4.0)
        x_a, x_b = sorted((edge, edge + side * walk))
        box((x_a, g - curb, -20.0), (x_b, g + 0.5, 200.0), _M_SIDEWALK, rng.uniform(0.55, 0.7) * np.ones(3))
        # Buildings along the sidewalk, with gaps (side streets, yards).
        z = rng.uniform(-30.0, -5.0)
        while z < 140.0:
            if rng.random() < 0.3:
                z += rng.uniform(5.0, 20.0)
                continue
            length, setback, depth = rng.uniform(8.0, 28.0), rng.uniform(0.0, 6.0), rng.uniform(8.0, 16.0)
            height = rng.uniform(4.5, 18.0)
            x0 = edge + side * (walk + setback)
            x1 = x0 + side * depth
            colour = rng.uniform(0.35, 0.8) * _FACADE_TINTS[rng.integers(len(_FACADE_TINTS))]
            window = (rng.uniform(2.4, 4.0), rng.uniform(2.8, 3.6), height)
            box((min(x0, x1), g - height, z), (max(x0, x1), g, z + length), _M_BUILDING, colour, window)
            z += length
        # Parked cars along the curb.
        z = rng.uniform(1.0, 12.0)
        for _ in range(int(rng.integers(0, 5))):
            _add_car(box, rng, g, side, edge - side * rng.uniform(0.15, 0.4), z)
            z += rng.uniform(4.0, 5.0) + rng.uniform(1.0, 12.0)
        # Poles and trees on the sidewalk.
        for _ in range(int(rng.integers(0, 4))):
            x = edge + side * rng.uniform(0.3, 0.8)
            zc, r = rng.uniform(3.0, 70.0), rng.uniform(0.06, 0.15)
            top = g - curb - rng.uniform(4.0, 9.0)
            _add_cyl(prims, x, zc, r, top, g - curb, _M_POLE, rng.uniform(0.4, 0.6) * np.ones(3))
        for _ in range(int(rng.integers(0, 4))):
            x = edge + side * rng.uniform(0.8, max(walk - 0.5, 0.9))
            zc, r, trunk = rng.uniform(4.0, 70.0), rng.uniform(0.12, 0.25), rng.uniform(2.5, 4.0)
            crown = rng.uniform(1.2, 2.5)
            _add_cyl(prims, x, zc, r, g - curb - trunk, g - curb, _M_TRUNK, (0.36, 0.26, 0.16))
            cy = g - curb - trunk - 0.6 * crown
            green = np.array([0.22, 0.45, 0.16]) * rng.uniform(0.7, 1.2)
            lo, hi = (x - crown, cy - crown, zc - crown), (x + crown, cy + crown, zc + crown)
            prims.append(_prim("sph", lo, hi, _M_CROWN, green, (x, cy, zc, crown)))
    if rng.random() < 0.6:  # a car ahead in our lane
        _add_car(box, rng, g, 1.0, rng.uniform(-0.5, 0.5) + 0.9, rng.uniform(8.0, 35.0))
    if rng.random() < 0.4:  # the street ends at a building
        z0 = rng.uniform(45.0, 120.0)
        colour = rng.uniform(0.35, 0.8) * _FACADE_TINTS[rng.integers(len(_FACADE_TINTS))]
        height = rng.uniform(6.0, 25.0)
        window = (rng.uniform(2.4, 4.0), rng.uniform(2.8, 3.6), height)
        box((-80.0, g - height, z0), (80.0, g, z0 + 12.0), _M_BUILDING, colour, window)

    sun_az, sun_el = rng.uniform(0.0, 2 * math.pi), np.deg2rad(rng.uniform(25.0, 60.0))
    sun = np.array(
        [math.cos(sun_el) * math.sin(sun_az), -math.sin(sun_el), math.cos(sun_el) * math.cos(sun_az)]
    )
    tex_fine = rng.random((256, 256), dtype=np.float32)
    # Blur a wrapped copy so the tiled texture has no seams.
    tex_coarse = np.pad(rng.random((256, 256), dtype=np.float32), 16, mode="wrap")
    tex_coarse = cv2.GaussianBlur(tex_coarse, (0, 0), 4.0)[16:-16, 16:-16]
    tex_coarse = (tex_coarse - tex_coarse.min()) / max(float(np.ptp(tex_coarse)), 1e-6)
    centre = road_l + 0.45 * (road_r - road_l)
    return Scene(prims, (road_l, road_r, centre), sun, tex_fine, tex_coarse.astype(np.float32))


def _add_car(
    box: Callable, rng: np.random.Generator, g: float, side: float, outer_x: float, z: float
) -> None:
    """A car whose outer side is at ``outer_x`` (curb side) and rear at ``z``."""
    length, width = rng.uniform(3.8, 4.9), rng.uniform(1.65, 1.9)
    body_top, cabin_top = g - rng.uniform(0.9, 1.05), g - rng.uniform(1.4, 1.6)
    x0, x1 = sorted((outer_x, outer_x - side * width))
    colour = rng.uniform(0.05, 0.9, 3)
    box((x0, body_top, z), (x1, g - 0.2, z + length), _M_CAR, colour)
    front, back = rng.uniform(0.9, 1.3), rng.uniform(0.5, 0.9)
    box((x0 + 0.1, cabin_top, z + back), (x1 - 0.1, body_top, z + length - front), _M_CABIN, colour)


def _add_cyl(
    prims: list[Prim], x: float, z: float, r: float, top: float, bottom: float, material: int, colour
) -> None:
    prims.append(_prim("cyl", (x - r, top, z - r), (x + r, bottom, z + r), material, colour, (x, z, r)))


def _prim(kind: str, lo, hi, material: int, colour, params=()) -> Prim:
    # Plain Python floats: numpy float64 scalars would upcast the float32 ray arrays.
    def floats(v):
        return tuple(float(c) for c in v)

    return Prim(kind, floats(lo), floats(hi), material, floats(colour), floats(params))


# --------------------------------------------------------------------------- ray casting


def camera_rays(K: np.ndarray, height: int, width: int, rot: np.ndarray) -> np.ndarray:
    """(3,H,W) float32 world-frame ray directions scaled so the camera-frame z is 1.

    With that scaling the ray parameter t of a hit *is* its z-depth.
    """
    xn = ((np.arange(width) - K[0, 2]) / K[0, 0]).astype(np.float32)[None, :]
    yn = ((np.arange(height) - K[1, 2]) / K[1, 1]).astype(np.float32)[:, None]
    r = rot.astype(np.float32)
    return np.stack([r[i, 0] * xn + r[i, 1] * yn + r[i, 2] for i in range(3)])


def cast_rays(
    scene: Scene,
    origin: tuple[float, float, float],
    dirs: np.ndarray,
    slices: Callable[[tuple, tuple], tuple | None] | None = None,
    ground_y: float = CAMERA_HEIGHT,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of every ray.

    Args:
        origin: common ray origin (world).
        dirs: (3,A,B) float32 ray directions.
        slices: maps a primitive's world bounds to the (rows, cols) slices of the ray
            grid that can hit it, or None if none can; default: all rays.
        ground_y: the ground plane ``y = ground_y`` (world, y down; the street's
            :data:`CAMERA_HEIGHT` by default, a room's floor indoors).
    Returns:
        t (A,B) float32 ray parameter of the nearest hit (inf = none), pid (A,B)
        int16: -1 none, 0 ground, k = ``scene.prims[k-1]``, and the slice pair used
        for each primitive (None where it was culled).
    """
    ox, oy, oz = (float(v) for v in origin)
    safe = np.where(np.abs(dirs) < 1e-12, np.float32(1e-12), dirs)
    inv = (1.0 / safe).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dirs[1] > 1e-9, (ground_y - oy) * inv[1], np.inf).astype(np.float32)
    t[t < _EPS] = np.inf
    pid = np.where(np.isfinite(t), 0, -1).astype(np.int16)
    everything = (slice(None), slice(None))
    used: list = []
    for k, p in enumerate(scene.prims, start=1):
        sl = everything if slices is None else slices(p.lo, p.hi)
        used.append(sl)
        if sl is None:
            continue
        d = dirs[(slice(None), *sl)]
        if p.kind == "box":
            th = _ray_box((ox, oy, oz), inv[(slice(None), *sl)], p.lo, p.hi)
        elif p.kind == "cyl":
            th = _ray_cylinder((ox, oy, oz), d, p.params, p.lo[1], p.hi[1])
        else:
            th = _ray_sphere((ox, oy, oz), d, p.params)
        bt = t[sl]  # view: writes land in t
        closer = th < bt
        bt[closer] = th[closer]
        pid[sl][closer] = k
    return t, pid, used


def _ray_box(o, inv: np.ndarray, lo, hi) -> np.ndarray:
    """Slab test; entry parameter of rays starting outside the box, inf on a miss."""
    a = (lo[0] - o[0]) * inv[0]
    b = (hi[0] - o[0]) * inv[0]
    near, far = np.minimum(a, b), np.maximum(a, b)
    for i in (1, 2):
        a = (lo[i] - o[i]) * inv[i]
        b = (hi[i] - o[i]) * inv[i]
        np.maximum(near, np.minimum(a, b), out=near)
        np.minimum(far, np.maximum(a, b), out=far)
    near[(far < near) | (near < _EPS)] = np.inf
    return near


def _ray_cylinder(o, d: np.ndarray, params, top: float, bottom: float) -> np.ndarray:
    """Vertical cylinder (axis along y, side surface only; top/bottom are not caps)."""
    cx, cz, r = params
    ex, ez = o[0] - cx, o[2] - cz
    a = d[0] * d[0] + d[2] * d[2]
    b = d[0] * ex + d[2] * ez  # half of the usual b
    c = ex * ex + ez * ez - r * r
    disc = b * b - a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / a
    y = o[1] + t * d[1]
    t[~((disc >= 0) & (t > _EPS) & (y >= top) & (y <= bottom))] = np.inf
    return t


def _ray_sphere(o, d: np.ndarray, params) -> np.ndarray:
    cx, cy, cz, r = params
    e = (o[0] - cx, o[1] - cy, o[2] - cz)
    a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    b = d[0] * e[0] + d[1] * e[1] + d[2] * e[2]
    c = e[0] ** 2 + e[1] ** 2 + e[2] ** 2 - r * r
    disc = b * b - a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / a
    t[~((disc >= 0) & (t > _EPS))] = np.inf
    return t


_BOX_EDGES = [(i, i | bit) for i in range(8) for bit in (1, 2, 4) if not i & bit]


def screen_slices(lo, hi, rot: np.ndarray, K: np.ndarray, height: int, width: int, near: float = 0.05):
    """Pixel rows/cols that can see the world box [lo, hi] (conservative, clipped at z=near)."""
    corners = np.array(list(itertools.product(*zip(lo, hi))), dtype=np.float64)
    cam = corners @ rot  # p_cam = R^T p_world (camera at the world origin)
    z = cam[:, 2]
    pts = [cam[z >= near]]
    for i, j in _BOX_EDGES:
        if (z[i] - near) * (z[j] - near) < 0:
            s = (near - z[i]) / (z[j] - z[i])
            pts.append((cam[i] + s * (cam[j] - cam[i]))[None])
    pts = np.concatenate(pts)
    if len(pts) == 0:
        return None
    u = K[0, 0] * pts[:, 0] / pts[:, 2] + K[0, 2]
    v = K[1, 1] * pts[:, 1] / pts[:, 2] + K[1, 2]
    c0, c1 = max(math.floor(u.min()) - 1, 0), min(math.ceil(u.max()) + 2, width)
    r0, r1 = max(math.floor(v.min()) - 1, 0), min(math.ceil(v.max()) + 2, height)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)


# --------------------------------------------------------------------------- shading


def surface_normals(scene: Scene, pts: tuple[np.ndarray, ...], pid: np.ndarray, slices: list) -> np.ndarray:
    """(3,H,W) float32 unit normals of the hit points ``pts`` (3 x (H,W)) on primitives ``pid``.

    Ground and sky get (0,-1,0). Each primitive is handled inside its screen slice
    (from the cast), so the cost follows its image size, not the whole image.
    """
    n = np.zeros((3, *pid.shape), dtype=np.float32)
    n[1] = -1.0
    for k, (p, sl) in enumerate(zip(scene.prims, slices), start=1):
        if sl is None:
            continue
        mine = pid[sl] == k
        if not mine.any():
            continue
        qx, qy, qz = (c[sl][mine] for c in pts)
        if p.kind == "box":
            gaps = np.stack([np.abs(q - b[a]) for a, q in enumerate((qx, qy, qz)) for b in (p.lo, p.hi)])
            face = np.argmin(gaps, axis=0)
            nn = np.zeros((3, face.size), dtype=np.float32)
            nn[face // 2, np.arange(face.size)] = np.where(face % 2 == 0, -1.0, 1.0)
        elif p.kind == "cyl":
            cx, cz, r = p.params
            nn = np.stack([(qx - cx) / r, np.zeros_like(qx), (qz - cz) / r])
        else:
            cx, cy, cz, r = p.params
            nn = np.stack([(qx - cx) / r, (qy - cy) / r, (qz - cz) / r])
            nn /= np.maximum(np.linalg.norm(nn, axis=0), 1e-6)
        n[(slice(None), *sl)][:, mine] = nn
    return n


# Extra palette entries after the primitives' own colours.
_EXTRA_COLOURS = np.array(
    [
        [0.27, 0.27, 0.29],  # asphalt
        [0.36, 0.33, 0.24],  # dirt beside the road (yards, side streets)
        [0.85, 0.85, 0.82],  # lane marking
        [0.10, 0.13, 0.18],  # facade window
        [0.08, 0.09, 0.12],  # car glass
    ],
    dtype=np.float32,
)
_HORIZON = np.array([0.80, 0.85, 0.90], np.float32)
_ZENITH = np.array([0.33, 0.52, 0.85], np.float32)


def shade(
    scene: Scene, rng: np.random.Generator, dirs: np.ndarray, t: np.ndarray, pid: np.ndarray, slices: list
) -> np.ndarray:
    """(H,W,3) float32 RGB in [0,1] for camera rays ``dirs`` (3,H,W) with hits (t, pid).

    Works on whole (H,W) planes (no boolean compression): each pixel picks a palette
    entry (object colour or a texture colour) and a brightness factor.
    """
    h, w = t.shape
    n_prims = len(scene.prims)
    hit = pid >= 0
    tt = np.where(hit, t, np.float32(0.0))
    x, y, z = dirs[0] * tt, dirs[1] * tt, dirs[2] * tt
    normal = surface_normals(scene, (x, y, z), pid, slices)
    mat_of = np.array([-1, _M_GROUND] + [p.material for p in scene.prims], dtype=np.int16)
    mat = mat_of[pid + 1]
    ax, ay, az = np.abs(normal[0]), np.abs(normal[1]), np.abs(normal[2])
    dom_x = (ax >= ay) & (ax >= az)
    dom_y = ~dom_x & (ay >= az)

    # Texture coordinates: the two world axes spanning the surface.
    ta = np.where(dom_x, z, x)
    tb = np.where(dom_y, z, y)
    fine = texture_lookup(scene.tex_fine, ta * 12.0, tb * 12.0)
    coarse = texture_lookup(scene.tex_coarse, ta * 0.7, tb * 0.7)
    mod = 0.87 + 0.08 * fine + 0.1 * coarse

    cls = pid.astype(np.int32) - 1  # palette index: k-1 for primitive k, extras after
    asphalt, dirt, marking, window, glass = range(n_prims, n_prims + 5)
    ground = mat == _M_GROUND
    road_l, road_r, centre = scene.road
    on_road = ground & (x > road_l) & (x < road_r)
    cls[ground] = dirt
    cls[on_road] = asphalt
    dashes = (np.abs(x - centre) < 0.08) & (wrap_mod(z, 9.0) < 3.0)
    edges = (np.abs(x - (road_r - 0.3)) < 0.07) | (np.abs(x - (road_l + 0.3)) < 0.07)
    painted = on_road & (dashes | edges)
    cls[painted] = marking

    seams = (mat == _M_SIDEWALK) & dom_y & ((wrap_mod(x, 1.2) < 0.04) | (wrap_mod(z, 1.2) < 0.04))
    mod[seams] *= 0.7

    # Window grid per primitive (column period, floor height, building height).
    no_grid = (1.0, 1.0, 0.0)
    grid = [no_grid] + [p.params[:3] if p.material == _M_BUILDING else no_grid for p in scene.prims]
    grid = np.array(grid, np.float32)
    facade = (mat == _M_BUILDING) & ~dom_y
    gidx = np.where(facade, pid, 0)
    along = np.where(dom_x, z, x)
    above = CAMERA_HEIGHT - y
    fw = wrap_mod(along / grid[gidx, 0], 1.0)
    fh = wrap_mod(above / grid[gidx, 1], 1.0)
    win = facade & (fw > 0.25) & (fw < 0.75) & (fh > 0.3) & (fh < 0.8)
    win &= (above > 0.8) & (above < grid[gidx, 2] - 0.6)
    cls[win] = window
    mod[win] = 1.0 + 1.5 * coarse[win]  # sky reflections vary across panes

    cls[(mat == _M_CABIN) & ~(dom_y & (normal[1] < 0))] = glass  # roof keeps the body colour
    crown = mat == _M_CROWN
    mod[crown] = 0.6 + 0.6 * fine[crown] * coarse[crown]

    own = np.array([p.colour for p in scene.prims], np.float32).reshape(-1, 3)
    palette = np.vstack([own, _EXTRA_COLOURS])
    sun = scene.sun.astype(np.float32)
    lambert = np.maximum(normal[0] * sun[0] + normal[1] * sun[1] + normal[2] * sun[2], 0.0)
    bright = mod * (0.4 + 0.75 * lambert)
    haze = 1.0 - np.exp(-tt / np.float32(300.0))
    colour = palette[np.maximum(cls, 0)] * (bright * (1.0 - haze))[..., None] + _HORIZON * haze[..., None]

    up = np.clip(-dirs[1] / np.sqrt(dirs[0] ** 2 + dirs[1] ** 2 + dirs[2] ** 2) * 3.0, 0.0, 1.0)[..., None]
    sky = _HORIZON * (1.0 - up) + _ZENITH * up
    img = np.where(hit[..., None], colour, sky)
    # Uniform noise of standard deviation 0.01 (cheaper to draw than Gaussian).
    img += (rng.random((h, w, 3), dtype=np.float32) - np.float32(0.5)) * np.float32(0.01 * math.sqrt(12.0))
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def wrap_mod(a: np.ndarray, period: float | np.ndarray) -> np.ndarray:
    """``a mod period`` in [0, period); much faster than np.mod for floats."""
    return a - np.floor(a / period) * period


def texture_lookup(tex: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = tex.shape[0]  # a power of two: & (n-1) is the wrap-around
    i = np.floor(a).astype(np.int32) & (n - 1)
    j = np.floor(b).astype(np.int32) & (n - 1)
    return tex.ravel()[i * n + j]


# --------------------------------------------------------------------------- LiDAR


@dataclass(frozen=True)
class LidarSpec:
    """A rotating multi-beam LiDAR rigidly mounted next to the camera.

    Attributes:
        beams: how many of the 64 HDL-64E beams to keep (evenly spaced, 1..64).
        az_step_deg: azimuth between consecutive firings (0.17 = HDL-64E at 10 Hz).
        offset_m: LiDAR origin in the camera frame (x right, y down, z forward); the
            default is KITTI's rig: 0.06 m right, 0.08 m above, 0.27 m behind camera 2.
        range_noise_m: standard deviation of Gaussian range noise.
        dropout: probability that a return is lost.
        max_range_m: farthest return the sensor reports.
    Raises:
        ValueError: a field out of range (the message names it).
    """

    beams: int = 64
    az_step_deg: float = 0.17
    offset_m: tuple[float, float, float] = (0.06, -0.08, -0.27)  # 1.73 m - 1.65 m = 0.08 m up
    range_noise_m: float = 0.015
    dropout: float = 0.03
    max_range_m: float = 120.0

    def __post_init__(self) -> None:
        if not (isinstance(self.beams, int) and 1 <= self.beams <= len(HDL64E_ELEVATIONS_DEG)):
            raise ValueError(f"LidarSpec.beams={self.beams!r}; expected an int in 1..64.")
        if not 0.005 <= self.az_step_deg <= 10.0:
            raise ValueError(f"LidarSpec.az_step_deg={self.az_step_deg}; expected 0.005..10 degrees.")
        if len(self.offset_m) != 3:
            raise ValueError(f"LidarSpec.offset_m={self.offset_m!r}; expected 3 numbers (x, y, z).")
        if self.range_noise_m < 0 or not 0 <= self.dropout < 1 or self.max_range_m <= 0:
            raise ValueError(
                f"LidarSpec: range_noise_m={self.range_noise_m} must be >= 0, dropout="
                f"{self.dropout} in [0, 1), max_range_m={self.max_range_m} > 0."
            )

    @classmethod
    def for_image(cls, height: int, width: int) -> "LidarSpec":
        """The default sensor for a ``height`` x ``width`` render.

        At 1216 pixels wide (or more) this is the HDL-64E itself. Narrower images get a
        proportionally coarser sensor (``beams = round(64 s)``, ``az_step = 0.17 / s``
        with ``s = width / 1216``, which is also the focal-length scale), so scan lines
        and points keep KITTI's spacing in pixels and the density stays ~4-5 %.
        """
        s = width / LIDAR_NATIVE_WIDTH
        if s >= 1.0:
            return cls()
        return cls(beams=max(1, min(64, round(64 * s))), az_step_deg=cls.az_step_deg / s)

    def elevations_deg(self) -> np.ndarray:
        """(beams,) float64 elevation of the kept beams, top first (degrees, up > 0)."""
        idx = np.round(np.linspace(0, len(HDL64E_ELEVATIONS_DEG) - 1, self.beams)).astype(int)
        return np.asarray(HDL64E_ELEVATIONS_DEG, dtype=np.float64)[idx]


def simulate_lidar(
    scene: Scene,
    rng: np.random.Generator,
    rot: np.ndarray,
    K: np.ndarray,
    height: int,
    width: int,
    spec: LidarSpec,
) -> tuple[np.ndarray, np.ndarray]:
    """Cast the LiDAR's camera-facing rays, project the returns and z-buffer them.

    Returns:
        sparse (H,W) float32 z-depth (0 = none) and beam (H,W) int16 (-1 = none).
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    # Only rays that can land in the image (plus a margin for the mounting parallax).
    margin = 3.0
    half_az = math.degrees(math.atan(max(cx, width - 1 - cx) / fx)) + margin
    el_top = math.degrees(math.atan(cy / fy)) + margin
    el_bottom = -math.degrees(math.atan((height - 1 - cy) / fy)) - margin
    elev_all = spec.elevations_deg()
    keep = np.nonzero((elev_all <= el_top) & (elev_all >= el_bottom))[0]
    n_az = int(math.floor(2 * half_az / spec.az_step_deg)) + 1
    az = np.deg2rad(-half_az + spec.az_step_deg * np.arange(n_az))
    el = np.deg2rad(elev_all[keep])
    cos_el, sin_el = np.cos(el)[:, None], np.sin(el)[:, None]
    d_rig = np.stack(
        [cos_el * np.sin(az)[None], np.broadcast_to(-sin_el, (el.size, az.size)), cos_el * np.cos(az)[None]]
    )
    d_world = np.einsum("ij,jab->iab", rot, d_rig).astype(np.float32)
    offset = np.asarray(spec.offset_m, dtype=np.float64)
    origin = tuple(float(v) for v in rot @ offset)

    t, _, _ = cast_rays(scene, origin, d_world)
    # Random draws cover every ray so the stream does not depend on what was hit.
    noise = rng.standard_normal(t.shape) * spec.range_noise_m
    lost = rng.random(t.shape) < spec.dropout
    ok = np.isfinite(t) & (t <= spec.max_range_m) & ~lost
    rng_m = t[ok].astype(np.float64) + noise[ok]
    beam_idx = np.broadcast_to(keep[:, None], t.shape)[ok]
    p = offset[:, None] + d_rig[:, ok] * rng_m  # camera frame: offset + range * rig direction
    z = p[2]
    front = (z > 0.1) & (z <= MAX_DEPTH)
    p, z, beam_idx = p[:, front], z[front], beam_idx[front]
    u = np.rint(fx * p[0] / z + cx).astype(np.int64)
    v = np.rint(fy * p[1] / z + cy).astype(np.int64)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    flat, z, beam_idx = (v * width + u)[inside], z[inside], beam_idx[inside]

    order = np.lexsort((z, flat))  # by pixel, nearest first: the nearer point wins
    flat_s = flat[order]
    first = np.ones(flat_s.size, dtype=bool)
    first[1:] = flat_s[1:] != flat_s[:-1]
    win = order[first]
    sparse = np.zeros(height * width, dtype=np.float32)
    beam = np.full(height * width, -1, dtype=np.int16)
    sparse[flat[win]] = z[win]
    beam[flat[win]] = beam_idx[win]
    return sparse.reshape(height, width), beam.reshape(height, width)

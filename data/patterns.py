"""Sensor patterns: the sparse or holey input a real depth sensor gives, made from any depth map.

One name per sensor, with parameters (:func:`parse_pattern`), usable in training mixes
and evaluation sweeps alike (``depthsense-evaluate --patterns samples:500 holes:25%``):

=================  =========================================================================
``samples:N``      N uniformly chosen valid pixels (a few SfM or sparse-LiDAR points; NYU's
                   500-point protocol)
``uniform:P%``     ``round(P/100 * H * W)`` uniformly chosen valid pixels
``lines:K``        every valid pixel of K image rows, evenly spaced with a seeded phase (a
                   K-beam-like scan on any depth map)
``beams:K``        the data set's own LiDAR scan thinned to K of its 64 beams (simulated
                   LiDAR; real scans use the ``beams:K`` hold-out of :mod:`.lidar`)
``holes:P%``       the depth map itself with P % of its valid pixels removed the way a depth
                   camera loses them: depth edges, dark and shiny surfaces, the far end of
                   the range, and random blobs (:func:`holes`)
``keypoints:N``    depth at the N strongest image corners (Shi-Tomasi), as SfM / visual-
                   inertial odometry gives
=================  =========================================================================

A training mix may give a range instead of one value, ``samples:50..5000`` or
``holes:5%..60%``: each sample draws its value log-uniformly (integers rounded) with
:meth:`SensorPattern.draw`. Every random choice comes from an explicit
``np.random.Generator``; ``keypoints`` and ``beams`` need none.

Scoring rule (the evaluation uses it for every pattern): a method is scored at the
ground-truth pixels that are *not* input pixels, so copying the input earns nothing;
for ``holes`` these are exactly the pixels inside the holes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from depthsense.data.sparsify import LIDAR_BEHIND_OFFSET, LIDAR_HEIGHT_OFFSET, TOTAL_BEAMS, keep_n, thin_beams

__all__ = [
    "PATTERN_KINDS",
    "SensorPattern",
    "parse_pattern",
    "apply_pattern",
    "lines",
    "holes",
    "keypoints",
]

PATTERN_KINDS: tuple[str, ...] = ("samples", "uniform", "lines", "beams", "holes", "keypoints")
"""The pattern names, in the order the help lists them."""

_PERCENT = ("uniform", "holes")
_FORMS = ("samples:N, uniform:P%, lines:K, beams:K, holes:P% or keypoints:N "
          "(e.g. samples:500 uniform:5% lines:16 beams:16 holes:25% keypoints:1000)")


@dataclass(frozen=True)
class SensorPattern:
    """A parsed pattern: ``kind`` and its value (``high`` set for a training range).

    Attributes:
        kind: one of :data:`PATTERN_KINDS`.
        value: N (samples, keypoints), K (lines, beams) or a percentage (uniform, holes).
        high: upper end of a range (``value..high``), or ``None`` for one value.
    """

    kind: str
    value: float
    high: float | None = None

    def __str__(self) -> str:
        unit = "%" if self.kind in _PERCENT else ""
        text = f"{self.kind}:{self.value:g}{unit}"
        return text if self.high is None else f"{text}..{self.high:g}{unit}"

    @property
    def needs_lidar(self) -> bool:
        """``beams`` thins a LiDAR scan; the others need only a depth map."""
        return self.kind == "beams"

    @property
    def needs_rgb(self) -> bool:
        """``keypoints`` and ``holes`` (dark and shiny surfaces) look at the image."""
        return self.kind in ("keypoints", "holes")

    def draw(self, rng: np.random.Generator) -> "SensorPattern":
        """This pattern with a range resolved to one value (log-uniform); itself if none."""
        if self.high is None:
            return self
        v = float(math.exp(rng.uniform(math.log(self.value), math.log(self.high))))
        if self.kind not in _PERCENT:
            v = float(max(1, round(v)))
        return SensorPattern(self.kind, v)


def parse_pattern(spec: "str | SensorPattern") -> SensorPattern:
    """Parse ``"samples:500"``, ``"uniform:5%"``, ``"holes:25%"``, ``"samples:50..5000"`` ...

    Raises:
        ValueError: an unknown kind, a missing or malformed value, a percentage without
            ``%`` (``uniform:5`` is ambiguous), or an impossible value (``samples:0``,
            ``lines:0``, ``holes:100%``, ``uniform:0%``); the message names the accepted forms.
    """
    if isinstance(spec, SensorPattern):
        return spec
    text = str(spec).strip()
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in PATTERN_KINDS:
        what = "has no ':'" if not sep else f"has unknown kind {kind!r}"
        raise ValueError(f"pattern {text!r} {what}; use {_FORMS}")
    parts = [p.strip() for p in rest.split("..")]
    if len(parts) > 2 or not all(parts):
        raise ValueError(f"pattern {text!r}: expected one value or a range LOW..HIGH; use {_FORMS}")
    values = [_value(text, kind, p) for p in parts]
    for v in values:
        _check_value(text, kind, v)
    if len(values) == 2 and not values[0] < values[1]:
        raise ValueError(f"pattern {text!r}: a range LOW..HIGH needs LOW < HIGH")
    return SensorPattern(kind, values[0], values[1] if len(values) == 2 else None)


def apply_pattern(
    pattern: "str | SensorPattern",
    gt: np.ndarray | None,
    rng: np.random.Generator,
    *,
    rgb: np.ndarray | None = None,
    sparse: np.ndarray | None = None,
    K: np.ndarray | None = None,
    lidar_height_offset: float = LIDAR_HEIGHT_OFFSET,
    lidar_behind_offset: float = LIDAR_BEHIND_OFFSET,
) -> np.ndarray:
    """The input a sensor of this pattern would give for one frame.

    Args:
        pattern: a pattern or its text; a range is drawn with ``rng`` first.
        gt: (H,W) float32 depth in metres, 0 = missing: what the pattern samples from
            (all kinds but ``beams``).
        rng: source of randomness (``np.random.default_rng([seed, index])`` in a data set).
        rgb: (H,W,3) float32 in [0,1]; needed by ``keypoints``, used by ``holes``.
        sparse: (H,W) the data set's own LiDAR input; needed by ``beams``.
        K, lidar_height_offset, lidar_behind_offset: ``beams`` only (scan-line grouping).
    Returns:
        (H,W) float32 metres, 0 = no input; every value is a value of ``gt`` (of
        ``sparse`` for ``beams``) at the same pixel.
    Raises:
        ValueError: the frame lacks what the pattern needs (ground truth, an image, a
            LiDAR scan), or ``lines:K`` with more rows than the image has.
    """
    p = parse_pattern(pattern).draw(rng)
    if p.kind == "beams":
        if sparse is None or not np.any(sparse):
            raise ValueError(f"{p} thins a LiDAR scan and this frame has none; use lines:{p.value:g} for a "
                             "K-beam-like scan on any depth map")
        return thin_beams(sparse, K, int(p.value), lidar_height_offset=lidar_height_offset,
                          lidar_behind_offset=lidar_behind_offset)
    if gt is None:
        raise ValueError(f"{p} samples the ground truth and this frame has none")
    gt = np.asarray(gt, np.float32)
    if p.kind == "samples":
        return keep_n(gt, int(p.value), rng)
    if p.kind == "uniform":
        return keep_n(gt, int(round(p.value / 100.0 * gt.size)), rng)
    if p.kind == "lines":
        return lines(gt, int(p.value), rng)
    if p.kind == "holes":
        return holes(gt, p.value, rng, rgb)
    if rgb is None:
        raise ValueError(f"{p} picks image corners and this frame has no image")
    return keypoints(gt, int(p.value), rgb)


def lines(gt: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Every valid pixel of ``k`` image rows, spaced ``H/k`` apart from a random phase.

    Args:
        gt: (H,W) depth, 0 = missing.
        k: rows to keep, 1 <= k <= H.
        rng: draws the phase (offset of the first row) in ``[0, H/k)``.
    Returns:
        (H,W) float32: ``gt`` on exactly ``k`` distinct rows, 0 elsewhere.
    Raises:
        ValueError: ``k`` outside 1..H.
    """
    h = gt.shape[0]
    if not 1 <= k <= h:
        raise ValueError(f"lines:{k} needs 1 <= K <= the image height ({h} rows)")
    step = h / k
    rows = np.minimum(np.floor(rng.uniform(0.0, step) + step * np.arange(k)).astype(np.int64), h - 1)
    out = np.zeros_like(gt, dtype=np.float32)
    out[rows] = gt[rows]
    return out


def holes(gt: np.ndarray, percent: float, rng: np.random.Generator, rgb: np.ndarray | None = None) -> np.ndarray:
    """``gt`` with ``round(percent/100 * #valid)`` of its valid pixels removed, as a depth camera loses them.

    Each valid pixel gets a hole propensity, and exactly the required number of the most
    prone pixels are removed. The propensity adds, with per-frame random weights:

    * blobs: a smooth random field (two scales), so holes come as irregular regions;
    * depth edges: pixels within 1-2 px of a depth discontinuity (> 4 % relative jump),
      where structured-light and stereo sensors fail first;
    * dark (luminance < 0.1) and shiny (> 0.92) surfaces in ``rgb``, which return no
      signal (absorbers, specular and transparent surfaces);
    * the far end of the range (the farthest 5 % of the frame's depths), beyond the
      sensor's reach.

    Args:
        gt: (H,W) depth, 0 = missing.
        percent: share of the valid pixels to remove, 0 < percent < 100.
        rng: source of the random field, weights and tie-breaks.
        rgb: (H,W,3) in [0,1], or ``None`` (then no dark/shiny term).
    Returns:
        (H,W) float32 copy of ``gt`` with the holes set to 0.
    Raises:
        ValueError: ``percent`` outside (0, 100).
    """
    if not 0.0 < percent < 100.0:
        raise ValueError(f"holes:{percent:g}% must remove more than 0 % and less than 100 % of the depth")
    gt = np.asarray(gt, np.float32)
    h, w = gt.shape
    valid = gt > 0
    n_valid = int(valid.sum())
    n_remove = int(round(percent / 100.0 * n_valid))
    out = gt.copy()
    if n_remove == 0:
        return out
    field = _smooth_noise(rng, h, w, max(h, w) / 40.0) + 0.5 * _smooth_noise(rng, h, w, max(h, w) / 12.0)
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
    prone = field + rng.uniform(0.3, 0.8) * _depth_edges(gt, rng)
    if rgb is not None:
        lum = np.asarray(rgb, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        prone += rng.uniform(0.2, 0.6) * ((lum < 0.1) | (lum > 0.92))
    far = np.quantile(gt[valid], 0.95) if n_valid else np.inf
    prone += rng.uniform(0.0, 0.6) * (gt > far)
    prone += rng.uniform(0.0, 1e-3, size=prone.shape)  # ties: a seeded random order
    flat = np.flatnonzero(valid)
    drop = flat[np.argpartition(-prone.reshape(-1)[flat], n_remove - 1)[:n_remove]]
    out.reshape(-1)[drop] = 0.0
    return out


def keypoints(gt: np.ndarray, n: int, rgb: np.ndarray) -> np.ndarray:
    """Depth at the ``n`` strongest Shi-Tomasi corners of ``rgb`` that have ground truth.

    Corners are found on the 8-bit luminance (``cv2.goodFeaturesToTrack``, quality level
    0.001 of the strongest, at least 2 px apart), ordered by strength; corners without
    ground truth are skipped, as a reconstruction has no depth where the sensor has none.

    Args:
        gt: (H,W) depth, 0 = missing.
        n: corners to keep (fewer when the image has fewer corners with depth).
        rgb: (H,W,3) in [0,1].
    Returns:
        (H,W) float32: ``gt`` at the chosen corners, 0 elsewhere. Deterministic.
    """
    gt = np.asarray(gt, np.float32)
    if np.asarray(rgb).shape[:2] != gt.shape:
        raise ValueError(f"keypoints: image {np.asarray(rgb).shape[:2]} and depth {gt.shape} differ in size")
    lum = np.clip(np.asarray(rgb, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32), 0.0, 1.0)
    gray = np.round(lum * 255.0).astype(np.uint8)
    found = cv2.goodFeaturesToTrack(gray, maxCorners=0, qualityLevel=0.001, minDistance=2, blockSize=3)
    out = np.zeros_like(gt)
    if found is None:
        return out
    uv = np.round(found.reshape(-1, 2)).astype(np.int64)
    u = np.clip(uv[:, 0], 0, gt.shape[1] - 1)
    v = np.clip(uv[:, 1], 0, gt.shape[0] - 1)
    has = gt[v, u] > 0
    u, v = u[has][:n], v[has][:n]
    out[v, u] = gt[v, u]
    return out


# --------------------------------------------------------------------------- helpers


def _value(text: str, kind: str, raw: str) -> float:
    percent = raw.endswith("%")
    if kind in _PERCENT and not percent:
        raise ValueError(f"pattern {text!r}: give {kind} as a percentage, e.g. {kind}:{raw}%")
    if kind not in _PERCENT and percent:
        raise ValueError(f"pattern {text!r}: {kind} takes a count, not a percentage, e.g. {kind}:{raw[:-1]}")
    number = raw[:-1] if percent else raw
    try:
        v = float(number)
    except ValueError:
        raise ValueError(f"pattern {text!r}: {number!r} is not a number; use {_FORMS}") from None
    if kind not in _PERCENT and v != int(v):
        raise ValueError(f"pattern {text!r}: {kind} needs a whole number")
    return v


def _check_value(text: str, kind: str, v: float) -> None:
    if not math.isfinite(v):
        raise ValueError(f"pattern {text!r}: the value must be finite")
    if kind == "uniform" and not 0.0 < v <= 100.0:
        raise ValueError(f"pattern {text!r}: uniform needs 0% < P <= 100%")
    if kind == "holes" and not 0.0 < v < 100.0:
        raise ValueError(f"pattern {text!r}: holes needs 0% < P < 100% (holes:100% leaves no input)")
    if kind in ("samples", "keypoints", "lines") and v < 1:
        raise ValueError(f"pattern {text!r}: {kind} needs at least 1 ({kind}:0 gives no input)")
    if kind == "beams" and (v < 1 or TOTAL_BEAMS % int(v)):
        raise ValueError(f"pattern {text!r}: beams:K keeps K of {TOTAL_BEAMS} beams; K must divide {TOTAL_BEAMS} "
                         "(1, 2, 4, 8, 16, 32 or 64)")


def _smooth_noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """(H,W) float32 Gaussian-blurred white noise, standardised (blobs about ``2 sigma`` across)."""
    # Blur a coarse grid and resize: the same blobs at a fraction of a full-size blur's cost.
    scale = max(1.0, sigma / 2.0)
    gh, gw = max(2, int(math.ceil(h / scale))), max(2, int(math.ceil(w / scale)))
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    coarse = cv2.GaussianBlur(coarse, (0, 0), sigma / scale, borderType=cv2.BORDER_REFLECT)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    return (field - field.mean()) / max(float(field.std()), 1e-6)


def _depth_edges(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H,W) float32 {0,1}: pixels within 1-2 px of a > 4 % relative depth jump."""
    logd = np.log(np.maximum(gt, 1e-3))
    valid = gt > 0
    jump = np.zeros(gt.shape, bool)
    dx = np.abs(np.diff(logd, axis=1)) > 0.04
    dx &= valid[:, 1:] & valid[:, :-1]
    dy = np.abs(np.diff(logd, axis=0)) > 0.04
    dy &= valid[1:] & valid[:-1]
    jump[:, 1:] |= dx
    jump[:, :-1] |= dx
    jump[1:] |= dy
    jump[:-1] |= dy
    radius = int(rng.integers(1, 3))
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(jump.astype(np.uint8), kernel).astype(np.float32)

"""Procedural handwritten-style digits: the embedded default of the classification experiment.

No download needed: each digit 0-9 is drawn with ``cv2.putText`` (a random Hershey font
id, upright or italic, stroke width 1-5 px by dilation at 4x resolution), centred by its
bounding box, jittered by a random affine map (rotation +-15 deg, scale 0.8-1.1 with
+-15 % aspect change, shear +-0.25, shift +-6 %) and box-filtered down to the output
size, giving MNIST-like images: white strokes on black, uint8, the digit's longer side
about 20 of 28 pixels. Deterministic per seed for a given OpenCV version: OpenCV 5 draws
every Hershey id with its own built-in outline font (regular or italic), so there the
variety comes from the slant, stroke width and jitter rather than from the font id.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["render_digits", "DIGIT_CLASSES"]

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
"""Class names; the label of an image is its digit."""

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
)
_OVERSAMPLE = 4  # draw and warp at 4x the output size, then box-filter down (anti-aliasing)
_GLYPH_FILL = 20 / 28  # the longer side of the digit's box, as a fraction of the image (MNIST: 20 of 28)


def render_digits(n: int, seed: int | tuple[int, ...], size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n`` jittered digits, classes balanced (``i % 10``) and shuffled.

    Args:
        n: number of images (>= 1).
        seed: seed of ``np.random.default_rng`` (an int or a tuple of ints); the same
            seed gives the same images.
        size: output side in pixels (>= 8).
    Returns:
        images (n,1,size,size) uint8 (0 background, 255 stroke) and labels (n,) int64.
    Raises:
        ValueError: ``n`` < 1 or ``size`` < 8.

    Examples:
        >>> images, labels = render_digits(20, seed=0)
        >>> images.shape, images.dtype, sorted(set(labels.tolist())) == list(range(10))
        ((20, 1, 28, 28), dtype('uint8'), True)
    """
    if n < 1 or size < 8:
        raise ValueError(f"render_digits needs n >= 1 and size >= 8, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    images = np.empty((n, 1, size, size), np.uint8)
    for i, digit in enumerate(labels):
        images[i, 0] = _render_one(int(digit), size, rng)
    return images, labels


def _render_one(digit: int, size: int, rng: np.random.Generator) -> np.ndarray:
    big = size * _OVERSAMPLE
    font = int(_FONTS[rng.integers(len(_FONTS))]) | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    # Draw large on a generous canvas, then find the glyph's box: Hershey metrics do not
    # give a tight box (italic and script glyphs overhang).
    canvas = np.zeros((3 * big, 3 * big), np.uint8)
    # Same glyph height for every font (PLAIN is half the size of the others at one scale),
    # so that the stroke widths below mean the same thing for all of them.
    (_, digit_height), _ = cv2.getTextSize("8", font, 1.0, 1)
    cv2.putText(canvas, str(digit), (big, 2 * big), font, 0.5 * big / digit_height, 255, 1, cv2.LINE_AA)
    # Stroke width by dilation, the same on OpenCV 4 (thin Hershey strokes) and 5 (whose
    # putText draws its own outline faces and treats any thickness > 1 as one bold weight).
    width = 2 * int(rng.integers(0, 3)) + 1  # 1, 3 or 5 px on a glyph big/2 = 56 px tall
    canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    x, y, w, h = cv2.boundingRect(canvas)
    # Affine jitter about the glyph centre: rotate, scale (anisotropic), shear, translate.
    angle = math.radians(rng.uniform(-15.0, 15.0))
    scale = _GLYPH_FILL * big / max(w, h) * rng.uniform(0.8, 1.1)
    sx, sy = scale * rng.uniform(0.85, 1.15), scale
    shear = rng.uniform(-0.25, 0.25)
    c, s = math.cos(angle), math.sin(angle)
    linear = np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])
    shift = rng.uniform(-0.06, 0.06, size=2) * big
    centre_in = np.array([x + w / 2.0, y + h / 2.0])
    centre_out = np.array([big / 2.0, big / 2.0]) + shift
    affine = np.hstack([linear, (centre_out - linear @ centre_in)[:, None]])
    warped = cv2.warpAffine(canvas, affine, (big, big), flags=cv2.INTER_LINEAR, borderValue=0)
    return cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)

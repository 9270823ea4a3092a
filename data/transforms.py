"""Augmentation that keeps rgb, sparse and gt aligned and never interpolates depth.

Pipelines work on a numpy sample before tensor conversion::

    {"rgb": (H,W,3) float32 in [0,1], "sparse": (H,W) float32 m, "gt": (H,W) float32 m (optional)}

and return the same keys plus

* ``"crop_offset"``: ``(y0, x0)``, the input pixel that became output pixel (0, 0)
  (negative where the crop reached into zero padding);
* ``"flip"``: whether the output was mirrored left-right;

so that a dataset can fix its intrinsics with :func:`adjust_intrinsics`.

The operations are albumentations 2 transforms with rgb as ``image`` and sparse/gt as
``mask``-type ``additional_targets``: crops, zero padding and flips only move pixels,
so every output depth value is an input depth value (or 0 from padding). Colour jitter
touches rgb only. No resampling op (rotation, scaling) is applied, because it would
interpolate or drop sparse depth (ARCHITECTURE.md section 4).

Images smaller than the crop are zero padded (depth 0 = missing, rgb black) rather than
rejected: with ``bottom=True`` the padding goes on top, so the image keeps touching the
bottom edge where the LiDAR points are; horizontally it is centred.

Randomness: a pipeline is called as ``transform(sample, rng)`` with a
``np.random.Generator``. The crop offset and flip are drawn from ``rng`` and the colour
jitter uses an albumentations ``Compose(seed=...)`` seeded from ``rng``, so the same
generator state gives the same output. Datasets pass
``np.random.default_rng([seed, index, epoch, 1])`` (see ``depthsense.data.DepthDataset``).
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import numpy as np

__all__ = ["PairedTransform", "train_transform", "eval_transform", "adjust_intrinsics"]

_DEPTH_KEYS = ("sparse", "gt", "fg")  # mask-type targets: moved, never interpolated


class PairedTransform:
    """Crop / pad, horizontal flip and colour jitter applied consistently to a sample.

    Args:
        crop: output ``(h, w)`` or ``None`` for no crop.
        hflip: probability of a left-right flip.
        colour_jitter: ``False``, ``True`` (mild KITTI-style jitter: brightness,
            contrast, saturation +-20%, hue +-0.02) or a dict of ``A.ColorJitter``
            keyword arguments.
        bottom: crop the bottom rows (KITTI: the top of the image has no LiDAR);
            otherwise the vertical offset is random (``random_crop``) or centred.
        random_crop: draw the horizontal (and, unless ``bottom``, vertical) offset
            at random; otherwise centre it.

    ``__call__(sample, rng=None) -> dict``; ``rng=None`` draws from fresh OS entropy
    (not reproducible). Picklable, so it works in DataLoader workers.
    """

    def __init__(
        self,
        crop: tuple[int, int] | None = None,
        hflip: float = 0.0,
        colour_jitter: bool | dict = False,
        bottom: bool = True,
        random_crop: bool = False,
    ) -> None:
        if crop is not None:
            if len(crop) != 2 or any(int(c) != c or c <= 0 for c in crop):
                raise ValueError(f"crop={crop!r}; expected (height, width) in positive pixels or None.")
            crop = (int(crop[0]), int(crop[1]))
        if not 0.0 <= float(hflip) <= 1.0:
            raise ValueError(f"hflip={hflip!r}; expected a probability in [0, 1].")
        self.crop = crop
        self.hflip = float(hflip)
        if colour_jitter is True:
            colour_jitter = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.02}
        self.colour_jitter = dict(colour_jitter) if colour_jitter else None
        self.bottom = bool(bottom)
        self.random_crop = bool(random_crop)

    def __call__(self, sample: dict[str, np.ndarray], rng: np.random.Generator | None = None) -> dict[str, Any]:
        """Transform one sample.

        Args:
            sample: ``rgb`` (H,W,3) float32 in [0,1], ``sparse`` (H,W), optional ``gt``
                (H,W) and ``fg`` (H,W) foreground mask (moved like depth).
            rng: randomness for crop offset, flip and jitter.
        Returns:
            ``rgb`` (h,w,3), ``sparse`` (h,w), ``gt`` and ``fg`` (h,w) if given, ``crop_offset``
            ``(y0, x0)`` and ``flip`` (bool).
        Raises:
            ValueError: missing keys or rgb/depth sizes that differ.
        """
        rng = rng if rng is not None else np.random.default_rng()
        rgb = sample.get("rgb")
        if rgb is None or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"transform: sample['rgb'] must be (H,W,3); got {getattr(rgb, 'shape', None)}.")
        h, w = rgb.shape[:2]
        depths = {k: sample[k] for k in _DEPTH_KEYS if sample.get(k) is not None}
        for k, d in depths.items():
            if d.shape != (h, w):
                raise ValueError(f"transform: sample[{k!r}] is {d.shape} but rgb is {(h, w)}; they must match.")

        ops: list[A.BasicTransform] = []
        offset = (0, 0)
        if self.crop is not None:
            ch, cw = self.crop
            pad_h, pad_w = max(0, ch - h), max(0, cw - w)
            top = pad_h if self.bottom else pad_h // 2
            left = pad_w // 2
            if pad_h or pad_w:
                ops.append(A.Pad(padding=(left, top, pad_w - left, pad_h - top), fill=0, fill_mask=0))
            hp, wp = h + pad_h, w + pad_w
            if self.bottom:
                y0 = hp - ch
            elif self.random_crop:
                y0 = int(rng.integers(0, hp - ch + 1))
            else:
                y0 = (hp - ch) // 2
            x0 = int(rng.integers(0, wp - cw + 1)) if self.random_crop else (wp - cw) // 2
            ops.append(A.Crop(x_min=x0, y_min=y0, x_max=x0 + cw, y_max=y0 + ch))
            offset = (y0 - top, x0 - left)
        flip = bool(self.hflip > 0 and rng.random() < self.hflip)
        if flip:
            ops.append(A.HorizontalFlip(p=1.0))
        if self.colour_jitter is not None:
            ops.append(A.ColorJitter(p=1.0, **self.colour_jitter))
        # The jitter seed is drawn even without jitter so the crop/flip stream does not
        # depend on whether jitter is on.
        seed = int(rng.integers(0, 2**31 - 1))

        out: dict[str, Any] = {"rgb": rgb, **depths}
        if ops:
            pipeline = A.Compose(ops, additional_targets={k: "mask" for k in depths}, seed=seed)
            res = pipeline(image=np.asarray(rgb, dtype=np.float32), **depths)
            out = {"rgb": res["image"], **{k: res[k] for k in depths}}
        out["rgb"] = np.ascontiguousarray(np.clip(out["rgb"], 0.0, 1.0), dtype=np.float32)
        for k in depths:
            out[k] = np.ascontiguousarray(out[k], dtype=np.float32)
        out["crop_offset"] = offset
        out["flip"] = flip
        return out

    def __repr__(self) -> str:
        return (
            f"PairedTransform(crop={self.crop}, hflip={self.hflip}, colour_jitter={self.colour_jitter}, "
            f"bottom={self.bottom}, random_crop={self.random_crop})"
        )


def train_transform(
    crop: tuple[int, int] | None = (256, 1216),
    hflip: float = 0.5,
    colour_jitter: bool | dict = True,
    bottom: bool = True,
) -> PairedTransform:
    """Training augmentation: random crop (bottom-aligned by default), flip, colour jitter.

    Args:
        crop: output ``(h, w)``; KITTI's usual 256x1216 bottom crop by default.
        hflip: flip probability.
        colour_jitter: see :class:`PairedTransform`.
        bottom: take the bottom ``h`` rows with a random horizontal offset; ``False``
            draws the vertical offset at random too.
    """
    return PairedTransform(crop=crop, hflip=hflip, colour_jitter=colour_jitter, bottom=bottom, random_crop=True)


def eval_transform(crop: tuple[int, int] | None = None, bottom: bool = True) -> PairedTransform:
    """Deterministic evaluation transform: bottom-centre (or centre) crop, or identity."""
    return PairedTransform(crop=crop, hflip=0.0, colour_jitter=False, bottom=bottom, random_crop=False)


def adjust_intrinsics(K: np.ndarray, crop_offset: tuple[int, int], flip: bool, width: int) -> np.ndarray:
    """Intrinsics of the transformed image.

    Args:
        K: (3,3) intrinsics of the input image; all zeros (unknown) is returned unchanged.
        crop_offset: ``(y0, x0)`` from the transform.
        flip: whether the output was mirrored.
        width: output width in pixels.
    Returns:
        (3,3) float32: ``cx -= x0``, ``cy -= y0``; after a flip ``cx = width - 1 - cx``
        (and the skew changes sign).
    """
    K = np.array(K, dtype=np.float32, copy=True)
    if not np.any(K):
        return K
    y0, x0 = crop_offset
    K[0, 2] -= x0
    K[1, 2] -= y0
    if flip:
        K[0, 2] = width - 1 - K[0, 2]
        K[0, 1] = -K[0, 1]
    return K

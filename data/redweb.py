"""ReDWeb V1 (Xian et al. 2018): web stereo images with relative depth, for monocular training.

Layout: ``<root>/Imgs/<stem>.jpg`` (``.jpeg`` / ``.png`` accepted) and
``<root>/RDs/<stem>.png``, paired by stem.

Relative-depth convention. An RD file is an 8-bit single-channel PNG: values 0..254
are relative depth with LARGER = FARTHER, 255 marks sky / invalid. A sample's ``gt`` is
``(value + 1) / 255`` in (0, 1] where ``value != 255`` and 0 (missing) where it is 255,
so "0 = missing" holds as everywhere in DepthSense and larger still means farther. The
scale is arbitrary: compare it to predictions only after scale-and-shift alignment or
with ordinal (ranking) measures. There is no sparse input: ``sparse`` and ``mask`` are
zeros and ``K`` is zeros (unknown); the sparsity options are therefore refused.

Splits. If ``<root>/<split>.txt`` exists it lists the split's samples, one per line, as
a stem (``abc``) or a relative path (``Imgs/abc.jpg``; only the stem is used); blank
lines and ``#`` comments are ignored. Without a list, ``train`` and ``val`` are derived
deterministically: the stems sorted, every 10th (positions 0, 10, 20, ...) goes to
``val`` and the rest to ``train``; ``all`` is every sample.

RD files are read with OpenCV (``IMREAD_UNCHANGED``); anything but an 8-bit
single-channel image raises ``DepthFileError`` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from depthsense.data.dataset import DepthDataset, RawSample, SampleRecord, register_dataset
from depthsense.errors import DatasetError, DepthFileError
from depthsense.io import read_rgb

__all__ = ["RedwebDataset", "read_relative_depth"]

_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_VAL_EVERY = 10
_MAX_LISTED = 3


def read_relative_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a ReDWeb RD map as relative depth.

    Args:
        path: 8-bit single-channel PNG; 0..254 relative depth (larger = farther), 255 invalid.
    Returns:
        (H,W) float32: ``(value + 1) / 255`` where valid, 0 where the value is 255.
    Raises:
        DepthFileError: missing, undecodable, 16-bit or multi-channel file.
    """
    path = Path(path)
    if not path.is_file():
        raise DepthFileError(f"{path}: ReDWeb relative-depth map not found; check the RDs/ folder.")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DepthFileError(f"{path}: cannot read ({exc.strerror}); check permissions.") from None
    rd = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if rd is None:
        raise DepthFileError(f"{path}: cannot be decoded as an image; it is corrupt. Copy it again.")
    if rd.dtype != np.uint8 or rd.ndim != 2:
        channels = 1 if rd.ndim == 2 else rd.shape[2]
        raise DepthFileError(
            f"{path}: {rd.dtype} image with {channels} channel(s); a ReDWeb RD map is an 8-bit "
            "single-channel PNG (0..254 relative depth, 255 = sky). Use the original RDs/ file."
        )
    return np.where(rd == 255, 0.0, (rd.astype(np.float32) + 1.0) / 255.0).astype(np.float32)


@register_dataset("redweb")
class RedwebDataset(DepthDataset):
    """ReDWeb V1: rgb + relative-depth ``gt``; ``sparse``/``mask`` zeros; ``K`` zeros.

    Args:
        root: folder holding ``Imgs/`` and ``RDs/``.
        split: ``train`` | ``val`` | ``all`` or any ``<split>`` with a ``<root>/<split>.txt``.
        transform, seed, cache: see :class:`depthsense.data.DepthDataset`.
        sparsity: must be empty (no metric depth to sample).
    Raises:
        DatasetError: missing folders, unknown split, unpaired or unlisted files, a
            sparsity option, or no samples.
    """

    splits = ("train", "val", "all")
    has_metric_depth = False
    default_crop = (320, 320)

    def _valid_splits(self) -> tuple[str, ...]:
        listed = sorted(p.stem for p in self.root.glob("*.txt") if p.is_file())
        return tuple(dict.fromkeys([*self.splits, *listed]))

    def _find_samples(self) -> list[SampleRecord]:
        img_dir, rd_dir = self.root / "Imgs", self.root / "RDs"
        for d in (img_dir, rd_dir):
            if not d.is_dir():
                raise DatasetError(
                    f"{d}: folder not found; ReDWeb expects {img_dir}/*.jpg and {rd_dir}/*.png. "
                    "Pass the folder that holds Imgs/ and RDs/."
                )
        images: dict[str, str] = {}
        for name in sorted(os.listdir(img_dir)):
            stem, ext = os.path.splitext(name)
            if ext.lower() in _IMAGE_EXTS and not name.startswith("."):
                images.setdefault(stem, name)
        rds = {os.path.splitext(n)[0] for n in os.listdir(rd_dir) if n.endswith(".png") and not n.startswith(".")}

        list_file = self.root / f"{self.split}.txt"
        if list_file.is_file():
            stems = _read_split_list(list_file)
            unknown = [s for s in stems if s not in images]
            if unknown:
                raise DatasetError(
                    f"{list_file}: {len(unknown)} listed samples have no image in {img_dir} "
                    f"(e.g. {', '.join(unknown[:_MAX_LISTED])}); fix the list or add the images."
                )
        else:
            ordered = sorted(images)
            if self.split == "all":
                stems = ordered
            else:
                to_val = self.split == "val"
                stems = [s for i, s in enumerate(ordered) if (i % _VAL_EVERY == 0) == to_val]

        missing = [img_dir / images[s] for s in stems if s not in rds]
        if missing:
            shown = ", ".join(str(p) for p in missing[:_MAX_LISTED])
            raise DatasetError(
                f"{self.root}: {len(missing)} images have no relative-depth map in {rd_dir} "
                f"(e.g. {shown}); expected RDs/<stem>.png for each image."
            )
        if not stems:
            raise DatasetError(
                f"{self.root}: no samples found for split {self.split!r}; searched {img_dir}/*.jpg "
                f"paired with {rd_dir}/*.png" + (f" listed in {list_file}" if list_file.is_file() else "") + "."
            )
        return [
            SampleRecord(rgb=img_dir / images[s], gt=rd_dir / f"{s}.png", name=s) for s in stems
        ]

    def _load(self, record: SampleRecord) -> RawSample:
        return RawSample(rgb=read_rgb(record.rgb), sparse=None, gt=read_relative_depth(record.gt), K=None)

    def _layout_hint(self) -> str:
        return "the ReDWeb_V1 folder with Imgs/ and RDs/"


def _read_split_list(path: Path) -> list[str]:
    stems = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            stems.append(Path(line).stem)
    return stems

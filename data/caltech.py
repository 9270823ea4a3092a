"""Image classification data in a folder-per-class layout (Caltech-101 and the like).

``root/<class>/<image>`` with one sub-folder per class (sorted names = labels 0, 1, ...).
Caltech-101 unpacks as ``101_ObjectCategories/<class>/image_0001.jpg``; ``root`` may be
that folder or the folder holding it. Its ``BACKGROUND_Google`` folder (clutter, not an
object class) is left out, as in the usual 101-class protocol. Every image is read with
:func:`depthsense.io.read_rgb` (so a broken file is reported by name), its shorter side
resized to ``size`` and the centre ``size`` x ``size`` cropped. The train/test split is
per class and seeded.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from depthsense.errors import DatasetError
from depthsense.io import read_rgb

__all__ = ["read_class_folders", "IMAGE_EXTENSIONS", "EXCLUDED_CLASSES"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff")
"""File endings read as images (case-insensitive); other files are ignored."""

EXCLUDED_CLASSES: tuple[str, ...] = ("BACKGROUND_Google",)
"""Sub-folders that are not classes (Caltech-101's clutter folder)."""

_CALTECH_DIR = "101_ObjectCategories"
_EXPECTED = "--dataset caltech101 expects --data-root DIR with one sub-folder of images per class " \
            f"(e.g. {_CALTECH_DIR}/<class>/image_0001.jpg)"


def read_class_folders(root: str | Path, size: int = 64, test_fraction: float = 0.2,
                       seed: int = 0) -> dict:
    """Read a folder-per-class image set and split every class into train and test.

    Args:
        root: the folder of class folders (or the folder holding ``101_ObjectCategories``).
        size: output side in pixels (>= 8).
        test_fraction: share of each class held out for testing, in (0, 1); at least one
            image of every class goes to each side.
        seed: seed of the per-class split (``np.random.default_rng([seed, class_index])``).
    Returns:
        ``train_images`` / ``test_images`` (N,3,size,size) uint8 RGB, ``train_labels`` /
        ``test_labels`` (N,) int64, ``classes`` (list of folder names, index = label).
    Raises:
        DatasetError: ``root`` missing, no class folder with images, a class with fewer
            than two images, or an unreadable image (one line naming it).
        ValueError: ``size`` or ``test_fraction`` out of range.
    """
    if size < 8 or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"size must be >= 8 and test_fraction in (0, 1), got {size}, {test_fraction}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder; {_EXPECTED}")
    if (root / _CALTECH_DIR).is_dir():
        root = root / _CALTECH_DIR
    classes = _class_files(root)
    if len(classes) < 2:  # before reading any image: one class is 100 % accuracy against 100 % chance
        raise DatasetError(f"{root}: {len(classes)} class folder ({', '.join(classes)}); classification needs at "
                           f"least 2 classes; {_EXPECTED}")
    parts: dict[str, list] = {"train_images": [], "train_labels": [], "test_images": [], "test_labels": []}
    for label, (name, files) in enumerate(classes.items()):
        if len(files) < 2:
            raise DatasetError(f"{root / name}: {len(files)} image(s); every class needs at least 2 "
                               "(one for training, one for testing)")
        order = np.random.default_rng([seed, label]).permutation(len(files))
        n_test = min(len(files) - 1, max(1, round(test_fraction * len(files))))
        for rank, j in enumerate(order):
            split = "test" if rank < n_test else "train"
            parts[f"{split}_images"].append(_load(files[j], size))
            parts[f"{split}_labels"].append(label)
    return {
        "train_images": np.stack(parts["train_images"]),
        "train_labels": np.asarray(parts["train_labels"], np.int64),
        "test_images": np.stack(parts["test_images"]),
        "test_labels": np.asarray(parts["test_labels"], np.int64),
        "classes": list(classes),
    }


def _class_files(root: Path) -> dict[str, list[Path]]:
    classes: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in EXCLUDED_CLASSES):
        files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if files:
            classes[folder.name] = files
    if not classes:
        raise DatasetError(f"{root}: no class folder with images ({', '.join(IMAGE_EXTENSIONS)}); {_EXPECTED}")
    return classes


def _load(path: Path, size: int) -> np.ndarray:
    rgb = read_rgb(path)  # (H,W,3) float32 in [0,1]; DepthFileError names a broken file
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (nh - size) // 2, (nw - size) // 2
    crop = rgb[top:top + size, left:left + size]
    return np.round(np.clip(crop, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(2, 0, 1)

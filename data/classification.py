"""Image sets for the sparse-classification experiment, chosen by name, and the pixel-drop mask.

These are whole-image classification sets held in memory (tens of MB), not the depth
data sets of :func:`depthsense.data.build_dataset`. Names:

==========  =================================================================  ==========
name        what                                                               module
==========  =================================================================  ==========
digits      procedural digits (OpenCV fonts + affine jitter), no download      digits
mnist       MNIST / Fashion-MNIST from the four IDX files (``--data-root``)    mnist
caltech101  folder-per-class images, e.g. Caltech-101 (``--data-root``)         caltech
==========  =================================================================  ==========

:func:`drop_mask` makes the dropped-pixel masks: for a given key the same pixels are
dropped whichever net asks, which is what makes the ConvNet / SparseConvNet comparison
paired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from depthsense.errors import DatasetError

__all__ = ["ImageSet", "load_image_set", "available_image_sets", "drop_mask", "DIGITS_SIZES"]

DIGITS_SIZES: tuple[int, int] = (6000, 4000)
"""(train, test) images rendered for ``digits`` when no count is given."""


@dataclass(frozen=True)
class ImageSet:
    """A classification set in memory.

    Attributes:
        name: registry name.
        classes: class names; a label is an index into it.
        train_images, test_images: (N,C,H,W) uint8 tensors (C = 1 grey or 3 RGB).
        train_labels, test_labels: (N,) int64 tensors.
        source: where it came from (folder, or generator and seed), for reports.
    """

    name: str
    classes: tuple[str, ...]
    train_images: Tensor = field(repr=False)
    train_labels: Tensor = field(repr=False)
    test_images: Tensor = field(repr=False)
    test_labels: Tensor = field(repr=False)
    source: str = ""

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_images.shape[2]), int(self.train_images.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def available_image_sets() -> list[str]:
    """Sorted registered names."""
    return sorted(_LOADERS)


def load_image_set(name: str, root: str | Path | None = None, *, seed: int = 0, size: int | None = None,
                   train_images: int = 0, test_images: int = 0) -> ImageSet:
    """Load (or render) a classification set by name.

    Args:
        name: one of :func:`available_image_sets`.
        root: data folder (``mnist``, ``caltech101``); must be ``None`` for ``digits``.
        seed: seed of generation (``digits``), of the class split (``caltech101``) and of
            the subsets drawn when ``train_images`` / ``test_images`` are set.
        size: image side: ``digits`` renders at it (default 28), ``caltech101`` crops to
            it (default 64); ``mnist`` is 28 and refuses anything else.
        train_images, test_images: how many images to keep (0: ``digits`` renders
            :data:`DIGITS_SIZES`, the others keep all); a seeded random subset.
    Raises:
        KeyError: unknown ``name`` (lists the known names).
        DatasetError: missing / malformed data (one line naming the file and the fix), a
            ``root`` for ``digits`` or none for the others, an impossible ``size``.
    """
    if name not in _LOADERS:
        raise KeyError(f"unknown image set {name!r}; known image sets: {', '.join(available_image_sets())}")
    if train_images < 0 or test_images < 0:
        raise DatasetError(f"image counts must be >= 0, got train {train_images}, test {test_images}")
    needs_root = name != "digits"
    if needs_root and not root:
        raise DatasetError(f"--dataset {name} needs --data-root DIR (its files are not bundled)")
    if not needs_root and root:
        raise DatasetError("--dataset digits is generated and reads no files; drop --data-root")
    parts, source = _LOADERS[name](root, seed, size, train_images, test_images)
    out = {}
    for split, limit in (("train", train_images), ("test", test_images)):
        images, labels = parts[f"{split}_images"], parts[f"{split}_labels"]
        if limit and limit < len(labels):
            keep = np.sort(np.random.default_rng([seed, 7, split == "test"]).choice(len(labels), limit, replace=False))
            images, labels = images[keep], labels[keep]
        present = sorted({int(v) for v in np.unique(labels)})
        if len(present) < 2:  # accuracy would be 100 % "against chance 100 %"
            names = ", ".join(str(parts["classes"][k]) for k in present if k < len(parts["classes"])) or "none"
            more = f"; raise --{split}-images (now {limit})" if limit else ""
            raise DatasetError(f"{source}: the {split} images hold {len(present)} class(es) ({names}); classification "
                               f"needs at least 2{more}")
        out[f"{split}_images"] = torch.from_numpy(np.ascontiguousarray(images))
        out[f"{split}_labels"] = torch.from_numpy(np.asarray(labels, np.int64))
    return ImageSet(name=name, classes=tuple(parts["classes"]), source=source, **out)


def drop_mask(n: int, height: int, width: int, sparsity: float, key: tuple[int, ...] | int) -> Tensor:
    """Masks that drop a fixed share of every image's pixels at random.

    Exactly ``round((1 - sparsity) * H * W)`` pixels of every image are kept (at least
    one), chosen uniformly by ``np.random.default_rng(key)``: the same key gives the same
    masks, which is how both nets see identical inputs.

    Args:
        n, height, width: mask batch shape.
        sparsity: fraction of pixels dropped, in [0, 1).
        key: seed of the generator (int or tuple of ints).
    Returns:
        (n,1,H,W) float32 {0,1}; 1 = observed.
    Raises:
        ValueError: ``sparsity`` outside [0, 1).

    Examples:
        >>> m = drop_mask(2, 10, 10, 0.9, key=(0, 1))
        >>> m.shape, m.sum(dim=(1, 2, 3)).tolist()
        (torch.Size([2, 1, 10, 10]), [10.0, 10.0])
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    pixels = height * width
    keep = max(1, int(round((1.0 - sparsity) * pixels)))
    if keep >= pixels:
        return torch.ones(n, 1, height, width)
    scores = np.random.default_rng(key).random((n, pixels), dtype=np.float32)
    threshold = np.partition(scores, keep - 1, axis=1)[:, keep - 1:keep]
    return torch.from_numpy((scores <= threshold).astype(np.float32)).view(n, 1, height, width)


# --------------------------------------------------------------------------- loaders

def _digits(root, seed, size, train_images, test_images):
    from depthsense.data.digits import DIGIT_CLASSES, render_digits

    size = size or 28
    n_train, n_test = train_images or DIGITS_SIZES[0], test_images or DIGITS_SIZES[1]
    try:
        train = render_digits(n_train, (seed, 0), size)
        test = render_digits(n_test, (seed, 1), size)
    except ValueError as exc:
        raise DatasetError(f"--dataset digits: {exc}") from None
    return ({"train_images": train[0], "train_labels": train[1], "test_images": test[0],
             "test_labels": test[1], "classes": DIGIT_CLASSES},
            f"rendered: {n_train} train + {n_test} test digits, {size}x{size}, seed {seed}")


def _mnist(root, seed, size, train_images, test_images):
    from depthsense.data.mnist import load_mnist

    parts = load_mnist(root)
    native = parts["train_images"].shape[-1]
    if size not in (None, native):
        raise DatasetError(f"--dataset mnist has {native}x{native} images; drop --image-size or pass {native}")
    parts["classes"] = [str(d) for d in range(10)]
    return parts, f"IDX files in {Path(root).resolve()}"


def _caltech(root, seed, size, train_images, test_images):
    from depthsense.data.caltech import read_class_folders

    size = size or 64
    if size < 8:
        raise DatasetError(f"--image-size must be >= 8 for caltech101, got {size}")
    parts = read_class_folders(root, size=size, seed=seed)
    return parts, f"class folders in {Path(root).resolve()} ({size}x{size} centre crops, 20% of each class for test)"


_LOADERS: dict[str, Callable] = {"digits": _digits, "mnist": _mnist, "caltech101": _caltech}

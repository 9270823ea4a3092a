"""Which files to predict: images paired with sparse depth by name, and the KITTI
depth-completion test set's layout.

Folder pairing (:func:`pair_files`): an image ``D/<stem>.<png|jpg|jpeg>`` pairs
with ``D2/<stem>.png``; when that does not exist, with the KITTI
``val_selection_cropped`` name in which the first ``_image_`` of the stem becomes
``_velodyne_raw_`` (``..._sync_image_0000000005_image_02`` ->
``..._sync_velodyne_raw_0000000005_image_02``). Files without a partner are reported,
never dropped silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from depthsense.errors import DatasetError, DepthFileError

__all__ = ["IMAGE_SUFFIXES", "KITTI_TEST_SUBDIR", "Pairing", "pair_files", "kitti_test_dirs"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Image files recognised in folder mode (case-insensitive)."""

KITTI_TEST_SUBDIR = Path("depth_selection") / "test_depth_completion_anonymous"
"""The KITTI depth-completion test set inside a KITTI root (``image/``, ``velodyne_raw/``)."""


@dataclass
class Pairing:
    """Result of :func:`pair_files`.

    Attributes:
        pairs: ``(image, sparse)`` paths in sorted image order (``sparse`` None when no
            sparse folder was given).
        problems: one human-readable line per file without a partner (or ambiguous).
        sparse_count: number of sparse depth files found.
        files: every image and depth file found in the folders (what no output may replace).
    """

    pairs: list[tuple[Path, Path | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    sparse_count: int = 0
    files: list[Path] = field(default_factory=list)


def pair_files(image_dir: str | os.PathLike, sparse_dir: str | os.PathLike | None = None) -> Pairing:
    """Pair images with sparse depth PNGs by name (rules in the module docstring).

    Args:
        image_dir: folder of images (``.png``, ``.jpg``, ``.jpeg``).
        sparse_dir: folder of sparse depth ``.png``; None pairs every image with None
            (RGB-only models).
    Returns:
        :class:`Pairing`; images without depth and depth without an image are listed in
        ``problems``.
    Raises:
        DepthFileError: a folder is missing or holds no image.
    """
    image_dir = _check_dir(image_dir, "--image-dir")
    images: dict[str, list[Path]] = {}
    for p in sorted(image_dir.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            images.setdefault(p.stem, []).append(p)
    if not images:
        raise DepthFileError(f"{image_dir}: no images ({', '.join(IMAGE_SUFFIXES)}) in --image-dir; check the path.")
    result = Pairing()
    result.files = [p for paths in images.values() for p in paths]
    sparse: dict[str, Path] = {}
    if sparse_dir is not None:
        sparse_dir = _check_dir(sparse_dir, "--sparse-dir")
        sparse = {p.stem: p for p in sorted(sparse_dir.iterdir()) if p.is_file() and p.suffix.lower() == ".png"}
        result.sparse_count = len(sparse)
        result.files += list(sparse.values())
    used: set[str] = set()
    for stem, paths in images.items():
        if len(paths) > 1:
            result.problems.append(f"{image_dir}: several images named {stem}.*: {[p.name for p in paths]}; keep one")
            continue
        if sparse_dir is None:
            result.pairs.append((paths[0], None))
            continue
        candidates = [stem]
        if "_image_" in stem:
            candidates.append(stem.replace("_image_", "_velodyne_raw_", 1))
        match = next((c for c in candidates if c in sparse), None)
        if match is None:
            looked = " or ".join(f"{c}.png" for c in candidates)
            result.problems.append(f"{paths[0]}: no sparse depth in {sparse_dir} (looked for {looked})")
            continue
        used.add(match)
        result.pairs.append((paths[0], sparse[match]))
    for stem, p in sparse.items():
        if stem not in used and not any(s in images for s in (stem, stem.replace("_velodyne_raw_", "_image_", 1))):
            result.problems.append(f"{p}: no image in {image_dir} with the same name")
    return result


def kitti_test_dirs(root: str | os.PathLike) -> tuple[Path, Path]:
    """``(image_dir, velodyne_raw_dir)`` of KITTI's depth-completion test set.

    Args:
        root: the KITTI root (holding ``depth_selection/``), ``depth_selection`` itself or
            ``test_depth_completion_anonymous`` itself.
    Raises:
        DatasetError: the folders are not there (the message names the expected path).
    """
    root = Path(root)
    for base in (root / KITTI_TEST_SUBDIR, root / KITTI_TEST_SUBDIR.name, root):
        if (base / "velodyne_raw").is_dir() and (base / "image").is_dir():
            return base / "image", base / "velodyne_raw"
    raise DatasetError(
        f"{root}: no KITTI test set here; expected {root / KITTI_TEST_SUBDIR}/{{image,velodyne_raw}} "
        "(unzip data_depth_selection.zip into the KITTI root) or pass --image-dir/--sparse-dir."
    )


# --------------------------------------------------------------------------- helpers


def _check_dir(path: str | os.PathLike, option: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        what = "is a file" if path.exists() else "not found"
        raise DepthFileError(f"{path}: {option} {what}; pass an existing folder.")
    return path

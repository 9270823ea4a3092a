"""RGB-D folders: any depth camera's frames with their ground truth, grouped by source.

Layout (the one of ``../shared/indoor_rgbd``)::

    ROOT/<source>/rgb/<name>.png|.jpg     colour image (8-bit)
    ROOT/<source>/gt/<name>.png|.npy      depth: a uint16 PNG in ``depth_unit`` (default KITTI,
                                          m x 256; ``mm``, ``tum``, a scale) or .npy metres
    ROOT/<source>/K/<name>.txt            optional intrinsics, 9 numbers row-major
    ROOT/<source>/sparse/<name>.png|.npy  optional: the sensor's own sparse input (same unit)

A source is any folder below ROOT (up to three levels deep, e.g.
``synthetic/slambook2_iclnuim``) holding ``rgb/`` and ``gt/``. Splits name sources:
``all`` (every source), or a comma-separated list of source names or parent folders
(``slambook_nyu,posecnn_ycbvideo`` or ``synthetic``). Samples are ordered by source, then
by name; :meth:`RGBDFolderDataset.group` gives a sample's source, so reports can be
broken down per source.

The input is made by a sensor pattern (``pattern="samples:500"``, ``"holes:25%"``, ...;
:mod:`depthsense.data.patterns`) or the density options, all sampled from the ground
truth; without one it is the ``sparse/`` file where a source has one, else empty.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from depthsense.data.dataset import DepthDataset, RawSample, SampleRecord, register_dataset
from depthsense.errors import DatasetError
from depthsense.io import parse_depth_unit, read_depth, read_rgb

__all__ = ["RGBDFolderDataset", "find_sources"]

_RGB_SUFFIXES = (".png", ".jpg", ".jpeg")
_DEPTH_SUFFIXES = (".png", ".npy")
_MAX_LEVELS = 3


def find_sources(root: str | os.PathLike) -> list[str]:
    """Source names under ``root``: folders up to three levels down holding ``rgb/`` and ``gt/``.

    Returns:
        Sorted POSIX-style paths relative to ``root`` (``"."`` when ``root`` itself is one).
    """
    root = Path(root)
    found: list[str] = []

    def walk(folder: Path, level: int) -> None:
        if (folder / "rgb").is_dir() and (folder / "gt").is_dir():
            found.append(folder.relative_to(root).as_posix())
            return
        if level >= _MAX_LEVELS:
            return
        for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            walk(child, level + 1)

    if root.is_dir():
        walk(root, 0)
    return sorted(found)


@register_dataset("rgbd")
class RGBDFolderDataset(DepthDataset):
    """RGB-D frames in ``ROOT/<source>/{rgb,gt,K}/`` (module docstring).

    Args:
        root: the folder holding the sources.
        split: ``all`` or comma-separated source names / parent folders.
        transform, sparsity, seed, cache: see :class:`depthsense.data.DepthDataset`
            (``beams`` is refused: RGB-D frames have no LiDAR scan lines; use ``lines:K``).
        depth_unit: unit of the depth PNGs (``kitti`` default, ``mm``, ``tum`` or a scale).
    Raises:
        DatasetError: no sources, an unknown source in ``split``, unpaired files, ``beams``.
    """

    splits = ("all",)
    default_patterns = ("samples:500", "uniform:5%", "lines:16", "holes:25%", "keypoints:1000")
    default_split = "all"
    can_train = False  # frames of any RGB-D camera, for evaluation: no train split

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "all",
        *,
        depth_unit: str | float | None = None,
        **common: Any,
    ) -> None:
        try:
            self.depth_unit = parse_depth_unit(depth_unit)
        except ValueError as exc:
            raise DatasetError(f"rgbd: {exc}") from None
        self.sources = find_sources(root) if Path(root).is_dir() else []
        super().__init__(root, split, **common)

    def group(self, index: int) -> str:
        """The source of sample ``index`` (reports break results down by it)."""
        return self.samples[index].name.rsplit("/", 1)[0]

    # ------------------------------------------------------------------ subclass hooks

    def _valid_splits(self) -> tuple[str, ...]:
        parts = [p.strip().strip("/") for p in str(self.split).split(",")]
        known = all(any(s == p or s.startswith(p + "/") for s in self.sources) for p in parts if p)
        return ("all", *self.sources, *((self.split,) if known and all(parts) else ()))

    def _check_split(self) -> list[str]:
        if not self.sources:
            raise DatasetError(f"{self.root}: no RGB-D source found: expected folders <source>/rgb and <source>/gt "
                               f"(up to {_MAX_LEVELS} levels below the root)")
        if self.split == "all":
            return list(self.sources)
        chosen: list[str] = []
        for part in (p.strip().strip("/") for p in self.split.split(",")):
            hits = [s for s in self.sources if s == part or s.startswith(part + "/")]
            if not part or not hits:
                raise DatasetError(f"{self.root}: unknown source {part!r} in split {self.split!r}; sources: "
                                   f"{', '.join(self.sources)} (or all)")
            chosen += [h for h in hits if h not in chosen]
        return chosen

    def _find_samples(self) -> list[SampleRecord]:
        records: list[SampleRecord] = []
        for source in self._check_split():
            folder = self.root / source
            rgbs = _by_stem(folder / "rgb", _RGB_SUFFIXES)
            gts = _by_stem(folder / "gt", _DEPTH_SUFFIXES)
            sparse = _by_stem(folder / "sparse", _DEPTH_SUFFIXES) if (folder / "sparse").is_dir() else {}
            for stem in sorted(set(rgbs) ^ set(gts)):
                have, lack = ("rgb", "gt") if stem in rgbs else ("gt", "rgb")
                path = (rgbs if stem in rgbs else gts)[stem]
                raise DatasetError(f"{path}: no {lack}/{stem}.* next to this {have} file; every frame needs both "
                                   "an image and its depth (remove or complete the pair)")
            for stem in sorted(rgbs):
                K = folder / "K" / f"{stem}.txt"
                records.append(SampleRecord(rgb=rgbs[stem], sparse=sparse.get(stem), gt=gts[stem],
                                            calib=K if K.is_file() else None, name=f"{source}/{stem}"))
        if not records:
            raise DatasetError(f"{self.root}: split {self.split!r} has no frames (rgb/ and gt/ are empty)")
        return records

    def _load(self, record: SampleRecord) -> RawSample:
        rgb = read_rgb(record.rgb)
        gt = read_depth(record.gt, self.depth_unit)
        sparse = read_depth(record.sparse, self.depth_unit) if record.sparse is not None else None
        K = self._read_K(record.calib, None) if record.calib is not None else None
        return RawSample(rgb=rgb, sparse=sparse, gt=gt, K=K)

    def _layout_hint(self) -> str:
        return "ROOT/<source>/rgb/<name>.png and ROOT/<source>/gt/<name>.png (K/<name>.txt optional)"

    def _describe_extra(self) -> dict[str, Any]:
        return {"depth_unit": str(self.depth_unit)}


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes:
            if p.stem in out:
                raise DatasetError(f"{p}: two files named {p.stem}.* in {folder}; keep one")
            out[p.stem] = p
    return out

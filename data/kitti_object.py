"""Real LiDAR scans as a data set: KITTI object (``velodyne/*.bin``) or a KITTI-raw drive.

Layouts read (``root`` = ``--data-root``):

KITTI object
    ``<root>/training/{velodyne,image_2,calib}/<id>.{bin,png,txt}`` (``root`` may also be
    the ``training`` folder itself); split ``testing`` reads ``<root>/testing/...``.
KITTI raw
    a drive ``<date>/<date>_drive_<nnnn>_sync`` with ``velodyne_points/data/<frame>.bin``
    and ``image_02/data/<frame>.png``, calibration ``calib_cam_to_cam.txt`` +
    ``calib_velo_to_cam.txt`` in ``<date>/``; ``root`` may be the drive or the date folder
    (every drive in it).

Splits: ``all`` (every frame), ``testing`` (KITTI object's test folder) and the frame split
of DepthSense's real-data protocol on the KITTI-object sample in ``../shared/kitti_object``:
``train`` = ids 000000-000009 (fine-tune and tune here only) and ``report`` = ids 000010,
000021, 000076, 000142, 000217 (report here, never tune). On KITTI raw only ``all`` exists.

A sample has the usual keys (:mod:`depthsense.data`); the projection and the rings come
from :mod:`depthsense.data.lidar`:

* ``sparse``: the projected scan, or with ``holdout`` the hold-out *input*: the rings with
  ``ring % K == phase`` (``beams:K``) or the points not held out (``points:F``);
* ``gt``: the hold-out *target* (the other rings' pixels, none shared with the input), or
  zeros without a hold-out (no dense ground truth comes with real scans);
* ``meta``: ``K`` = ``P2[:, :3]``, ``sparse_path`` = ``gt_path`` = the ``.bin`` file.

``holdout_phase=None`` draws the ring phase per sample and epoch (training augmentation:
each epoch the model sees other rings as input); an integer fixes it (evaluation uses 0).
``points:F`` is seeded per ``(seed, index)``. ``beams=N`` keeps every (64/N)-th ring of the
scan (exact, from the ring order, unlike the elevation heuristic used for PNG inputs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from depthsense.data.dataset import DepthDataset, RawSample, SampleRecord, register_dataset
from depthsense.data.lidar import (
    LidarError,
    holdout_split,
    keep_rings,
    parse_holdout,
    project_file,
    read_calibration,
    ring_ids,
)
from depthsense.errors import DatasetError
from depthsense.io import read_rgb

__all__ = ["KittiObjectDataset", "TRAIN_IDS", "REPORT_IDS"]

TRAIN_IDS: tuple[str, ...] = tuple(f"{i:06d}" for i in range(10))
"""Frames of the shared KITTI-object sample used for training and tuning."""

REPORT_IDS: tuple[str, ...] = ("000010", "000021", "000076", "000142", "000217")
"""Frames of the shared KITTI-object sample used only for reporting."""

_RAW_CALIB = "calib_cam_to_cam.txt"
_MAX_LISTED = 3


@register_dataset("kitti_object")
class KittiObjectDataset(DepthDataset):
    """Velodyne scans projected into the left colour camera (see the module docstring).

    Args:
        root: KITTI-object root (or its ``training`` folder), or a KITTI-raw drive or date
            folder.
        split: ``train`` | ``report`` | ``all`` | ``testing`` (object); ``all`` (raw).
        transform, seed, cache: see :class:`depthsense.data.DepthDataset`.
        sparsity: ``beams`` keeps every (64/beams)-th ring (input thinning; no hold-out
            then); density, num_points and patterns are refused (no dense ground truth).
        holdout: ``"beams:K"`` or ``"points:F"`` (:func:`depthsense.data.lidar.parse_holdout`).
        holdout_phase: ring phase of ``beams:K`` (0..K-1), None = random per sample/epoch.
        camera: colour camera index (2 = left, 3 = right).
    Raises:
        DatasetError: missing layout, unknown split, missing frames or partner files, bad
            hold-out spec or phase, an unsupported sparsity option.
    """

    splits = ("train", "report", "all", "testing")
    has_lidar = True
    has_dense_gt = False
    is_real_scan = True
    default_crop = (256, 1216)
    crop_bottom = True
    default_split = "report"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        *,
        holdout: str | None = None,
        holdout_phase: int | None = 0,
        camera: int = 2,
        **common: Any,
    ) -> None:
        try:
            self.holdout = parse_holdout(holdout) if holdout else None
        except ValueError as exc:
            raise DatasetError(f"kitti_object: {exc}") from None
        sparsity = common.get("sparsity")
        if self.holdout is not None and sparsity is not None and sparsity.beams is not None:
            raise DatasetError("kitti_object: pass either beams (thinning) or holdout, not both.")
        if holdout_phase is not None and self.holdout is not None and self.holdout.kind == "beams":
            if isinstance(holdout_phase, bool) or not 0 <= int(holdout_phase) < self.holdout.k:
                raise DatasetError(
                    f"kitti_object: holdout_phase={holdout_phase!r} outside 0..{self.holdout.k - 1} for {self.holdout}."
                )
        self.holdout_phase = None if holdout_phase is None else int(holdout_phase)
        self.camera = int(camera)
        self._calib_cache: dict[Path, Any] = {}
        super().__init__(root, split, **common)

    # ------------------------------------------------------------------ discovery

    def _valid_splits(self) -> tuple[str, ...]:
        return ("all",) if self._raw_drives() else self.splits

    def _find_samples(self) -> list[SampleRecord]:
        drives = self._raw_drives()
        if drives:
            return self._find_raw(drives)
        base = self._object_base()
        velo_dir, image_dir, calib_dir = base / "velodyne", base / f"image_{self.camera}", base / "calib"
        ids = _stems(velo_dir, ".bin")
        if self.split in ("train", "report"):
            wanted = TRAIN_IDS if self.split == "train" else REPORT_IDS
            missing = [i for i in wanted if i not in set(ids)]
            if missing:
                raise DatasetError(
                    f"{velo_dir}: split {self.split!r} is the frame list {', '.join(wanted)} of the shared "
                    f"KITTI-object sample; missing {_first(missing)}. Use split 'all' for other data."
                )
            ids = list(wanted)
        images, calibs = set(_stems(image_dir, ".png")), set(_stems(calib_dir, ".txt"))
        lacking = [i for i in ids if i not in images or i not in calibs]
        if lacking:
            raise DatasetError(
                f"{base}: {len(lacking)} scans have no image_{self.camera}/<id>.png or calib/<id>.txt "
                f"(e.g. {_first(lacking)}); every velodyne/<id>.bin needs both. Re-extract the KITTI object files."
            )
        if not ids:
            raise DatasetError(f"{velo_dir}: no scans found; expected velodyne/<id>.bin (KITTI object layout).")
        return [
            SampleRecord(rgb=image_dir / f"{i}.png", sparse=velo_dir / f"{i}.bin", gt=velo_dir / f"{i}.bin",
                         calib=calib_dir / f"{i}.txt", name=i)
            for i in ids
        ]

    def _object_base(self) -> Path:
        folder = "testing" if self.split == "testing" else "training"
        candidates = [self.root / folder] + ([] if self.split == "testing" else [self.root])
        for base in candidates:
            if (base / "velodyne").is_dir():
                return base
        raise DatasetError(
            f"{self.root}: no KITTI-object {folder}/velodyne folder and no KITTI-raw drive "
            f"(<date>_drive_<n>_sync/velodyne_points/data); pass the KITTI-object root or a raw drive folder."
        )

    def _raw_drives(self) -> list[Path]:
        if (self.root / "velodyne_points" / "data").is_dir():
            return [self.root]
        if not self.root.is_dir():
            return []
        return sorted(d for d in self.root.iterdir() if (d / "velodyne_points" / "data").is_dir())

    def _find_raw(self, drives: list[Path]) -> list[SampleRecord]:
        records: list[SampleRecord] = []
        lacking: list[Path] = []
        for drive in drives:
            calib = drive.parent / _RAW_CALIB
            if not calib.is_file():
                raise DatasetError(
                    f"{drive}: no {calib}; a KITTI-raw drive needs the date folder's {_RAW_CALIB} and "
                    "calib_velo_to_cam.txt next to it. Extract the raw calibration zip there."
                )
            velo_dir, image_dir = drive / "velodyne_points" / "data", drive / f"image_0{self.camera}" / "data"
            images = set(_stems(image_dir, ".png"))
            for frame in _stems(velo_dir, ".bin"):
                if frame not in images:
                    lacking.append(velo_dir / f"{frame}.bin")
                    continue
                records.append(SampleRecord(rgb=image_dir / f"{frame}.png", sparse=velo_dir / f"{frame}.bin",
                                            gt=velo_dir / f"{frame}.bin", calib=calib, name=f"{drive.name}/{frame}"))
        if lacking:
            raise DatasetError(
                f"{self.root}: {len(lacking)} scans have no image_0{self.camera}/data/<frame>.png (e.g. "
                f"{_first([str(p) for p in lacking])}). Extract the drive's images next to its scans."
            )
        if not records:
            raise DatasetError(f"{self.root}: no scans found in velodyne_points/data/*.bin.")
        return records

    # ------------------------------------------------------------------ loading

    def _load(self, record: SampleRecord) -> RawSample:
        rgb = read_rgb(record.rgb)
        calib = self._calibration(record.calib)
        points, scan = project_file(record.sparse, calib, rgb.shape[:2])
        needs_rings = self.beams is not None or (self.holdout is not None and self.holdout.needs_rings)
        rings = ring_ids(points, source=record.sparse) if needs_rings else None
        return RawSample(rgb=rgb, sparse=None, gt=None, K=calib.K, lidar_offsets=calib.lidar_offsets,
                         scan=(scan, rings))

    def _calibration(self, path: Path):
        if path not in self._calib_cache:  # raw drives share one calibration per date
            self._calib_cache[path] = read_calibration(path, camera=self.camera)
        return self._calib_cache[path]

    def _sparse_and_gt(self, raw: RawSample, K: np.ndarray, index: int, rec: SampleRecord):
        scan, rings = raw.scan
        if self.holdout is None:
            keep = None if self.beams is None else _keep(rings, scan, self.beams, rec)
            return scan.depth_map(keep), np.zeros(scan.size, np.float32)
        phase, rng = 0, np.random.default_rng([self.seed, index])
        if self.holdout.kind == "beams":
            if self.holdout_phase is None:
                phase = int(np.random.default_rng([self.seed, index, self.epoch, 2]).integers(self.holdout.k))
            else:
                phase = self.holdout_phase
        return holdout_split(scan, self.holdout, rings=rings, phase=phase, rng=rng)

    def _layout_hint(self) -> str:
        return "KITTI object training/{velodyne,image_2,calib} or a KITTI-raw drive folder"

    def _describe_extra(self) -> dict[str, Any]:
        return {"holdout": None if self.holdout is None else str(self.holdout), "holdout_phase": self.holdout_phase}


def _keep(rings: np.ndarray, scan, beams: int, rec: SampleRecord) -> np.ndarray:
    try:
        return keep_rings(rings, beams)[scan.index]
    except ValueError as exc:
        raise LidarError(f"{rec.sparse}: {exc}") from None


def _stems(directory: Path, suffix: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n[: -len(suffix)] for n in names if n.endswith(suffix) and not n.startswith("."))


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")

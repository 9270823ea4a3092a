"""KITTI depth completion (Uhrig et al. 2017) in its official on-disk layout.

Splits and where their files are (``<drive>`` e.g. ``2011_09_26_drive_0001``,
``<date>`` its first 10 characters, ``<cam>`` ``image_02`` or ``image_03``,
``<frame>`` 10 digits):

``train`` / ``val``
    sparse ``<root>/<split>/<drive>_sync/proj_depth/velodyne_raw/<cam>/<frame>.png``;
    GT ``<root>/<split>/<drive>_sync/proj_depth/groundtruth/<cam>/<frame>.png``;
    RGB from the KITTI raw data, searched in this order:
    ``<rgb_root>/<date>/<drive>_sync/<cam>/data/<frame>.png``,
    ``<rgb_root>/<drive>_sync/<cam>/data/<frame>.png``,
    ``<root>/<split>/<drive>_sync/<cam>/data/<frame>.png`` (``rgb_root`` defaults to root);
    K = ``P_rect_0X[:, :3]`` from ``<rgb_root>/<date>/calib_cam_to_cam.txt`` (or
    ``<root>/<date>/...``), zeros if no calibration file is found; the LiDAR mount used
    by ``beams`` thinning from ``calib_velo_to_cam.txt`` next to it (``T:`` line), else
    KITTI's 0.08 m above and 0.27 m behind the camera.
``val_selection``
    ``<root>/depth_selection/val_selection_cropped/{image,velodyne_raw,groundtruth_depth,intrinsics}/``
    with ``<drive>_image_<frame>_<cam>.png``, ``<drive>_velodyne_raw_<frame>_<cam>.png``,
    ``<drive>_groundtruth_depth_<frame>_<cam>.png``, ``<drive>_image_<frame>_<cam>.txt``.
``test``
    ``<root>/depth_selection/test_depth_completion_anonymous/{image,velodyne_raw,intrinsics}/``
    with ``<n>.png`` / ``<n>.txt``; no ground truth, so samples have no ``gt`` key.

Foreground masks (synthetic sets, :mod:`depthsense.data.synthetic`): when every frame
of a split has an 8-bit 0/255 PNG in an ``fg`` folder next to its ground truth
(``proj_depth/fg/<cam>/<frame>.png``, or ``val_selection_cropped/fg/<drive>_fg_<frame>_<cam>.png``),
samples carry it as ``fg`` (1,H,W) float32 {0,1}. Real KITTI has none; a split where
only some frames have one is a :class:`DatasetError`.

Samples are paired by drive, camera and frame at construction (directory listings, no
per-file stat) and kept in sorted order. A velodyne frame without its GT or RGB file is
a :class:`DatasetError` naming the first few. Image and depth sizes are checked when a
sample is loaded. Unreadable files raise ``DepthFileError`` from :mod:`depthsense.io`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any


from depthsense.data.dataset import DepthDataset, RawSample, SampleRecord, register_dataset
from depthsense.errors import DatasetError, DepthFileError
from depthsense.io import parse_key_values, read_depth, read_mask, read_rgb

__all__ = ["KittiDataset", "SyntheticKittiDataset", "read_lidar_offsets"]

_SELECTION_DIRS = {
    "val_selection": "depth_selection/val_selection_cropped",
    "test": "depth_selection/test_depth_completion_anonymous",
}
_CAM_CALIB = "calib_cam_to_cam.txt"
_VELO_CALIB = "calib_velo_to_cam.txt"
_VELO_NAME = re.compile(r"^(?P<drive>.+)_velodyne_raw_(?P<frame>\d+)_(?P<cam>image_0\d)\.png$")
_MAX_LISTED = 3


@register_dataset("kitti")
class KittiDataset(DepthDataset):
    """KITTI depth completion: ``train``, ``val``, ``val_selection``, ``test``.

    Args:
        root: the KITTI depth-completion root (holds ``train/``, ``val/``,
            ``depth_selection/``).
        split: ``train`` | ``val`` | ``val_selection`` | ``test``.
        transform, sparsity, seed, cache: see :class:`depthsense.data.DepthDataset`.
        cameras: cameras to use where present (``image_02`` left, ``image_03`` right).
        rgb_root: where the raw KITTI RGB frames and ``calib_cam_to_cam.txt`` live
            (default ``root``).
    Raises:
        DatasetError: missing root/split folder, no samples, unpaired files.
    """

    splits = ("train", "val", "val_selection", "test")
    has_lidar = True
    own_input = "lidar"
    default_crop = (256, 1216)
    crop_bottom = True
    # Velodyne origin in camera coordinates from KITTI's Tr_velo_to_cam: (-0.004, -0.076,
    # -0.272) m, i.e. ~0.08 m above and 0.27 m behind the camera. Used for beam thinning
    # when <date>/calib_velo_to_cam.txt is not found (it is read when it is).
    lidar_offsets = (0.08, 0.27)

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        *,
        cameras: tuple[str, ...] = ("image_02", "image_03"),
        rgb_root: str | os.PathLike | None = None,
        **common: Any,
    ) -> None:
        if isinstance(cameras, str):
            cameras = (cameras,)
        if not cameras:
            raise DatasetError("KittiDataset: cameras is empty; pass e.g. ('image_02', 'image_03').")
        self.cameras = tuple(cameras)
        self.rgb_root = Path(rgb_root) if rgb_root is not None else Path(root)
        self._velo_cache: dict[Path, tuple[float, float]] = {}
        super().__init__(root, split, **common)

    # ------------------------------------------------------------------ discovery

    def _find_samples(self) -> list[SampleRecord]:
        if self.split in ("train", "val"):
            return self._find_raw_layout()
        return self._find_selection()

    def _find_raw_layout(self) -> list[SampleRecord]:
        split_dir = self.root / self.split
        pattern = f"{split_dir}/<drive>_sync/proj_depth/velodyne_raw/{{{','.join(self.cameras)}}}/*.png"
        if not split_dir.is_dir():
            raise DatasetError(
                f"{split_dir}: split folder not found; expected {pattern} (KITTI depth "
                "completion layout). Check the root folder."
            )
        records: list[SampleRecord] = []
        missing_gt: list[Path] = []
        missing_rgb: list[Path] = []
        for drive_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and p.name.endswith("_sync")):
            drive_sync = drive_dir.name
            date = drive_sync[:10]
            for cam in self.cameras:
                velo_dir = drive_dir / "proj_depth" / "velodyne_raw" / cam
                velo = _list_png(velo_dir)
                if not velo:
                    continue
                gt_dir = drive_dir / "proj_depth" / "groundtruth" / cam
                gt_names = set(_list_png(gt_dir))
                fg_dir = drive_dir / "proj_depth" / "fg" / cam  # synthetic sets: foreground masks
                fg_names = set(_list_png(fg_dir))
                rgb_dirs = [
                    self.rgb_root / date / drive_sync / cam / "data",
                    self.rgb_root / drive_sync / cam / "data",
                    split_dir / drive_sync / cam / "data",
                ]
                rgb_listing = [(d, set(_list_png(d))) for d in rgb_dirs]
                calib = _first_file([self.rgb_root / date / _CAM_CALIB, self.root / date / _CAM_CALIB])
                velo_calib = _first_file([self.rgb_root / date / _VELO_CALIB, self.root / date / _VELO_CALIB])
                for name in velo:
                    rgb = next((d / name for d, names in rgb_listing if name in names), None)
                    if name not in gt_names:
                        missing_gt.append(velo_dir / name)
                    if rgb is None:
                        missing_rgb.append(velo_dir / name)
                    if name in gt_names and rgb is not None:
                        records.append(
                            SampleRecord(
                                rgb=rgb,
                                sparse=velo_dir / name,
                                gt=gt_dir / name,
                                fg=fg_dir / name if name in fg_names else None,
                                calib=calib,
                                calib_key=f"P_rect_{cam[-2:]}",
                                name=f"{drive_sync}/{cam}/{Path(name).stem}",
                                lidar_calib=velo_calib,
                            )
                        )
        if missing_gt:
            raise DatasetError(
                f"{self.root}: {len(missing_gt)} velodyne_raw frames have no ground truth "
                f"(e.g. {_first(missing_gt)}); expected "
                "<split>/<drive>_sync/proj_depth/groundtruth/<cam>/<frame>.png next to each. "
                "Re-extract data_depth_annotated.zip or remove the unmatched frames."
            )
        if missing_rgb:
            raise DatasetError(
                f"{self.root}: {len(missing_rgb)} velodyne_raw frames have no RGB image "
                f"(e.g. {_first(missing_rgb)}); looked in <rgb_root>/<date>/<drive>_sync/<cam>/data/, "
                f"<rgb_root>/<drive>_sync/<cam>/data/ and <root>/<split>/<drive>_sync/<cam>/data/ "
                f"with rgb_root={self.rgb_root}. Download the KITTI raw data and pass its folder with --rgb-root DIR "
                f"(rgb_root= in Python)."
            )
        if not records:
            raise DatasetError(f"{split_dir}: no samples found; searched {pattern}.")
        return _all_or_no_fg(records, "<split>/<drive>_sync/proj_depth/fg/<cam>/<frame>.png")

    def _find_selection(self) -> list[SampleRecord]:
        base = self.root / _SELECTION_DIRS[self.split]
        velo_dir = base / "velodyne_raw"
        pattern = f"{velo_dir}/*.png"
        if not velo_dir.is_dir():
            raise DatasetError(
                f"{velo_dir}: folder not found; the {self.split!r} split expects {pattern} "
                "(from data_depth_selection.zip) under the KITTI root."
            )
        has_gt = self.split == "val_selection"
        images = set(_list_png(base / "image"))
        gts = set(_list_png(base / "groundtruth_depth")) if has_gt else set()
        fgs = set(_list_png(base / "fg")) if has_gt else set()
        intrinsics = set(_list(base / "intrinsics", ".txt"))
        records: list[SampleRecord] = []
        missing_gt: list[Path] = []
        missing_rgb: list[Path] = []
        for name in _list_png(velo_dir):
            if has_gt:
                m = _VELO_NAME.match(name)
                if m is None:
                    raise DatasetError(
                        f"{velo_dir / name}: name does not follow "
                        "<drive>_velodyne_raw_<frame>_<cam>.png; keep the official file names."
                    )
                drive, frame, cam = m["drive"], m["frame"], m["cam"]
                if cam not in self.cameras:
                    continue
                img_name = f"{drive}_image_{frame}_{cam}.png"
                gt_name = f"{drive}_groundtruth_depth_{frame}_{cam}.png"
                fg_name = f"{drive}_fg_{frame}_{cam}.png"
                sample_name = f"{drive}/{cam}/{frame}"
            else:
                img_name, gt_name, fg_name, sample_name = name, None, None, Path(name).stem
            if img_name not in images:
                missing_rgb.append(velo_dir / name)
                continue
            if has_gt and gt_name not in gts:
                missing_gt.append(velo_dir / name)
                continue
            k_name = Path(img_name).stem + ".txt"
            records.append(
                SampleRecord(
                    rgb=base / "image" / img_name,
                    sparse=velo_dir / name,
                    gt=base / "groundtruth_depth" / gt_name if has_gt else None,
                    fg=base / "fg" / fg_name if fg_name in fgs else None,
                    calib=base / "intrinsics" / k_name if k_name in intrinsics else None,
                    name=sample_name,
                )
            )
        if missing_gt:
            raise DatasetError(
                f"{base}: {len(missing_gt)} velodyne_raw files have no groundtruth_depth file "
                f"(e.g. {_first(missing_gt)}); expected <drive>_groundtruth_depth_<frame>_<cam>.png. "
                "Re-extract data_depth_selection.zip."
            )
        if missing_rgb:
            raise DatasetError(
                f"{base}: {len(missing_rgb)} velodyne_raw files have no image "
                f"(e.g. {_first(missing_rgb)}); expected the matching file in {base / 'image'}. "
                "Re-extract data_depth_selection.zip."
            )
        if not records:
            raise DatasetError(f"{base}: no samples found; searched {pattern} (cameras {self.cameras}).")
        return _all_or_no_fg(records, f"{base}/fg/<drive>_fg_<frame>_<cam>.png")

    # ------------------------------------------------------------------ loading

    def _load(self, record: SampleRecord) -> RawSample:
        rgb = read_rgb(record.rgb)
        sparse = read_depth(record.sparse)
        gt = read_depth(record.gt) if record.gt is not None else None
        fg = read_mask(record.fg) if record.fg is not None else None
        K = self._read_K(record.calib, record.calib_key) if record.calib is not None else None
        offsets = None
        if record.lidar_calib is not None and self.beams is not None:
            offsets = self._lidar_offsets_from(record.lidar_calib)
        return RawSample(rgb=rgb, sparse=sparse, gt=gt, K=K, lidar_offsets=offsets, fg=fg)

    def _lidar_offsets_from(self, path: Path) -> tuple[float, float]:
        if path not in self._velo_cache:  # one file per recording date
            self._velo_cache[path] = read_lidar_offsets(path)
        return self._velo_cache[path]

    def _layout_hint(self) -> str:
        return "train/, val/ and depth_selection/ of KITTI depth completion"

    def _describe_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"cameras": self.cameras}
        if self.rgb_root != self.root:
            extra["rgb_root"] = str(self.rgb_root)
        return extra


# The synthetic street world (data/synthetic.py) writes KITTI's layout, so the KITTI
# loader reads it unchanged; the alias only gives it its own name in configs.
@register_dataset("synthetic")
class SyntheticKittiDataset(KittiDataset):
    """The generated street world in KITTI layout (``tools/make_synthetic.py`` writes it).

    Same arguments as :class:`KittiDataset`; ``root`` is the generated folder.
    """

    default_crop = (256, 608)


def read_lidar_offsets(path: str | os.PathLike) -> tuple[float, float]:
    """Where the LiDAR sits relative to the camera, from KITTI's ``calib_velo_to_cam.txt``.

    The file's ``T:`` line is the velodyne origin in camera coordinates (x right, y down,
    z forward), since ``p_cam = R p_velo + T``.

    Returns:
        ``(metres above, metres behind)`` the camera, i.e. ``(-T_y, -T_z)``; about
        (0.076, 0.272) for the real KITTI rig.
    Raises:
        DepthFileError: missing file, no ``T:`` line with 3 numbers, or a file that
            :func:`depthsense.io.parse_key_values` refuses (``T`` given twice, ...).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DepthFileError(f"{path}: cannot read the LiDAR calibration ({exc.strerror}).") from None
    values = parse_key_values(text, path)
    try:
        t = [float(v) for v in values.get("T", "").split()]
    except ValueError:
        t = []
    if len(t) == 3:
        return (-t[1], -t[2])
    raise DepthFileError(
        f"{path}: no 'T: x y z' line (velodyne origin in the camera frame); expected KITTI's "
        "calib_velo_to_cam.txt. Re-extract the raw calibration files."
    )


def _all_or_no_fg(records: list[SampleRecord], pattern: str) -> list[SampleRecord]:
    """Foreground masks are used only when every frame of the split has one.

    A batch cannot mix frames with and without a mask, and a split where some are
    missing is a broken copy, not a choice.
    Raises:
        DatasetError: some but not all frames have a mask (names one without).
    """
    have = sum(r.fg is not None for r in records)
    if 0 < have < len(records):
        missing = next(r for r in records if r.fg is None)
        raise DatasetError(
            f"{missing.sparse}: has no foreground mask, but {have} of the split's {len(records)} frames have "
            f"one ({pattern}); regenerate the set (depthsense-make-synthetic) or delete the fg/ folders."
        )
    return records


def _list(directory: Path, suffix: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in names if n.endswith(suffix) and not n.startswith("."))


def _list_png(directory: Path) -> list[str]:
    return _list(directory, ".png")


def _first_file(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def _first(paths: list[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:_MAX_LISTED])
    more = len(paths) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")

"""The data-set registry and :class:`DepthDataset`, the per-sample pipeline every data set shares.

Every data set yields the same sample dict (:func:`collate_samples` batches it, also
across data sets):

* ``rgb``: (3,H,W) float32 in [0,1];
* ``sparse``: (1,H,W) float32 metres, 0 = missing;
* ``mask``: (1,H,W) float32, ``sparse > 0``;
* ``gt``: (1,H,W) float32, 0 = missing; metres, or relative depth for ReDWeb; absent
  when the split has no ground truth (KITTI ``test``);
* ``fg``: (1,H,W) float32 {0,1} foreground-object mask, only when the data set has one
  for every frame of the split (the synthetic KITTI layout's ``fg/`` folders); a batch
  mixing samples with and without it gets zeros for the missing ones and ``fg_valid``
  (B,) float32 {0,1} saying which are real (:func:`collate_samples`);
* ``meta``: ``rgb_path``, ``sparse_path``, ``gt_path`` and ``fg_path`` (str, "" if none), ``K`` (3,3)
  float32 intrinsics after crop/flip (zeros if unknown), ``size`` int64 ``[H, W]`` of
  the original image, ``index`` (int).

Per-sample pipeline (:class:`DepthDataset`): load the full frame, apply the sparsity
option (``density``, ``num_points`` or ``beams``; :mod:`depthsense.data.sparsify`) with
``np.random.default_rng([seed, index])``, so it is deterministic per (seed, index) and
happens *before* any crop; then call ``transform(sample, rng)`` with
``rng = np.random.default_rng([seed, index, epoch, 1])`` (:mod:`depthsense.data.transforms`; call
:meth:`DepthDataset.set_epoch` each epoch for fresh augmentation); then convert to
tensors and adjust ``K`` for the crop/flip.

The data-set modules (``kitti``, ``kitti_object``, ``nyu``, ``redweb``) register
themselves with :func:`register_dataset`; :mod:`depthsense.data` imports them.
"""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from depthsense.data.patterns import SensorPattern, apply_pattern, parse_pattern
from depthsense.data.sparsify import apply_sparsity, check_sparsity_args
from depthsense.data.transforms import adjust_intrinsics
from depthsense.errors import DatasetError

INCOMPLETE_MARKER = ".incomplete"
"""A file a data-set writer (``depthsense-make-synthetic``) keeps in its output folder
while it writes and removes at the end: a folder holding it was left unfinished (a
crash, a full disk, kill -9), and every loader refuses it."""

__all__ = [
    "DepthDataset",
    "SampleRecord",
    "RawSample",
    "register_dataset",
    "build_dataset",
    "available_datasets",
    "dataset_class",
    "collate_samples",
    "OPTIONAL_KEYS",
]

_DATASETS: dict[str, type] = {}


def register_dataset(name: str, *, replace: bool = False) -> Callable[[type], type]:
    """Class decorator adding a data set to the registry under ``name``.

    Raises:
        KeyError: ``name`` already registered to another class and ``replace`` is False.
    """

    def deco(cls: type) -> type:
        if name in _DATASETS and _DATASETS[name] is not cls and not replace:
            raise KeyError(
                f"data set name {name!r} is already registered to {_DATASETS[name].__name__}; "
                "pick another name or pass replace=True."
            )
        _DATASETS[name] = cls
        return cls

    return deco


def available_datasets() -> list[str]:
    """Sorted registered names."""
    return sorted(_DATASETS)


def dataset_class(name: str) -> type:
    """The class registered as ``name``: its class attributes (``splits``,
    ``default_split``, ``has_lidar``) without reading any data.

    Raises:
        KeyError: unknown ``name`` (lists the known names).
    """
    if name not in _DATASETS:
        raise KeyError(f"unknown data set {name!r}; known data sets: {', '.join(available_datasets())}.")
    return _DATASETS[name]


def build_dataset(
    name: str,
    root: str | os.PathLike,
    split: str,
    transform: Callable | None = None,
    density: float | None = None,
    beams: int | None = None,
    num_points: int | None = None,
    seed: int = 0,
    pattern: str | None = None,
    **kwargs: Any,
) -> Dataset:
    """Build a registered data set.

    Args:
        name: registry name ("kitti", "redweb", "nyu", "synthetic", ...).
        root: data set root folder.
        split: split name (each data set lists its own; a wrong one raises).
        transform: ``transform(sample, rng) -> sample`` (see :mod:`depthsense.data.transforms`).
        density: sparse input = uniform sample of GT with ``density * H * W`` points.
        beams: sparse input = LiDAR input thinned to this many scan lines (64/32/16/8).
        num_points: sparse input = exactly this many points sampled from GT.
        seed: seed of the per-sample randomness.
        pattern: sparse input = a sensor pattern (``"holes:25%"``, ...; see
            :mod:`depthsense.data.patterns` and :meth:`DepthDataset.set_pattern`); replaces
            the other sparsity options.
        **kwargs: data-set specific options (e.g. KITTI ``cameras``, ``rgb_root``).
    Raises:
        KeyError: unknown ``name`` (the message lists the known names).
        DatasetError: bad root, split, sparsity options or files.
    """
    ds = dataset_class(name)(
        root, split, transform=transform, density=density, beams=beams, num_points=num_points, seed=seed, **kwargs
    )
    if pattern is not None:
        ds.set_pattern(pattern)
    return ds


@dataclass(frozen=True)
class SampleRecord:
    """Where one sample's files are.

    Attributes:
        rgb: colour image (or the HDF5 file holding both rgb and depth).
        sparse: sparse depth PNG, or ``None`` when the data set has no sparse input.
        gt: ground-truth file, or ``None`` (e.g. KITTI test).
        calib: intrinsics file, or ``None`` (K unknown or a constant of the data set).
        calib_key: line key inside ``calib`` (e.g. ``"P_rect_02"``), ``None`` for a
            plain 9-number file.
        name: short human-readable id, e.g. ``"2011_09_26_drive_0001_sync/image_02/0000000005"``.
        lidar_calib: file giving the LiDAR's position (KITTI ``calib_velo_to_cam.txt``),
            or ``None`` for the data set's default mount.
        fg: foreground-mask PNG (8-bit, 0/255), or ``None``.
    """

    rgb: Path
    sparse: Path | None = None
    gt: Path | None = None
    calib: Path | None = None
    calib_key: str | None = None
    name: str = ""
    lidar_calib: Path | None = None
    fg: Path | None = None


@dataclass
class RawSample:
    """A loaded full-resolution frame before sparsification and transforms.

    ``rgb`` (H,W,3) float32 in [0,1]; ``sparse`` / ``gt`` (H,W) float32 or ``None``;
    ``K`` (3,3) or ``None`` when unknown; ``lidar_offsets`` (metres above, metres behind
    the camera) or ``None`` for the class default ``DepthDataset.lidar_offsets``;
    ``fg`` (H,W) float32 {0,1} foreground mask or ``None``.
    """

    rgb: np.ndarray
    sparse: np.ndarray | None
    gt: np.ndarray | None
    K: np.ndarray | None = None
    lidar_offsets: tuple[float, float] | None = None
    scan: Any = None
    """Data-set specific raw input the sparse map is made from (e.g. a projected LiDAR scan)."""
    fg: np.ndarray | None = None


class DepthDataset(Dataset):
    """Base class: the common per-sample pipeline; subclasses find and load files.

    Subclasses set ``splits`` and implement ``_find_samples() -> list[SampleRecord]``
    and ``_load(record) -> RawSample``.

    Args:
        root: data set root folder.
        split: one of ``splits``.
        transform: ``transform(sample, rng) -> sample`` on numpy arrays, or ``None``.
        density, beams, num_points: sparsity option (at most one), see :func:`build_dataset`.
        seed: non-negative int; per-sample randomness is seeded with ``[seed, index]``.
        cache: keep decoded frames in memory after their first read (small data sets;
            each DataLoader worker process keeps its own copy).
    Raises:
        DatasetError: missing root, unknown split, invalid sparsity options, no samples.
    """

    splits: ClassVar[tuple[str, ...]] = ()
    default_split: ClassVar[str] = "val"
    """The split a command evaluates when none is given (``depthsense-evaluate`` without ``--split``)."""
    hidden_target: bool = False
    """When True, ``gt`` keeps only the pixels that are not input pixels: the evaluation
    protocol of sensor patterns (a method earns nothing by copying its input; for
    ``holes`` the target is exactly the holes), and a training target that spends the
    loss where the completion happens."""
    has_lidar: ClassVar[bool] = False
    """The samples' own sparse input is a LiDAR scan (``beams`` thinning and patterns apply)."""
    lidar_offsets: ClassVar[tuple[float, float]] = (0.08, 0.0)
    """(metres above, metres behind) the camera of the LiDAR, for ``beams`` thinning."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        transform: Callable | None = None,
        density: float | None = None,
        beams: int | None = None,
        num_points: int | None = None,
        seed: int = 0,
        cache: bool = False,
    ) -> None:
        self.root = Path(root)
        # Decoded frames kept in memory (per process): for small data sets read many
        # times, e.g. the synthetic demo set, where PNG decoding dominates a CPU step.
        self.cache = bool(cache)
        self._cache: dict[int, RawSample] = {}
        self.split = split
        self.transform = transform
        self.density = density
        self.beams = beams
        self.num_points = num_points
        self.epoch = 0
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DatasetError(f"seed={seed!r}; expected an integer >= 0.")
        self.seed = int(seed)
        if not self.root.is_dir():
            what = "is a file, not a folder" if self.root.exists() else "does not exist"
            raise DatasetError(
                f"{self.root}: {type(self).__name__} root {what}. Pass the folder that holds "
                f"the data set ({self._layout_hint()})."
            )
        marker = self.root / INCOMPLETE_MARKER
        if marker.exists():
            what = " ".join(marker.read_text(encoding="utf-8", errors="replace").split())[:200] or "a writer"
            raise DatasetError(
                f"{self.root}: incomplete data set: {marker} marks a generation that did not finish ({what}). "
                "Run that command again to complete it, or delete the folder."
            )
        valid_splits = self._valid_splits()
        if split not in valid_splits:
            raise DatasetError(
                f"{self.root}: unknown split {split!r} for {type(self).__name__}; valid splits: "
                f"{', '.join(valid_splits)}."
            )
        try:
            check_sparsity_args(density, beams, num_points)
        except ValueError as exc:
            raise DatasetError(f"{type(self).__name__}: {exc}") from None
        self._K_cache: dict[tuple[Path, str | None], np.ndarray] = {}
        self._mix: tuple[list[dict[str, Any]], np.ndarray] | None = None
        self._pattern: SensorPattern | None = None
        self.samples: list[SampleRecord] = self._find_samples()

    # ------------------------------------------------------------------ public

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample ``index`` as the dict described in the module docstring.

        Raises:
            IndexError: index out of range.
            DatasetError: rgb and depth sizes differ (or other per-file inconsistency).
            DepthFileError: a file is missing or invalid.
        """
        index = operator.index(index)
        n = len(self.samples)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} with {n} samples")
        rec = self.samples[index]
        raw = self._cache.get(index) if self.cache else None
        if raw is None:
            raw = self._load(rec)
            if self.cache:
                self._cache[index] = raw
        h, w = self._check_sizes(raw, rec)

        K = np.zeros((3, 3), np.float32) if raw.K is None else np.asarray(raw.K, np.float32)
        sparse, gt = self._sparse_and_gt(raw, K, index, rec)
        if self.hidden_target and gt is not None:  # score (or train) only where the input is silent
            gt = np.where(sparse > 0, np.float32(0.0), gt).astype(np.float32)
        sample: dict[str, Any] = {"rgb": raw.rgb, "sparse": sparse}
        if gt is not None:
            sample["gt"] = gt
        if raw.fg is not None:
            sample["fg"] = raw.fg
        offset, flip = (0, 0), False
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, index, self.epoch, 1])
            sample = self.transform(sample, rng)
            offset, flip = sample.get("crop_offset", (0, 0)), bool(sample.get("flip", False))
        out_w = sample["rgb"].shape[1]
        K = adjust_intrinsics(K, offset, flip, out_w)

        sparse_t = _to_tensor(sample["sparse"][None])
        out: dict[str, Any] = {
            "rgb": _to_tensor(sample["rgb"].transpose(2, 0, 1)),
            "sparse": sparse_t,
            "mask": (sparse_t > 0).to(torch.float32),
        }
        if sample.get("gt") is not None:
            out["gt"] = _to_tensor(sample["gt"][None])
        if sample.get("fg") is not None:
            out["fg"] = _to_tensor(sample["fg"][None])
        out["meta"] = {
            "rgb_path": str(rec.rgb),
            "sparse_path": "" if rec.sparse is None else str(rec.sparse),
            "gt_path": "" if rec.gt is None else str(rec.gt),
            "fg_path": "" if rec.fg is None else str(rec.fg),
            "K": torch.from_numpy(K),
            "size": torch.tensor([h, w], dtype=torch.int64),
            "index": index,
        }
        return out

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation stream (not the sparsification) for a new epoch."""
        self.epoch = int(epoch)

    def set_pattern(self, pattern: "str | SensorPattern") -> None:
        """Make every sample's input a sensor pattern of its ground truth (or LiDAR scan).

        Args:
            pattern: e.g. ``"samples:500"``, ``"holes:25%"`` (:func:`~depthsense.data.patterns.parse_pattern`);
                drawn with ``np.random.default_rng([seed, index])``, so deterministic per sample.
        Replaces the constructor's sparsity option and any mix.
        Raises:
            DatasetError: a pattern that does not parse, or ``beams`` on a data set without
                LiDAR input.
        """
        self._pattern = self._check_pattern(pattern, "set_pattern")
        self.density = self.beams = self.num_points = None
        self._mix = None

    def set_sparsity_mix(self, options: Sequence[dict[str, Any]], weights: Sequence[float] | None = None) -> None:
        """Draw the sparsity option anew per sample and epoch (training on many densities).

        Args:
            options: each a dict with at most one of ``density`` (a fraction, or a
                ``(low, high)`` range drawn log-uniformly), ``beams``, ``num_points`` or
                ``pattern`` (a sensor pattern, ranges allowed: ``"holes:5%..60%"``);
                ``{}`` is the data set's own sparse input.
            weights: relative probability of each option (default equal).
        The draw uses ``np.random.default_rng([seed, index, epoch, 3])``, so a run is
        reproducible and each epoch sees other densities. Replaces the constructor's
        sparsity option.
        Raises:
            DatasetError: an empty list, a malformed option or weights.
        """
        opts = [dict(o) for o in options]
        if not opts or any(set(o) - {"density", "beams", "num_points", "pattern"} or len(o) > 1 for o in opts):
            raise DatasetError(f"set_sparsity_mix: options {options!r}; each needs at most one of "
                               "density/beams/num_points/pattern")
        for o in opts:
            if "pattern" in o:
                o["pattern"] = self._check_pattern(o["pattern"], "set_sparsity_mix")
                continue
            d = o.get("density")
            lo_hi = d if isinstance(d, (tuple, list)) else (d, d)
            try:
                check_sparsity_args(lo_hi[0], o.get("beams"), o.get("num_points"))
                check_sparsity_args(lo_hi[1], None, None)
            except ValueError as exc:
                raise DatasetError(f"set_sparsity_mix: {exc}") from None
        w = np.ones(len(opts)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (len(opts),) or (w < 0).any() or w.sum() <= 0:
            raise DatasetError(f"set_sparsity_mix: weights {weights!r} must be {len(opts)} non-negative numbers")
        self._mix = (opts, w / w.sum())
        self._pattern = None

    @property
    def pattern(self) -> "SensorPattern | None":
        """The sensor pattern every sample's input is made with (:meth:`set_pattern`), or ``None``."""
        return self._pattern

    def describe(self) -> str:
        """One line: class, split, root, sample count and options."""
        opts = {
            "split": self.split,
            "root": str(self.root),
            "samples": len(self.samples),
            **self._describe_extra(),
            "density": self.density,
            "beams": self.beams,
            "num_points": self.num_points,
            "seed": self.seed,
            "transform": self.transform,
        }
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in opts.items()) + ")"

    def __repr__(self) -> str:
        return self.describe()

    # ------------------------------------------------------------------ subclass hooks

    def _find_samples(self) -> list[SampleRecord]:
        raise NotImplementedError

    def _load(self, record: SampleRecord) -> RawSample:
        raise NotImplementedError

    def _valid_splits(self) -> tuple[str, ...]:
        return self.splits

    def _layout_hint(self) -> str:
        return "see the module docstring for the expected layout"

    def _describe_extra(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ helpers

    def _read_K(self, path: Path, key: str | None) -> np.ndarray:
        from depthsense.io import read_intrinsics

        cache_key = (path, key)
        if cache_key not in self._K_cache:  # many frames share one calibration file
            self._K_cache[cache_key] = read_intrinsics(path, key=key)
        return self._K_cache[cache_key]

    def _sparse_and_gt(
        self, raw: RawSample, K: np.ndarray, index: int, rec: SampleRecord
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The sample's sparse input and ground truth (H,W) before transforms.

        Default: the sparsity option applied to the loaded frame, and its GT. Data sets
        whose target is made from the input (e.g. a LiDAR hold-out) override this.
        """
        return self._sparse_input(raw, K, index, rec), raw.gt

    def _sparse_input(self, raw: RawSample, K: np.ndarray, index: int, rec: SampleRecord) -> np.ndarray:
        density, beams, num_points, pattern = self._sparsity_option(index)
        rng = np.random.default_rng([self.seed, index] if self._mix is None else [self.seed, index, self.epoch, 4])
        height, behind = raw.lidar_offsets if raw.lidar_offsets is not None else self.lidar_offsets
        if pattern is not None:
            try:
                return apply_pattern(pattern, raw.gt, rng, rgb=raw.rgb, sparse=raw.sparse, K=K,
                                     lidar_height_offset=height, lidar_behind_offset=behind)
            except ValueError as exc:
                raise DatasetError(f"{rec.rgb}: cannot make the {pattern} input: {exc}") from None
        if raw.sparse is None and density is None and num_points is None:
            return np.zeros(raw.rgb.shape[:2], np.float32)  # monocular data: no sparse input
        try:
            return apply_sparsity(
                raw.sparse,
                raw.gt,
                K,
                rng,
                density=density,
                beams=beams,
                num_points=num_points,
                lidar_height_offset=height,
                lidar_behind_offset=behind,
            )
        except ValueError as exc:
            raise DatasetError(f"{rec.rgb}: cannot build the sparse input: {exc}") from None

    def _sparsity_option(self, index: int) -> tuple[float | None, int | None, int | None, "SensorPattern | None"]:
        if self._mix is None:
            return self.density, self.beams, self.num_points, self._pattern
        opts, probs = self._mix
        rng = np.random.default_rng([self.seed, index, self.epoch, 3])
        o = opts[int(rng.choice(len(opts), p=probs))]
        d = o.get("density")
        if isinstance(d, (tuple, list)):
            d = float(np.exp(rng.uniform(np.log(d[0]), np.log(d[1]))))
        return d, o.get("beams"), o.get("num_points"), o.get("pattern")

    def _check_pattern(self, pattern: "str | SensorPattern", where: str) -> "SensorPattern":
        try:
            p = parse_pattern(pattern)
        except ValueError as exc:
            raise DatasetError(f"{where}: {exc}") from None
        if p.needs_lidar and not self.has_lidar:
            raise DatasetError(f"{where}: {p} thins a LiDAR scan, and {type(self).__name__} has no LiDAR input; "
                               f"use lines:{p.value:g} for a K-beam-like scan of the ground truth")
        return p

    def _check_sizes(self, raw: RawSample, rec: SampleRecord) -> tuple[int, int]:
        if raw.rgb.ndim != 3 or raw.rgb.shape[2] != 3:
            raise DatasetError(f"{rec.rgb}: image has shape {raw.rgb.shape}; expected (H,W,3).")
        h, w = raw.rgb.shape[:2]
        for what, arr, path in (("sparse depth", raw.sparse, rec.sparse), ("ground truth", raw.gt, rec.gt),
                                ("foreground mask", raw.fg, rec.fg)):
            if arr is not None and arr.shape != (h, w):
                raise DatasetError(
                    f"{path}: {what} is {arr.shape[1]}x{arr.shape[0]} (WxH) but its image {rec.rgb} is "
                    f"{w}x{h}; the files do not belong together (or one was resized). Use the "
                    "original, unresized files of the same frame."
                )
        return h, w


OPTIONAL_KEYS: tuple[str, ...] = ("fg",)
"""Sample keys some data sets have and others lack; a mixed batch fills them explicitly."""


def collate_samples(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch sample dicts, also from different data sets (e.g. synthetic + real scans).

    Keys every sample has are stacked as ``default_collate`` does. An optional key
    (:data:`OPTIONAL_KEYS`, e.g. ``fg``) that only some samples carry is filled with zeros
    for the others, and ``<key>_valid`` (B,) float32 {0,1} marks the samples that had
    it, so a loss can skip the filled ones. ``meta`` keeps the fields every sample has.

    Raises:
        DatasetError: samples disagree on any other key (e.g. ``gt`` present in some only):
            such data sets cannot train together.
    """
    from torch.utils.data import default_collate

    if not items:
        raise DatasetError("collate_samples: an empty batch")
    keys = [set(it) for it in items]
    common = set.intersection(*keys)
    extra = set.union(*keys) - common
    bad = sorted(extra - set(OPTIONAL_KEYS))
    if bad:
        raise DatasetError(
            f"a batch mixes samples with and without {', '.join(bad)}; these data sets cannot be batched "
            f"together (only {', '.join(OPTIONAL_KEYS)} may be missing from some samples)"
        )
    batch: dict[str, Any] = {}
    for key in sorted(common - {"meta"}):
        batch[key] = default_collate([it[key] for it in items])
    for key in sorted(extra):
        ref = next(it[key] for it in items if key in it)
        batch[key] = torch.stack([it[key] if key in it else torch.zeros_like(ref) for it in items])
        batch[f"{key}_valid"] = torch.tensor([float(key in it) for it in items])
    if "meta" in common:
        meta_keys = set.intersection(*(set(it["meta"]) for it in items))
        batch["meta"] = default_collate([{k: it["meta"][k] for k in meta_keys} for it in items])
    return batch


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

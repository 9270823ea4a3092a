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

Per-sample pipeline (:class:`DepthDataset`): load the full frame, make its sparse input
under the data set's :class:`~depthsense.data.sparsity.SparsitySpec` (``density``,
``num_points``, ``beams`` or a sensor ``pattern``) with ``np.random.default_rng([seed,
index])``, so it is deterministic per (seed, index) and happens *before* any crop; then
call ``transform(sample, rng)`` with ``rng = np.random.default_rng([seed, index, epoch,
1])`` (:mod:`depthsense.data.transforms`; call :meth:`DepthDataset.set_epoch` each epoch
for fresh augmentation); then convert to tensors and adjust ``K`` for the crop/flip.

The data-set modules (``kitti``, ``kitti_object``, ``nyu``, ``redweb``, ``rgbd``) register
themselves with :func:`register_dataset`; :mod:`depthsense.data` imports them. What a data
set can do (LiDAR input, dense or metric ground truth, real scans, its own input, its
default crop and sensor patterns) is declared on its class (:class:`DepthDataset` class
attributes) and read through :func:`dataset_class`.
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

from depthsense.data.patterns import SensorPattern
from depthsense.data.sparsify import LIDAR_BEHIND_OFFSET, LIDAR_HEIGHT_OFFSET
from depthsense.data.sparsity import SPARSITY_OPTIONS, SparsitySpec
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
    "dataset_class",
    "available_datasets",
    "datasets_with",
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


def dataset_class(name: str) -> type["DepthDataset"]:
    """The class registered under ``name``, to read its abilities without building it.

    Example: ``dataset_class("rgbd").default_patterns``, ``dataset_class("kitti").has_lidar``.

    Raises:
        KeyError: unknown ``name`` (the message lists the known names).
    """
    if name not in _DATASETS:
        raise KeyError(f"unknown data set {name!r}; known data sets: {', '.join(available_datasets())}.")
    return _DATASETS[name]


def datasets_with(**abilities: Any) -> list[str]:
    """Sorted registered names whose class has every given ability value, e.g.
    ``datasets_with(is_real_scan=True)`` -> ``["kitti_object"]``.

    Raises:
        AttributeError: a name that is no ability of :class:`DepthDataset` (a typo would match nothing).
    """
    unknown = sorted(set(abilities) - set(dir(DepthDataset)))
    if unknown:
        raise AttributeError(f"datasets_with(): {', '.join(unknown)} is no ability of DepthDataset")
    return [n for n in available_datasets() if all(getattr(_DATASETS[n], k) == v for k, v in abilities.items())]


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
        density, beams, num_points, pattern: the sparse input, at most one (the fields of
            :class:`~depthsense.data.sparsity.SparsitySpec`): a uniform sample of GT with
            ``density * H * W`` points; the LiDAR input thinned to ``beams`` scan lines
            (64/32/16/8); exactly ``num_points`` points sampled from GT; a sensor pattern
            (``"holes:25%"``, ...; :mod:`depthsense.data.patterns`). None of them: the data
            set's own input (its default, e.g. NYU's 500 points).
        seed: seed of the per-sample randomness.
        **kwargs: data-set specific options (e.g. KITTI ``cameras``, ``rgb_root``), and
            ``cache``.
    Raises:
        KeyError: unknown ``name`` (the message lists the known names).
        DatasetError: bad root, split, sparsity options or files.
    """
    cls = dataset_class(name)
    try:
        spec = SparsitySpec(density=density, beams=beams, num_points=num_points, pattern=pattern)
    except ValueError as exc:
        raise DatasetError(f"{cls.__name__}: {exc}") from None
    return cls(root, split, transform=transform, sparsity=spec, seed=seed, **kwargs)


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

    Subclasses set ``splits`` and the abilities below, implement
    ``_find_samples() -> list[SampleRecord]`` and ``_load(record) -> RawSample``, and take
    their own keywords in their constructor, passing the common ones on
    (``super().__init__(root, split, **common)``).

    Args:
        root: data set root folder.
        split: one of ``splits``.
        transform: ``transform(sample, rng) -> sample`` on numpy arrays, or ``None``.
        sparsity: how the sparse input is made (:class:`~depthsense.data.sparsity.SparsitySpec`);
            ``None`` or an empty spec: the class's ``default_sparsity`` (its own input).
        seed: non-negative int; per-sample randomness is seeded with ``[seed, index]``.
        cache: keep decoded frames in memory after their first read (small data sets;
            each DataLoader worker process keeps its own copy).
    Raises:
        DatasetError: missing root, unknown split, a sparsity option the data set cannot
            do (the message says why and what to use), no samples.
    """

    splits: ClassVar[tuple[str, ...]] = ()
    has_lidar: ClassVar[bool] = False
    """The samples' own sparse input is a LiDAR scan whose scan lines ``beams`` can thin."""
    has_dense_gt: ClassVar[bool] = True
    """Every frame has (semi-)dense ground truth to sample inputs from (densities, points,
    sensor patterns); real scans have none."""
    has_metric_depth: ClassVar[bool] = True
    """The ground truth is depth in metres (False: relative depth, for monocular training)."""
    is_real_scan: ClassVar[bool] = False
    """Real LiDAR scans without ground truth: scored at held-out rings (``holdout``)."""
    own_input: ClassVar[str | None] = None
    """Name of the evaluation level of the data set's own sparse input (``"lidar"``,
    ``"500 points"``), or ``None`` when it has none worth scoring."""
    default_patterns: ClassVar[tuple[str, ...]] = ()
    """Sensor patterns an evaluation sweeps by default (data sets without input of their own)."""
    default_crop: ClassVar[tuple[int, int] | None] = None
    """Training crop (H, W) by default; ``None``: the full frame."""
    crop_bottom: ClassVar[bool] = False
    """Training crops keep the bottom rows (where a LiDAR's returns are)."""
    default_sparsity: ClassVar[SparsitySpec] = SparsitySpec()
    """The input when no sparsity option is given (NYU: 500 points of its ground truth)."""
    default_split: ClassVar[str] = "val"
    """The split a command evaluates when none is given (``depthsense-evaluate`` without ``--split``)."""
    can_train: ClassVar[bool] = True
    """``depthsense-train`` trains on it (False: an evaluation-only data set, e.g. RGB-D folders)."""
    hidden_target: bool = False
    """When True, ``gt`` keeps only the pixels that are not input pixels: the evaluation
    protocol of sensor patterns (a method earns nothing by copying its input; for
    ``holes`` the target is exactly the holes), and a training target that spends the
    loss where the completion happens."""
    lidar_offsets: ClassVar[tuple[float, float]] = (LIDAR_HEIGHT_OFFSET, LIDAR_BEHIND_OFFSET)
    """(metres above, metres behind) the camera of the LiDAR, for ``beams`` thinning."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        transform: Callable | None = None,
        sparsity: SparsitySpec | None = None,
        seed: int = 0,
        cache: bool = False,
    ) -> None:
        if sparsity is None or sparsity.is_own_input:
            sparsity = self.default_sparsity
        self._check_sparsity(sparsity)
        self.root = Path(root)
        # Decoded frames kept in memory (per process): for small data sets read many
        # times, e.g. the synthetic demo set, where PNG decoding dominates a CPU step.
        self.cache = bool(cache)
        self._cache: dict[int, RawSample] = {}
        self.split = split
        self.transform = transform
        self.sparsity = sparsity
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
        self._K_cache: dict[tuple[Path, str | None], np.ndarray] = {}
        self._mix: tuple[list[SparsitySpec], np.ndarray] | None = None
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
            DatasetError: a pattern that does not parse, or one the data set cannot make
                (``beams`` without LiDAR input, any pattern without dense metric ground truth).
        """
        self.sparsity = self._spec({"pattern": pattern}, "set_pattern")
        self._mix = None

    def set_sparsity_mix(self, options: Sequence[dict[str, Any] | SparsitySpec],
                         weights: Sequence[float] | None = None) -> None:
        """Draw the sparsity option anew per sample and epoch (training on many densities).

        Args:
            options: each a :class:`~depthsense.data.sparsity.SparsitySpec` or a dict
                of at most one of its fields: ``density`` (a fraction, or a ``(low, high)``
                range drawn log-uniformly), ``beams``, ``num_points`` or ``pattern`` (a
                sensor pattern, ranges allowed: ``"holes:5%..60%"``); ``{}`` is the data
                set's own sparse input.
            weights: relative probability of each option (default equal).
        The draw uses ``np.random.default_rng([seed, index, epoch, 3])``, so a run is
        reproducible and each epoch sees other densities. Replaces the constructor's
        sparsity option.
        Raises:
            DatasetError: an empty list, a malformed option or weights.
        """
        opts = [o if isinstance(o, SparsitySpec) else dict(o) for o in options]
        if not opts or any(isinstance(o, dict) and (set(o) - set(SPARSITY_OPTIONS) or len(o) > 1) for o in opts):
            raise DatasetError(f"set_sparsity_mix: options {options!r}; each needs at most one of "
                               "density/beams/num_points/pattern")
        specs = [o if isinstance(o, SparsitySpec) else self._spec(o, "set_sparsity_mix") for o in opts]
        w = np.ones(len(specs)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (len(specs),) or (w < 0).any() or w.sum() <= 0:
            raise DatasetError(f"set_sparsity_mix: weights {weights!r} must be {len(specs)} non-negative numbers")
        self._mix = (specs, w / w.sum())

    @property
    def pattern(self) -> "SensorPattern | None":
        """The sensor pattern every sample's input is made with (:meth:`set_pattern`), or ``None``
        (also while a :meth:`set_sparsity_mix` draws the input per sample)."""
        return None if self._mix is not None else self.sparsity.pattern

    @property
    def density(self) -> float | None:
        """``sparsity.density``: the fraction of pixels sampled from the ground truth, or ``None``."""
        return self.sparsity.density

    @property
    def beams(self) -> int | None:
        """``sparsity.beams``: the LiDAR input thinned to this many scan lines, or ``None``."""
        return self.sparsity.beams

    @property
    def num_points(self) -> int | None:
        """``sparsity.num_points``: the points sampled from the ground truth, or ``None``."""
        return self.sparsity.num_points

    def describe(self) -> str:
        """One line: class, split, root, sample count and options."""
        opts = {
            "split": self.split,
            "root": str(self.root),
            "samples": len(self.samples),
            **self._describe_extra(),
            "sparsity": str(self.sparsity) if self._mix is None else "mix",
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
        spec = self._sparsity_for(index)
        rng = np.random.default_rng([self.seed, index] if self._mix is None else [self.seed, index, self.epoch, 4])
        offsets = raw.lidar_offsets if raw.lidar_offsets is not None else self.lidar_offsets
        try:
            return spec.make_input(raw.gt, raw.sparse, rng, rgb=raw.rgb, K=K, lidar_offsets=offsets)
        except ValueError as exc:
            what = f"the {spec.pattern} input" if spec.pattern is not None else "the sparse input"
            raise DatasetError(f"{rec.rgb}: cannot make {what}: {exc}") from None

    def _sparsity_for(self, index: int) -> SparsitySpec:
        """The sample's spec: the data set's, or a draw from the mix (a density range resolved)."""
        if self._mix is None:
            return self.sparsity
        specs, probs = self._mix
        rng = np.random.default_rng([self.seed, index, self.epoch, 3])
        return specs[int(rng.choice(len(specs), p=probs))].draw(rng)

    def _spec(self, option: dict[str, Any], where: str) -> SparsitySpec:
        """A checked spec from one option dict, errors as ``DatasetError`` naming ``where``."""
        try:
            spec = SparsitySpec(**option)
        except ValueError as exc:
            raise DatasetError(f"{where}: {exc}") from None
        self._check_sparsity(spec, where)
        return spec

    def _check_sparsity(self, spec: SparsitySpec, where: str | None = None) -> None:
        """Refuse an option the data set's abilities cannot serve, saying why and what to use."""
        given = next((f for f in SPARSITY_OPTIONS if getattr(spec, f) is not None), None)
        if given is None:
            return
        name = type(self).__name__
        where = where or name
        if not self.has_metric_depth:
            raise DatasetError(f"{where}: {given} was set, but {name} has relative depth only and no sparse input; "
                               "use it for monocular models without a sparsity option.")
        p = spec.pattern
        if spec.beams is not None and not self.has_lidar:
            raise DatasetError(f"{where}: beams={spec.beams!r}, but {name} has no LiDAR scan lines to thin; use the "
                               f"pattern lines:{spec.beams} for a K-beam-like scan of the ground truth")
        if p is not None and p.needs_lidar and not self.has_lidar:
            raise DatasetError(f"{where}: {p} thins a LiDAR scan, and {name} has no LiDAR input; "
                               f"use lines:{p.value:g} for a K-beam-like scan of the ground truth")
        if spec.samples_gt and not self.has_dense_gt:
            hint = ("score a completion with holdout='beams:2' (or thin the input with beams=N)"
                    if self.is_real_scan else "use its own input")
            raise DatasetError(f"{where}: {given} samples the ground truth, and {name} has no dense ground truth "
                               f"(real scans have none); {hint}.")

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

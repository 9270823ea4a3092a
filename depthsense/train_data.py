"""Building a training run's data: the data root, the synthetic cache, the train/val
sets, and a DataLoader whose worker errors reach the user as one line.

Split out of :mod:`depthsense.engine` (which re-exports these names); used by the
engine, ``depthsense-evaluate`` (the shared synthetic cache, ``worker_safe_loader``)
and ``make pretrained``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from torch.utils.data import DataLoader, Dataset, default_convert

from depthsense.config import TrainConfig, UsageError, synthetic_cache_root
from depthsense.errors import DepthSenseError

__all__ = ["prepare_data_root", "ensure_synthetic_cache", "build_datasets", "worker_safe_loader",
           "check_input_points"]


def prepare_data_root(cfg: TrainConfig, log: Callable[[str], None] | None = None) -> str:
    """The data root to read: ``cfg.data_root``, or for ``synthetic`` without one a
    generated set in the cache (generated once; reused when complete).

    Args:
        log: called with one line saying where the synthetic data is (generated or reused).
    Raises:
        UsageError: a data set other than synthetic without ``--data-root``.
    """
    if cfg.data_root:
        return cfg.data_root
    if cfg.dataset != "synthetic":
        raise UsageError(f"--dataset {cfg.dataset} needs --data-root DIR (only synthetic can be generated)")
    return str(ensure_synthetic_cache(cfg.synthetic_frames, cfg.seed, cfg.synthetic_size, cfg.progress, log))


def ensure_synthetic_cache(frames: int, seed: int, size: tuple, progress: bool = False,
                           log: Callable[[str], None] | None = None) -> Path:
    """:func:`depthsense.config.synthetic_cache_root`, generated first if incomplete.

    Shared by ``depthsense-train`` and ``depthsense-evaluate`` so both read one cache.
    """
    from depthsense.data import synthetic

    root = synthetic_cache_root(frames, seed, tuple(size))
    # ".complete-fg": sets generated before the foreground masks existed lack fg/ and are
    # regenerated once (same seed, same frames, the masks added).
    done = root / ".complete-fg"
    if done.exists():
        if log:
            log(f"synthetic data: {root} (cached; {frames} frames {size[0]}x{size[1]}, seed {seed})")
        return root
    if log:
        log(f"synthetic data: generating {frames} frames {size[0]}x{size[1]} (seed {seed}) into {root}")
    synthetic.generate(root, layout="kitti", frames=frames, seed=seed, height=size[0], width=size[1],
                       progress=progress)
    done.write_text("ok\n")
    return root


def build_datasets(cfg: TrainConfig, root: str) -> tuple[Dataset, Dataset | None]:
    """Train and validation sets for a resolved config (augmented / deterministic)."""
    from depthsense import data
    from depthsense.data.transforms import eval_transform, train_transform

    name = "synthetic" if cfg.dataset == "synthetic" else cfg.dataset
    bottom = cfg.dataset in ("kitti", "synthetic", "kitti_object")
    train_tf = train_transform(crop=tuple(cfg.crop) if cfg.crop else None, hflip=0.5, colour_jitter=True, bottom=bottom)
    common = dict(density=cfg.density, beams=cfg.beams, seed=cfg.seed)
    if cfg.rgb_root is not None:
        common["rgb_root"] = cfg.rgb_root
    train_extra, val_extra = {}, {}
    if cfg.holdout:  # real scans: a new ring phase per sample and epoch in training, phase 0 to validate
        train_extra, val_extra = dict(holdout=cfg.holdout, holdout_phase=None), dict(holdout=cfg.holdout)
    train_set = data.build_dataset(name, root, "train", transform=train_tf, cache=cfg.cache, **common, **train_extra)
    try:
        val_set = data.build_dataset(name, root, "val", transform=eval_transform(None), cache=cfg.cache, **common,
                                     **val_extra)
    except DepthSenseError:
        val_set = None  # a data set without a validation split still trains
    return train_set, val_set


def worker_safe_loader(dataset: Dataset, **kwargs: Any) -> "Iterator[Any]":
    """A ``DataLoader`` whose data errors reach the caller as the original exception.

    A :class:`DepthSenseError` or ``OSError`` raised by ``dataset[i]`` in a worker
    process would come back as the same type with a message holding the worker's whole
    traceback ("Caught DepthFileError in DataLoader worker process 0 ..."). Here the
    worker returns the exception as a value and the main process re-raises it unchanged,
    so ``--workers 2`` fails with the same one line as ``--workers 0``. Other exceptions
    (bugs) keep torch's behaviour.

    Args:
        dataset: any map-style data set.
        **kwargs: ``DataLoader`` arguments; ``collate_fn`` defaults to
            :func:`depthsense.data.collate_samples` (batches mixed data sets).
    Returns:
        An iterable with ``len()`` like the DataLoader.
    """
    inner = kwargs.pop("collate_fn", None)
    if inner is None:
        from depthsense.data import collate_samples

        inner = default_convert if kwargs.get("batch_size", 1) is None else collate_samples
    return _Reraise(DataLoader(_CarryErrors(dataset), collate_fn=_CollateOrCarry(inner), **kwargs))


class _CarriedError:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _CarryErrors(Dataset):
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except (DepthSenseError, OSError) as exc:
            return _CarriedError(exc)


class _CollateOrCarry:
    def __init__(self, inner: Callable) -> None:
        self.inner = inner

    def __call__(self, items: Any) -> Any:
        if isinstance(items, _CarriedError):
            return items
        if isinstance(items, list):
            for item in items:
                if isinstance(item, _CarriedError):
                    return item
        return self.inner(items)


class _Reraise:
    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            if isinstance(batch, _CarriedError):
                raise batch.exc
            yield batch


def check_input_points(cfg: TrainConfig, train_set: Dataset) -> None:
    """Refuse a ``--density`` that leaves (on average) less than one input point per sample."""
    if cfg.density is None:
        return
    if cfg.crop:
        h, w = cfg.crop
    else:
        h, w = (int(v) for v in train_set[0]["gt"].shape[-2:])
    expected = cfg.density * h * w
    if expected < 1.0:
        raise UsageError(
            f"--density {cfg.density:g} gives about {expected:.2g} input points per {h}x{w} training sample: the "
            f"sparse input would be empty. Use --density >= {1.0 / (h * w):.2g} (1 point per sample), or --beams"
        )

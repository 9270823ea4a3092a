"""Building a training run's data: the data root, the synthetic cache, the train/val
sets, and the check that the input density leaves input points.

Used by the engine, ``depthsense-evaluate`` (the shared synthetic cache) and ``make
pretrained``. The DataLoader whose worker errors reach the user as one line is
:func:`depthsense.data.loader.worker_safe_loader`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset

from depthsense.config import TrainConfig, UsageError, synthetic_cache_root
from depthsense.errors import DepthSenseError

__all__ = ["prepare_data_root", "ensure_synthetic_cache", "build_datasets", "check_input_points"]


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
    bottom = data.dataset_class(cfg.dataset).crop_bottom
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

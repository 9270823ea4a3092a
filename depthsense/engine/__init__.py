"""Training: the loop, its hooks, the epoch sampler, distributed set-up, a run's data,
and ``train(cfg)`` that assembles a run.

The public names of the stage, re-exported from the modules that define them::

    from depthsense.engine import Trainer, train
"""

from depthsense.engine.hooks import HookBase, default_hooks
from depthsense.engine.run import train
from depthsense.engine.sampler import EpochSampler
from depthsense.engine.train_data import build_datasets, ensure_synthetic_cache, prepare_data_root
from depthsense.engine.trainer import NonFiniteLossError, Trainer, TrainResult

__all__ = [
    "Trainer",
    "TrainResult",
    "HookBase",
    "default_hooks",
    "NonFiniteLossError",
    "EpochSampler",
    "train",
    "prepare_data_root",
    "build_datasets",
    "ensure_synthetic_cache",
]

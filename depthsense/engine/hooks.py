"""What runs around the training loop: progress bar, TensorBoard, validation, checkpoints.

:meth:`depthsense.engine.trainer.Trainer.fit` owns only the loop; everything it writes
or shows is a hook. A hook subclasses :class:`HookBase` and overrides what it needs:

* ``before_train(trainer)``: once, before the first step of this ``fit``;
* ``after_step(trainer, terms)``: after every optimiser step, with ``trainer.step`` the
  number of steps done and ``terms`` the step's loss terms (python floats);
* ``after_train(trainer)``: once, when the last step is done (not after an error);
* ``close(trainer, failed)``: always, last, also after an error or Ctrl-C; releases
  what ``before_train`` opened. ``failed`` says the run is ending with an error, so a
  hook keeps that first error rather than raising its own.

The trainer calls the hooks in list order for every method. :func:`default_hooks`
builds the list a :class:`TrainConfig` asks for; its order is the order of the run's
side effects: the bar moves, the training scalars are logged, validation runs and logs,
``best.pt`` is written on improvement, then ``last.pt``; at the end the final validation,
``best.pt``, ``last.pt`` and ``summary.json``, then the bar and the TensorBoard file
are closed. Hooks talk to each other through the trainer: :class:`TensorBoardWriter`
opens ``trainer.writer``, :class:`PeriodicValidation` sets ``trainer.last_val`` and
``trainer.validated_at`` that :class:`BestCheckpoint` reads.

The hooks receive the :class:`depthsense.engine.trainer.Trainer` (not imported here:
the trainer imports this module).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from depthsense.config import TrainConfig, jsonable
from depthsense.data import dataset_class
from depthsense.io import atomic_write_bytes
from depthsense.metrics import METRIC_UNITS, metric_unit

__all__ = [
    "HookBase",
    "ProgressBar",
    "TensorBoardWriter",
    "PeriodicValidation",
    "BestCheckpoint",
    "PeriodicCheckpoint",
    "RunSummary",
    "default_hooks",
]


class HookBase:
    """A hook of :meth:`Trainer.fit`; every method does nothing unless overridden.

    ``trainer`` is the running :class:`depthsense.engine.trainer.Trainer`.
    """

    def before_train(self, trainer: Any) -> None:
        """Once before the first step of ``fit``."""

    def after_step(self, trainer: Any, terms: dict[str, float]) -> None:
        """After each optimiser step; ``trainer.step`` counts the steps done (first: 1)."""

    def after_train(self, trainer: Any) -> None:
        """Once after the last step, when the run reached ``trainer.total_steps``."""

    def close(self, trainer: Any, failed: bool) -> None:
        """Always, after ``after_train`` or after an error (``failed`` True)."""


def default_hooks(cfg: TrainConfig, main: bool = True) -> list[HookBase]:
    """The hooks of a ``depthsense-train`` run, in the order they act.

    Args:
        cfg: the run's configuration (``progress``, ``log_every``, ``val_every``, ``ckpt_every``).
        main: False in the processes that do not report under ``torchrun`` (rank > 0):
            they get no hook, so only rank 0 logs, validates and writes.
    Returns:
        progress bar (when ``cfg.progress``), TensorBoard, validation, best checkpoint,
        periodic checkpoint, summary.
    """
    if not main:
        return []
    hooks: list[HookBase] = [ProgressBar()] if cfg.progress else []
    return hooks + [
        TensorBoardWriter(cfg.log_every),
        PeriodicValidation(cfg.val_every),
        BestCheckpoint(),
        PeriodicCheckpoint(cfg.ckpt_every),
        RunSummary(),
    ]


class ProgressBar(HookBase):
    """A tqdm bar over the run's steps, with the loss and samples/s of this session."""

    def __init__(self) -> None:
        self.bar = None

    def before_train(self, trainer: Any) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, desc=f"train {trainer.model_name}",
                        unit="step", dynamic_ncols=True)  # fmt: skip

    def after_step(self, trainer: Any, terms: dict[str, float]) -> None:
        samples = (trainer.step - trainer.start_step) * trainer.cfg.batch_size * trainer.dist.world
        rate = samples / max(time.perf_counter() - trainer.start_time, 1e-9)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{terms['loss']:.4f}", samples_s=f"{rate:.1f}")

    def close(self, trainer: Any, failed: bool) -> None:
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.close()


class TensorBoardWriter(HookBase):
    """Opens ``trainer.writer`` (``<out>/tb``) and logs the loss terms, the learning rate
    and the seconds per step of each timed block at step 1 and every ``log_every`` steps.

    A resumed run purges the events a killed session logged after its checkpoint, so no
    step is logged twice or out of order.
    """

    def __init__(self, log_every: int) -> None:
        self.log_every = log_every
        self.logged_at = 0  # the step of the last log: timings are averaged since then

    def before_train(self, trainer: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        tb = trainer.out / "tb"
        # Events of a killed run after the checkpoint's step are stale: hide them. Steps up
        # to trainer.step were logged by the run that wrote the checkpoint and stay.
        if trainer.step:
            _order_event_files(tb)
        trainer.writer = SummaryWriter(str(tb), purge_step=trainer.step + 1 if trainer.step else None)

    def after_step(self, trainer: Any, terms: dict[str, float]) -> None:
        step, writer = trainer.step, trainer.writer
        if writer is None or (step % max(1, self.log_every) != 0 and step != 1):
            return
        for k, v in terms.items():
            writer.add_scalar(f"train/{k}", v, step)
        writer.add_scalar("train/lr", trainer.scheduler.get_last_lr()[0], step)
        steps = max(1, step - self.logged_at)
        for k, v in trainer.timings.items():
            writer.add_scalar(f"time/{k}_s_per_step", v / steps, step)
        trainer.timings = dict.fromkeys(trainer.timings, 0.0)
        self.logged_at = step

    def close(self, trainer: Any, failed: bool) -> None:
        writer, trainer.writer = trainer.writer, None
        if writer is not None:
            with contextlib.suppress(OSError) if failed else nullcontext():  # keep the first error
                writer.close()


class PeriodicValidation(HookBase):
    """Runs :meth:`Trainer.validate` every ``val_every`` steps (0: at the end of every
    epoch) and once more at the end unless the last step was just validated; logs the
    metrics as ``val/<name>`` and the first image's panel as ``val/panel`` to
    ``trainer.writer`` (when open) and records them in ``trainer.last_val`` and
    ``trainer.validated_at``."""

    def __init__(self, val_every: int) -> None:
        self.val_every = val_every

    def after_step(self, trainer: Any, terms: dict[str, float]) -> None:
        end_of_epoch = trainer.step_in_epoch == 0
        if (self.val_every and trainer.step % self.val_every == 0) or (not self.val_every and end_of_epoch):
            self.run(trainer)

    def after_train(self, trainer: Any) -> None:
        if trainer.validated_at != trainer.step:
            self.run(trainer)

    def run(self, trainer: Any) -> dict[str, float]:
        """Validate now, log and record the metrics; returns them."""
        metrics = trainer.validate()
        writer, step = trainer.writer, trainer.step
        if writer is not None:
            for k, v in metrics.items():
                writer.add_scalar(f"val/{k}", v, step)
            if trainer.val_panel is not None:
                from depthsense.viz import tensorboard_grid

                batch, pred = trainer.val_panel
                writer.add_image("val/panel", tensorboard_grid(batch, pred.cpu(), max_images=1), step)
        trainer.last_val = metrics
        trainer.validated_at = step
        return metrics


class BestCheckpoint(HookBase):
    """Writes ``best.pt`` (with the metrics) when a validation of this step scores lower
    on ``trainer.best_key`` (RMSE, or WHDR for relative depth) than ``trainer.best``,
    which it then replaces by the metrics and their ``step``. Each validation is judged
    once; a run without a score (no validation images) never writes ``best.pt``."""

    def __init__(self) -> None:
        self.judged_at: int | None = None

    def after_step(self, trainer: Any, terms: dict[str, float]) -> None:
        self._judge(trainer)

    def after_train(self, trainer: Any) -> None:
        self._judge(trainer)

    def _judge(self, trainer: Any) -> None:
        if trainer.validated_at != trainer.step or self.judged_at == trainer.step:
            return
        self.judged_at = trainer.step
        metrics, key = trainer.last_val, trainer.best_key
        score = metrics.get(key)
        if score is not None and (not trainer.best or score < trainer.best.get(key, math.inf)):
            trainer.best = {**metrics, "step": trainer.step}
            trainer._save("best.pt", metrics)


class PeriodicCheckpoint(HookBase):
    """Writes ``last.pt`` (everything exact resume needs) every ``ckpt_every`` steps (0:
    never in between) and at the end of the run."""

    def __init__(self, ckpt_every: int) -> None:
        self.ckpt_every = ckpt_every

    def after_step(self, trainer: Any, terms: dict[str, float]) -> None:
        if self.ckpt_every and trainer.step % self.ckpt_every == 0:
            trainer._save("last.pt")

    def after_train(self, trainer: Any) -> None:
        trainer._save("last.pt")


class RunSummary(HookBase):
    """Writes ``summary.json`` at the end: steps, this session's steps, seconds and
    samples/s, the training seconds of every invocation (``seconds_total``), the best validation metrics with their units, the configuration."""

    def after_train(self, trainer: Any) -> None:
        cfg, best = trainer.cfg, trainer.best
        seconds, trained = trainer.seconds, trainer.step - trainer.start_step
        metric_depth = dataset_class(cfg.dataset).has_metric_depth
        summary = {
            "model": trainer.model_name,
            "steps": trainer.step,
            "steps_this_run": trained,
            "seconds_this_run": round(seconds, 3),
            "seconds_total": round(trainer.train_seconds(), 3),
            "samples_per_second": round(trained * cfg.batch_size * trainer.dist.world / max(seconds, 1e-9), 3),
            "best": best,
            "units": {
                "best": {k: metric_unit(k, metric_depth=metric_depth) or "ratio" for k in best if k in METRIC_UNITS},
                "loss": "terms: l1 in m, l2 in m^2, edge in m/pixel, laplace_nll in log m; ssim, rank, ssi, fg_* dimensionless",
                "samples_per_second": "samples/s",
            },
            "config": jsonable(cfg.to_dict()),
        }
        atomic_write_bytes(trainer.out / "summary.json", json.dumps(summary, indent=2).encode())


def _order_event_files(tb: Path) -> None:
    """Make the earlier sessions' TensorBoard event files sort before the one a resumed run
    opens now.

    Readers (TensorBoard, ``EventAccumulator``) take a run's event files in name order,
    and the name starts with the whole second the file was opened, then host, pid and a
    counter. A run resumed within the second of the last session's start would sort by
    those (``...123.10`` before ``...123.9``), and its events, and the purge of the
    stale ones, would be read first. Files whose second is not before now are renamed to
    strictly earlier seconds, keeping their order.
    """
    files = sorted(tb.glob("events.out.tfevents.*"))
    limit = int(time.time())  # the new file's second is at least this
    for f in reversed(files):
        parts = f.name.split(".")
        if len(parts) < 5 or not parts[3].isdigit():
            continue
        stamp = int(parts[3])
        if stamp >= limit:
            stamp = limit - 1
            with contextlib.suppress(OSError):
                f.rename(f.with_name(".".join(parts[:3] + [f"{stamp:010d}"] + parts[4:])))
        limit = stamp

"""The training loop: one ``train_step`` wrapped by hooks (logging, validation, checkpoints).

A :class:`Trainer` owns model, loss, optimiser, scheduler and the position in the data;
:func:`depthsense.engine.run.train` builds it from a :class:`TrainConfig`. ``fit`` only
loops: the progress bar, TensorBoard, validation and checkpoints are hooks
(:mod:`depthsense.engine.hooks`) called before the first step, after every step and at
the end; :meth:`Trainer.validate` returns metrics and writes nothing. Design points:

* Exact resume. Data order is a permutation drawn from ``seed + epoch`` (never from the
  global RNG, :class:`depthsense.engine.sampler.EpochSampler`), augmentation is seeded
  per (seed, index, epoch) by the data sets, and the global torch RNG is re-seeded from
  (seed, step) before every step. ``last.pt`` holds step, epoch and position in the epoch
  plus optimiser / scheduler / scaler state, so a run killed at any moment and resumed
  with ``--resume`` replays exactly the same steps and ends with the same weights as an
  uninterrupted run (CPU, same thread count). When the data set size, batch size or
  process count differ from the checkpoint, the position in the epoch is recomputed
  (same permutation: skip the samples already seen; otherwise start the next epoch),
  never left past the epoch's end. TensorBoard events of a killed run beyond the
  checkpoint are purged (``purge_step``), so no step is logged twice or out of order.
* Honest timing: data wait, forward, backward and optimiser step are timed separately
  with CUDA synchronised around each block, logged to TensorBoard as seconds.
* Nothing lost on failure: checkpoints are written atomically; a non-finite loss stops
  training *before* the optimiser step, names the step and the batch files, and
  leaves the last good checkpoint untouched.
* Errors of a bad data file raised in a DataLoader worker reach the user as the same
  one-line error as with ``--workers 0`` (:func:`depthsense.data.loader.worker_safe_loader`);
  a write error (full disk) is one line too and leaves the last checkpoint intact.
* Under ``torchrun`` the model is wrapped in DistributedDataParallel
  (:mod:`depthsense.engine.distributed`); only rank 0 logs, writes and prints.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from depthsense import checkpoint as ckpt_io
from depthsense.config import COMPLETION_DATASETS, TrainConfig, UsageError, jsonable
from depthsense.data.loader import worker_safe_loader
from depthsense.engine.distributed import DistInfo
from depthsense.engine.hooks import HookBase, default_hooks
from depthsense.engine.sampler import EpochSampler
from depthsense.errors import CheckpointError, DepthFileError, DepthSenseError
from depthsense.evaluation.evaluators import DepthEvaluator, FirstImage, HeadsEvaluator
from depthsense.evaluation.heads_metrics import HeadsAccumulator
from depthsense.evaluation.loop import ModelRun, inference_on_dataset
from depthsense.metrics import DEFAULT_METRICS, RELATIVE_METRICS, MetricAccumulator
from depthsense.models import forward_outputs

__all__ = ["Trainer", "TrainResult", "NonFiniteLossError", "TrainingInterrupted"]


class NonFiniteLossError(DepthSenseError, RuntimeError):
    """The loss became NaN/Inf; training stopped before the weights were touched."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :meth:`Trainer.fit`; the message says the step reached, the step
    ``last.pt`` holds and the command that continues the run."""


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        steps: optimiser steps of the run so far (all invocations).
        start_step: the step this invocation started from (0, or the resumed checkpoint's).
        seconds, samples_per_second: of this invocation.
        best: best validation metrics (``METRIC_UNITS``: MAE/RMSE in mm, ...) and their ``step``.
        last_checkpoint, best_checkpoint: paths (best None if never validated).
        complete: True when a resumed run had already reached its last step (nothing trained).
        main: True in the process that reports (rank 0 under torchrun).
        notes: what the run adjusted (overridden settings, a recomputed epoch position).
        config: the resolved configuration the run used (after ``--resume`` restored it).
    """

    steps: int
    seconds: float
    samples_per_second: float
    best: dict
    last_checkpoint: str
    best_checkpoint: str | None
    complete: bool = False
    main: bool = True
    notes: list = field(default_factory=list)
    config: TrainConfig | None = None
    start_step: int = 0


class Trainer:
    """Owns the loop; hooks (progress, TensorBoard, validation, checkpoints) run around ``train_step``.

    Args:
        cfg: a resolved :class:`TrainConfig`.
        model, loss_fn: built from the config; ``loss_fn(pred, gt, mask=None, rgb=None)``
            returns ``(total, terms)``.
        train_set, val_set: data sets yielding the standard batch dict.
        device: torch device.
        dist_info: the process's place under ``torchrun`` (default: a single process).
        hooks: what runs around the steps, in order (:mod:`depthsense.engine.hooks`). None:
            :func:`depthsense.engine.hooks.default_hooks` of ``cfg`` (none on ranks > 0).
            A list replaces them and runs on every rank; to add to them pass
            ``[*default_hooks(cfg, dist_info.main), mine]``. Kept as ``self.hooks``.
    """

    def __init__(self, cfg: TrainConfig, model: nn.Module, loss_fn: nn.Module, train_set: Dataset,
                 val_set: Dataset | None, device: torch.device, dist_info: DistInfo | None = None,
                 hooks: Sequence[HookBase] | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.dist = dist_info or DistInfo()
        self.out = Path(cfg.out)
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.model_name = cfg.model
        self.raw_model = model.to(device)
        self.model = model
        if self.dist.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.raw_model, device_ids=ids)
        self.loss_fn = loss_fn.to(device)
        self.train_set, self.val_set = train_set, val_set
        self.sampler = EpochSampler(len(train_set), cfg.batch_size, cfg.seed, self.dist.rank, self.dist.world)
        self.steps_per_epoch = self.sampler.batches_per_epoch()
        if self.steps_per_epoch == 0:
            raise UsageError(
                f"the training split has {len(train_set)} samples, fewer than one batch of "
                f"{cfg.batch_size} x {self.dist.world} process(es); lower --batch-size or add data"
            )
        self.total_steps = cfg.steps or max(1, cfg.epochs) * self.steps_per_epoch
        self.optimizer = torch.optim.AdamW(self.raw_model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        warmup = max(1, min(100, self.total_steps // 20))
        total = self.total_steps

        def schedule(step: int) -> float:  # linear warm-up, cosine decay to 5%
            if step < warmup:
                return (step + 1) / warmup
            t = (step - warmup) / max(1, total - warmup)
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.amp = cfg.amp
        self.amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
        self.step = self.epoch = self.step_in_epoch = 0
        self.best: dict = {}
        self.completion = cfg.dataset in COMPLETION_DATASETS
        self.best_key = "rmse" if self.completion else "whdr"
        self.hooks: list[HookBase] = list(hooks) if hooks is not None else default_hooks(cfg, self.dist.main)
        self.writer = None
        """The TensorBoard ``SummaryWriter`` while a :class:`TensorBoardWriter` hook has it open."""
        self.last_val: dict[str, float] = {}
        """The metrics of the run's last validation (stored in checkpoints as ``metrics``)."""
        self.validated_at: int | None = None
        """The step of the run's last validation (None: not validated by this trainer yet)."""
        self.val_panel: tuple[dict, torch.Tensor] | None = None
        """The first image's batch and predicted depth (B,1,H,W) of the last :meth:`validate`."""
        self.seconds_before = 0.0
        """Seconds the run trained in earlier invocations (restored by :meth:`resume`)."""
        self.start_step = 0
        self.start_time = self.seconds = 0.0
        """This ``fit``'s first step, its ``time.perf_counter()`` start and (once the loop
        ended) its seconds; the progress bar and the summary report them."""
        self.timings = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
        self.samples_seen = 0
        self.notes: list[str] = []
        self.continue_command: str | None = None
        """What continues the run after Ctrl-C (default: ``depthsense-train --out ... --resume``);
        a caller that drives the trainer itself (``python -m depthsense.pretrain``) sets its own."""
        self._saved_step: int | None = None

    # ------------------------------------------------------------------ one step

    def train_step(self, batch: dict) -> dict[str, float]:
        """Forward, loss, backward, optimiser and scheduler step on one batch.

        Returns:
            dict of python floats: ``loss`` and each loss term.
        Raises:
            NonFiniteLossError: NaN/Inf loss (weights not updated).
        """
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.step)  # exact resume of any loss sampling
        self.model.train()
        sparse, mask, rgb = (batch[k].to(self.device, non_blocking=True) for k in ("sparse", "mask", "rgb"))
        gt = batch["gt"].to(self.device, non_blocking=True)
        t0 = self._now()
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp else nullcontext()
        with autocast:
            out = forward_outputs(self.model, sparse, mask, rgb)
        pred, extras = out["depth"], {k: v.float() for k, v in out.items() if k != "depth"}
        if extras:  # the heads' outputs and their targets go to the loss terms that train them
            if "fg" in batch:
                extras["fg_gt"] = batch["fg"].to(self.device, non_blocking=True)
                if "fg_valid" in batch:  # a batch mixing data sets with and without masks
                    extras["fg_valid"] = batch["fg_valid"].to(self.device, non_blocking=True)
            total, terms = self.loss_fn(pred.float(), gt, rgb=rgb, extras=extras)
        else:
            total, terms = self.loss_fn(pred.float(), gt, rgb=rgb)
        t1 = self._now()
        # One host sync per step for the loss and all its terms (logging and the NaN check).
        names = list(terms)
        values = torch.stack([total.detach().float(), *(terms[k].detach().float().reshape(()) for k in names)]).tolist()
        loss_value = values[0]
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(self._non_finite_message(loss_value, terms, batch))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        t2 = self._now()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        t3 = self._now()
        self.timings["forward"] += t1 - t0
        self.timings["backward"] += t2 - t1
        self.timings["optimizer"] += t3 - t2
        return {"loss": loss_value, **dict(zip(names, values[1:]))}

    # ------------------------------------------------------------------ loop

    def fit(self) -> TrainResult:
        """Train to ``total_steps`` (continuing from ``self.step`` after :meth:`resume`).

        Raises:
            NonFiniteLossError: the loss diverged (weights and checkpoints untouched).
            DepthFileError: a file of the run (checkpoint, summary, TensorBoard log) could
                not be written, e.g. on a full disk; ``last.pt`` keeps its previous content.
            DepthSenseError: a bad data file, also when read in a DataLoader worker.
        """
        with _quiet_writer_thread():
            try:
                return self._fit()
            except KeyboardInterrupt:
                raise TrainingInterrupted(self._interrupted_message()) from None
            except OSError as exc:  # TensorBoard's writer raises plain OSErrors
                reason = exc.strerror or str(exc) or type(exc).__name__
                raise DepthFileError(
                    f"{self.out}: cannot write the run's files ({reason}); free disk space or choose another "
                    f"--out. The last checkpoint ({self.out / 'last.pt'}) was not touched by the failed write."
                ) from None

    def _fit(self) -> TrainResult:
        cfg = self.cfg
        self.start_step = self.step
        failed = True
        try:
            for hook in self.hooks:
                hook.before_train(self)
            self.start_time = time.perf_counter()
            while self.step < self.total_steps:
                if self.step_in_epoch >= self.steps_per_epoch:  # never start an epoch past its end
                    self.epoch, self.step_in_epoch = self.epoch + 1, 0
                self.sampler.set_position(self.epoch, self.step_in_epoch)
                if hasattr(self.train_set, "set_epoch"):
                    self.train_set.set_epoch(self.epoch)
                loader = worker_safe_loader(
                    self.train_set, batch_size=cfg.batch_size, sampler=self.sampler, num_workers=cfg.workers,
                    drop_last=True, pin_memory=self.device.type == "cuda",
                    generator=torch.Generator().manual_seed(cfg.seed + self.epoch),
                )
                t_wait = time.perf_counter()
                step_before = self.step
                for batch in loader:
                    self.timings["data"] += time.perf_counter() - t_wait
                    terms = self.train_step(batch)
                    self.step += 1
                    self.step_in_epoch += 1
                    self.samples_seen += cfg.batch_size * self.dist.world
                    if self.step_in_epoch >= self.steps_per_epoch:
                        self.epoch, self.step_in_epoch = self.epoch + 1, 0
                    for hook in self.hooks:
                        hook.after_step(self, terms)
                    if self.step >= self.total_steps:
                        break
                    t_wait = time.perf_counter()
                if self.step == step_before:  # a bug: an epoch without a batch would loop forever
                    raise RuntimeError(f"epoch {self.epoch} yielded no batch at position {self.step_in_epoch} "
                                       f"of {self.steps_per_epoch}")
            self.seconds = time.perf_counter() - self.start_time
            for hook in self.hooks:
                hook.after_train(self)
            failed = False
        finally:
            for hook in self.hooks:
                hook.close(self, failed)
        trained = self.step - self.start_step
        return TrainResult(
            steps=self.step,
            seconds=self.seconds,
            samples_per_second=trained * cfg.batch_size * self.dist.world / max(self.seconds, 1e-9),
            best=dict(self.best),
            last_checkpoint=str(self.out / "last.pt"),
            best_checkpoint=str(self.out / "best.pt") if (self.out / "best.pt").exists() else None,
            main=self.dist.main,
            notes=list(self.notes),
            config=cfg,
            start_step=self.start_step,
        )

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> dict:
        """Metrics on the first ``val_samples`` validation images (batch 1, any size).

        The images go through the evaluation loop of ``depthsense-evaluate``
        (:func:`depthsense.evaluation.loop.inference_on_dataset`) with its depth and
        extra-head evaluators, so the numbers are the report's on the same images.

        Writes nothing (no TensorBoard, no checkpoint) and leaves ``best`` and ``last_val``
        alone: the :class:`depthsense.engine.hooks.PeriodicValidation` and
        :class:`depthsense.engine.hooks.BestCheckpoint` hooks log and keep the result.

        Returns:
            metric name -> value (``METRIC_UNITS``: MAE/RMSE in mm, ...; the extra heads'
            scalars too); empty without validation images. ``self.val_panel`` is set to
            the first image's ``(batch, pred)`` (None without images).
        """
        self.val_panel = None
        if self.val_set is None or len(self.val_set) == 0:
            return {}
        n = len(self.val_set) if not self.cfg.val_samples else min(self.cfg.val_samples, len(self.val_set))
        acc = MetricAccumulator(DEFAULT_METRICS if self.completion else RELATIVE_METRICS)
        head_acc = HeadsAccumulator() if getattr(self.raw_model, "heads", ()) else None
        capture = FirstImage()
        evaluators = [DepthEvaluator(acc), capture]
        if head_acc is not None:
            evaluators.append(HeadsEvaluator(head_acc))
        self.raw_model.eval()
        inference_on_dataset([ModelRun(self.raw_model, evaluators)], self.val_set, range(n), self.device)
        first = capture.first
        metrics = {k: v for k, v in acc.compute().items() if v is not None}
        if head_acc is not None:
            metrics.update(_head_val_metrics(head_acc.compute()))
        self.val_panel = first
        return metrics

    # ------------------------------------------------------------------ checkpoints

    def train_seconds(self) -> float:
        """Seconds of training over every invocation of the run up to now: the earlier ones
        (from the resumed checkpoint) plus this ``fit`` so far. Stored in checkpoints, so a
        run interrupted and resumed reports its whole training time."""
        if not self.start_time:
            return self.seconds_before
        return self.seconds_before + (self.seconds or time.perf_counter() - self.start_time)

    def state(self, metrics: dict | None = None) -> dict[str, Any]:
        return {
            "format": ckpt_io.FORMAT,
            "model": self.model_name,
            "model_cfg": dict(getattr(self.raw_model, "config", {})),
            "state_dict": self.raw_model.state_dict(),
            "train_cfg": jsonable(self.cfg.to_dict()),
            "step": self.step,
            "metrics": dict(metrics or self.last_val),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
            "progress": {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "best": dict(self.best),
                         "train_samples": len(self.train_set), "batch_size": self.cfg.batch_size,
                         "world": self.dist.world, "train_seconds": round(self.train_seconds(), 3)},
        }

    def _save(self, name: str, metrics: dict | None = None) -> None:
        if self.dist.main:
            ckpt_io.save_checkpoint(self.out / name, self.state(metrics))
            if name == "last.pt":
                self._saved_step = self.step

    def resume(self, path: str | os.PathLike, checkpoint: dict | None = None) -> None:
        """Restore weights, optimiser, scheduler, scaler, position and RNG from ``path``.

        Args:
            checkpoint: the already loaded content of ``path`` (saves a second read).
        Raises:
            CheckpointError: not a training checkpoint, or one of another model/config.
        """
        c = checkpoint if checkpoint is not None else ckpt_io.load_checkpoint(path, map_location="cpu")
        if c["model"] != self.model_name:
            raise CheckpointError(
                f"{path}: checkpoint is of model {c['model']!r} but this run trains {self.model_name!r}; "
                "use another --out or the same --model"
            )
        if "optimizer" not in c or "progress" not in c:
            raise CheckpointError(f"{path}: holds weights only (no optimiser state); it cannot be resumed")
        ckpt_io.load_state_dict_strict(self.raw_model, c["state_dict"], source=str(path))
        self.optimizer.load_state_dict(c["optimizer"])
        self.scheduler.load_state_dict(c["scheduler"])
        self.scaler.load_state_dict(c["scaler"])
        torch.set_rng_state(c["rng"]["torch"])
        self.step = int(c["step"])
        progress = c["progress"]
        self.epoch = int(progress["epoch"])
        self.step_in_epoch = int(progress["step_in_epoch"])
        self.best = dict(progress.get("best", {}))
        self.seconds_before = float(progress.get("train_seconds", 0.0))
        self._reposition(progress)

    def _reposition(self, progress: dict) -> None:
        """Keep the position in the epoch valid when data, batch or process count changed."""
        n_then = int(progress.get("train_samples", len(self.train_set)))
        per_step_then = int(progress.get("batch_size", self.cfg.batch_size)) * int(progress.get("world", self.dist.world))
        per_step_now = self.cfg.batch_size * self.dist.world
        if n_then != len(self.train_set):
            if self.step_in_epoch:
                self.notes.append(
                    f"the training split has {len(self.train_set)} samples, the checkpoint's run had {n_then}: "
                    f"epoch {self.epoch} cannot be continued, training goes on from the start of epoch {self.epoch + 1}"
                )
                self.epoch, self.step_in_epoch = self.epoch + 1, 0
            return
        if per_step_then != per_step_now and self.step_in_epoch:
            seen = self.step_in_epoch * per_step_then  # same permutation: skip what was seen
            self.step_in_epoch = seen // per_step_now
            self.notes.append(
                f"{per_step_now} samples per step instead of {per_step_then}: epoch {self.epoch} continues "
                f"after the {seen} samples already seen (position {self.step_in_epoch} of {self.steps_per_epoch})"
            )
        if self.step_in_epoch >= self.steps_per_epoch:
            self.epoch, self.step_in_epoch = self.epoch + 1, 0

    # ------------------------------------------------------------------ helpers

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _interrupted_message(self) -> str:
        from depthsense.config import resume_command

        saved = self._saved_step
        last = self.out / "last.pt"
        if saved is None and last.exists():
            with contextlib.suppress(Exception):
                saved = int(ckpt_io.load_checkpoint(last)["step"])
        where = f"at step {self.step} of {self.total_steps}"
        if saved is None:
            return (f"{where}; no checkpoint was written yet (last.pt comes every --ckpt-every "
                    f"{self.cfg.ckpt_every} steps): run the same command again to start over")
        lost = ("" if self.step <= saved else f", step {self.step} will run again" if self.step == saved + 1
                else f", steps {saved + 1}-{self.step} will run again")
        command = self.continue_command or resume_command(self.cfg)
        return f"{where}; {last} holds step {saved}{lost}. Continue with: {command}"

    def _non_finite_message(self, value: float, terms: dict, batch: dict) -> str:
        files = batch.get("meta", {}).get("rgb_path", [])
        files = [str(f) for f in (files if isinstance(files, (list, tuple)) else [files])][:4]
        term_text = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
        last = self.out / "last.pt"
        kept = f"the last good checkpoint {last} was left untouched" if last.exists() else "no checkpoint was written yet"
        return (
            f"loss is {value} at step {self.step + 1} (terms: {term_text}); batch files: {files}; "
            f"training stopped before updating the weights and {kept}. Lower --lr or check these inputs."
        )


def _head_val_metrics(summary: dict) -> dict[str, float]:
    """Validation scalars of the extra heads: AUSE (mm) and the RMSE cut at 20 % removed
    for the confidence, IoU for the foreground mask."""
    out: dict[str, float] = {}
    conf = summary["confidence"].get("conf")
    if conf is not None:
        out["conf_ause"] = conf["ause"]
        if conf["rmse_cut_20"] is not None:
            out["conf_rmse_cut_20"] = conf["rmse_cut_20"]
    if summary["fg"] is not None:
        out["fg_iou"] = summary["fg"]["iou"]
    return out


@contextlib.contextmanager
def _quiet_writer_thread() -> Iterator[None]:
    # TensorBoard writes from a background thread; an OSError there (full disk) would
    # print a thread traceback and is raised again in the main thread on the next
    # write, where fit() turns it into one line.
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if isinstance(args.exc_value, OSError):
            return
        previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous



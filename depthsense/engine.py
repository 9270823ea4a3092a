"""Training engine: one ``train_step`` wrapped by logging, validation and checkpoints.

``train(cfg)`` builds the data, model, loss and optimiser from a :class:`TrainConfig`
and runs a :class:`Trainer`. Design points:

* Exact resume. Data order is a permutation drawn from ``seed + epoch`` (never from the
  global RNG), augmentation is seeded per (seed, index, epoch) by the data sets, and the
  global torch RNG is re-seeded from (seed, step) before every step. ``last.pt`` holds
  step, epoch and position in the epoch plus optimiser / scheduler / scaler state, so a
  run killed at any moment and resumed with ``--resume`` replays exactly the same steps
  and ends with the same weights as an uninterrupted run (CPU, same thread count).
* Honest timing: data wait, forward, backward and optimiser step are timed separately
  with CUDA synchronised around each block, logged to TensorBoard as seconds.
* Nothing lost on failure: checkpoints are written atomically; a non-finite loss stops
  training *before* the optimiser step, names the step and the batch files, and
  leaves the last good checkpoint untouched.
* Scale-out: under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
  DistributedDataParallel (NCCL on GPUs, gloo on CPUs); each rank reads a disjoint
  slice of the epoch's permutation; only rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from depthsense import checkpoint as ckpt_io
from depthsense.config import COMPLETION_DATASETS, TrainConfig, UsageError, cache_dir, jsonable, make_output_dir, resolve_device
from depthsense.errors import CheckpointError, DepthSenseError
from depthsense.io import atomic_write_bytes
from depthsense.metrics import DEFAULT_METRICS, RELATIVE_METRICS, MetricAccumulator

__all__ = ["Trainer", "TrainResult", "NonFiniteLossError", "EpochSampler", "train", "prepare_data_root", "build_datasets"]


class NonFiniteLossError(DepthSenseError, RuntimeError):
    """The loss became NaN/Inf; training stopped before the weights were touched."""


@dataclass
class TrainResult:
    steps: int
    seconds: float
    samples_per_second: float
    best: dict
    last_checkpoint: str
    best_checkpoint: str | None


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


class EpochSampler(Sampler[int]):
    """Deterministic per-epoch permutation, split across ranks, resumable mid-epoch.

    Rank ``r`` of ``W`` takes ``perm[r::W]`` (the permutation is truncated to a multiple
    of ``W * batch_size`` so every rank runs the same number of full batches), then
    skips its first ``skip_batches * batch_size`` indices. With one rank and batch
    ``W*B`` the batches are the unions of the W-rank batches of size B, so a DDP run
    sees the same samples per step as a single process with the larger batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.skip_batches = 0, 0

    def batches_per_epoch(self) -> int:
        return self.n // (self.batch_size * self.world)

    def set_position(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip_batches = epoch, skip_batches

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        usable = self.batches_per_epoch() * self.batch_size * self.world
        mine = perm[:usable][self.rank :: self.world]
        return iter(mine[self.skip_batches * self.batch_size :].tolist())

    def __len__(self) -> int:
        return max(0, (self.batches_per_epoch() - self.skip_batches) * self.batch_size)


class Trainer:
    """Owns the loop; callbacks (log, validate, checkpoint) run around ``train_step``.

    Args:
        cfg: a resolved :class:`TrainConfig`.
        model, loss_fn: built from the config; ``loss_fn(pred, gt, mask=None, rgb=None)``
            returns ``(total, terms)``.
        train_set, val_set: data sets yielding the standard batch dict.
        device: torch device.
    """

    def __init__(self, cfg: TrainConfig, model: nn.Module, loss_fn: nn.Module, train_set: Dataset,
                 val_set: Dataset | None, device: torch.device, dist_info: _Dist | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.dist = dist_info or _Dist()
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
        self.writer = None
        self.timings = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
        self.samples_seen = 0

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
            pred = self.model(sparse, mask, rgb)
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
        """Train to ``total_steps`` (continuing from ``self.step`` after :meth:`resume`)."""
        cfg = self.cfg
        if self.dist.main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tb"), purge_step=self.step or None)
        bar = None
        if self.dist.main and cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc=f"train {self.model_name}", unit="step", dynamic_ncols=True)
        start, start_step = time.perf_counter(), self.step
        try:
            while self.step < self.total_steps:
                self.sampler.set_position(self.epoch, self.step_in_epoch)
                if hasattr(self.train_set, "set_epoch"):
                    self.train_set.set_epoch(self.epoch)
                loader = DataLoader(
                    self.train_set, batch_size=cfg.batch_size, sampler=self.sampler, num_workers=cfg.workers,
                    drop_last=True, pin_memory=self.device.type == "cuda",
                    generator=torch.Generator().manual_seed(cfg.seed + self.epoch),
                )
                t_wait = time.perf_counter()
                for batch in loader:
                    self.timings["data"] += time.perf_counter() - t_wait
                    terms = self.train_step(batch)
                    self.step += 1
                    self.step_in_epoch += 1
                    self.samples_seen += cfg.batch_size * self.dist.world
                    if self.step_in_epoch >= self.steps_per_epoch:
                        self.epoch, self.step_in_epoch = self.epoch + 1, 0
                    self._after_step(terms, bar, start, start_step)
                    if self.step >= self.total_steps:
                        break
                    t_wait = time.perf_counter()
            seconds = time.perf_counter() - start
            if self.dist.main:
                if getattr(self, "_validated_at", None) != self.step:
                    self.validate()
                self._save("last.pt")
                self._write_summary(seconds, start_step)
        finally:
            if bar is not None:
                bar.close()
            if self.writer is not None:
                self.writer.close()
        trained = self.step - start_step
        return TrainResult(
            steps=self.step,
            seconds=seconds,
            samples_per_second=trained * cfg.batch_size * self.dist.world / max(seconds, 1e-9),
            best=dict(self.best),
            last_checkpoint=str(self.out / "last.pt"),
            best_checkpoint=str(self.out / "best.pt") if (self.out / "best.pt").exists() else None,
        )

    def _after_step(self, terms: dict, bar, start: float, start_step: int) -> None:
        cfg = self.cfg
        if not self.dist.main:
            return
        if bar is not None:
            rate = (self.step - start_step) * cfg.batch_size * self.dist.world / max(time.perf_counter() - start, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{terms['loss']:.4f}", samples_s=f"{rate:.1f}")
        if self.writer is not None and (self.step % max(1, cfg.log_every) == 0 or self.step == 1):
            for k, v in terms.items():
                self.writer.add_scalar(f"train/{k}", v, self.step)
            self.writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
            for k, v in self.timings.items():
                self.writer.add_scalar(f"time/{k}_s_per_step", v / self.step_count_since_log(), self.step)
            self.timings = dict.fromkeys(self.timings, 0.0)
            self._logged_at = self.step
        end_of_epoch = self.step_in_epoch == 0
        if (cfg.val_every and self.step % cfg.val_every == 0) or (not cfg.val_every and end_of_epoch):
            self.validate()
        if cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
            self._save("last.pt")

    def step_count_since_log(self) -> int:
        return max(1, self.step - getattr(self, "_logged_at", 0))

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> dict:
        """Metrics on the first ``val_samples`` validation images (batch 1, any size)."""
        if self.val_set is None or len(self.val_set) == 0:
            return {}
        n = len(self.val_set) if not self.cfg.val_samples else min(self.cfg.val_samples, len(self.val_set))
        loader = DataLoader(Subset(self.val_set, range(n)), batch_size=1, shuffle=False, num_workers=0)
        acc = MetricAccumulator(DEFAULT_METRICS if self.completion else RELATIVE_METRICS)
        self.raw_model.eval()
        first = None
        for batch in loader:
            sparse, mask, rgb = (batch[k].to(self.device) for k in ("sparse", "mask", "rgb"))
            pred = self.raw_model(sparse, mask, rgb).float()
            acc.update(pred, batch["gt"].to(self.device))
            if first is None:
                first = (batch, pred)
        metrics = {k: v for k, v in acc.compute().items() if v is not None}
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"val/{k}", v, self.step)
            if first is not None:
                from depthsense.viz import tensorboard_grid

                self.writer.add_image("val/panel", tensorboard_grid(first[0], first[1].cpu(), max_images=1), self.step)
        score = metrics.get(self.best_key)
        if score is not None and (not self.best or score < self.best.get(self.best_key, math.inf)):
            self.best = {**metrics, "step": self.step}
            self._save("best.pt", metrics)
        self.last_val = metrics
        self._validated_at = self.step
        return metrics

    # ------------------------------------------------------------------ checkpoints

    def state(self, metrics: dict | None = None) -> dict[str, Any]:
        return {
            "format": ckpt_io.FORMAT,
            "model": self.model_name,
            "model_cfg": dict(getattr(self.raw_model, "config", {})),
            "state_dict": self.raw_model.state_dict(),
            "train_cfg": jsonable(self.cfg.to_dict()),
            "step": self.step,
            "metrics": dict(metrics or getattr(self, "last_val", {}) or {}),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
            "progress": {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "best": dict(self.best)},
        }

    def _save(self, name: str, metrics: dict | None = None) -> None:
        if self.dist.main:
            ckpt_io.save_checkpoint(self.out / name, self.state(metrics))

    def resume(self, path: str | os.PathLike) -> None:
        """Restore weights, optimiser, scheduler, scaler, position and RNG from ``path``.

        Raises:
            CheckpointError: not a training checkpoint, or one of another model/config.
        """
        c = ckpt_io.load_checkpoint(path, map_location="cpu")
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
        self.epoch = int(c["progress"]["epoch"])
        self.step_in_epoch = int(c["progress"]["step_in_epoch"])
        self.best = dict(c["progress"].get("best", {}))

    # ------------------------------------------------------------------ helpers

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

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

    def _write_summary(self, seconds: float, start_step: int) -> None:
        trained = self.step - start_step
        summary = {
            "model": self.model_name,
            "steps": self.step,
            "steps_this_run": trained,
            "seconds_this_run": round(seconds, 3),
            "samples_per_second": round(trained * self.cfg.batch_size * self.dist.world / max(seconds, 1e-9), 3),
            "best": self.best,
            "config": jsonable(self.cfg.to_dict()),
        }
        atomic_write_bytes(self.out / "summary.json", json.dumps(summary, indent=2).encode())


# ---------------------------------------------------------------------- building a run


def prepare_data_root(cfg: TrainConfig) -> str:
    """The data root to read: ``cfg.data_root``, or for ``synthetic`` without one a
    generated set in the cache (generated once; reused when complete).

    Raises:
        UsageError: a data set other than synthetic without ``--data-root``.
    """
    if cfg.data_root:
        return cfg.data_root
    if cfg.dataset != "synthetic":
        raise UsageError(f"--dataset {cfg.dataset} needs --data-root DIR (only synthetic can be generated)")
    from depthsense.data import synthetic

    h, w = cfg.synthetic_size
    root = cache_dir() / f"synthetic-kitti-{h}x{w}-n{cfg.synthetic_frames}-s{cfg.seed}"
    done = root / ".complete"
    if not done.exists():
        synthetic.generate(root, layout="kitti", frames=cfg.synthetic_frames, seed=cfg.seed, height=h, width=w,
                           progress=cfg.progress)
        done.write_text("ok\n")
    return str(root)


def build_datasets(cfg: TrainConfig, root: str) -> tuple[Dataset, Dataset | None]:
    """Train and validation sets for a resolved config (augmented / deterministic)."""
    from depthsense import data
    from depthsense.data.transforms import eval_transform, train_transform

    name = "synthetic" if cfg.dataset == "synthetic" else cfg.dataset
    bottom = cfg.dataset in ("kitti", "synthetic", "kitti_object")
    train_tf = train_transform(crop=tuple(cfg.crop) if cfg.crop else None, hflip=0.5, colour_jitter=True, bottom=bottom)
    common = dict(density=cfg.density, beams=cfg.beams, seed=cfg.seed)
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


def train(cfg: TrainConfig) -> TrainResult:
    """Build everything from ``cfg`` and train; returns the result summary.

    Raises:
        UsageError, DatasetError, CheckpointError: user-facing problems (one line each).
        NonFiniteLossError: the loss diverged.
    """
    from depthsense import losses
    from depthsense import models

    cfg = cfg.resolved()
    dist_info = _init_distributed(cfg)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and dist_info.world > 1:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    out = Path(cfg.out)
    last = out / "last.pt"
    if dist_info.main:
        _check_out_dir(out, cfg.resume)
    if cfg.resume and not last.exists():
        raise UsageError(f"--resume: no checkpoint {last}; start without --resume or point --out at the run")
    if cfg.model not in models.available_models():
        raise UsageError(f"--model {cfg.model!r} is unknown; known models: {', '.join(models.available_models())}")
    loss_kw = {"max_depth": cfg.max_depth}
    try:
        loss_fn = losses.build_loss(cfg.loss, **loss_kw)
    except KeyError as exc:
        raise UsageError(f"--loss {cfg.loss!r}: {exc.args[0]}") from None
    except ValueError as exc:
        raise UsageError(f"--loss {cfg.loss!r}: {exc}") from None
    root = prepare_data_root(cfg) if dist_info.main else None
    if dist_info.world > 1:
        holder = [root]
        dist.broadcast_object_list(holder, src=0)
        root = holder[0]
    train_set, val_set = build_datasets(cfg, root)
    torch.manual_seed(cfg.seed)
    try:
        model = models.build_model(cfg.model, **cfg.model_args)
    except TypeError as exc:
        raise UsageError(f"--model-arg: {exc}") from None
    if not getattr(model, "learned", True):
        raise UsageError(f"--model {cfg.model} is classical (no weights), there is nothing to train; "
                         "use it directly with depthsense-infer or depthsense-evaluate --baselines")
    if cfg.dataset == "redweb" and getattr(model, "needs_sparse", False):
        raise UsageError(f"--dataset redweb has no sparse depth; model {cfg.model} needs it. Use --model monocular")
    trainer = Trainer(cfg, model, loss_fn, train_set, val_set, device, dist_info)
    if cfg.resume:
        trainer.resume(last)
    try:
        return trainer.fit()
    finally:
        if dist_info.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _init_distributed(cfg: TrainConfig) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = resolve_device(cfg.device).type == "cuda"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank=rank, world=world, local_rank=local)


def _check_out_dir(out: Path, resume: bool) -> None:
    if not resume and (out / "last.pt").exists():
        raise UsageError(
            f"--out {out}: already holds a run (last.pt); pass --resume to continue it or choose another --out"
        )
    make_output_dir(out, "run directory")
    for stale in out.glob(".*.tmp*"):  # temp files of a write that was killed
        stale.unlink(missing_ok=True)

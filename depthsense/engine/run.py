"""``train(cfg)``: a training run assembled from a :class:`TrainConfig`.

Everything is validated before the run directory is created or anything is written:
data set, model, loss, heads, output folder. Resume continues *the stored run*:
``--resume`` restores the run's settings (:data:`depthsense.config.RUN_SETTINGS`) from
``last.pt``; an explicit option that contradicts them is an error unless ``--override``.
A run that is already complete is reported as such and nothing is written. ``--init``
starts from another checkpoint's weights (``pretrained``: the shipped model).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Callable, Collection

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from depthsense import checkpoint as ckpt_io
from depthsense.config import (
    TrainConfig,
    UsageError,
    build_model_from_options,
    check_output_dir,
    make_output_dir,
    refuse_output_inside,
    resolve_device,
    resume_config,
)
from depthsense.engine.distributed import DistInfo, close_distributed, init_distributed
from depthsense.engine.train_data import build_datasets, check_input_points, prepare_data_root
from depthsense.engine.trainer import Trainer, TrainResult
from depthsense.io import remove_stale_temps
from depthsense.runlock import refuse_if_locked, run_lock

__all__ = ["train"]


def train(cfg: TrainConfig, explicit: Collection[str] | None = None,
          log: Callable[[str], None] | None = print) -> TrainResult:
    """Build everything from ``cfg`` and train; returns the result summary.

    Everything is validated before the run directory is created or anything is written.

    Args:
        cfg: the configuration; with ``resume`` the run's stored settings are restored
            (:func:`depthsense.config.resume_config`).
        explicit: names of the fields the user set (``parse_train_args``); None: every
            field that differs from its default.
        log: where notes go (synthetic data location, recomputed epoch position,
            overridden settings); rank 0 only. None silences them.
    Raises:
        UsageError, DatasetError, CheckpointError, DepthFileError: user-facing problems
            (one line each), also from DataLoader workers.
        NonFiniteLossError: the loss diverged.
    """
    given = cfg
    cfg = cfg.resolved()
    dist_info = init_distributed(cfg)
    held: dict = {}  # the Trainer (and its DDP wrapper), freed before the process group goes
    finished = False
    try:
        result = _train(given, cfg, explicit, log, dist_info, held)
        finished = True
        return result
    finally:
        if dist_info.world > 1 and dist.is_initialized():
            close_distributed(held, wait_for_all=finished)


def _train(given: TrainConfig, cfg: TrainConfig, explicit, log, dist_info: DistInfo, held: dict) -> TrainResult:
    from depthsense import losses

    say = log if (log is not None and dist_info.main) else (lambda _msg: None)
    out = Path(cfg.out)
    last = out / "last.pt"
    check_output_dir(out, "run directory")  # creates nothing: every option is checked first
    if dist_info.main:
        refuse_if_locked(out)  # before the data and model cost anything
    _refuse_existing_run(cfg, out)
    stored = None
    stored_stamp = None
    notes: list[str] = []
    if cfg.resume:
        stored_stamp = _stamp(last)
        stored = ckpt_io.load_checkpoint(last, map_location="cpu")
        cfg, notes = resume_config(given, stored.get("train_cfg") or {"model": stored["model"]}, explicit,
                                   source=str(last))
    device = resolve_device(cfg.device)
    if device.type == "cuda" and dist_info.world > 1:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    from depthsense import models

    if cfg.model not in models.available_models():
        raise UsageError(f"--model {cfg.model!r} is unknown; known models: {', '.join(models.available_models())}")
    try:
        loss_fn = losses.build_loss(cfg.loss, max_depth=cfg.max_depth)
    except KeyError as exc:
        raise UsageError(f"--loss {cfg.loss!r}: {exc.args[0]}") from None
    except ValueError as exc:
        raise UsageError(f"--loss {cfg.loss!r}: {exc}") from None
    root = prepare_data_root(cfg, say) if dist_info.main else None
    if dist_info.world > 1:
        holder = [root]
        dist.broadcast_object_list(holder, src=0)
        root = holder[0]
    refuse_output_inside(out, {"--data-root": root, "--rgb-root": cfg.rgb_root})
    train_set, val_set = build_datasets(cfg, root)
    cfg, model_args, init_state = _init_source(given, cfg, stored)
    torch.manual_seed(cfg.seed)
    model = build_model_from_options(cfg.model, model_args)
    if init_state is not None:
        fresh, dropped = ckpt_io.load_state_dict_strict(model, init_state, source=_init_path(cfg.init),
                                                        optional=getattr(model, "OPTIONAL_MODULES", ()))
        notes.append(f"--init {cfg.init}: {cfg.model} weights loaded"
                     + (f"; new layers start fresh: {', '.join(fresh)}" if fresh else "")
                     + (f"; not used: {', '.join(dropped)}" if dropped else ""))
    if not getattr(model, "learned", True):
        raise UsageError(f"--model {cfg.model} is classical (no weights), there is nothing to train; "
                         "use it directly with depthsense-infer or depthsense-evaluate --baselines")
    if cfg.dataset == "redweb" and getattr(model, "needs_sparse", False):
        raise UsageError(f"--dataset redweb has no sparse depth; model {cfg.model} needs it. Use --model monocular")
    check_input_points(cfg, train_set)
    _check_heads(model, loss_fn, train_set, cfg)
    with contextlib.ExitStack() as stack:
        if dist_info.main:
            make_output_dir(out, "run directory")
            stack.enter_context(run_lock(out, log=say))
            # Checked again under the lock: another run may have written here since the checks above.
            _refuse_existing_run(cfg, out)
            if cfg.resume and _stamp(last) != stored_stamp:
                raise UsageError(f"--resume: {last} was replaced by another run while this one started; run the "
                                 "command again to continue from its new state")
            for stale in remove_stale_temps(out, RUN_FILES, min_age=0.0):  # the run's writes that were killed
                say(f"note: removed {stale.name}, a temporary file of a write that was interrupted")
        trainer = held["trainer"] = Trainer(cfg, model, loss_fn, train_set, val_set, device, dist_info)
        try:
            if stored is not None:
                trainer.resume(last, stored)
            trainer.notes[:0] = notes
            for note in trainer.notes:
                say(f"note: {note}")
            if trainer.step >= trainer.total_steps:
                return TrainResult(
                    steps=trainer.step, seconds=0.0, samples_per_second=0.0, best=dict(trainer.best),
                    last_checkpoint=str(last),
                    best_checkpoint=str(out / "best.pt") if (out / "best.pt").exists() else None,
                    complete=True, main=dist_info.main, notes=list(trainer.notes), config=cfg,
                )
            return trainer.fit()
        finally:
            trainer = None  # an exception's traceback keeps this frame: drop the DDP wrapper from it


RUN_FILES = ("last.pt", "best.pt", "summary.json")
"""The files a run writes atomically into ``--out`` (their stale temporary files are removed)."""


def _refuse_existing_run(cfg: TrainConfig, out: Path) -> None:
    last = out / "last.pt"
    if not cfg.resume and last.exists():
        raise UsageError(
            f"--out {out}: already holds a run (last.pt); pass --resume to continue it or choose another --out"
        )
    if cfg.resume and not last.exists():
        raise UsageError(f"--resume: no checkpoint {last}; start without --resume or point --out at the run")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def _init_path(init: str) -> Path:
    return ckpt_io.PRETRAINED_CHECKPOINT if init == "pretrained" else Path(init)


def _init_source(given: TrainConfig, cfg: TrainConfig, stored: dict | None) -> tuple[TrainConfig, dict, dict | None]:
    """With ``--init``: the model name and options of the run (the init checkpoint's,
    updated by ``--model-arg``) and the weights to start from (None when resuming:
    ``last.pt`` holds them). Without it: ``cfg.model_args`` and None.

    Raises:
        UsageError: a missing init file, or ``--model`` naming another model.
        CheckpointError: a file that is not a usable checkpoint (names it).
    """
    if not cfg.init:
        return cfg, dict(cfg.model_args), None
    if stored is not None:  # resuming: the run's own checkpoint has the full model config
        return cfg, {**dict(stored.get("model_cfg") or {}), **dict(cfg.model_args)}, None
    path = _init_path(cfg.init)
    if not path.is_file():
        fix = "run `make pretrained` or reinstall depthsense" if cfg.init == "pretrained" else "check the path"
        raise UsageError(f"--init {cfg.init}: no checkpoint file {path}; {fix}")
    ckpt = ckpt_io.load_checkpoint(path, map_location="cpu")
    name = ckpt["model"]
    if given.model is not None and given.model != name:
        raise UsageError(f"--init {cfg.init} holds a {name} model but --model is {given.model}; "
                         f"drop --model or pass --model {name}")
    cfg = dataclasses.replace(cfg, model=name)
    return cfg, {**dict(ckpt.get("model_cfg") or {}), **dict(cfg.model_args)}, ckpt["state_dict"]


def _check_heads(model: nn.Module, loss_fn: nn.Module, train_set: Dataset, cfg: TrainConfig) -> None:
    """The model's extra heads, the loss terms that train them and the data's masks agree.

    Raises:
        UsageError: a head without a loss term (it would never learn, and DDP refuses
            unused parameters), a head term without the head, or foreground terms on data
            without foreground masks.
    """
    heads = set(getattr(model, "heads", ()))
    needed = set(getattr(loss_fn, "required_heads", set()))
    problems, add = [], []  # every problem at once: fixing one must not just reveal the next
    for head in sorted(heads - needed):
        term = "laplace_nll" if head == "conf" else "fg_bce, fg_dice and/or fg_edge"
        problems.append(f"the {head} head needs a loss term ({term})")
        add.append(f"{term.split(',')[0]}:0.1")
    for head in sorted(needed - heads):
        problems.append(f"--loss trains a {head} head, but --model {cfg.model} has none (build it with --model-arg "
                        f"heads=depth,{','.join(sorted(needed))}, sparse_unet)")
    if "fg" in heads | needed:
        samples = getattr(train_set, "samples", None)
        if not samples or getattr(samples[0], "fg", None) is None:
            problems.append(f"the foreground head learns from foreground masks, but the {cfg.dataset} training data "
                            "have none (fg/ folders); use --dataset synthetic (depthsense-make-synthetic writes them) "
                            "or drop fg from --model-arg heads")
    if problems:
        fix = f"; e.g. --loss {cfg.loss},{','.join(add)}" if add else ""
        raise UsageError(f"--model-arg heads / --loss {cfg.loss!r}: {len(problems)} problem(s): "
                         + "; ".join(problems) + fix)

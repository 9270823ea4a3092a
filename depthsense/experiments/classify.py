"""Sparse image classification per sparsity: a ConvNet against the same net built from SparseConv2d.

The classification experiment of the public reproductions of Uhrig et al. (3DV 2017),
done so that every number can be trusted and reproduced::

    from depthsense.experiments.classify import ClassifyConfig, run_classification
    report = run_classification(ClassifyConfig(out="reports/classify"))   # writes the report
    print(report.markdown(full=False))

A *sparsity level* is the fraction of pixels dropped (``0.9`` = 90 % missing). Four nets
(:data:`NETS`: ConvNet and SparseConvNet, each with and without BatchNorm; same layers,
same parameter count, :mod:`depthsense.models.classifier`) are trained and tested in two
protocols:

* (a) trained and tested at each level (what the reproductions report);
* (b) trained at one level (``train_level``, default 50 %) and tested at every level:
  the case where sparsity invariance should matter. When ``train_level`` is one of the
  levels and protocol (a) runs too, the nets of (a) at that level are the nets of (b):
  same seed, same data order, same masks, so training them twice would give the same
  weights.

Pairing. Every random choice is keyed, not drawn from a shared stream: the training order
by ``(seed, epoch)``, the dropped pixels of training batch ``b`` by ``(seed, level,
epoch, b)`` and those of the test set by ``(seed, level)``
(:func:`depthsense.data.classification.drop_mask`). So at every level all four nets see
exactly the same pixels, in the same order, and two runs of one config print the same
tables. Each training job runs on one CPU thread (``--jobs`` worker processes run jobs
side by side), which also makes the numbers independent of ``--jobs``.

Training: Adam, one-cycle learning-rate schedule (15 % warm-up), cross-entropy, fresh
dropped-pixel masks every epoch, images scaled to [0,1]; the last incomplete batch of an
epoch is dropped. Accuracy is top-1 over the whole test split.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from depthsense.experiments.classify_config import (  # re-exported: the experiment's public names
    DEFAULT_LEVELS,
    NETS,
    ClassifyConfig,
    classify_config_from_args,
    classify_parser,
    level_name,
)
from depthsense.experiments.classify_report import ClassifyReport
from depthsense.config import make_output_dir
from depthsense.provenance import git_info, versions
from depthsense.data.classification import ImageSet, drop_mask, load_image_set
from depthsense.models.classifier import build_classifier

__all__ = [
    "ClassifyConfig",
    "run_classification",
    "classify_parser",
    "classify_config_from_args",
    "level_name",
    "NETS",
    "DEFAULT_LEVELS",
]

_TEST_BATCH = 500
_PROGRESS_EVERY = 10  # training steps between progress messages from a worker


def run_classification(cfg: ClassifyConfig, *, write: bool = True):
    """Run both protocols for every net; write the report.

    Everything is validated (config, data, output directory) before the first step.

    Args:
        cfg: the experiment (resolved here).
        write: write ``report.md/csv/json`` and ``accuracy_vs_sparsity.png`` into ``cfg.out``.
    Returns:
        The :class:`depthsense.experiments.classify_report.ClassifyReport`.
    Raises:
        UsageError: bad options (see :meth:`ClassifyConfig.resolved`) or output directory.
        DatasetError, DepthFileError: missing or malformed data (one line naming the file).
        RuntimeError: a training loss that is not finite (names the net, level and step).
    """
    start = time.perf_counter()
    load_before = _load_average()
    cfg = cfg.resolved()
    data = load_image_set(cfg.dataset, cfg.data_root, seed=cfg.seed, size=cfg.image_size,
                          train_images=cfg.train_images, test_images=cfg.test_images)
    if write:
        make_output_dir(cfg.out, "report directory")
    jobs = _plan_jobs(cfg)
    runs = _run_jobs(jobs, cfg, data)

    by_key = {(r["net"], r["train_level"]): r for r in runs}
    protocol_a = {n: {level_name(v): by_key[(n, v)]["accuracy"][level_name(v)] for v in cfg.levels}
                  for n in cfg.nets} if "a" in cfg.protocols else {}
    protocol_b = {n: dict(by_key[(n, cfg.train_level)]["accuracy"]) for n in cfg.nets} \
        if "b" in cfg.protocols else {}
    notes = []
    if "a" in cfg.protocols and "b" in cfg.protocols and cfg.train_level in cfg.levels:
        notes.append(f"Protocol (b) uses the nets that protocol (a) trained at {level_name(cfg.train_level)}: "
                     "same seed, data order and masks, so a second training would give the same weights.")
    report = ClassifyReport(
        config=cfg,
        data={"name": data.name, "source": data.source, "classes": data.num_classes,
              "train_images": len(data.train_labels), "test_images": len(data.test_labels),
              "channels": data.channels, "image_size": list(data.image_size)},
        nets=[{"name": n, "kind": NETS[n][0], "batchnorm": NETS[n][1],
               "parameters": next(r["parameters"] for r in runs if r["net"] == n)} for n in cfg.nets],
        protocol_a=protocol_a,
        protocol_b=protocol_b,
        runs=[{k: v for k, v in r.items() if k != "accuracy"} for r in runs],
        notes=notes,
        meta={
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(),
            **git_info(),
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": _load_average(),
            "seconds": time.perf_counter() - start,
        },
    )
    if write:
        report.write(cfg.out)
    return report


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class _Job:
    net: str
    train_level: float
    test_levels: tuple[float, ...]


def _plan_jobs(cfg: ClassifyConfig) -> list[_Job]:
    """One job per (net, training level); the protocol-(b) job also tests at every level."""
    train_levels = list(cfg.levels) if "a" in cfg.protocols else []
    if "b" in cfg.protocols and cfg.train_level not in train_levels:
        train_levels.append(cfg.train_level)
    jobs = []
    for level in train_levels:
        tests = cfg.levels if ("b" in cfg.protocols and level == cfg.train_level) else (level,)
        jobs += [_Job(net, level, tuple(tests)) for net in cfg.nets]
    # Slowest first (sparse + BN, and the job that tests at every level), so two workers finish together.
    cost = {"sparse_bn": 4, "sparse": 3, "convnet_bn": 2, "convnet": 1}
    return sorted(jobs, key=lambda j: (-cost[j.net] - len(j.test_levels), j.train_level))


def _run_jobs(jobs: list[_Job], cfg: ClassifyConfig, data: ImageSet) -> list[dict]:
    """Run every job (in worker processes when ``cfg.jobs > 1``); results in job order."""
    n_steps = _steps_per_epoch(len(data.train_labels), cfg.batch_size) * cfg.epochs
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=n_steps * len(jobs), unit="step", desc=f"{len(jobs)} trainings", file=sys.stderr)
    update = bar.update if bar is not None else (lambda n: None)
    try:
        if cfg.jobs == 1 or len(jobs) == 1:
            return [_train_and_test(job, cfg, data, update) for job in jobs]
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no fork of a process that already runs torch threads
        queue = ctx.Queue()
        with ProcessPoolExecutor(max_workers=min(cfg.jobs, len(jobs)), mp_context=ctx,
                                 initializer=_init_worker, initargs=(data, queue)) as pool:
            futures = [pool.submit(_worker_job, job, cfg) for job in jobs]
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    _drain(queue, update)
                    for fut in done:
                        fut.result()  # a worker's exception surfaces here, with its traceback
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
            _drain(queue, update)
            return [fut.result() for fut in futures]
    finally:
        if bar is not None:
            bar.close()


def _train_and_test(job: _Job, cfg: ClassifyConfig, data: ImageSet, progress: Callable[[int], None]) -> dict:
    """Train one net at one level, test it at its test levels (one CPU thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_and_test_1(job, cfg, data, progress)
    finally:
        torch.set_num_threads(threads)


def _train_and_test_1(job: _Job, cfg: ClassifyConfig, data: ImageSet, progress: Callable[[int], None]) -> dict:
    start = time.perf_counter()
    kind, batchnorm = NETS[job.net]
    torch.manual_seed(cfg.seed)
    net = build_classifier(kind, data.channels, data.num_classes, cfg.width, batchnorm, cfg.first_kernel, cfg.pool,
                           init_density=1.0 - job.train_level)
    h, w = data.image_size
    n = len(data.train_labels)
    batch = min(cfg.batch_size, n)
    per_epoch = _steps_per_epoch(n, cfg.batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=per_epoch * cfg.epochs, pct_start=0.15)
    key = _level_key(job.train_level)
    net.train()
    last_losses: list[float] = []
    for epoch in range(cfg.epochs):
        order = np.random.default_rng([cfg.seed, 0, epoch]).permutation(n)
        last_losses = []
        for b in range(per_epoch):
            idx = torch.from_numpy(order[b * batch:(b + 1) * batch])
            images = data.train_images[idx].float().div_(255.0)
            mask = drop_mask(len(idx), h, w, job.train_level, (cfg.seed, 1, key, epoch, b))
            loss = F.cross_entropy(net(images, mask), data.train_labels[idx])
            if not torch.isfinite(loss):
                raise RuntimeError(f"{job.net} at {level_name(job.train_level)}: non-finite loss at epoch {epoch}, "
                                   f"step {b}; lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            last_losses.append(loss.item())
            if (b + 1) % _PROGRESS_EVERY == 0:
                progress(_PROGRESS_EVERY)
        progress(per_epoch % _PROGRESS_EVERY)
    train_seconds = time.perf_counter() - start
    net.eval()
    accuracy = {level_name(v): _test_accuracy(net, data, v, cfg.seed) for v in job.test_levels}
    return {
        "net": job.net,
        "train_level": job.train_level,
        "accuracy": accuracy,
        "steps": per_epoch * cfg.epochs,
        "final_loss": float(np.mean(last_losses)),
        "train_seconds": train_seconds,
        "test_seconds": time.perf_counter() - start - train_seconds,
        "parameters": sum(p.numel() for p in net.parameters()),
    }


@torch.inference_mode()
def _test_accuracy(net: torch.nn.Module, data: ImageSet, level: float, seed: int) -> float:
    """Top-1 accuracy on the whole test split with the level's seeded masks."""
    h, w = data.image_size
    n = len(data.test_labels)
    masks = drop_mask(n, h, w, level, (seed, 2, _level_key(level)))
    correct = 0
    for i in range(0, n, _TEST_BATCH):
        images = data.test_images[i:i + _TEST_BATCH].float().div_(255.0)
        logits = net(images, masks[i:i + _TEST_BATCH])
        correct += int((logits.argmax(dim=1) == data.test_labels[i:i + _TEST_BATCH]).sum())
    return correct / n


# --------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(data: ImageSet, queue) -> None:
    torch.set_num_threads(1)
    _WORKER["data"], _WORKER["queue"] = data, queue


def _worker_job(job: _Job, cfg: ClassifyConfig) -> dict:
    queue = _WORKER["queue"]
    return _train_and_test(job, cfg, _WORKER["data"], lambda k: queue.put(k) if k else None)


def _drain(queue, update: Callable[[int], None]) -> None:
    import queue as _queue

    while True:
        try:
            update(queue.get_nowait())
        except _queue.Empty:
            return


# --------------------------------------------------------------------------- helpers


def _steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, n // batch_size)


def _level_key(level: float) -> int:
    return int(round(level * 1_000_000))


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # not on every platform
        return None

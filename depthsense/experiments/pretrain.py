"""``make pretrained``: train the completion model that ships in the package, from scratch.

    python -m depthsense.pretrain [--out pretrained_out] [--install]

One model for every sensor and scene (street LiDAR, indoor depth cameras, a few points):

1. Data: the synthetic street world (seed 1: the demo evaluates on seed 0's frames), the
   synthetic indoor world (:mod:`depthsense.data.synthetic_indoor`, seed 1) and, when they
   exist, the real KITTI training scans ``000000``-``000009`` of ``--real-root`` and the
   real RGB-D frames of the **dev** sources of ``--indoor-root`` (``o3d_tum``,
   ``slambook_tum_fr1desk``, ``graspnet_rs``; the report sources are refused).
2. Stage 1, synthetic: ``sparse_unet`` with RGB, three classical pre-fills
   (``nearest+pyramid+ip_basic``) and per-image depth normalisation (``norm="image"``,
   so a room at 2 m and a street at 20 m look alike to the network) learns on inputs drawn
   per sample and epoch: street frames from the simulated 64-beam LiDAR, its thinnings,
   uniform samples and the sensor patterns; indoor frames from every sensor pattern
   (:data:`STREET_MIX`, :data:`INDOOR_MIX`). The loss is the scale-free per-image MAE +
   RMSE plus the metric ones (``nmae:2,nrmse:1,mae:1,rmse:0.5``: in scale-free units the
   rooms' larger relative errors would outweigh the streets) at the ground-truth pixels the
   input does not have.
3. Stage 2, real + synthetic: it continues on a mixture of the synthetic inputs, the real
   training scans (self-supervised by beam hold-out: input ``beams:2`` or ``beams:4``
   rings, loss at the held-out rings) and the dev RGB-D frames under the sensor patterns
   (loss at the pixels the pattern hid).
4. The weights, with what they were trained on, the command, the time and the scores
   (``--eval``: the demo's synthetic street sweep, the real report frames' hold-out, the
   indoor report split under the five evaluation patterns and a synthetic indoor sweep)
   go into ``<out>/pretrained.pt``; ``--install`` copies it to ``depthsense/pretrained/``,
   where :class:`depthsense.inference.Predictor` finds it.

Every stage is seeded and resumable: re-running continues a killed run and skips
finished stages.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from depthsense.checkpoint import PRETRAINED_CHECKPOINT
from depthsense.config import TrainConfig, UsageError, parse_crop, run_cli

__all__ = ["main", "portable_args", "recorded_command", "run_relative_paths", "MODEL", "MODEL_ARGS", "STREET_MIX",
           "INDOOR_MIX", "DEV_SOURCES", "MixedDataset", "DEFAULT_REAL_ROOT", "DEFAULT_INDOOR_ROOT"]

MODEL = "sparse_unet"
MODEL_ARGS: dict[str, Any] = {"width": 16, "rgb": True, "prefill": "nearest+pyramid+ip_basic", "norm": "image",
                              "max_depth": 100.0}
"""The shipped architecture (see depthsense/models/sparse_unet.py)."""

STREET_MIX: tuple[tuple[dict[str, Any], float], ...] = (
    ({}, 0.25),  # the simulated 64-beam LiDAR as rendered
    ({"beams": 32}, 0.06),
    ({"beams": 16}, 0.06),
    ({"beams": 8}, 0.04),
    ({"density": (0.004, 0.6)}, 0.19),  # uniform samples of the ground truth, log-uniform density
    ({"pattern": "samples:50..5000"}, 0.1),
    ({"pattern": "lines:4..64"}, 0.1),
    ({"pattern": "keypoints:100..3000"}, 0.1),
    ({"pattern": "holes:5%..60%"}, 0.1),
)
"""Synthetic street inputs: (sparsity option, probability); pattern ranges draw log-uniformly."""

INDOOR_MIX: tuple[tuple[dict[str, Any], float], ...] = (
    ({"pattern": "samples:50..5000"}, 0.2),
    ({"pattern": "uniform:0.3%..50%"}, 0.2),
    ({"pattern": "lines:4..64"}, 0.15),
    ({"pattern": "holes:5%..60%"}, 0.25),
    ({"pattern": "keypoints:100..3000"}, 0.2),
)
"""Indoor inputs (synthetic rooms and the dev RGB-D frames): every sensor pattern, log-uniform values."""

SPARSITY_MIX = STREET_MIX  # the name earlier recipes and tests use

REAL_HOLDOUTS = ("beams:2", "beams:4")
DEV_SOURCES = ("o3d_tum", "slambook_tum_fr1desk", "graspnet_rs")
"""The indoor RGB-D sources choices may be made and models trained on (``../shared/indoor_rgbd`` README)."""
INDOOR_REPORT_SOURCES = ("slambook_nyu", "posecnn_ycbvideo", "o3d_sunrgbd")
"""The indoor sources that are only ever evaluated."""
EVAL_PATTERNS = ("samples:500", "uniform:5%", "lines:16", "holes:25%", "keypoints:1000")

_SHARED = Path(os.environ.get("DEPTHSENSE_SHARED") or Path(__file__).resolve().parents[3] / "shared")
DEFAULT_REAL_ROOT = _SHARED / "kitti_object"
"""The real KITTI frames of the workplace (``$DEPTHSENSE_SHARED/kitti_object``, else ``../shared`` next to the checkout)."""
DEFAULT_INDOOR_ROOT = _SHARED / "indoor_rgbd"
"""The real RGB-D frames of the workplace (``$DEPTHSENSE_SHARED/indoor_rgbd``)."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _check_args(args)  # before the lock creates --out
    from depthsense.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    from depthsense.runlock import refuse_if_locked, run_lock

    refuse_if_locked(out)
    with run_lock(out):  # two rebuilds into one --out would train over each other's stages
        return _main(args, argv, out)


def _main(args: argparse.Namespace, argv: list[str] | None, out: Path) -> int:
    from depthsense.io import remove_stale_temps

    t_start = time.perf_counter()
    dev_sources = _dev_sources(args.dev_sources)
    args.command = recorded_command(argv if argv is not None else sys.argv[1:])
    for stale in remove_stale_temps(out, ("pretrained.pt",), min_age=0.0):  # under the lock: a killed write's
        print(f"note: removed {stale}, a temporary file of an interrupted write", flush=True)
    timings: dict[str, float] = {}
    real_root = Path(args.real_root) if args.real_root else None
    if real_root is not None and not (real_root / "training" / "velodyne").is_dir():
        print(f"note: no real scans at {real_root}: training on synthetic scans only", flush=True)
        real_root = None
    indoor_root = Path(args.indoor_root) if args.indoor_root else None
    if indoor_root is not None and not all((indoor_root / s / "gt").is_dir() for s in dev_sources):
        print(f"note: no dev RGB-D frames at {indoor_root}: training on synthetic rooms only", flush=True)
        indoor_root = None

    street, indoor = _synthetic(out / "synthetic", args), _indoor(out / "synthetic_indoor", args)
    timings["data"] = _render_seconds(street) + _render_seconds(indoor)

    model_args = dict(MODEL_ARGS, width=args.width)
    crop = parse_crop(args.crop)
    sources = _Sources(street, indoor, real_root, indoor_root, dev_sources)
    stage1 = out / "stage1_synthetic"
    _train_stage(stage1, "synthetic", sources, False, args.steps_synthetic, args, model_args, crop, init=None)
    timings["stage 1"] = _stage_seconds(stage1)
    last = stage1 / "last.pt"
    if (real_root is not None or indoor_root is not None) and args.steps_real > 0:
        stage2 = out / "stage2_real"
        _train_stage(stage2, "real+synthetic", sources, True, args.steps_real, args, model_args, crop, init=last)
        timings["stage 2"] = _stage_seconds(stage2)
        last = stage2 / "last.pt"

    scores: dict[str, Any] = {}
    if args.eval:
        t = time.perf_counter()
        scores = _evaluate(last, out, real_root, indoor_root, args)
        timings["evaluate"] = time.perf_counter() - t
    # The recipe's time over every invocation (a killed and resumed rebuild counts each part
    # once: rendering from the folders' markers, training from the stages' checkpoints).
    minutes = sum(timings.values()) / 60
    wall = (time.perf_counter() - t_start) / 60
    final = out / "pretrained.pt"
    _write_shipped(last, final, args, argv, sources, timings, minutes, scores, wall)
    print("time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items())
          + f"; total {minutes:.1f} min (this invocation {wall:.1f} min)")
    print(f"pretrained model: {final} ({final.stat().st_size / 1e6:.2f} MB)")
    if args.install:
        PRETRAINED_CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(final, PRETRAINED_CHECKPOINT)
        print(f"installed as {PRETRAINED_CHECKPOINT}")
    return 0


class MixedDataset(Dataset):
    """Several data sets as one, each repeated ``repeat`` times per epoch.

    ``set_epoch`` reaches every part (through :class:`~torch.utils.data.Subset` too), so
    each keeps its own per-epoch augmentation and sparsity draws.
    """

    def __init__(self, parts: list[tuple[Dataset, int]]) -> None:
        self.parts = [(d, int(r)) for d, r in parts if len(d) and r > 0]
        self._ends = np.cumsum([len(d) * r for d, r in self.parts])

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, index: int):
        k = int(np.searchsorted(self._ends, index, side="right"))
        start = 0 if k == 0 else int(self._ends[k - 1])
        ds, _ = self.parts[k]
        return ds[(index - start) % len(ds)]

    def set_epoch(self, epoch: int) -> None:
        for ds, _ in self.parts:
            base = ds.dataset if isinstance(ds, Subset) else ds
            if hasattr(base, "set_epoch"):
                base.set_epoch(epoch)


# --------------------------------------------------------------------------- data


class _Sources:
    """Where each part of the training data is (None: not available)."""

    def __init__(self, street: Path, indoor: Path, real_root: Path | None, indoor_root: Path | None,
                 dev_sources: tuple[str, ...]) -> None:
        self.street, self.indoor, self.real_root, self.indoor_root = street, indoor, real_root, indoor_root
        self.dev_sources = dev_sources


def _render_once(root: Path, what: str, render) -> Path:
    """``render(root)`` unless an earlier run finished it (``root/.complete``): a killed
    rebuild re-renders a half-written folder and reuses a finished one."""
    done = root / ".complete"
    if done.exists():
        print(f"[data] reusing {root}", flush=True)
        return root
    print(f"[data] rendering {what} into {root}", flush=True)
    t = time.perf_counter()
    render(root)
    done.write_text(json.dumps({"seconds": round(time.perf_counter() - t, 3)}) + "\n")
    return root


def _render_seconds(root: Path) -> float:
    """How long rendering ``root`` took, whichever invocation rendered it (0 if unknown)."""
    try:
        return float(json.loads((root / ".complete").read_text()).get("seconds", 0.0))
    except (OSError, ValueError, AttributeError):
        return 0.0


def _stage_seconds(run: Path) -> float:
    """A stage's training seconds over every invocation (interrupted and resumed ones too)."""
    from depthsense.checkpoint import load_checkpoint

    last = run / "last.pt"
    return float(load_checkpoint(last).get("progress", {}).get("train_seconds", 0.0)) if last.exists() else 0.0


def _synthetic(root: Path, args: argparse.Namespace) -> Path:
    from depthsense.data import synthetic

    h, w = parse_crop(args.size)
    val = max(2, args.frames // 10)
    return _render_once(root, f"{args.frames} synthetic street frames ({h}x{w}, seed {args.seed})", lambda r: (
        synthetic.generate(r, layout="kitti", frames=args.frames, seed=args.seed, height=h, width=w,
                           splits={"train": args.frames - val, "val": val, "val_selection": 0, "test": 0},
                           progress=args.progress)))


def _indoor(root: Path, args: argparse.Namespace) -> Path:
    from depthsense.data.synthetic_indoor import generate_indoor

    h, w = parse_crop(args.indoor_size)
    return _render_once(root, f"{args.indoor_frames} synthetic indoor frames ({h}x{w}, seed {args.seed})", lambda r: (
        generate_indoor(r, frames=args.indoor_frames, seed=args.seed, height=h, width=w, progress=args.progress)))


def _datasets(src: _Sources, real: bool, crop: tuple[int, int], args: argparse.Namespace):
    """Training mixture and the street validation split of one stage."""
    from depthsense.data import build_dataset
    from depthsense.data.transforms import eval_transform, train_transform

    bottom = train_transform(crop=crop, hflip=0.5, colour_jitter=True, bottom=True)  # LiDAR: keep the bottom rows
    anywhere = train_transform(crop=crop, hflip=0.5, colour_jitter=True, bottom=False)

    def mixed(ds, mix):
        options, weights = zip(*mix)
        ds.set_sparsity_mix(options, weights)
        ds.hidden_target = True  # the loss where the input is silent, as the evaluation scores
        return ds

    street = mixed(build_dataset("synthetic", src.street, "train", transform=bottom, seed=args.seed, cache=True),
                   STREET_MIX)
    indoor = mixed(build_dataset("rgbd", src.indoor, "all", transform=anywhere, seed=args.seed, cache=True),
                   INDOOR_MIX)
    val = build_dataset("synthetic", src.street, "val", transform=eval_transform(None), seed=args.seed, cache=True)
    synth_share = 1.0 - (args.real_share + args.dev_share if real else 0.0)
    n_synth = len(street) + len(indoor) * _repeat(args.indoor_share, len(street), len(indoor))
    parts: list[tuple[Dataset, int]] = [(street, 1), (indoor, _repeat(args.indoor_share, len(street), len(indoor)))]
    if not real:
        return MixedDataset(parts), val
    if src.real_root is not None:
        ids = [i.strip() for i in args.real_ids.split(",") if i.strip()]
        for spec in REAL_HOLDOUTS:
            scans = build_dataset("kitti_object", src.real_root, "train", transform=bottom, seed=args.seed,
                                  cache=True, holdout=spec, holdout_phase=None)
            keep = [k for k, rec in enumerate(scans.samples) if rec.name in ids]
            if len(keep) != len(ids):
                raise UsageError(f"--real-ids {args.real_ids}: only training frames 000000-000009 may be used")
            share = args.real_share / len(REAL_HOLDOUTS)
            parts.append((Subset(scans, keep), max(1, round(share * n_synth / (synth_share * len(keep))))))
    if src.indoor_root is not None:
        dev = mixed(build_dataset("rgbd", src.indoor_root, ",".join(src.dev_sources), transform=anywhere,
                                  seed=args.seed, cache=True), INDOOR_MIX)
        parts.append((dev, max(1, round(args.dev_share * n_synth / (synth_share * len(dev))))))
    return MixedDataset(parts), val


def _repeat(share: float, n_other: int, n_this: int) -> int:
    """Repeats of a part of ``n_this`` samples so it is about ``share`` of a mixture with ``n_other``."""
    return max(1, round(share * n_other / ((1.0 - share) * n_this)))


def _dev_sources(spec: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
    bad = [s for s in names if s in INDOOR_REPORT_SOURCES]
    if bad:
        raise UsageError(f"--dev-sources {spec}: {', '.join(bad)} belong to the indoor report split, which is "
                         f"evaluated only; train on dev sources ({', '.join(DEV_SOURCES)})")
    if not names:
        raise UsageError("--dev-sources is empty; name the RGB-D sources to train on, e.g. " + ",".join(DEV_SOURCES))
    return names


# --------------------------------------------------------------------------- stages


def _train_stage(run: Path, what: str, src: _Sources, real: bool, steps: int, args: argparse.Namespace,
                 model_args: dict, crop: tuple[int, int], init: Path | None) -> None:
    from depthsense import losses, models
    from depthsense.checkpoint import load_checkpoint, load_state_dict_strict
    from depthsense.config import resolve_device
    from depthsense.engine.trainer import Trainer

    from depthsense.engine.run import RUN_FILES
    from depthsense.io import remove_stale_temps

    for stale in remove_stale_temps(run, RUN_FILES, min_age=0.0):  # --out is locked: a killed write's
        print(f"note: removed {stale}, a temporary file of an interrupted write", flush=True)
    done = _last_step(run)
    if done >= steps:
        print(f"[{what}] already trained: {run / 'last.pt'}", flush=True)
        return
    cfg = TrainConfig(
        dataset="synthetic", data_root=str(src.street), model=MODEL, model_args=model_args, loss=args.loss,
        init=None if init is None else str(init),  # recorded: stage 2 starts from stage 1's weights
        steps=steps, batch_size=args.batch_size, lr=args.lr if init is None else args.lr * args.real_lr_scale,
        crop=crop, workers=args.workers, cache=True, out=str(run), val_every=max(1, steps // 5),
        ckpt_every=max(1, steps // 20), val_samples=6, seed=args.seed, progress=args.progress,
        log_every=10, resume=done > 0,
    ).resolved()
    train_set, val_set = _datasets(src, real, crop, args)
    torch.manual_seed(args.seed)
    model = models.build_model(MODEL, **model_args)
    if init is not None:
        load_state_dict_strict(model, load_checkpoint(init)["state_dict"], source=str(init))
    loss_fn = losses.build_loss(cfg.loss, max_depth=cfg.max_depth)
    device = resolve_device(args.device)
    trainer = Trainer(cfg, model, loss_fn, train_set, val_set, device)
    # Ctrl-C: the stages are not depthsense-train runs; the same command resumes them.
    trainer.continue_command = f"{args.command} (the same command: finished stages are skipped)"
    if done > 0:
        trainer.resume(run / "last.pt")
    print(f"[{what}] training {MODEL} {model_args} for {steps} steps on {len(train_set)} samples/epoch "
          f"(batch {args.batch_size}, crop {crop[0]}x{crop[1]})", flush=True)
    result = trainer.fit()
    print(f"[{what}] {result.samples_per_second:.2f} samples/s; last val RMSE "
          f"{trainer.last_val.get('rmse', float('nan')):.0f} mm", flush=True)


# --------------------------------------------------------------------------- evaluation


def _evaluate(ckpt: Path, out: Path, real_root: Path | None, indoor_root: Path | None,
              args: argparse.Namespace) -> dict[str, Any]:
    from depthsense.data import synthetic
    from depthsense.data.synthetic_indoor import generate_indoor
    from depthsense.evaluation import EvalConfig, evaluate

    scores: dict[str, Any] = {}
    baselines = ("ip_basic", "nearest")
    demo = out / "demo_data"  # the frames `make demo` evaluates on (seed 0, 48 frames, 352x1216)
    h, w = parse_crop(args.eval_size)
    _render_once(demo, f"{args.eval_frames} street evaluation frames (seed 0)", lambda r: synthetic.generate(
        r, layout="kitti", frames=args.eval_frames, seed=0, height=h, width=w))
    runs = [("synthetic_demo_val", EvalConfig(dataset="synthetic", data_root=str(demo), split="val",
                                              max_images=6, out=str(out / "report_synthetic")))]
    indoor_val = out / "indoor_val"  # a synthetic indoor sweep of frames never trained on (seed 0)
    h, w = parse_crop(args.indoor_size)
    n_indoor = args.eval_images or 12
    _render_once(indoor_val, f"{n_indoor} indoor evaluation frames (seed 0)", lambda r: generate_indoor(
        r, frames=n_indoor, seed=0, height=h, width=w))
    runs.append(("synthetic_indoor_val", EvalConfig(dataset="rgbd", data_root=str(indoor_val), split="all",
                                                    patterns=EVAL_PATTERNS, out=str(out / "report_indoor_synthetic"))))
    if real_root is not None:
        runs.append(("real_report_frames", EvalConfig(dataset="kitti_object", data_root=str(real_root), split="report",
                                                      out=str(out / "report_real"))))
    if indoor_root is not None:
        runs.append(("indoor_report_split", EvalConfig(dataset="rgbd", data_root=str(indoor_root),
                                                       split=",".join(INDOOR_REPORT_SOURCES), patterns=EVAL_PATTERNS,
                                                       out=str(out / "report_indoor"))))
    for key, cfg in runs:
        cfg = dataclasses.replace(cfg, checkpoints=(f"pretrained={ckpt}",), baselines=baselines, progress=args.progress,
                                  max_images=args.eval_images or cfg.max_images)
        rep = evaluate(cfg)
        scores[key] = _table(rep)
        print(rep.markdown(("mae", "rmse")), flush=True)
    return scores


def _table(report) -> dict[str, Any]:
    metrics = ("mae", "rmse", "imae", "irmse")

    def pick(row):
        return {m: {k: v[k] for k in metrics if v.get(k) is not None} for m, v in row.items()}

    out: dict[str, Any] = {lv: pick(row) for lv, row in report.tables.items()}
    if report.groups:
        out["per_source"] = {lv: {g: pick(row) for g, row in groups.items()} for lv, groups in report.groups.items()}
    out["versus_classical"] = {m: report.versus_classical(m) for m in ("rmse", "mae")}
    return out


# --------------------------------------------------------------------------- the shipped file


def _write_shipped(last: Path, final: Path, args, argv, src: _Sources, timings, minutes, scores,
                   wall_minutes: float) -> None:
    from depthsense.checkpoint import load_checkpoint, save_checkpoint
    from depthsense.provenance import git_info, versions

    c = load_checkpoint(last)
    run = versions()
    command = recorded_command(argv if argv is not None else sys.argv[1:])
    about = {
        "name": "DepthSense pretrained completion",
        "model": c["model"],
        "model_cfg": c["model_cfg"],
        "parameters": int(sum(v.numel() for v in c["state_dict"].values())),
        "command": command.strip(),
        "training_data": {
            "synthetic": f"{args.frames} frames of the synthetic street world, seed {args.seed}, {args.size} "
                         f"(inputs: {', '.join(_mix_text(o, w) for o, w in STREET_MIX)}); {args.indoor_frames} "
                         f"frames of the synthetic indoor world, seed {args.seed}, {args.indoor_size} (inputs: "
                         f"{', '.join(_mix_text(o, w) for o, w in INDOOR_MIX)})",
            "real": "; ".join(filter(None, [
                None if src.real_root is None else
                f"KITTI object frames {args.real_ids} (beam hold-out {' / '.join(REAL_HOLDOUTS)}, self-supervised)",
                None if src.indoor_root is None else
                f"RGB-D dev sources {', '.join(src.dev_sources)} (sensor patterns, loss at the hidden pixels)",
            ])) + "; report frames never used" if src.real_root or src.indoor_root else "none",
        },
        "steps": {"synthetic": args.steps_synthetic,
                  "real+synthetic": args.steps_real if src.real_root or src.indoor_root else 0},
        "train_minutes": round(minutes, 1),  # rendering + training + evaluation, over every invocation
        "minutes_this_invocation": round(wall_minutes, 1),
        "machine": f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, {run['platform']}",
        "load_average_at_end": [round(v, 1) for v in os.getloadavg()],
        "timings_minutes": {k: round(v / 60, 2) for k, v in timings.items()},
        "torch": run["torch"],
        "versions": run,
        **git_info(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "scores": scores,
    }
    payload = {k: c[k] for k in ("format", "model", "model_cfg", "state_dict", "step")}
    payload["train_cfg"] = run_relative_paths(c.get("train_cfg") or {}, final.parent)
    payload["metrics"] = {}
    payload["about"] = json.loads(json.dumps(about))
    save_checkpoint(final, payload)


def recorded_command(argv: list[str]) -> str:
    """The command line recorded in the shipped model's card (and said after Ctrl-C):
    ``python -m depthsense.pretrain`` and ``argv`` with no absolute path (:func:`portable_args`)."""
    return " ".join(["python -m depthsense.pretrain", *(shlex.quote(a) for a in portable_args(argv))])


_PATH_SETTINGS = ("data_root", "rgb_root", "init", "out")
"""The path-valued :class:`TrainConfig` fields."""


def run_relative_paths(train_cfg: dict, run: Path) -> dict:
    """``train_cfg`` with its paths (data root, init checkpoint, run folder) written relative to
    the folder ``run`` that holds the shipped file, so the record names no folder of the
    machine that trained (``/home/me/pt/stage1_synthetic/last.pt`` -> ``stage1_synthetic/last.pt``)."""
    out = dict(train_cfg)
    base = os.path.abspath(run)
    for key in _PATH_SETTINGS:
        value = out.get(key)
        if isinstance(value, str) and value and value != "pretrained":
            out[key] = os.path.relpath(os.path.abspath(value), base)
    return out


def portable_args(argv: list[str]) -> list[str]:
    """``argv`` with every absolute path written relative to the working directory, so the
    recorded command shows no folder of the machine that trained (``--out
    /home/me/x`` -> ``--out x``, ``--real-root=/data/kitti`` -> ``--real-root=../../data/kitti``)."""
    def rel(value: str) -> str:
        return os.path.relpath(value) if os.path.isabs(value) else value

    out = []
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            out.append(f"{key}={rel(value)}")
        else:
            out.append(rel(arg))
    return out


def _mix_text(option: dict, weight: float) -> str:
    if not option:
        return f"{weight:.0%} 64-beam LiDAR"
    if "beams" in option:
        return f"{weight:.0%} {option['beams']} beams"
    if "pattern" in option:
        return f"{weight:.0%} {option['pattern']}"
    lo, hi = option["density"]
    return f"{weight:.0%} uniform {lo:.1%}-{hi:.0%}"


def _last_step(run: Path) -> int:
    last = run / "last.pt"
    if not last.exists():
        return 0
    from depthsense.checkpoint import load_checkpoint

    return int(load_checkpoint(last).get("step", 0))


def _check_args(args: argparse.Namespace) -> None:
    """Refuse values that make the rebuild meaningless or fail after a long stage 1.

    Raises:
        UsageError: naming the option, the value and the valid range.
    """
    import math

    ranges = (("frames", 3, "two are kept for validation, one at least to train on"),
              ("steps_synthetic", 1, "stage 1 trains the model that stage 2 continues"),
              ("steps_real", 0, "0 skips stage 2"), ("width", 1, "the U-Net's channels"),
              ("batch_size", 1, "samples per step"), ("workers", 0, "DataLoader processes"),
              ("threads", 0, "0: torch's default"), ("seed", 0, "numpy refuses negative seeds"))
    for name, low, meaning in ranges:
        value = getattr(args, name)
        if value < low:
            raise UsageError(f"--{name.replace('_', '-')} must be >= {low}, got {value} ({meaning})")
    if not (math.isfinite(args.real_share) and 0 <= args.real_share < 1):
        raise UsageError(f"--real-share must be in [0, 1), got {args.real_share} (the real scans' share of stage 2's "
                         "epochs; the synthetic frames keep the rest)")
    for name in ("lr", "real_lr_scale"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {value}")
    from depthsense.config import parse_size

    for name in ("size", "crop"):
        try:
            parse_size(getattr(args, name), name, minimum=16, example="256x320")
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--{name}: {exc}") from None


def _parser() -> argparse.ArgumentParser:
    from depthsense.config import OneLineParser

    p = OneLineParser(prog="python -m depthsense.pretrain", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="pretrained_out", help="folder for data, runs, reports and pretrained.pt")
    p.add_argument("--frames", type=int, default=200, help="synthetic street frames to render")
    p.add_argument("--size", default="352x1216", help="HxW of the synthetic street frames")
    p.add_argument("--indoor-frames", type=int, default=300, help="synthetic indoor frames to render")
    p.add_argument("--indoor-size", default="480x640", help="HxW of the synthetic indoor frames")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic worlds, data order and initialisation")
    p.add_argument("--real-root", default=str(DEFAULT_REAL_ROOT), help="KITTI-object folder with the real scans")
    p.add_argument("--real-ids", default=",".join(f"{i:06d}" for i in range(10)),
                   help="real training frames (a subset of 000000-000009)")
    p.add_argument("--indoor-root", default=str(DEFAULT_INDOOR_ROOT), help="RGB-D folder with the real dev frames")
    p.add_argument("--dev-sources", default=",".join(DEV_SOURCES), help="RGB-D sources to train on (dev split only)")
    p.add_argument("--indoor-share", type=float, default=0.45, help="share of indoor frames in the synthetic mixture")
    p.add_argument("--real-share", type=float, default=0.25, help="share of real scans in stage 2's epochs")
    p.add_argument("--dev-share", type=float, default=0.1, help="share of dev RGB-D frames in stage 2's epochs")
    p.add_argument("--width", type=int, default=16, help="U-Net width")
    p.add_argument("--steps-synthetic", type=int, default=4000)
    p.add_argument("--steps-real", type=int, default=1200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", default="256x320", help="training crop HxW (256 rows reach the top of the LiDAR field of view)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--real-lr-scale", type=float, default=0.5, help="stage 2 learning rate = lr x this")
    p.add_argument("--loss", default="nmae:2.0,nrmse:1.0,mae:1.0,rmse:0.5",
                   help="loss terms: the scale-free ones weigh rooms and streets alike, the metric ones keep the "
                        "street scenes (whose relative errors are smaller) from being outweighed")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--device", default="auto")
    p.add_argument("--eval-frames", type=int, default=48, help="frames of the demo's street set the evaluation renders")
    p.add_argument("--eval-size", default="352x1216", help="HxW of the demo's street set (the demo's own size)")
    p.add_argument("--eval-images", type=int, default=0, help="images per evaluation (0: 6 street frames, all else)")
    p.add_argument("--no-eval", dest="eval", action="store_false", help="skip the final evaluation")
    p.add_argument("--install", action="store_true", help="copy pretrained.pt into the package")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""``make demo``: the sparsity-invariance experiment of Uhrig et al. on a synthetic world.

    python -m depthsense.demo [--out demo_out] [--steps 300] [--frames 48] [--quick]

1. Generate the synthetic street world in KITTI's layout (no data needed).
2. Train ``sparse_convnet``, ``sparse_unet``, ``convnet`` and ``convnet_mask`` with sparse
   input sampled uniformly from the ground truth at 5 % of pixels (short CPU schedules).
3. Evaluate them, the pretrained model shipped in the package (``shipped``, made by
   ``make pretrained``) and the classical ``ip_basic`` and ``nearest`` at uniform
   densities 0.5 %..50 % and at 64/32/16/8 LiDAR beams; then, when the real KITTI scans
   of ``../shared/kitti_object`` (``--real-root``) exist, on their report frames by beam
   hold-out (``beams:2``, ``beams:4``). Print the tables and where the reports are.
4. Indoor: the shipped model and the classical fills (with ``colorization``) under the five
   sensor patterns (``samples:500``, ``uniform:5%``, ``lines:16``, ``holes:25%``,
   ``keypoints:1000``) on a synthetic indoor sweep (seed 0) and, when
   ``../shared/indoor_rgbd`` (``--indoor-root``) exists, on its report split, per source.

The street sweep compares with ``ip_basic`` and ``nearest`` only: ``colorization`` takes
about 7 s per 1216x352 frame, which would triple the demo's time; it is in every other
table.

Every stage is resumable: re-running skips finished runs and continues killed ones.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from depthsense.config import OneLineParser, TrainConfig, run_cli

__all__ = ["main", "DEMO_MODELS"]

DEMO_MODELS = ("sparse_convnet", "sparse_unet", "convnet", "convnet_mask")
TRAIN_DENSITY = 0.05


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="depthsense-demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo_out", help="folder for data, runs and the report")
    p.add_argument("--frames", type=int, default=48, help="synthetic frames to generate")
    p.add_argument("--size", default="352x1216", help="HxW of generated frames")
    p.add_argument("--steps", type=int, default=200, help="training steps per model")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", default="256x160", help="training crop HxW (full GT height, narrow: cheap)")
    p.add_argument("--eval-images", type=int, default=6, help="validation images per sparsity level")
    p.add_argument("--lr", type=float, default=4e-3, help="peak learning rate")
    p.add_argument("--models", default=",".join(DEMO_MODELS), help="comma-separated models to train")
    p.add_argument("--quick", action="store_true", help="tiny settings to check the pipeline (minutes -> seconds)")
    p.add_argument("--real-root", default=None,
                   help="KITTI-object folder with real scans for the hold-out evaluation (default: ../shared/kitti_object)")
    p.add_argument("--indoor-root", default=None,
                   help="RGB-D folder whose report split is evaluated (default: ../shared/indoor_rgbd)")
    args = p.parse_args(argv)
    from depthsense.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    if args.quick:
        args.frames, args.size, args.steps, args.crop, args.eval_images = 12, "96x320", 10, "64x160", 2
        args.batch_size = 4

    from depthsense.data import synthetic
    from depthsense.config import parse_crop
    from depthsense.engine import train
    from depthsense.evaluation import EvalConfig, evaluate
    from depthsense.checkpoint import PRETRAINED_CHECKPOINT
    from depthsense.experiments.pretrain import DEFAULT_INDOOR_ROOT, DEFAULT_REAL_ROOT, EVAL_PATTERNS, \
        INDOOR_REPORT_SOURCES

    t_start = time.perf_counter()
    out = Path(args.out)
    h, w = parse_crop(args.size)
    crop = parse_crop(args.crop)
    root = out / "data"
    stamp = root / ".complete"
    timings: dict[str, float] = {}

    t = time.perf_counter()
    if not stamp.exists():
        print(f"[1/4] generating {args.frames} synthetic frames ({h}x{w}) into {root}", flush=True)
        summary = synthetic.generate(root, layout="kitti", frames=args.frames, seed=0, height=h, width=w, progress=True)
        stamp.write_text("ok\n")
        print(f"      LiDAR density {summary['mean_density']:.2%}, GT density {summary['mean_gt_density']:.2%}")
    else:
        print(f"[1/4] reusing synthetic frames in {root}")
    timings["generate"] = time.perf_counter() - t

    checkpoints = []
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for i, name in enumerate(names, 1):
        run = out / "runs" / name
        t = time.perf_counter()
        print(f"[2/4] training {name} ({i}/{len(names)}): {args.steps} steps at {TRAIN_DENSITY:.0%} uniform density", flush=True)
        cfg = TrainConfig(
            dataset="synthetic", data_root=str(root), model=name, density=TRAIN_DENSITY, steps=args.steps,
            batch_size=args.batch_size, crop=crop, workers=0, cache=True, out=str(run),
            val_every=max(1, args.steps // 4), ckpt_every=max(1, args.steps // 8), val_samples=4, lr=args.lr, log_every=10,
            resume=_resumable(run, args.steps), override=True,  # a longer --steps continues a shorter run
        )
        if _finished(run, args.steps):
            print(f"      already trained: {run / 'last.pt'}")
        else:
            result = train(cfg)
            print(f"      {result.samples_per_second:.1f} samples/s, best val RMSE "
                  f"{result.best.get('rmse', float('nan')):.0f} mm", flush=True)
        timings[f"train {name}"] = time.perf_counter() - t
        best = run / "best.pt"
        checkpoints.append(f"{name}={best if best.exists() else run / 'last.pt'}")

    t = time.perf_counter()
    print("[3/4] evaluating every model at every sparsity level", flush=True)
    if PRETRAINED_CHECKPOINT.is_file():
        checkpoints.insert(0, f"shipped={PRETRAINED_CHECKPOINT}")
        print(f"      with the shipped pretrained model {PRETRAINED_CHECKPOINT} (column 'shipped')")
    else:
        print(f"      no shipped pretrained model in this installation ({PRETRAINED_CHECKPOINT}; `make pretrained`)")
    report = evaluate(EvalConfig(
        dataset="synthetic", data_root=str(root), split="val", checkpoints=tuple(checkpoints),
        max_images=args.eval_images, out=str(out / "report"), baselines=("ip_basic", "nearest"),
        # --quick renders 96x320 frames with a 12-line sensor: thinning it to 32..8 of 64
        # beams would not mean what it says, so only the full scan is evaluated there
        beams=(64,) if args.quick else None,
    ).resolved())
    timings["evaluate"] = time.perf_counter() - t
    real_root = Path(args.real_root) if args.real_root else DEFAULT_REAL_ROOT
    real = None
    t = time.perf_counter()
    if (real_root / "training" / "velodyne").is_dir():
        print(f"[3/4] evaluating on real KITTI scans, report frames of {real_root} (beam hold-out)", flush=True)
        real = evaluate(EvalConfig(
            dataset="kitti_object", data_root=str(real_root), split="report", checkpoints=tuple(checkpoints),
            max_images=1 if args.quick else 0, out=str(out / "report_real"),
        ).resolved())
        timings["evaluate real"] = time.perf_counter() - t
    t = time.perf_counter()
    shipped = tuple(c for c in checkpoints if c.startswith("shipped="))
    indoor_val = out / "indoor_data"
    if not (indoor_val / ".complete").exists():
        from depthsense.data.synthetic_indoor import generate_indoor

        ih, iw = (96, 128) if args.quick else (480, 640)
        print(f"[4/4] generating {3 if args.quick else 12} synthetic indoor frames ({ih}x{iw}) into {indoor_val}")
        generate_indoor(indoor_val, frames=3 if args.quick else 12, seed=0, height=ih, width=iw)
        (indoor_val / ".complete").write_text("ok\n")
    print("[4/4] evaluating indoors under the sensor patterns", flush=True)
    indoor = evaluate(EvalConfig(dataset="rgbd", data_root=str(indoor_val), split="all", checkpoints=shipped,
                                 patterns=EVAL_PATTERNS, max_images=2 if args.quick else 0,
                                 out=str(out / "report_indoor_synthetic")).resolved())
    indoor_root = Path(args.indoor_root) if args.indoor_root else DEFAULT_INDOOR_ROOT
    indoor_real = None
    if all((indoor_root / s / "gt").is_dir() for s in INDOOR_REPORT_SOURCES):
        indoor_real = evaluate(EvalConfig(dataset="rgbd", data_root=str(indoor_root),
                                          split=",".join(INDOOR_REPORT_SOURCES), checkpoints=shipped,
                                          patterns=EVAL_PATTERNS, max_images=2 if args.quick else 0,
                                          out=str(out / "report_indoor")).resolved())
    timings["evaluate indoor"] = time.perf_counter() - t
    total = time.perf_counter() - t_start
    print()
    print("Synthetic validation frames (the sparsity sweep):")
    print(report.markdown(metrics=("mae", "rmse")))
    print()
    if real is not None:
        print(f"Real KITTI scans, report frames {', '.join(r.name for r in _samples(real_root))} "
              "(input = half / a quarter of the laser rings, scored at the others):")
        print(real.markdown(metrics=("mae", "rmse")))
        print(f"real-scan report: {out / 'report_real' / 'report.md'}")
    else:
        print(f"No real scans at {real_root} (pass --real-root KITTI_OBJECT_DIR): real-scan hold-out skipped.")
    print()
    print("Synthetic indoor frames (seed 0) under the sensor patterns, scored where the input is silent:")
    print(indoor.markdown(metrics=("mae", "rmse")))
    if indoor_real is not None:
        print(f"Real RGB-D frames, indoor report split ({', '.join(INDOOR_REPORT_SOURCES)}):")
        print(indoor_real.markdown(metrics=("mae", "rmse")))
        print(f"indoor report: {out / 'report_indoor' / 'report.md'}")
    else:
        print(f"No RGB-D report frames at {indoor_root} (pass --indoor-root DIR): indoor report split skipped.")
    print()
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f"; total {total:.0f} s")
    print(f"report: {out / 'report' / 'report.md'} (also report.csv, report.json, *_vs_density.png, panels)")
    return 0


def _samples(real_root: Path):
    from depthsense.data import build_dataset

    return build_dataset("kitti_object", real_root, "report").samples


def _finished(run: Path, steps: int) -> bool:
    return _last_step(run) >= steps


def _resumable(run: Path, steps: int) -> bool:
    return 0 < _last_step(run) < steps


def _last_step(run: Path) -> int:
    last = run / "last.pt"
    if not last.exists():
        return 0
    import torch

    try:
        return int(torch.load(last, map_location="cpu", weights_only=True)["step"])
    except Exception:  # unreadable: start the run again
        last.unlink()
        return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="depthsense-demo"))

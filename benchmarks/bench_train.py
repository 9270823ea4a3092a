"""Training throughput (data loading included) and peak memory of training and inference.

    python benchmarks/bench_train.py [--quick] [--threads 2]

Each model trains in its own subprocess with the real engine (``depthsense.engine``)
on the generated synthetic set at 256x1216 crops, batch 4, 1 DataLoader worker, so
samples/s include data loading; the engine's block timers give the share of the step
spent waiting for data (target < 10%). Peak RSS of each subprocess is read from
``getrusage``. The last row is inference of ``sparse_unet`` on one 1216x352 frame.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import markdown_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("sparse_convnet", "sparse_unet", "convnet")

_TRAIN_CHILD = r"""
import json, sys, time, torch
from depthsense.config import TrainConfig
from depthsense.engine import Trainer, build_datasets
import losses, models
root, model, steps, crop_h, crop_w, out = sys.argv[1:7]
cfg = TrainConfig(dataset="synthetic", data_root=root, model=model, steps=int(steps), batch_size=4,
                  crop=(int(crop_h), int(crop_w)), workers=1, out=out, progress=False, val_every=10**9,
                  ckpt_every=0, log_every=10**9).resolved()
train_set, _ = build_datasets(cfg, root)
torch.manual_seed(0)
trainer = Trainer(cfg, models.build_model(model), losses.build_loss(cfg.loss, max_depth=cfg.max_depth),
                  train_set, None, torch.device("cpu"))
trainer.total_steps = 2  # warm-up steps are not timed
trainer.fit()
trainer.timings = dict.fromkeys(trainer.timings, 0.0)
trainer.total_steps = int(steps) + 2
t0 = time.perf_counter()
trainer.fit()
seconds = time.perf_counter() - t0
timed = int(steps)
import resource
print(json.dumps({"samples_per_s": timed * 4 / seconds, "step_s": seconds / timed,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  **{k: v / timed for k, v in trainer.timings.items()}}))
"""

_INFER_CHILD = r"""
import json, sys, time, torch
from depthsense.data.synthetic import render_frame
from depthsense import models
f = render_frame(0, 0)
m = models.build_model("sparse_unet").eval()
s = torch.from_numpy(f.sparse)[None, None]
with torch.inference_mode():
    for _ in range(3):
        t0 = time.perf_counter(); m(s, (s > 0).float()); dt = time.perf_counter() - t0
import resource
print(json.dumps({"infer_ms": dt * 1e3, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, args: list[str], threads: int) -> tuple[dict, float]:
    """Run ``code`` in a fresh interpreter; returns its JSON line and its own peak RSS (MB)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), NO_ALBUMENTATIONS_UPDATE="1")
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result, result["rss_mb"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small crops, few steps")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    steps, crop, frames = (3, (64, 160), 8) if args.quick else (10, (256, 1216), 12)
    size = (96, 320) if args.quick else (352, 1216)
    from depthsense.data import synthetic

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        synthetic.generate(root, layout="kitti", frames=frames, seed=0, height=size[0], width=size[1])
        for model in MODELS:
            r, rss = _child(_TRAIN_CHILD, [str(root), model, str(steps), str(crop[0]), str(crop[1]), str(Path(tmp) / model)], args.threads)
            wait = r["data"] / max(r["step_s"], 1e-9)
            rows.append([model, f"{r['samples_per_s']:.2f}", f"{r['step_s'] * 1e3:.0f}", f"{r['data'] * 1e3:.0f}",
                         f"{wait:.0%}", f"{r['forward'] * 1e3:.0f}", f"{r['backward'] * 1e3:.0f}", f"{rss:.0f}"])
        r, rss = _child(_INFER_CHILD, [], args.threads)
    print(f"## Training throughput, {crop[0]}x{crop[1]} crops, batch 4, 1 loader worker, {args.threads} threads, "
          f"mean over {steps} steps after 2 warm-up steps\n")
    print(markdown_table(["model", "samples/s", "ms/step", "data wait ms", "data wait share",
                          "forward ms", "backward ms", "peak RSS MB"], rows))
    print(f"\nInference, sparse_unet, one 1216x352 frame: {r['infer_ms']:.0f} ms, peak RSS {rss:.0f} MB (process total)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Synthetic data generation speed: render vs write, per frame.

    python benchmarks/bench_synthetic.py [--quick] [--frames 100] [--size 352x1216]

Renders and writes (KITTI layout, into a temporary directory) ``--frames`` frames at
``--size``, alternating render and write so both see the same machine load, after one
warm-up frame. Prints the median per-frame time of each stage, their ratio, frames/s
and the mean LiDAR density. Target: 100 frames at 1216x352 in < 60 s on 2 cores.
``--quick`` does 5 frames.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import markdown_table, set_threads  # noqa: E402

from depthsense.data.synthetic import render_frame, write_kitti_frame  # noqa: E402


def run(frames: int = 100, size: tuple[int, int] = (352, 1216), threads: int = 2, seed: int = 0) -> str:
    set_threads(threads)
    cv2.setNumThreads(threads)
    h, w = size
    render_s: list[float] = []
    write_s: list[float] = []
    density: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench_synthetic_") as tmp:
        write_kitti_frame(tmp, render_frame(seed, 10_000, h, w), "train", 99, 5)  # warm-up
        wall0 = time.perf_counter()
        for i in range(frames):
            t0 = time.perf_counter()
            f = render_frame(seed, i, h, w)
            t1 = time.perf_counter()
            write_kitti_frame(tmp, f, "train", 1 + i // 20, 5 + i % 20)
            t2 = time.perf_counter()
            render_s.append(t1 - t0)
            write_s.append(t2 - t1)
            density.append(f.density)
        wall = time.perf_counter() - wall0
    med_r, med_w = statistics.median(render_s), statistics.median(write_s)
    rows = [
        ["render (ray cast + shade + LiDAR)", f"{med_r * 1e3:.1f}", f"{sum(render_s):.2f}"],
        ["write (RGB + 2 uint16 PNG)", f"{med_w * 1e3:.1f}", f"{sum(write_s):.2f}"],
        ["total", f"{(med_r + med_w) * 1e3:.1f}", f"{wall:.2f}"],
    ]
    table = markdown_table(["stage", "median ms/frame", f"sum s ({frames} frames)"], rows)
    per_100 = wall / frames * 100
    lines = [
        f"Synthetic KITTI frames at {w}x{h}, {frames} frames, {threads} threads",
        "",
        table,
        "",
        f"render/write ratio: {med_r / med_w:.2f}x; {frames / wall:.1f} frames/s; "
        f"{per_100:.1f} s per 100 frames (target < 60 s: {'met' if per_100 < 60 else 'NOT met'})",
        f"mean LiDAR density {100 * statistics.fmean(density):.2f}% of pixels",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="5 frames (smoke run)")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--size", default="352x1216", help="HxW")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))
    print(run(5 if args.quick else args.frames, (h, w), args.threads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Shared timing helpers for the benchmark scripts (not a test module).

Medians over interleaved repetitions after warm-up: each round runs every candidate
once, in turn, so slow drifts of a noisy machine hit all candidates alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

__all__ = ["interleaved_medians", "sync", "markdown_table", "set_threads", "frame_bench_main"]


def set_threads(n: int = 2) -> None:
    torch.set_num_threads(n)


def sync(device: torch.device | str | None = None) -> None:
    """Wait for queued CUDA work so wall-clock times are honest."""
    if torch.cuda.is_available():
        torch.cuda.synchronize(device)


def interleaved_medians(
    candidates: dict[str, Callable[[], object]], repeats: int = 10, warmup: int = 2
) -> dict[str, float]:
    """Median seconds per call of each candidate, measured round-robin."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
            sync()
    for _ in range(repeats):
        for name, fn in candidates.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def frame_bench_main(argv: list[str] | None, doc: str, title: str, run: Callable[..., str],
                     threads_help: str = "torch threads") -> int:
    """``main`` of a benchmark that times forwards on one frame: ``--quick`` (2 repeats
    after 1 warm-up instead of 9 after 2), ``--size HxW``, ``--threads``; prints ``title``
    and ``run(size, threads=, repeats=, warmup=)``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    p.add_argument("--size", default="352x1216", help="HxW of the frame")
    p.add_argument("--threads", type=int, default=2, help=threads_help)
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))
    print(f"## {title}\n")
    print(run((h, w), threads=args.threads, repeats=2 if args.quick else 9, warmup=1 if args.quick else 2))
    return 0

"""Real-time figures of the installed default model: torch vs onnxruntime vs IP-Basic in one run.

The torch runtime runs in fp32 and, where the CPU has bf16 instructions, also in bf16
(``torch-bf16``, ``Predictor(precision="bf16")``).

    python benchmarks/bench_runtime.py [--quick] [--threads 2]

Everything goes through :class:`depthsense.inference.Predictor` as ``depthsense-infer`` runs
it (pre-fills, input checks and conversions included), on synthetic street frames with
simulated 64-beam LiDAR (``depthsense.data.synthetic.render_frame``); the learned model is
whatever ``depthsense/pretrained/completion.pt`` is installed, so nothing here is tied to
one checkpoint. The onnxruntime graph is exported once into the cache
(``$DEPTHSENSE_CACHE``) on first use. Tables:

1. latency per frame, p50 / p95 over interleaved rounds, at 1216x352 and 640x480;
2. peak RSS of a fresh process that loads one runtime and predicts 1216x352 frames;
3. frames/s per thread count (1, 2 and 4 when the machine has them);
4. ms per megapixel from ~0.2 to ~4 MP (is the cost linear in the pixels?);
5. where the time of the torch forward goes, per layer (forward hooks; the pre-fills
   timed around ``compute_prefill``).

``--quick`` is a smoke run: half-size frames, two sizes in the sweep, one or two rounds.
Timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import markdown_table, set_threads  # noqa: E402

from depthsense.data.synthetic import render_frame  # noqa: E402
from depthsense.inference import Predictor  # noqa: E402
from depthsense.precision import bf16_support  # noqa: E402

RUNTIMES = ("ip_basic", "torch", "onnxruntime") + (("torch-bf16",) if bf16_support(torch.device("cpu")) is None else ())
"""Columns: IP-Basic, the default model in torch and in onnxruntime, and in torch with
``precision="bf16"`` where the CPU has bf16 instructions."""
SWEEP_MP = (0.2, 0.4, 1.0, 2.0, 4.0)


def cpu_model() -> str:
    """The CPU's model name and the vector extensions that matter for int8/bf16 kernels."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    ext = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    return f"{name}, {os.cpu_count()} CPUs" + (f" ({', '.join(ext)})" if ext else "")


def make_predictor(runtime: str) -> Predictor:
    if runtime == "ip_basic":
        return Predictor(model="ip_basic", device="cpu")
    if runtime == "torch-bf16":
        return Predictor(device="cpu", precision="bf16")
    return Predictor(device="cpu", runtime=runtime)


def frame(h: int, w: int, seed: int = 0):
    f = render_frame(seed, 0, h, w)
    return f.rgb, f.sparse


def latencies(predictors: dict, inputs, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per ``predict`` of each predictor, interleaved round by round."""
    rgb, sparse = inputs
    times: dict[str, list[float]] = {k: [] for k in predictors}
    for r in range(warmup + rounds):
        for name, p in predictors.items():
            t0 = time.perf_counter()
            p.predict(rgb, sparse)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def rss_child(runtime: str, h: int, w: int, frames: int) -> int:
    """In a fresh process: load ``runtime``, predict ``frames`` frames, print peak RSS (MB)."""
    p = make_predictor(runtime)
    rgb, sparse = frame(h, w)
    for _ in range(frames):
        p.predict(rgb, sparse)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) / 1024)
            return 0
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return 0


def layer_table(predictor: Predictor, inputs, rounds: int) -> str:
    """Per-layer forward time of the torch model (mean over ``rounds`` after one warm-up)."""
    net = predictor.model
    spent: dict[str, float] = {}
    shapes: dict[str, str] = {}
    starts: dict[str, float] = {}
    handles = []
    layers = [(n, m) for n, m in net.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    for name, module in layers:
        def pre(_m, _a, name=name):
            starts[name] = time.perf_counter()

        def post(_m, _a, out, name=name):
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - starts[name]
            y = out[0] if isinstance(out, tuple) else out
            shapes[name] = f"{y.shape[1]}x{y.shape[2]}x{y.shape[3]}"

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    original = net.compute_prefill
    if getattr(net, "prefill", ()):
        def timed_prefill(sparse):
            t0 = time.perf_counter()
            out = original(sparse)
            spent["pre-fills (" + "+".join(net.prefill) + ", OpenCV)"] = (
                spent.get("pre-fills (" + "+".join(net.prefill) + ", OpenCV)", 0.0) + time.perf_counter() - t0)
            return out

        net.compute_prefill = timed_prefill
    rgb, sparse = inputs
    try:
        predictor.predict(rgb, sparse)
        spent.clear()
        t0 = time.perf_counter()
        for _ in range(rounds):
            predictor.predict(rgb, sparse)
        total = (time.perf_counter() - t0) / rounds
    finally:
        for h in handles:
            h.remove()
        net.__dict__.pop("compute_prefill", None)
    rows = sorted(((k, v / rounds) for k, v in spent.items()), key=lambda kv: -kv[1])
    rest = total - sum(v for _, v in rows)
    table = [[k, shapes.get(k, "-"), f"{v * 1e3:.1f}", f"{100 * v / total:.0f}%"] for k, v in rows]
    table.append(["everything else (masks, upsampling, blends, padding, conversions)", "-",
                  f"{rest * 1e3:.1f}", f"{100 * rest / total:.0f}%"])
    table.append(["**whole predict**", "-", f"{total * 1e3:.1f}", "100%"])
    return markdown_table(["layer", "output CxHxW", "ms", "share"], table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: half-size frames, few rounds")
    p.add_argument("--threads", type=int, default=2, help="threads of the learned runtimes (tables 1, 2, 4, 5)")
    p.add_argument("--rss-child", nargs=4, metavar=("RUNTIME", "H", "W", "FRAMES"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_child:
        set_threads(args.threads)
        rt, h, w, n = args.rss_child
        return rss_child(rt, int(h), int(w), int(n))

    quick = args.quick
    div = 2 if quick else 1
    sizes = [(352 // div, 1216 // div), (480 // div, 640 // div)]
    rounds, warmup = (2, 1) if quick else (12, 2)
    set_threads(args.threads)
    print("## Runtime benchmark (installed default model, torch vs onnxruntime vs IP-Basic)\n")
    print(f"CPU: {cpu_model()}; torch {torch.__version__}; onnxruntime {_ort_version()}; "
          f"learned runtimes on {args.threads} threads, IP-Basic on its own (OpenCV/numpy); "
          f"load average at start {os.getloadavg()[0]:.2f}" + ("; --quick: half-size frames" if quick else "") + "\n")
    predictors = {rt: make_predictor(rt) for rt in RUNTIMES}
    print(f"model: {predictors['torch'].describe()}\n")

    # 1. latency
    rows = []
    for h, w in sizes:
        t = latencies(predictors, frame(h, w), rounds, warmup)
        ref = float(np.median(t["ip_basic"]))
        for rt in RUNTIMES:
            p50, p95 = (float(np.percentile(t[rt], q)) for q in (50, 95))
            rows.append([f"{w}x{h}", rt, f"{p50 * 1e3:.1f}", f"{p95 * 1e3:.1f}", f"{p95 / p50:.2f}",
                         f"{1 / p50:.1f}", f"{p50 / ref:.1f}x"])
    print(f"### Latency per frame ({rounds} interleaved rounds after {warmup} warm-up)\n")
    print(markdown_table(["size", "runtime", "p50 ms", "p95 ms", "p95/p50", "frames/s (p50)", "p50 vs IP-Basic"],
                         rows) + "\n")

    # 2. peak RSS, each runtime in a fresh process
    h, w = sizes[0]
    rows = []
    for rt in RUNTIMES:
        r = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--rss-child", rt, str(h), str(w),
                            "3"], capture_output=True, text=True)
        mb = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else f"failed ({r.returncode})"
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
        rows.append([rt, f"{w}x{h}", mb if not mb[0].isdigit() else f"{float(mb):.0f}"])
    print("### Peak memory (RSS of a fresh process: imports, model load, 3 frames)\n")
    print(markdown_table(["runtime", "size", "peak RSS MB"], rows) + "\n")

    # 3. frames/s per thread count
    counts = [n for n in (1, 2, 4) if n <= (os.cpu_count() or 1)]
    rows = []
    inputs = frame(*sizes[0])
    for n in counts:
        set_threads(n)
        per = {rt: make_predictor(rt) for rt in ("torch", "onnxruntime")}  # the ORT session takes torch's count
        t = latencies(per, inputs, max(1, rounds // 3), 1)
        rows.append([n] + [f"{1 / float(np.median(t[rt])):.2f}" for rt in ("torch", "onnxruntime")])
    set_threads(args.threads)
    print(f"### Frames/s per thread count at {sizes[0][1]}x{sizes[0][0]} (median of {max(1, rounds // 3)})\n")
    print(markdown_table(["threads", "torch frames/s", "onnxruntime frames/s"], rows) + "\n")

    # 4. cost per megapixel
    rows = []
    sweep = SWEEP_MP[:2] if quick else SWEEP_MP
    per_mp: dict[str, dict[float, float]] = {rt: {} for rt in RUNTIMES}
    for mp in sweep:
        h = int(round((mp * 1e6 * 352 / 1216) ** 0.5 / 16)) * 16 // div
        w = int(round(h * 1216 / 352 / 16)) * 16
        t = latencies(predictors, frame(h, w), 1 if quick else 2, 1)
        for rt in RUNTIMES:
            per_mp[rt][mp] = float(np.median(t[rt])) * 1e3 / (h * w / 1e6)
        rows.append([f"{w}x{h}", f"{h * w / 1e6:.2f}"] + [f"{per_mp[rt][mp]:.0f}" for rt in RUNTIMES])
        if mp == sweep[1]:
            base_mp = h * w / 1e6
    base = sweep[1]
    rows.append([f"worst / the {base_mp:.2f} MP figure", "-"] + [
        f"{max(per_mp[rt].values()) / per_mp[rt][base]:.2f}x" for rt in RUNTIMES])
    print("### Cost per megapixel (median ms / MP)\n")
    print(markdown_table(["size", "MP"] + [f"{rt} ms/MP" for rt in RUNTIMES], rows) + "\n")

    # 5. where the time goes (torch)
    print(f"### Where the time goes: torch forward per layer at {sizes[0][1]}x{sizes[0][0]} "
          f"(channels_last as depthsense-infer runs it; mean of {max(1, rounds // 3)})\n")
    print(layer_table(predictors["torch"], frame(*sizes[0]), max(1, rounds // 3)))
    return 0


def _ort_version() -> str:
    try:
        import onnxruntime

        return onnxruntime.__version__
    except ImportError:
        return "not installed"


if __name__ == "__main__":
    raise SystemExit(main())

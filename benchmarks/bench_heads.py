"""Cost of the U-Net's extra heads (confidence + foreground) at 1216x352, side by side.

    python benchmarks/bench_heads.py [--quick] [--size 352x1216] [--threads 2]

Each U-Net variant (depth only; RGB; the shipped RGB + pre-fill architecture) is timed
as a depth-only model and built with ``heads="depth,conf,fg"`` and called with
``return_heads=True`` (so the heads' layers and their sigmoid/softplus run). Eval mode,
``torch.inference_mode``, ``--threads`` torch threads, medians over interleaved
repetitions after warm-up (``_timing.interleaved_medians``). The heads' part (their
layers on tensors of the decoder's shapes) is also timed alone: on a shared machine the
difference of two whole forwards is mostly noise. Input: a synthetic street
frame with simulated 64-beam LiDAR. Target (issue 17): heads add <= 10 % (ratio <= 1.10).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import frame_bench_main, interleaved_medians, markdown_table, set_threads  # noqa: E402
from bench_models import frame_inputs  # noqa: E402

from depthsense.models import build_model  # noqa: E402

_SHIPPED = {"rgb": True, "prefill": "ip_basic+nearest", "max_depth": 100.0}
VARIANTS = [  # label, model options, options of the headed build only, channels_last
    ("sparse_unet", {}, {}, False),
    ("sparse_unet+rgb", {"rgb": True}, {}, False),
    ("sparse_unet+rgb+prefill (shipped)", _SHIPPED, {}, False),
    # The issue-17 models (fine-tuned from the shipped one) run as depthsense-infer runs them.
    ("shipped, head_width=16, channels_last", _SHIPPED, {"head_width": 16}, True),
]
HEADS = "depth,conf,fg"


def run(size=(352, 1216), threads=2, repeats=9, warmup=2) -> str:
    set_threads(threads)
    cv2.setNumThreads(threads)
    h, w = size
    sparse, mask, rgb, src = frame_inputs(h, w)
    candidates, params = {}, {}
    for label, cfg, head_cfg, cl in VARIANTS:
        fmt = torch.channels_last if cl else torch.contiguous_format
        inputs = [t.contiguous(memory_format=fmt) for t in (sparse, mask, rgb)]
        for heads in ("depth", HEADS):
            torch.manual_seed(0)
            model = build_model("sparse_unet", **cfg, heads=heads, **(head_cfg if heads != "depth" else {}))
            model = model.eval().to(memory_format=fmt)
            params[(label, heads)] = sum(p.numel() for p in model.parameters())
            candidates[(label, heads)] = _call(model, *inputs, heads != "depth")
        # The heads' own part alone, on tensors of the decoder's and refinement's shapes: on
        # a shared machine the difference of two whole forwards drowns in noise.
        parts = tuple(t.contiguous(memory_format=fmt) for t in (
            torch.rand(1, model.channels[0], h // 2, w // 2), torch.rand(1, model.refine_ch, h, w)))
        candidates[(label, "part")] = _part(model, parts, (h, w))
    med = interleaved_medians(candidates, repeats=repeats, warmup=warmup)
    rows = []
    for label, *_ in VARIANTS:
        base, with_heads, part = med[(label, "depth")], med[(label, HEADS)], med[(label, "part")]
        rows.append([label, f"{params[(label, 'depth')]:,} / {params[(label, HEADS)]:,}", f"{base * 1e3:.1f}",
                     f"{with_heads * 1e3:.1f}", f"{with_heads / base:.3f}x", f"{part * 1e3:.1f}",
                     f"{(base + part) / base:.3f}x"])
    header = ["model", "params (depth / +heads)", "ms depth only", f"ms heads={HEADS}", "ratio",
              "ms heads' part alone", "ratio from parts (target <= 1.10)"]
    return (f"forward per {w}x{h} frame, {threads} threads, eval + inference_mode, median of {repeats} interleaved "
            f"runs after {warmup} warm-up rounds; input: {src}\n\n" + markdown_table(header, rows))


def _part(model, parts, size):
    def fn():
        with torch.inference_mode():
            return model._extra_heads(parts[0], None, parts[1], size)

    return fn


def _call(model, sparse, mask, rgb, heads: bool):
    def fn():
        with torch.inference_mode():
            return model(sparse, mask, rgb, return_heads=heads)

    return fn


def main(argv=None) -> int:
    return frame_bench_main(argv, __doc__, "Extra heads: forward time with and without", run)


if __name__ == "__main__":
    raise SystemExit(main())

"""Forward time per 1216x352 frame of every model, side by side with IP-Basic.

    python benchmarks/bench_models.py [--quick] [--size 352x1216] [--threads 2]

Learned models: eval mode, ``torch.inference_mode``, ``--threads`` torch threads (2),
each timed in NCHW and in channels_last (model and inputs converted), so the table
shows what channels_last buys. Classical models (IP-Basic, nearest fill) run on ONE
core (``cv2.setNumThreads(1)``; their numpy steps are single-threaded anyway).
Input: a synthetic street frame with simulated 64-beam LiDAR from
``depthsense.data.synthetic.render_frame`` when that module is available, else an analytic ground
plane sampled on scan lines. Medians over interleaved repetitions after warm-up.
Targets: sparse_unet >= 10 frames/s, ip_basic >= 60 frames/s, and the shipped model
(``sparse_unet+rgb+prefill``: its forward computes the IP-Basic and nearest pre-fills
itself, so their cost is included) >= 8 frames/s on 2 threads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import frame_bench_main, interleaved_medians, markdown_table, set_threads  # noqa: E402

from depthsense.models import build_model  # noqa: E402

VARIANTS = [
    ("ip_basic", {}),
    ("nearest", {}),
    ("sparse_unet", {}),
    ("dense_unet", {}),
    ("sparse_unet", {"rgb": True}),
    ("sparse_unet", {"rgb": True, "prefill": "ip_basic+nearest", "max_depth": 100.0}),  # the shipped model
    ("dense_unet", {"rgb": True}),
    ("sparse_convnet", {}),
    ("convnet", {}),
    ("convnet_mask", {}),
    ("monocular", {}),
]


def frame_inputs(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """(sparse, mask, rgb) of one frame, (1,1,H,W)/(1,3,H,W), and where it came from."""
    try:
        from depthsense.data.synthetic import render_frame
    except ImportError:  # the data package is optional for this benchmark
        render_frame = None
    if render_frame is not None:
        fr = render_frame(0, 0, h, w)
        sparse, rgb, src = fr.sparse, fr.rgb, f"data.synthetic.render_frame (density {fr.density:.1%})"
    else:
        v = np.arange(h, dtype=np.float32)[:, None] + 0.5
        ground = np.where(v > h / 2, 1.65 * 721 * (w / 1216) / np.maximum(v - h / 2, 1e-3), 0).clip(0, 80)
        keep = (np.arange(h)[:, None] % 4 == 0) & (np.random.default_rng(0).random((h, w)) < 0.5)
        sparse = np.where(keep, np.broadcast_to(ground, (h, w)), 0).astype(np.float32)
        rgb = np.random.default_rng(1).random((h, w, 3), dtype=np.float32)
        src = f"analytic ground plane on scan lines (density {np.count_nonzero(sparse) / sparse.size:.1%})"
    sp = torch.from_numpy(np.ascontiguousarray(sparse))[None, None]
    return sp, (sp > 0).float(), torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].contiguous(), src


def run(size=(352, 1216), threads=2, repeats=7, warmup=2) -> str:
    set_threads(threads)
    h, w = size
    sparse, mask, rgb, src = frame_inputs(h, w)
    cl = torch.channels_last
    inputs = {"nchw": (sparse, mask, rgb), "cl": tuple(t.contiguous(memory_format=cl) for t in (sparse, mask, rgb))}

    candidates, info = {}, {}
    for name, cfg in VARIANTS:
        label = name + ("+rgb" if cfg.get("rgb") else "") + ("+prefill (shipped)" if cfg.get("prefill") else "")
        torch.manual_seed(0)
        model = build_model(name, **cfg).eval()
        info[label] = (model.learned, sum(p.numel() for p in model.parameters()))
        if not model.learned:
            candidates[(label, "nchw")] = _call(model, inputs["nchw"], cv2_threads=1)
            continue
        candidates[(label, "nchw")] = _call(model, inputs["nchw"], cv2_threads=threads)
        model_cl = build_model(name, **cfg).eval().to(memory_format=cl)
        model_cl.load_state_dict(model.state_dict())
        candidates[(label, "cl")] = _call(model_cl, inputs["cl"], cv2_threads=threads)

    med = interleaved_medians(candidates, repeats=repeats, warmup=warmup)
    ref = med[("ip_basic", "nchw")]
    rows = []
    for label, (learned, params) in info.items():
        t_nchw = med[(label, "nchw")]
        t_cl = med.get((label, "cl"))
        best = min(t_nchw, t_cl) if t_cl is not None else t_nchw
        rows.append(
            [
                label,
                f"{params:,}",
                threads if learned else 1,
                f"{t_nchw * 1e3:.1f}",
                f"{t_cl * 1e3:.1f} ({t_nchw / t_cl:.2f}x)" if t_cl is not None else "-",
                f"{1.0 / best:.1f}",
                f"{best / ref:.1f}x",
            ]
        )
    header = [
        "model", "params", "threads", "ms NCHW", "ms channels_last (speed-up)", "frames/s (best)", "time vs IP-Basic"
    ]
    return (
        f"forward per {w}x{h} frame, eval + inference_mode, median of {repeats} interleaved runs "
        f"after {warmup} warm-up rounds; input: {src}\n\n" + markdown_table(header, rows)
    )


def _call(model, inputs, cv2_threads: int):
    sparse, mask, rgb = inputs

    def fn():
        cv2.setNumThreads(cv2_threads)
        with torch.inference_mode():
            return model(sparse, mask, rgb)

    return fn


def main(argv=None) -> int:
    return frame_bench_main(argv, __doc__, "Model forward time", run, threads_help="torch threads for the learned models")


if __name__ == "__main__":
    raise SystemExit(main())

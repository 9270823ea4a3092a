"""SparseConv2d vs nn.Conv2d (and a naive sparse conv), forward+backward.

    python benchmarks/bench_sparse_conv.py [--quick] [--size 352x1216] [--threads 2]

Input 1x16xHxW at 5% valid pixels is *not* what matters for speed (a dense conv costs
the same at any density); we use the mask a deep layer sees (dense after a few
layers) and a 5% mask, which cost the same. Targets: <= 1.4x at k=3, <= 1.2x at k=11.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians, markdown_table, set_threads  # noqa: E402

from depthsense.models.sparse_conv import SparseConv2d  # noqa: E402


class NaiveSparseConv2d(nn.Module):
    """The form earlier reproductions used: count by an in_channels-fold ones-conv."""

    def __init__(self, in_ch, out_ch, k):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, k, padding=k // 2, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("ones", torch.ones(1, in_ch, k, k))
        self.k = k

    def forward(self, x, mask):
        m = mask.expand_as(x)
        num = self.conv(x * m)
        count = F.conv2d(m, self.ones, padding=self.k // 2) / x.shape[1]
        y = num / (count + 1e-8) + self.bias.view(1, -1, 1, 1)
        new_mask = F.max_pool2d(mask, self.k, 1, self.k // 2)
        return y * new_mask, new_mask


def run(size=(352, 1216), channels=16, kernels=(3, 11), repeats=7, threads=2) -> str:
    set_threads(threads)
    h, w = size
    rows = []
    for k in kernels:
        torch.manual_seed(0)
        x = torch.randn(1, channels, h, w, requires_grad=True)
        mask = (torch.rand(1, 1, h, w) < 0.05).float()
        mods = {
            "conv": nn.Conv2d(channels, channels, k, padding=k // 2),
            "sparse": SparseConv2d(channels, channels, k),
            "naive": NaiveSparseConv2d(channels, channels, k),
        }

        def step(name):
            mod = mods[name]

            def fn():
                out = mod(x) if name == "conv" else mod(x, mask)[0]
                out.sum().backward()

            return fn

        med = interleaved_medians({n: step(n) for n in mods}, repeats=repeats, warmup=2)
        rows.append(
            [
                k,
                f"{med['conv'] * 1e3:.1f}",
                f"{med['sparse'] * 1e3:.1f}",
                f"{med['naive'] * 1e3:.1f}",
                f"{med['sparse'] / med['conv']:.2f}x",
                f"{med['naive'] / med['conv']:.2f}x",
                "<= 1.4x" if k == 3 else "<= 1.2x" if k == 11 else "",
            ]
        )
    header = ["k", "nn.Conv2d ms", "SparseConv2d ms", "naive ms", "sparse/conv", "naive/conv", "target"]
    return (
        f"fwd+bwd, 1x{channels}x{h}x{w}, {threads} threads, median of {repeats} interleaved runs\n\n"
        + markdown_table(header, rows)
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller input, fewer repeats")
    p.add_argument("--size", default="352x1216", help="HxW")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))
    if args.quick:
        h, w = 128, 384
    print("## SparseConv2d vs nn.Conv2d\n")
    print(run((h, w), repeats=3 if args.quick else 9, threads=args.threads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

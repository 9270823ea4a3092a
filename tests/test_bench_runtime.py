"""Smoke test of benchmarks/bench_runtime.py (timings are never asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from depthsense.inference import PRETRAINED_CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not PRETRAINED_CHECKPOINT.is_file(), reason="no shipped model installed")
def test_quick_run_prints_every_table(onnx_cache):
    env = dict(os.environ, DEPTHSENSE_CACHE=str(onnx_cache), NO_ALBUMENTATIONS_UPDATE="1")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_runtime.py"), "--quick"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    for title in ("CPU: ", "### Latency per frame", "### Peak memory", "### Frames/s per thread count",
                  "### Cost per megapixel", "### Where the time goes"):
        assert title in out, title
    for runtime in ("ip_basic", "torch", "onnxruntime"):
        assert f"| {runtime} |" in out
    assert "failed" not in out
    # the graph goes to the cache, never into the tree
    assert not [p for d in (ROOT, ROOT / "benchmarks", ROOT / "depthsense" / "pretrained") for p in d.glob("*.onnx")]

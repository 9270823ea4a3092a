"""Tests of depthsense/inference/onnx_runtime.py: Predictor(runtime=...) and depthsense-infer --runtime."""

from __future__ import annotations

import numpy as np
import pytest

from depthsense.config import UsageError
from depthsense.data.lidar import project_file, read_calibration
from depthsense.data.synthetic import render_frame
from depthsense.inference import PRETRAINED_CHECKPOINT, Predictor
from depthsense.inference.onnx_runtime import RUNTIMES, onnx_cache_path
from depthsense.io import read_depth, read_rgb, write_depth, write_rgb
from depthsense.tools import infer

pytestmark = pytest.mark.skipif(not PRETRAINED_CHECKPOINT.is_file(), reason="no shipped model installed")


@pytest.fixture(scope="module")
def runtimes(onnx_cache):
    return Predictor(runtime="torch"), Predictor(runtime="onnxruntime")


def test_onnxruntime_matches_torch_on_a_real_frame(runtimes, kitti_object_root):
    """Installed model, real KITTI frame 000000 at its full 1224x370, real LiDAR input.

    Measured with the shipped model of 2026-12-04 (norm=fixed): max |ort - torch| 0.076 mm,
    p99.9 0.011 mm (float32 rounding; printed with -s).
    """
    torch_p, ort_p = runtimes
    base = kitti_object_root / "training"
    rgb = read_rgb(base / "image_2" / "000000.png")
    _, scan = project_file(base / "velodyne" / "000000.bin", read_calibration(base / "calib" / "000000.txt"),
                           rgb.shape[:2])
    sparse = scan.depth_map()
    ref = torch_p.predict(rgb, sparse)
    got = ort_p.predict(rgb, sparse)
    assert got.shape == ref.shape == (370, 1224) and np.isfinite(got).all()
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    worst, p999 = float(diff.max()), float(np.percentile(diff, 99.9))
    print(f"\nonnxruntime vs torch on KITTI 000000 (1224x370): max abs diff {worst * 1e3:.4f} mm, "
          f"p99.9 {p999 * 1e3:.4f} mm, max depth {ref.max():.1f} m")
    assert p999 <= 1e-3, (worst, p999)  # within 1 mm at the 99.9th percentile
    assert worst <= 0.05, (worst, p999)  # and no pixel off by more than 5 cm
    assert ((got > 0) == (ref > 0)).mean() > 0.999


def test_export_is_cached_and_reused(runtimes, onnx_cache):
    _, ort_p = runtimes
    path = ort_p.onnx.path
    assert path.is_file() and path.parent == onnx_cache / "onnx" and path == onnx_cache_path(ort_p.model)
    again = Predictor(runtime="onnxruntime")
    assert again.onnx.path == path and not again.onnx.exported
    assert "via onnxruntime" in again.describe()


def test_unsupported_runtime_is_one_line_naming_the_alternatives(capsys):
    with pytest.raises(UsageError, match="torch, onnxruntime"):
        Predictor(model="ip_basic", runtime="tensorrt")
    assert infer.cli_main(["a.png", "b.png", "--runtime", "tensorrt"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "torch" in err and "onnxruntime" in err
    assert RUNTIMES == ("torch", "onnxruntime")  # the CLI's choices are written out in depthsense/infer_config.py


def test_onnxruntime_refuses_classical_models():
    with pytest.raises(UsageError, match="classical"):
        Predictor(model="ip_basic", runtime="onnxruntime")


def test_cli_runtime_onnxruntime_writes_the_torch_depth(runtimes, tmp_path, capsys):
    f = render_frame(3, 0, 96, 320)
    write_rgb(tmp_path / "img.png", f.rgb)
    write_depth(tmp_path / "sparse.png", f.sparse)
    args = [str(tmp_path / "img.png"), str(tmp_path / "sparse.png")]
    assert infer.main(args + ["--runtime", "onnxruntime", "--out", str(tmp_path / "o")]) == 0
    assert "via onnxruntime" in capsys.readouterr().out
    assert infer.main(args + ["--out", str(tmp_path / "t")]) == 0
    ort_depth, torch_depth = read_depth(tmp_path / "o" / "img_depth.png"), read_depth(tmp_path / "t" / "img_depth.png")
    assert np.abs(ort_depth - torch_depth).max() <= 2 / 256  # KITTI PNG steps of 1/256 m
    assert not list(tmp_path.glob("*.onnx")) and not list((tmp_path / "o").glob("*.onnx"))

"""Tests of depthsense/inference/precision.py: Predictor(precision=...)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthsense.config import UsageError
from depthsense.data.lidar import holdout_split, parse_holdout, project_file, read_calibration, ring_ids
from depthsense.inference import PRETRAINED_CHECKPOINT, Predictor
from depthsense import precision as precision_mod
from depthsense.io import read_rgb

pytestmark = pytest.mark.skipif(not PRETRAINED_CHECKPOINT.is_file(), reason="no shipped model installed")


def test_unknown_precision_is_one_line_naming_the_alternatives():
    with pytest.raises(UsageError) as err:
        Predictor(device="cpu", precision="fp16")
    assert "fp32, bf16" in str(err.value) and "\n" not in str(err.value)


def test_bf16_is_refused_where_the_cpu_would_emulate_it(monkeypatch):
    monkeypatch.setattr(precision_mod, "bf16_support", lambda device: "this CPU has no bf16 instructions")
    with pytest.raises(UsageError, match="no bf16 instructions; use --precision fp32"):
        Predictor(device="cpu", precision="bf16")


def test_bf16_is_refused_with_onnxruntime():
    with pytest.raises(UsageError, match="--precision bf16 runs with --runtime torch"):
        Predictor(device="cpu", runtime="onnxruntime", precision="bf16")


def test_bf16_keeps_the_accuracy_of_fp32_on_a_real_frame(monkeypatch, kitti_object_root):
    """Real KITTI frame 000000, every 2nd laser ring in, scored at the hidden rings.

    bf16 runs everywhere (emulated where the CPU lacks it), so the check is forced on; the
    bound is the speed issue's: RMSE and MAE within +2 % of fp32.
    """
    monkeypatch.setattr(precision_mod, "bf16_support", lambda device: None)
    base = kitti_object_root / "training"
    rgb = read_rgb(base / "image_2" / "000000.png")
    points, scan = project_file(base / "velodyne" / "000000.bin", read_calibration(base / "calib" / "000000.txt"),
                                 rgb.shape[:2])
    sparse, target = holdout_split(scan, parse_holdout("beams:2"), ring_ids(points))
    out = {}
    for prec in ("fp32", "bf16"):
        p = Predictor(device="cpu", precision=prec)
        pred = p.predict(rgb, sparse)
        assert pred.dtype == np.float32 and np.isfinite(pred).all() and (pred > 0).all()
        hidden = target > 0
        e = pred[hidden].astype(np.float64) - target[hidden]
        out[prec] = (float(np.sqrt(np.mean(e**2))), float(np.mean(np.abs(e))))
    assert out["bf16"][0] <= 1.02 * out["fp32"][0] and out["bf16"][1] <= 1.02 * out["fp32"][1], out
    assert "in bf16" in Predictor(device="cpu", precision="bf16").describe()


def test_bf16_support_names_the_missing_instructions(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert "AVX512-BF16 or AMX" in precision_mod.bf16_support(torch.device("cpu"))
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision_mod.bf16_support(torch.device("cpu")) is None


def test_cli_precision_bf16_writes_depth_close_to_fp32(monkeypatch, tmp_path, capsys):
    from depthsense.data.synthetic import render_frame
    from depthsense.io import read_depth, write_depth, write_rgb
    from depthsense.tools import infer

    monkeypatch.setattr(precision_mod, "bf16_support", lambda device: None)
    f = render_frame(3, 0, 96, 320)
    write_rgb(tmp_path / "img.png", f.rgb)
    write_depth(tmp_path / "sparse.png", f.sparse)
    args = [str(tmp_path / "img.png"), str(tmp_path / "sparse.png"), "--device", "cpu"]
    assert infer.main(args + ["--precision", "bf16", "--out", str(tmp_path / "b")]) == 0
    assert "in bf16" in capsys.readouterr().out
    assert infer.main(args + ["--out", str(tmp_path / "f")]) == 0
    bf, fp = read_depth(tmp_path / "b" / "img_depth.png"), read_depth(tmp_path / "f" / "img_depth.png")
    valid = fp > 0
    assert valid.mean() > 0.9 and np.median(np.abs(bf - fp)[valid] / fp[valid]) < 0.002


def test_cli_unknown_precision_is_one_line(capsys):
    from depthsense.tools import infer

    assert infer.cli_main(["a.png", "b.png", "--precision", "int4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "fp32" in err and "bf16" in err


def test_evaluate_precision_bf16_scores_like_fp32_and_is_recorded(monkeypatch, tmp_path):
    """depthsense-evaluate --precision bf16 runs the checkpoints in bf16: on synthetic street
    frames the scores stay within +2 % of fp32, and the report's command says --precision."""
    from depthsense.data import synthetic
    from depthsense.evaluation import evaluate
    from depthsense.eval_config import eval_config_from_args

    monkeypatch.setattr(precision_mod, "bf16_support", lambda device: None)
    root = tmp_path / "street"
    synthetic.generate(root, layout="kitti", frames=4, seed=0, height=96, width=320,
                       splits={"train": 2, "val": 2, "val_selection": 0, "test": 0})
    scores = {}
    for prec in ("fp32", "bf16"):
        cfg = eval_config_from_args(["--dataset", "synthetic", "--split", "val", "--data-root", str(root),
                                     "--checkpoints", f"m={PRETRAINED_CHECKPOINT}", "--baselines", "none",
                                     "--densities", "0.05", "--beams", "none", "--panels", "0", "--no-progress",
                                     "--device", "cpu", "--precision", prec, "--out", str(tmp_path / prec)])
        report = evaluate(cfg)
        scores[prec] = report.tables["5%"]["m"]
    for metric in ("rmse", "mae"):
        assert scores["bf16"][metric] <= 1.02 * scores["fp32"][metric], (metric, scores)
    assert scores["bf16"] != scores["fp32"]  # bf16 really ran: its rounding moves the scores a little
    assert "--precision bf16" in (tmp_path / "bf16" / "report.md").read_text()


def test_evaluate_refuses_bf16_without_native_support(monkeypatch, tmp_path):
    from depthsense.tools import evaluate as evaluate_tool

    monkeypatch.setattr(precision_mod, "bf16_support", lambda device: "this CPU has no bf16 instructions")
    assert evaluate_tool.cli_main(["--precision", "bf16", "--out", str(tmp_path / "o")]) == 2

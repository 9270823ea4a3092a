"""`make demo` end to end, at tiny settings (--quick): generate, train 4 models, evaluate."""

import json
import subprocess
import sys

import pytest
import torch

from depthsense.experiments import demo


def test_quick_demo_trains_evaluates_and_resumes(tmp_path, capsys, kitti_object_root, indoor_rgbd_root):
    out = tmp_path / "demo"
    assert demo.main(["--quick", "--out", str(out), "--real-root", str(kitti_object_root),
                      "--indoor-root", str(indoor_rgbd_root)]) == 0
    text = capsys.readouterr().out
    assert "## MAE [mm]" in text and "## RMSE [mm]" in text and "report:" in text
    header = next(line for line in text.splitlines() if line.startswith("| level |"))
    for name in demo.DEMO_MODELS:
        assert (out / "runs" / name / "last.pt").is_file()
        assert f"| {name} |" in header
    assert "| ip_basic |" in header and "| nearest |" in header
    report = json.loads((out / "report" / "report.json").read_text())
    columns = {m["name"] for m in report["models"]} if isinstance(report["models"], list) else set(report["models"])
    assert set(demo.DEMO_MODELS) | {"ip_basic", "nearest"} <= columns
    for f in ("report.md", "report.csv", "mae_vs_density.png", "rmse_vs_density.png"):
        assert (out / "report" / f).is_file()
    # The real-scan hold-out of the report frames, with every model and both baselines.
    assert "beams:2 hold-out" in text and "beams:4 hold-out" in text
    real = json.loads((out / "report_real" / "report.json").read_text())
    assert set(demo.DEMO_MODELS) | {"ip_basic", "nearest"} <= {m["name"] for m in real["models"]}
    assert real["config"]["split"] == "report"
    indoor = json.loads((out / "report_indoor" / "report.json").read_text())
    assert [lv["name"] for lv in indoor["levels"]] == ["samples:500", "uniform:5%", "lines:16", "holes:25%",
                                                      "keypoints:1000"]
    assert {"shipped", "ip_basic", "nearest", "colorization"} <= {m["name"] for m in indoor["models"]}
    assert "Real RGB-D frames, indoor report split" in text and "per source" in text
    assert (out / "report_indoor_synthetic" / "report.md").is_file()
    # A second run reuses the data and the finished runs instead of training again; without
    # real scans it says so.
    assert demo.main(["--quick", "--out", str(out), "--real-root", str(tmp_path / "none")]) == 0
    again = capsys.readouterr().out
    assert "real-scan hold-out skipped" in again
    assert "reusing synthetic frames" in again and again.count("already trained") == len(demo.DEMO_MODELS)


class _Killed(Exception):
    pass


def test_quick_demo_resumes_a_half_finished_run(tmp_path, capsys, monkeypatch):
    """A run killed at step 5 of 10 is continued from its last.pt: 5 more steps, not 10, not 0."""
    from depthsense.engine import Trainer

    out = tmp_path / "demo"
    args = ["--quick", "--out", str(out), "--models", "sparse_convnet", "--real-root", str(tmp_path / "none")]
    real_save = Trainer._save

    def save_then_die(self, name, metrics=None):
        real_save(self, name, metrics)
        if name == "last.pt" and self.step == 5:
            raise _Killed

    monkeypatch.setattr(Trainer, "_save", save_then_die)
    with pytest.raises(_Killed):
        demo.main(args)
    assert torch.load(out / "runs" / "sparse_convnet" / "last.pt", weights_only=True)["step"] == 5
    monkeypatch.setattr(Trainer, "_save", real_save)
    steps = []
    real_step = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", lambda self, batch: steps.append(self.step) or real_step(self, batch))
    capsys.readouterr()
    assert demo.main(args) == 0
    text = capsys.readouterr().out
    assert "already trained" not in text and "reusing synthetic frames" in text
    assert steps == [5, 6, 7, 8, 9]
    assert torch.load(out / "runs" / "sparse_convnet" / "last.pt", weights_only=True)["step"] == 10


def test_python_m_depthsense_demo_runs_the_experiment(tmp_path):
    """`make demo` and the README run `python -m depthsense.demo`: the entry module is the experiment's main."""
    import depthsense.demo

    assert depthsense.demo.main is demo.main
    proc = subprocess.run([sys.executable, "-m", "depthsense.demo", "--bogus"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("depthsense-demo: error: unrecognized arguments: --bogus")

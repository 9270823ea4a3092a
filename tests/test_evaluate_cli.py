"""depthsense-evaluate (tools/evaluate.py) as a hostile user meets it: one-line errors from
workers, full disks and argparse, outputs never inside the data, the shared synthetic cache,
--rgb-root and honest units. The evaluation itself is tested in test_evaluate.py."""

from __future__ import annotations

import errno
import shutil
import sys

import pytest
import torch

from depthsense import models
from depthsense.checkpoint import save_checkpoint
from depthsense.tools import evaluate as evaluate_cli
from depthsense.tools import train_depth

H, W = 64, 192


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from depthsense.data import synthetic

    path = tmp_path_factory.mktemp("eval_cli_kitti")
    synthetic.generate(path, layout="kitti", frames=4, seed=1, height=H, width=W,
                       splits={"train": 1, "val": 2, "val_selection": 0, "test": 1})
    return path


def _args(data_root, out, *extra):
    return ["--dataset", "synthetic", "--data-root", str(data_root), "--split", "val", "--baselines", "nearest",
            "--densities", "none", "--beams", "none", "--panels", "1", "--device", "cpu", "--no-progress",
            "--out", str(out), *extra]


def _one_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("depthsense-evaluate: error: ") and "Traceback" not in err, err
    return err


def test_bad_file_read_by_a_worker_is_one_line(root, tmp_path, capsys):
    bad = tmp_path / "data"
    shutil.copytree(root, bad)
    for png in (bad / "val").rglob("velodyne_raw/**/*.png"):
        png.write_text("not a png")
    for workers in ("0", "2"):
        assert evaluate_cli.cli_main(_args(bad, tmp_path / f"o{workers}", "--workers", workers)) == 2
        err = _one_line(capsys)
        assert "not a PNG file" in err and "DataLoader worker" not in err


def test_full_disk_is_one_line(root, tmp_path, capsys, monkeypatch):
    import depthsense.atomic as dio

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dio, "_write_file", full)
    assert evaluate_cli.cli_main(_args(root, tmp_path / "o")) == 2
    assert "No space left on device" in _one_line(capsys)
    # nothing stays: no temporary file, and the folder the command created is removed again when empty
    assert not (tmp_path / "o").exists() or not [p for p in (tmp_path / "o").iterdir() if ".tmp" in p.name]


def test_out_inside_the_data_and_argparse_errors_are_refused_in_one_line(root, tmp_path, capsys, monkeypatch):
    assert evaluate_cli.cli_main(_args(root, root / "report")) == 2
    assert "is inside --data-root" in _one_line(capsys) and not (root / "report").exists()
    monkeypatch.setattr(sys, "argv", ["/x/tools/evaluate.py"])
    assert evaluate_cli.cli_main(_args(root, tmp_path / "o", "--max-images", "x")) == 2
    assert "invalid int value: 'x' (see depthsense-evaluate --help)" in _one_line(capsys)


def test_train_and_evaluate_share_and_print_one_synthetic_cache(root, tmp_path, capsys, monkeypatch):
    from depthsense.config import synthetic_cache_root

    monkeypatch.setenv("DEPTHSENSE_CACHE", str(tmp_path / "cache"))
    cache = synthetic_cache_root()  # the defaults of depthsense-train --dataset synthetic
    shutil.copytree(root, cache)  # stands in for the 48 full-size frames train would generate
    (cache / ".complete-fg").write_text("ok\n")
    run = tmp_path / "run"
    assert train_depth.main(["--dataset", "synthetic", "--model", "sparse_convnet", "--loss", "l1", "--crop",
                             "32x96", "--batch-size", "1", "--steps", "1", "--workers", "0", "--val-samples", "1",
                             "--no-progress", "--out", str(run)]) == 0  # fmt: skip
    assert f"synthetic data: {cache} (cached" in capsys.readouterr().out
    assert evaluate_cli.main(["--dataset", "synthetic", "--checkpoints", str(run / "last.pt"), "--baselines", "none",
                              "--densities", "none", "--beams", "none", "--max-images", "1", "--no-progress",
                              "--out", str(tmp_path / "report")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"synthetic data: {cache} (cached" in out and "MAE [mm]" in out


def test_rgb_root_option(root, tmp_path, capsys):
    data, raw = tmp_path / "kitti", tmp_path / "raw"
    shutil.copytree(root, data)
    raw.mkdir()
    shutil.move(str(data / "2011_09_26"), str(raw / "2011_09_26"))
    args = _args(data, tmp_path / "o")
    args[args.index("synthetic")] = "kitti"
    assert evaluate_cli.cli_main(args) == 2
    assert "--rgb-root DIR" in _one_line(capsys)
    assert evaluate_cli.cli_main(args + ["--rgb-root", str(raw)]) == 0
    assert (tmp_path / "o" / "report.md").is_file()


def test_relative_depth_on_redweb_has_no_metre_unit(tmp_path, capsys):
    from depthsense.data import synthetic

    data = tmp_path / "redweb"
    synthetic.generate(data, layout="redweb", frames=2, seed=0, height=48, width=64)
    torch.manual_seed(0)
    model = models.build_model("monocular", width=4)
    save_checkpoint(tmp_path / "mono.pt", {"format": 1, "model": "monocular", "model_cfg": model.config,
                                           "state_dict": model.state_dict(), "train_cfg": {}, "step": 0,
                                           "metrics": {}})
    assert evaluate_cli.main(["--dataset", "redweb", "--data-root", str(data), "--split", "all", "--checkpoints",
                              str(tmp_path / "mono.pt"), "--no-progress", "--out", str(tmp_path / "o")]) == 0
    report = (tmp_path / "o" / "report.md").read_text()
    assert "RMSE (aligned) |" in report and "[m]" not in report  # ReDWeb's ground truth is relative
    import json

    assert json.loads((tmp_path / "o" / "report.json").read_text())["metric_units"]["ssi_rmse"] == ""


# --------------------------------------------------------------------------- issue 25 items 15, 17, 19


def test_a_warning_during_evaluation_is_one_note_line_not_a_raw_warning_twice(root, tmp_path, capsys, monkeypatch):
    import warnings

    import depthsense.evaluation.loop as loop

    real = loop._forward

    def warning_forward(*args, **kwargs):
        warnings.warn("the model saw something odd", UserWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "_forward", warning_forward)
    assert evaluate_cli.cli_main(_args(root, tmp_path / "o", "--densities", "1.0")) == 0
    out, err = capsys.readouterr()
    notes = [line for line in out.splitlines() if "odd" in line]
    assert len(notes) == 2 and all(n.startswith("note: level ") for n in notes), out  # once per level (100%, lidar)
    assert len(set(notes)) == 2
    assert "Warning" not in err and ".py:" not in err


def test_each_data_set_has_a_default_split_and_help_lists_every_data_set(kitti_object_root, tmp_path, capsys):
    from depthsense import data
    from depthsense.config import EvalConfig, eval_parser

    text = eval_parser().format_help()
    assert all(name in text for name in data.available_datasets())
    base = dict(baselines=("nearest",), densities=(), beams=(), holdout=None, out=str(tmp_path / "o"))
    assert EvalConfig(dataset="kitti_object", data_root="x", **base).resolved().split == "report"
    assert EvalConfig(dataset="rgbd", data_root="x", **base).resolved().split == "all"
    assert EvalConfig(dataset="synthetic", data_root="x", **base).resolved().split == "val"
    assert EvalConfig(dataset="kitti_object", data_root="x", split="all", **base).resolved().split == "all"
    assert evaluate_cli.cli_main(["--dataset", "kitti_object", "--data-root", str(kitti_object_root), "--baselines",
                                  "nearest", "--holdout", "beams:2", "--max-images", "1", "--panels", "0",
                                  "--no-progress", "--out", str(tmp_path / "o")]) == 0
    assert "split `report`" in (tmp_path / "o" / "report.md").read_text()


def test_checkpoints_pretrained_is_the_shipped_model(tmp_path):
    from depthsense.checkpoint import PRETRAINED_CHECKPOINT
    from depthsense.config import EvalConfig

    if not PRETRAINED_CHECKPOINT.is_file():
        pytest.skip("no shipped model in this checkout")
    cfg = EvalConfig(dataset="synthetic", data_root="x", checkpoints=("pretrained", "mine=pretrained")).resolved()
    assert cfg.checkpoints == (f"pretrained={PRETRAINED_CHECKPOINT}", f"mine={PRETRAINED_CHECKPOINT}")


@pytest.mark.parametrize("extra, needle, absent", [
    (["--dataset", "kitti_object", "--holdout", "none"], "pass --holdout beams:2", "--no-lidar"),
    (["--dataset", "kitti_object", "--beams", "32"], "pass --holdout beams:2 (or beams:4 ...) instead of --beams 32",
     "no LiDAR scan lines"),
    (["--no-lidar"], "pass --densities 0.05 or --beams 64,32 or --patterns samples:500, or drop --no-lidar", None),
])
def test_level_messages_name_only_what_applies(root, tmp_path, capsys, extra, needle, absent):
    assert evaluate_cli.cli_main(_args(root, tmp_path / "o", *extra)) == 2
    err = _one_line(capsys)
    assert needle in err and (absent is None or absent not in err)


def test_a_report_folder_loses_the_temp_files_of_killed_writes_and_keeps_others(root, tmp_path, capsys):
    """Issue 25 item 12 for depthsense-evaluate: under the folder's lock, temporary files whose
    writer no longer runs are removed; a user's hidden files and a live writer's are kept."""
    import os
    import subprocess

    out = tmp_path / "o"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [out / f".report.md.{dead.pid}-ab12cd34.tmp.md", out / f".panel_0.png.{dead.pid}-x_1.tmp.png"]
    kept = [out / ".notes.txt.tmp.txt", out / f".report.csv.{os.getpid()}-zz.tmp.csv", out / "mine.txt"]
    for p in (*stale, *kept):
        p.write_bytes(b"x")
    assert evaluate_cli.cli_main(_args(root, out)) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: removed ")]
    assert len(notes) == 2 and not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert (out / "report.md").is_file()

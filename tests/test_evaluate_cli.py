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
    import depthsense.io as dio

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dio, "_write_file", full)
    assert evaluate_cli.cli_main(_args(root, tmp_path / "o")) == 2
    assert "No space left on device" in _one_line(capsys)
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.endswith(".tmp.png")]


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

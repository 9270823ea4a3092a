"""depthsense/experiments/pretrain.py pieces: the per-sample sparsity mix and the data-set mixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from depthsense.data import build_dataset, synthetic
from depthsense.errors import DatasetError
from depthsense.experiments.pretrain import INDOOR_MIX, SPARSITY_MIX, MixedDataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("synth")
    synthetic.generate(r, layout="kitti", frames=6, seed=5, height=64, width=192,
                       splits={"train": 6, "val": 0, "val_selection": 0, "test": 0})
    return r


def test_sparsity_mix_draws_per_sample_and_epoch_reproducibly(root):
    ds = build_dataset("synthetic", root, "train", seed=3)
    ds.set_sparsity_mix([{"density": (0.01, 0.5)}, {}], [0.5, 0.5])
    lidar = build_dataset("synthetic", root, "train", seed=3)
    densities = set()
    for epoch in range(16):
        ds.set_epoch(epoch)
        a, b = ds[2], ds[2]
        torch.testing.assert_close(a["sparse"], b["sparse"])  # same (index, epoch): same input
        d = float(a["mask"].mean())
        own = torch.equal(a["sparse"], lidar[2]["sparse"])
        if not own:  # a uniform sample of the ground truth, inside the range
            assert (a["sparse"][a["mask"] > 0] == a["gt"][a["mask"] > 0]).all()
            assert 0.01 * 0.9 <= d <= 0.5 * 1.1
        densities.add(round(d, 4))
    assert len(densities) >= 3  # the draw changes with the epoch


def test_sparsity_mix_rejects_bad_options(root):
    ds = build_dataset("synthetic", root, "train")
    with pytest.raises(DatasetError, match="at most one of"):
        ds.set_sparsity_mix([{"density": 0.1, "beams": 16}])
    with pytest.raises(DatasetError, match="density"):
        ds.set_sparsity_mix([{"density": (0.01, 2.0)}])
    with pytest.raises(DatasetError, match="weights"):
        ds.set_sparsity_mix([{}, {"beams": 16}], [1.0])
    for mix in (SPARSITY_MIX, INDOOR_MIX):
        options, weights = zip(*mix)
        ds.set_sparsity_mix(options, weights)  # the shipped recipe is valid
        assert abs(sum(weights) - 1.0) < 1e-9


def test_mixture_repeats_parts_and_reaches_every_epoch(root):
    a = build_dataset("synthetic", root, "train", density=0.05)
    b = build_dataset("synthetic", root, "train", density=0.2)
    mix = MixedDataset([(a, 1), (Subset(b, [0, 1]), 3)])
    assert len(mix) == 6 + 2 * 3
    torch.testing.assert_close(mix[0]["sparse"], a[0]["sparse"])
    torch.testing.assert_close(mix[6]["sparse"], b[0]["sparse"])
    torch.testing.assert_close(mix[9]["sparse"], b[1]["sparse"])  # 6 + 3 -> repeat 2 of item 1
    mix.set_epoch(4)
    assert a.epoch == 4 and b.epoch == 4
    assert float(np.mean([float(mix[i]["mask"].mean()) for i in range(6, 12)])) > 0.15


def test_synthetic_and_real_samples_batch_together(root, kitti_object_root):
    """Synthetic samples carry foreground masks, real scans do not: one batch holds both."""
    from depthsense.data import collate_samples
    from depthsense.data.transforms import train_transform

    tf = train_transform(crop=(48, 96), hflip=0.0, colour_jitter=False, bottom=True)
    synth = build_dataset("synthetic", root, "train", transform=tf, density=0.05)
    real = build_dataset("kitti_object", kitti_object_root, "train", transform=tf, holdout="beams:4")
    assert "fg" in synth[0] and "fg" not in real[0]
    batch = collate_samples([synth[0], real[0], synth[1]])
    assert batch["fg"].shape == (3, 1, 48, 96)
    torch.testing.assert_close(batch["fg_valid"], torch.tensor([1.0, 0.0, 1.0]))
    assert batch["fg"][1].abs().sum() == 0  # the filled mask is empty, marked invalid
    torch.testing.assert_close(batch["fg"][2], synth[1]["fg"])
    assert batch["gt"].shape == (3, 1, 48, 96) and len(batch["meta"]["rgb_path"]) == 3
    plain = collate_samples([synth[0], synth[1]])  # one data set: no validity vector
    assert "fg_valid" not in plain and plain["fg"].shape == (2, 1, 48, 96)


def test_collate_refuses_a_batch_mixing_ground_truth_and_none(root):
    from depthsense.data import collate_samples

    ds = build_dataset("synthetic", root, "train", density=0.05)
    a, b = ds[0], ds[1]
    del b["gt"]
    with pytest.raises(DatasetError, match="with and without gt"):
        collate_samples([a, b])


def test_tiny_pretrain_runs_end_to_end(tmp_path, kitti_object_root, monkeypatch, capsys):
    """The shipped model's recipe (`make pretrained`) with tiny settings: both stages,
    synthetic + real scans batched together, and the shipped checkpoint written. Ctrl-C
    in stage 1 says the step and the command that continues (the same one, no absolute
    path); the rerun removes the temporary files of killed writes and finishes; the
    record names no folder of the machine (issue 25 items 1, 12, 13, 16)."""
    import shlex

    from depthsense.checkpoint import build_model_from_checkpoint, load_checkpoint
    from depthsense.config import run_cli
    from depthsense.engine import Trainer
    from depthsense.experiments.pretrain import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "pt"
    argv = ["--frames", "6", "--size", "64x192", "--steps-synthetic", "4", "--steps-real", "4",
            "--batch-size", "3", "--crop", "48x96", "--width", "4", "--workers", "0", "--no-eval",
            "--no-progress", "--real-root", str(kitti_object_root), "--out", str(out)]
    real_step = Trainer.train_step

    def interrupted(self, batch):
        if self.step == 2:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    assert run_cli(main, argv, prog="python -m depthsense.pretrain") == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"interrupted at step 2 of 4; {out / 'stage1_synthetic' / 'last.pt'} holds step 2. Continue with: " in err
    command = err.split("Continue with: ", 1)[1].split(" (the same command", 1)[0]
    assert command == "python -m depthsense.pretrain " + " ".join(
        shlex.quote(a if not os.path.isabs(a) else os.path.relpath(a)) for a in argv)
    assert str(tmp_path) not in command and "--out pt" in command
    monkeypatch.setattr(Trainer, "train_step", real_step)

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [out / "stage1_synthetic" / f".last.pt.{dead.pid}-a1.tmp.pt", out / f".pretrained.pt.{dead.pid}-b2.tmp.pt"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    rc = main(shlex.split(command)[3:])  # the command said, from the same folder
    assert rc == 0
    printed = capsys.readouterr().out
    assert not any(p.exists() for p in stale) and printed.count("a temporary file of an interrupted write") == 2
    ckpt = load_checkpoint(out / "pretrained.pt")
    assert ckpt["step"] == 4 and ckpt["about"]["steps"] == {"synthetic": 4, "real+synthetic": 4}
    assert ckpt["train_cfg"]["init"] == os.path.join("stage1_synthetic", "last.pt")  # stage 2 started from stage 1
    assert (ckpt["train_cfg"]["data_root"], ckpt["train_cfg"]["out"]) == ("synthetic", "stage2_real")
    assert ckpt["about"]["command"] == command
    # The recorded time covers both invocations of the interrupted stage 1, not only the resumed part.
    summary = json.loads((out / "stage1_synthetic" / "summary.json").read_text())
    assert summary["seconds_total"] > summary["seconds_this_run"] > 0
    stage1 = load_checkpoint(out / "stage1_synthetic" / "last.pt")["progress"]["train_seconds"]
    assert stage1 == pytest.approx(summary["seconds_total"], abs=0.01)
    assert ckpt["about"]["timings_minutes"]["stage 1"] == round(stage1 / 60, 2)
    assert abs(ckpt["about"]["train_minutes"] - sum(ckpt["about"]["timings_minutes"].values())) <= 0.1
    assert str(tmp_path) not in repr(ckpt["about"]) + repr(ckpt["train_cfg"])  # no path of this machine
    model = build_model_from_checkpoint(ckpt).eval()
    s = torch.zeros(1, 1, 48, 96)
    s[..., ::7, ::5] = 10.0
    with torch.no_grad():
        assert torch.isfinite(model(s, (s > 0).float(), torch.rand(1, 3, 48, 96))).all()


@pytest.mark.parametrize("extra, needle", [
    (["--real-share", "1"], "--real-share must be in [0, 1), got 1.0"),
    (["--frames", "2"], "--frames must be >= 3, got 2"),
    (["--steps-synthetic", "0"], "--steps-synthetic must be >= 1"),
    (["--real-lr-scale", "-1"], "--real-lr-scale must be > 0"),
    (["--lr", "nan"], "--lr must be > 0, got nan"),
    (["--crop", "none"], "--crop: crop 'none': expected HxW"),
    (["--size", "-5x10"], "--size: size '-5x10': both sides must be >= 16 pixels"),
    (["--frames", "many"], "argument --frames: invalid int value: 'many' (see python -m depthsense.pretrain --help)"),
])
def test_options_that_make_the_rebuild_meaningless_are_one_line_before_any_work(tmp_path, capsys, extra, needle):
    from depthsense.config import run_cli
    from depthsense.experiments.pretrain import main

    assert run_cli(main, [*extra, "--out", str(tmp_path / "pt")], prog="python -m depthsense.pretrain") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "pt").exists()


def test_python_m_depthsense_pretrain_runs_the_recipe(tmp_path):
    """`make pretrained` and the shipped model's record name `python -m depthsense.pretrain`."""
    import depthsense.pretrain
    from depthsense.experiments import pretrain

    assert depthsense.pretrain.main is pretrain.main
    proc = subprocess.run([sys.executable, "-m", "depthsense.pretrain", "--help"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m depthsense.pretrain")


def test_report_sources_are_never_trained_on(tmp_path):
    from depthsense.config import UsageError
    from depthsense.pretrain import main

    with pytest.raises(UsageError, match="slambook_nyu belong to the indoor report split"):
        main(["--dev-sources", "o3d_tum,slambook_nyu", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
def test_the_recorded_command_holds_no_absolute_path(tmp_path, monkeypatch):
    from depthsense.experiments.pretrain import portable_args

    monkeypatch.chdir(tmp_path)
    args = portable_args(["--out", str(tmp_path / "final"), f"--real-root={tmp_path.parent / 'shared'}", "--install",
                          "--frames", "8"])
    assert args == ["--out", "final", "--real-root=../shared", "--install", "--frames", "8"]
    assert not any(os.path.isabs(a.split("=")[-1]) for a in args)


def test_tiny_pretrain_with_its_evaluation_scores_every_world(tmp_path, monkeypatch, kitti_object_root,
                                                              indoor_rgbd_root):
    """The whole recipe with the evaluation the shipped card records: street sweep, real report
    frames, indoor report split and synthetic rooms, each a report and a score in the card."""
    from depthsense.checkpoint import load_checkpoint
    from depthsense.experiments.pretrain import main

    monkeypatch.chdir(tmp_path)
    argv = ["--frames", "6", "--size", "64x192", "--indoor-frames", "4", "--indoor-size", "64x96",
            "--steps-synthetic", "2", "--steps-real", "2", "--batch-size", "2", "--crop", "48x96", "--width", "4",
            "--workers", "0", "--no-progress", "--real-root", str(kitti_object_root), "--indoor-root",
            str(indoor_rgbd_root), "--eval-frames", "4", "--eval-size", "64x192", "--eval-images", "2", "--out", "pt"]
    assert main(argv) == 0
    scores = load_checkpoint(tmp_path / "pt" / "pretrained.pt")["about"]["scores"]
    assert set(scores) == {"synthetic_demo_val", "synthetic_indoor_val", "real_report_frames", "indoor_report_split"}
    for report in ("report_synthetic", "report_indoor_synthetic", "report_real", "report_indoor"):
        assert (tmp_path / "pt" / report / "report.md").is_file(), report

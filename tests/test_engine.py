"""Training engine and depthsense-train CLI, on a tiny generated KITTI-layout set."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from depthsense import checkpoint as ckpt_io
from depthsense.config import TrainConfig, UsageError
from depthsense.engine import EpochSampler, NonFiniteLossError, Trainer, build_datasets, train
from depthsense.tools import train_depth

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from depthsense.data import synthetic

    root = tmp_path_factory.mktemp("tiny_kitti")
    synthetic.generate(root, layout="kitti", frames=12, seed=3, height=64, width=192)
    return root


def _args(root, out, *extra):
    return [
        "--dataset", "synthetic", "--data-root", str(root), "--model", "sparse_convnet",
        "--loss", "l1:1.0", "--crop", "32x96", "--batch-size", "2", "--workers", "0",
        "--out", str(out), "--no-progress", "--val-samples", "1", "--lr", "3e-3", *extra,
    ]  # fmt: skip


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=str(ROOT))
    return env


def test_cli_trains_and_writes_checkpoints_logs_and_summary(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, out, "--steps", "6", "--ckpt-every", "3", "--log-every", "2")) == 0
    assert "trained 6 steps" in capsys.readouterr().out
    for name in ("last.pt", "best.pt", "summary.json"):
        assert (out / name).is_file()
    assert list((out / "tb").glob("events.out.tfevents.*"))
    c = torch.load(out / "last.pt", weights_only=True)
    assert c["format"] == 1 and c["model"] == "sparse_convnet" and c["step"] == 6
    assert c["train_cfg"]["crop"] == [32, 96] and "optimizer" in c and "rng" in c
    model = ckpt_io.build_model_from_checkpoint(out / "best.pt")
    assert sum(p.numel() for p in model.parameters()) == 25585
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["samples_per_second"] > 0
    # TensorBoard holds every loss term, lr, the timing blocks and validation metrics.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(out / "tb"))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"train/loss", "train/l1", "train/lr", "time/data_s_per_step", "time/forward_s_per_step",
            "time/backward_s_per_step", "time/optimizer_s_per_step", "val/rmse", "val/mae"} <= tags  # fmt: skip
    assert "val/panel" in ea.Tags()["images"]


def test_training_reduces_validation_error(tiny_root, tmp_path):
    cfg = TrainConfig(dataset="synthetic", data_root=str(tiny_root), model="sparse_convnet", loss="l1:1.0",
                      crop=(32, 96), batch_size=2, workers=0, out=str(tmp_path / "r"), progress=False,
                      steps=40, val_every=40, val_samples=2, lr=3e-3)  # fmt: skip
    cfg = cfg.resolved()
    train_set, val_set = build_datasets(cfg, str(tiny_root))
    from depthsense import losses
    from depthsense import models

    torch.manual_seed(0)
    trainer = Trainer(cfg, models.build_model("sparse_convnet"), losses.build_loss("l1"), train_set, val_set,
                      torch.device("cpu"))  # fmt: skip
    before = trainer.validate()["mae"]
    trainer.fit()
    after = trainer.last_val["mae"]
    assert after < 0.7 * before, (before, after)


def test_epoch_sampler_ranks_partition_the_single_process_batches():
    single = list(EpochSampler(10, 4, seed=1))
    r0 = list(EpochSampler(10, 2, seed=1, rank=0, world=2))
    r1 = list(EpochSampler(10, 2, seed=1, rank=1, world=2))
    assert len(single) == 8 and len(r0) == len(r1) == 4
    for step in range(2):
        assert sorted(single[4 * step : 4 * step + 4]) == sorted(r0[2 * step : 2 * step + 2] + r1[2 * step : 2 * step + 2])
    s = EpochSampler(10, 2, seed=1)
    s.set_position(epoch=0, skip_batches=2)
    assert list(s) == list(EpochSampler(10, 2, seed=1))[4:]
    s.set_position(epoch=1)
    assert list(s) != list(EpochSampler(10, 2, seed=1))


def _state_of(path):
    return torch.load(path, weights_only=True)["state_dict"]


def test_sigkill_and_resume_gives_identical_weights(tiny_root, tmp_path):
    steps = ["--steps", "40", "--ckpt-every", "4", "--val-every", "20"]
    cmd = [sys.executable, "-m", "depthsense.tools.train_depth"]
    ref = tmp_path / "ref"
    subprocess.run(cmd + _args(tiny_root, ref, *steps), check=True, env=_env(), cwd=ROOT, capture_output=True)

    run = tmp_path / "killed"
    proc = subprocess.Popen(cmd + _args(tiny_root, run, *steps), env=_env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    killed_after = None
    while time.time() < deadline and proc.poll() is None:
        if (run / "last.pt").exists():
            try:
                step = torch.load(run / "last.pt", weights_only=True)["step"]
            except Exception:  # replaced while we read it
                continue
            if step >= 9:
                proc.send_signal(signal.SIGKILL)
                killed_after = step
                break
        time.sleep(0.02)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert killed_after is not None and killed_after < 40
    resumed = subprocess.run(cmd + _args(tiny_root, run, *steps, "--resume"), env=_env(), cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    a, b = _state_of(ref / "last.pt"), _state_of(run / "last.pt")
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 40
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{k} differs after resume")


def test_non_finite_loss_stops_with_step_and_files_and_keeps_checkpoint(tiny_root, tmp_path, monkeypatch):
    from depthsense import losses

    out = tmp_path / "nan"
    assert train_depth.main(_args(tiny_root, out, "--steps", "2", "--ckpt-every", "2")) == 0
    good = (out / "last.pt").read_bytes()

    real = losses.build_loss

    def exploding(spec, **kw):
        inner = real(spec, **kw)

        class Boom(torch.nn.Module):
            def forward(self, pred, gt, mask=None, rgb=None):
                total, terms = inner(pred, gt, mask=mask, rgb=rgb)
                return total * float("nan"), terms

        return Boom()

    monkeypatch.setattr(losses, "build_loss", exploding)
    cfg = TrainConfig(**{**TrainConfig().to_dict(), "dataset": "synthetic", "data_root": str(tiny_root),
                         "model": "sparse_convnet", "loss": "l1", "crop": (32, 96), "batch_size": 2,
                         "workers": 0, "out": str(out), "progress": False, "steps": 4, "resume": True,
                         "override": True})  # fmt: skip
    with pytest.raises(NonFiniteLossError) as exc:
        train(cfg)
    msg = str(exc.value)
    assert "step 3" in msg and ".png" in msg and "left untouched" in msg
    assert (out / "last.pt").read_bytes() == good


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--model", "no_such_model"], "known models"),
        (["--loss", "l1:abc"], "--loss"),
        (["--loss", "nope:1"], "known"),
        (["--resume"], "no checkpoint"),
        (["--batch-size", "500"], "fewer than one batch"),
        (["--density", "1.5"], "--density"),
        (["--model", "ip_basic"], "nothing to train"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tiny_root, tmp_path, capsys, extra, needle):
    code = train_depth.cli_main(_args(tiny_root, tmp_path / "bad", "--steps", "1", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err


def test_cli_missing_root_unwritable_out_and_existing_run(tiny_root, tmp_path, capsys):
    code = train_depth.cli_main(_args(tmp_path / "nowhere", tmp_path / "o", "--steps", "1"))
    assert code == 2 and "nowhere" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert train_depth.cli_main(_args(tiny_root, blocker / "sub", "--steps", "1")) == 2
    assert "--out" in capsys.readouterr().err
    out = tmp_path / "done"
    assert train_depth.main(_args(tiny_root, out, "--steps", "1")) == 0
    before = (out / "last.pt").read_bytes()
    assert train_depth.cli_main(_args(tiny_root, out, "--steps", "1")) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "last.pt").read_bytes() == before
    # A checkpoint of another model cannot be resumed by this one.
    code = train_depth.cli_main(_args(tiny_root, out, "--steps", "2", "--resume", "--model", "convnet"))
    assert code == 2 and "sparse_convnet" in capsys.readouterr().err


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_logs(log_dir):
    """Every rank's own stdout/stderr, in full, as torchrun's --log-dir kept them."""
    parts = [f"--- {f} ---\n{f.read_text(errors='replace')}" for f in sorted(Path(log_dir).rglob("*.log"))]
    return "\n".join(parts) or f"(no rank logs under {log_dir})"


def test_ddp_two_process_gloo_matches_single_process_double_batch(tiny_root, tmp_path):
    common = ["--steps", "6", "--val-every", "0", "--ckpt-every", "0", "--lr", "1e-3"]
    single = tmp_path / "single"
    base = _args(tiny_root, single, *common)
    base[base.index("--batch-size") + 1] = "4"
    subprocess.run([sys.executable, "-m", "depthsense.tools.train_depth", *base], check=True, env=_env(), cwd=ROOT,
                   capture_output=True)  # fmt: skip
    ddp, logs = tmp_path / "ddp", tmp_path / "rank_logs"
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         "--log-dir", str(logs), "--redirects", "3",  # each rank's stdout/stderr in its own file
         "-m", "depthsense.tools.train_depth", *_args(tiny_root, ddp, *common)],
        env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, f"torchrun exit {r.returncode}\n{r.stderr[-3000:]}\n{_rank_logs(logs)}"
    from depthsense import models

    torch.manual_seed(TrainConfig().seed)  # the engine seeds model init with cfg.seed
    init = models.build_model("sparse_convnet").state_dict()
    a, b = _state_of(single / "last.pt"), _state_of(ddp / "last.pt")
    da = torch.cat([(a[k] - init[k]).flatten() for k in a])
    db = torch.cat([(b[k] - init[k]).flatten() for k in a])
    assert da.norm() > 0
    # Same samples per step, gradients averaged over the ranks: only the float summation
    # order differs. 63 correct runs all gave 8.7e-4 (deterministic); 0.005 leaves ~6x margin.
    assert (da - db).norm() / da.norm() < 0.005, float((da - db).norm() / da.norm())


# --------------------------------------------------------------------------- issue 15: hardening


def _one_line_error(capsys, prog="depthsense-train"):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: ") and "Traceback" not in err, err
    return err


def test_resume_with_another_batch_size_or_fewer_frames_finishes(tiny_root, tmp_path):
    """Used to hang at 100% CPU: the stored position in the epoch was past the new epoch's end."""
    run = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, run, "--steps", "3")) == 0  # batch 2: stops at position 3 of 4
    cmd = [sys.executable, "-m", "depthsense.tools.train_depth"]
    resumed = subprocess.run(cmd + _args(tiny_root, run, "--steps", "5", "--resume", "--override",
                                         "--batch-size", "4"),
                             env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=240)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "position 1 of 2" in resumed.stdout
    assert "trained 2 steps in this session (steps 4-5; the run has 5)" in resumed.stdout
    from depthsense.data import synthetic

    fewer = tmp_path / "fewer"
    synthetic.generate(fewer, layout="kitti", frames=6, seed=3, height=64, width=192)
    resumed = subprocess.run(cmd + _args(fewer, run, "--steps", "7", "--resume", "--override"),  # 3 train frames
                             env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=240)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 7


def test_resume_restores_the_run_refuses_contradictions_and_says_when_complete(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, run, "--steps", "2")) == 0
    capsys.readouterr()
    last = (run / "last.pt").read_bytes()
    events = sorted((run / "tb").iterdir())
    # Only --out and --resume: the stored model, data, crop, loss and batch size are used.
    assert train_depth.cli_main(["--out", str(run), "--resume", "--workers", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "already complete at step 2" in out and "--override" in out
    assert (run / "last.pt").read_bytes() == last and sorted((run / "tb").iterdir()) == events  # nothing written
    assert train_depth.cli_main(["--out", str(run), "--resume", "--batch-size", "3"]) == 2
    err = _one_line_error(capsys)
    assert "--batch-size 3 but the run was trained with 2" in err and "--override" in err
    assert train_depth.cli_main(["--out", str(run), "--resume", "--steps", "4", "--override", "--workers", "0",
                                 "--no-progress"]) == 0  # fmt: skip
    cfg = json.loads((run / "summary.json").read_text())["config"]
    assert (cfg["model"], cfg["loss"], cfg["crop"], cfg["batch_size"], cfg["steps"]) == (
        "sparse_convnet", "l1:1.0", [32, 96], 2, 4)
    assert os.path.realpath(cfg["data_root"]) == os.path.realpath(tiny_root)


def test_tensorboard_after_resume_has_every_step_once(tiny_root, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def steps(run):
        ea = EventAccumulator(str(run / "tb"))
        ea.Reload()
        return [e.step for e in ea.Scalars("train/loss")]

    run = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, run, "--steps", "3", "--log-every", "1")) == 0
    assert train_depth.main(_args(tiny_root, run, "--steps", "5", "--log-every", "1", "--resume", "--override")) == 0
    assert steps(run) == [1, 2, 3, 4, 5]  # step 3 was purged as "stale" before
    # A run killed after logging step 4 but with last.pt at step 2: the stale steps 3-4 are replaced.
    killed = tmp_path / "killed"
    real_save = Trainer._save
    monkeypatch.setattr(Trainer, "_save", lambda self, name, metrics=None: (
        real_save(self, name, metrics) if self.step <= 2 else None))
    assert train_depth.main(_args(tiny_root, killed, "--steps", "4", "--log-every", "1", "--ckpt-every", "2")) == 0
    monkeypatch.setattr(Trainer, "_save", real_save)
    assert torch.load(killed / "last.pt", weights_only=True)["step"] == 2
    assert train_depth.main(_args(tiny_root, killed, "--steps", "4", "--log-every", "1", "--resume")) == 0
    assert steps(killed) == [1, 2, 3, 4]


def test_bad_file_in_a_worker_process_is_the_same_one_line_error(tiny_root, tmp_path, capsys):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    for png in (root / "train").rglob("velodyne_raw/**/*.png"):
        png.write_text("not a png")
    for workers in ("0", "1"):
        args = _args(root, tmp_path / f"w{workers}", "--steps", "2")
        args[args.index("--workers") + 1] = workers
        assert train_depth.cli_main(args) == 2
        err = _one_line_error(capsys)
        assert "velodyne_raw" in err and "not a PNG file" in err and "DataLoader worker" not in err


def test_full_disk_is_one_line_and_the_checkpoint_stays_intact(tiny_root, tmp_path, capsys, monkeypatch):
    import errno

    run = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, run, "--steps", "2")) == 0
    capsys.readouterr()
    good, best = (run / "last.pt").read_bytes(), (run / "best.pt").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)  # checkpoint writes
    assert train_depth.cli_main(_args(tiny_root, run, "--steps", "4", "--resume", "--override")) == 2
    err = _one_line_error(capsys)
    assert ".pt: cannot write (No space left on device)" in err and "Nothing was replaced" in err
    assert (run / "last.pt").read_bytes() == good and (run / "best.pt").read_bytes() == best
    assert not list(run.glob(".*.tmp*"))
    monkeypatch.undo()
    from torch.utils.tensorboard import SummaryWriter

    monkeypatch.setattr(SummaryWriter, "add_scalar", full)  # TensorBoard writes
    assert train_depth.cli_main(_args(tiny_root, run, "--steps", "4", "--resume", "--override")) == 2
    assert "No space left on device" in _one_line_error(capsys)
    assert (run / "last.pt").read_bytes() == good


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--steps", "x"], "argument --steps: invalid int value: 'x' (see depthsense-train --help)"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["--loss", ""], "--loss '' is empty"),
        (["--steps", "0", "--epochs", "0"], "nothing to train"),
        (["--density", "1e-9"], "--density 1e-09 gives about 3.1e-06 input points per 32x96 training sample"),
        (["--model-arg", "channels=-3"], "--model-arg channels=-3: sparse_convnet cannot be built"),
        (["--model-arg", "channels=abc"], "--model-arg channels='abc': sparse_convnet expects an integer"),
        (["--rgb-root", "/tmp"], "--rgb-root is for --dataset kitti"),
        (["--model", "nope"], "known models"),
        (["--grad-clip", "-1"], "--grad-clip must be >= 0, got -1.0"),
        (["--weight-decay", "-0.1"], "--weight-decay must be >= 0"),
        (["--max-depth", "0"], "--max-depth must be > 0"),
        (["--model", "sparse_unet", "--model-arg", "heads=depth,conf,fg", "--model-arg", "width=4"],
         "2 problem(s): the conf head needs a loss term (laplace_nll); the fg head needs a loss term"),
    ],
)
def test_bad_options_are_one_line_and_create_no_out(tiny_root, tmp_path, capsys, monkeypatch, extra, needle):
    monkeypatch.setattr(sys, "argv", ["/x/train_depth.py"])  # the prefix is the console-script name anyway
    out = tmp_path / "new" / "run"
    assert train_depth.cli_main(_args(tiny_root, out, "--steps", "1", *extra)) == 2
    assert needle in _one_line_error(capsys)
    assert not (tmp_path / "new").exists()


def test_out_inside_the_data_root_is_refused(tiny_root, tmp_path, capsys):
    assert train_depth.cli_main(_args(tiny_root, tiny_root / "run", "--steps", "1")) == 2
    assert "is inside --data-root" in _one_line_error(capsys)
    assert not (tiny_root / "run").exists()


def test_final_line_and_summary_state_units(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, run, "--steps", "2")) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert " mm, rmse " in line and line.count(" mm") == 2 and "1/km" in line
    units = json.loads((run / "summary.json").read_text())["units"]
    assert units["best"]["mae"] == units["best"]["rmse"] == "mm" and "l1 in m" in units["loss"]


def test_only_the_reporting_rank_prints_the_final_line(monkeypatch, capsys):
    from depthsense import engine
    from depthsense.engine import TrainResult

    result = TrainResult(steps=6, seconds=1.0, samples_per_second=1.0, best={}, last_checkpoint="x/last.pt",
                         best_checkpoint=None, main=False)
    monkeypatch.setattr(engine, "train", lambda cfg, explicit=None: result)
    assert train_depth.main(["--steps", "6"]) == 0
    assert capsys.readouterr().out == ""  # rank 1 under torchrun: no "best val: n/a" line


def test_kitti_rgb_root_option(tiny_root, tmp_path, capsys):
    import shutil

    root, raw = tmp_path / "kitti", tmp_path / "raw"
    shutil.copytree(tiny_root, root)
    raw.mkdir()
    shutil.move(str(root / "2011_09_26"), str(raw / "2011_09_26"))  # RGB and calibration elsewhere
    args = _args(root, tmp_path / "run", "--steps", "1")
    args[args.index("synthetic")] = "kitti"
    assert train_depth.cli_main(args) == 2
    assert "--rgb-root DIR" in _one_line_error(capsys)
    assert train_depth.cli_main(args + ["--rgb-root", str(raw)]) == 0


# --------------------------------------------------------------------------- issue 18: what the loop must do


class _ScriptedScores:
    """Stands in for MetricAccumulator in ``Trainer.validate``: each validation reports
    the next scripted RMSE (mm), so which checkpoint is "best" is known in advance."""

    def __init__(self, scores):
        self.scores = iter(scores)

    def __call__(self, names):
        scores = self.scores

        class _Acc:
            def update(self, pred, gt, mask=None):
                pass

            def compute(self):
                rmse = next(scores)
                return {"images": 1, "mae": rmse / 2, "rmse": rmse, "imae": 1.0, "irmse": 2.0}

        return _Acc()


def test_best_checkpoint_keeps_the_lowest_score_and_resume_restores_it(tiny_root, tmp_path, monkeypatch):
    from depthsense.engine import trainer

    run = tmp_path / "run"
    monkeypatch.setattr(trainer, "MetricAccumulator", _ScriptedScores([500.0, 300.0, 400.0]))
    assert train_depth.main(_args(tiny_root, run, "--steps", "3", "--val-every", "1")) == 0
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["step"] == 2 and best["metrics"]["rmse"] == 300.0  # the lowest, not the first or the last
    assert json.loads((run / "summary.json").read_text())["best"]["step"] == 2
    best_bytes = (run / "best.pt").read_bytes()
    # After resume, a worse score (350 > 300) must not replace best.pt: the run's best is restored.
    monkeypatch.setattr(trainer, "MetricAccumulator", _ScriptedScores([350.0]))
    assert train_depth.main(_args(tiny_root, run, "--steps", "4", "--val-every", "1", "--resume", "--override")) == 0
    assert (run / "best.pt").read_bytes() == best_bytes
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["best"]["step"] == 2 and summary["best"]["rmse"] == 300.0
    # and a better one does.
    monkeypatch.setattr(trainer, "MetricAccumulator", _ScriptedScores([200.0]))
    assert train_depth.main(_args(tiny_root, run, "--steps", "5", "--val-every", "1", "--resume", "--override")) == 0
    assert torch.load(run / "best.pt", weights_only=True)["step"] == 5


def _trainer(tiny_root, tmp_path, **overrides):
    from depthsense import losses, models

    cfg = TrainConfig(dataset="synthetic", data_root=str(tiny_root), model="sparse_convnet", loss="l1:1.0",
                      crop=(32, 96), batch_size=2, workers=0, out=str(tmp_path / "t"), progress=False,
                      val_samples=1, lr=3e-3, **overrides).resolved()  # fmt: skip
    train_set, val_set = build_datasets(cfg, str(tiny_root))
    torch.manual_seed(0)
    return Trainer(cfg, models.build_model("sparse_convnet"), losses.build_loss("l1"), train_set, val_set,
                   torch.device("cpu"))  # fmt: skip


def _grad_norms_at_optimizer_step(trainer, steps):
    norms = []

    def record(optimizer, args, kwargs):
        grads = [p.grad.flatten() for p in trainer.raw_model.parameters() if p.grad is not None]
        norms.append(float(torch.cat(grads).norm()))

    trainer.optimizer.register_step_pre_hook(record)
    loader = iter(torch.utils.data.DataLoader(trainer.train_set, batch_size=2))
    for _ in range(steps):
        trainer.train_step(next(loader))
        trainer.step += 1
    return norms


def test_grad_clip_bounds_the_gradient_norm_the_optimiser_sees(tiny_root, tmp_path):
    free = _grad_norms_at_optimizer_step(_trainer(tiny_root, tmp_path, steps=3), 3)
    assert min(free) > 0.05, free  # otherwise the clip below would not be tested
    clipped = _grad_norms_at_optimizer_step(_trainer(tiny_root, tmp_path, steps=3, grad_clip=0.01), 3)
    assert all(n <= 0.01 * (1 + 1e-5) for n in clipped), clipped
    assert all(n >= 0.0099 for n in clipped), clipped  # clipped to the bound, not zeroed


def test_amp_bf16_on_cpu_trains(tiny_root, tmp_path, monkeypatch):
    """--amp on CPU runs the convolutions in bfloat16 and keeps float32 weights that learn."""
    dtypes = []
    real_conv2d = torch.nn.functional.conv2d

    def conv2d(*args, **kwargs):
        out = real_conv2d(*args, **kwargs)
        dtypes.append(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.functional, "conv2d", conv2d)
    assert train_depth.main(_args(tiny_root, tmp_path / "amp", "--steps", "4", "--amp", "--val-every", "0")) == 0
    amp_dtypes, dtypes[:] = set(dtypes), []
    assert train_depth.main(_args(tiny_root, tmp_path / "fp32", "--steps", "4", "--val-every", "0")) == 0
    fp32_dtypes = set(dtypes)
    assert torch.bfloat16 in amp_dtypes and torch.bfloat16 not in fp32_dtypes
    from depthsense import models

    torch.manual_seed(TrainConfig().seed)  # the engine seeds model init with cfg.seed
    init = models.build_model("sparse_convnet").state_dict()
    c = torch.load(tmp_path / "amp" / "last.pt", weights_only=True)
    assert c["train_cfg"]["amp"] is True and c["step"] == 4
    for k, v in c["state_dict"].items():
        assert v.dtype == torch.float32 and torch.isfinite(v).all(), k
    assert any(not torch.equal(v, init[k]) for k, v in c["state_dict"].items())  # it trained
    # bf16 rounding changes the numbers but not where training goes: same direction as fp32.
    ref = torch.load(tmp_path / "fp32" / "last.pt", weights_only=True)["state_dict"]
    da = torch.cat([(c["state_dict"][k] - init[k]).flatten() for k in init])
    db = torch.cat([(ref[k] - init[k]).flatten() for k in init])
    assert float(torch.nn.functional.cosine_similarity(da, db, dim=0)) > 0.9
    assert math.isfinite(json.loads((tmp_path / "amp" / "summary.json").read_text())["best"]["rmse"])


def test_training_without_a_validation_split_writes_last_but_no_best(tiny_root, tmp_path, capsys):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    shutil.rmtree(root / "val")
    run = tmp_path / "run"
    assert train_depth.main(_args(root, run, "--steps", "2", "--val-every", "1")) == 0
    assert "best val: n/a" in capsys.readouterr().out
    assert (run / "last.pt").is_file() and not (run / "best.pt").exists()
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 2
    assert json.loads((run / "summary.json").read_text())["best"] == {}


def test_synthetic_data_is_generated_once_into_the_cache(tmp_path, monkeypatch):
    from depthsense.config import synthetic_cache_root
    from depthsense.data import synthetic
    from depthsense.engine import prepare_data_root

    monkeypatch.setenv("DEPTHSENSE_CACHE", str(tmp_path / "cache"))
    cfg = TrainConfig(dataset="synthetic", synthetic_frames=4, synthetic_size=(64, 96), seed=5)
    lines = []
    root = prepare_data_root(cfg, lines.append)
    assert root == str(synthetic_cache_root(4, 5, (64, 96))) and root.startswith(str(tmp_path / "cache"))
    assert lines == [f"synthetic data: generating 4 frames 64x96 (seed 5) into {root}"]
    assert (Path(root) / ".complete-fg").is_file()
    from depthsense import data

    assert len(data.build_dataset("synthetic", root, "train")) >= 1 and len(data.build_dataset("synthetic", root, "val")) >= 1

    def no_generation(*args, **kwargs):
        raise AssertionError("a complete cache must be reused")

    monkeypatch.setattr(synthetic, "generate", no_generation)
    lines.clear()
    assert prepare_data_root(cfg, lines.append) == root
    assert lines == [f"synthetic data: {root} (cached; 4 frames 64x96, seed 5)"]
    # Without the completion stamp (a killed generation) it is generated again.
    (Path(root) / ".complete-fg").unlink()
    with pytest.raises(AssertionError, match="must be reused"):
        prepare_data_root(cfg, lines.append)
    # Other data sets are never generated.
    with pytest.raises(UsageError, match="--dataset kitti needs --data-root"):
        prepare_data_root(TrainConfig(dataset="kitti"))


def test_resume_refuses_a_weights_only_checkpoint(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, run, "--steps", "2")) == 0
    c = torch.load(run / "last.pt", weights_only=True)
    for key in ("optimizer", "scheduler", "scaler", "rng", "progress"):
        del c[key]
    ckpt_io.save_checkpoint(run / "last.pt", c)  # e.g. a best.pt copied over last.pt
    before = (run / "last.pt").read_bytes()
    capsys.readouterr()
    assert train_depth.cli_main(_args(tiny_root, run, "--steps", "4", "--resume", "--override")) == 2
    err = _one_line_error(capsys)
    assert "last.pt: holds weights only (no optimiser state); it cannot be resumed" in err
    assert (run / "last.pt").read_bytes() == before


def _unet_args(root, out, *extra):
    return [
        "--dataset", "synthetic", "--data-root", str(root), "--crop", "32x96", "--batch-size", "2",
        "--workers", "0", "--out", str(out), "--no-progress", "--val-samples", "1", *extra,
    ]  # fmt: skip


_SMALL_UNET = ["--model", "sparse_unet", "--model-arg", "width=4", "--model-arg", "depth=2"]


@pytest.fixture(scope="module")
def unet_run(tiny_root, tmp_path_factory):
    """A depth-only 2-step sparse_unet run to start others from (``--init``)."""
    base = tmp_path_factory.mktemp("unet_base") / "run"
    assert train_depth.main(_unet_args(tiny_root, base, *_SMALL_UNET, "--loss", "l1:1", "--steps", "2")) == 0
    return base


def test_init_starts_from_a_checkpoint_with_fresh_heads_and_resumes(tiny_root, unet_run, tmp_path, capsys):
    base = tmp_path / "base"
    base.mkdir()
    (base / "last.pt").write_bytes((unet_run / "last.pt").read_bytes())
    capsys.readouterr()
    heads = ["--model-arg", "heads=depth,conf,fg", "--loss", "l1:1,laplace_nll:0.2,fg_bce:1,fg_dice:1",
             "--steps", "1", "--lr", "1e-12"]
    started = tmp_path / "started"
    assert train_depth.main(_unet_args(tiny_root, started, "--init", str(base / "last.pt"), *heads)) == 0
    out = capsys.readouterr().out
    assert "--init" in out and "new layers start fresh: extra_head, extra_refine, extra_trunk" in out
    before = torch.load(base / "last.pt", weights_only=True)
    after = torch.load(started / "last.pt", weights_only=True)
    # The model and its options come from the init checkpoint; --model-arg adds the heads.
    assert after["model"] == "sparse_unet"
    assert after["model_cfg"]["width"] == 4 and after["model_cfg"]["heads"] == "depth,conf,fg"
    shared = list(before["state_dict"])
    assert all(torch.allclose(before["state_dict"][k], after["state_dict"][k], atol=1e-6) for k in shared)
    assert any(k.startswith("extra_head.") for k in after["state_dict"])
    # Control: the same run without --init starts from other weights.
    scratch = tmp_path / "scratch"
    assert train_depth.main(_unet_args(tiny_root, scratch, *_SMALL_UNET, *heads)) == 0
    other = torch.load(scratch / "last.pt", weights_only=True)["state_dict"]
    assert not all(torch.allclose(before["state_dict"][k], other[k], atol=1e-6) for k in shared)
    # Resuming rebuilds the headed model from the run itself (the init file may be gone).
    (base / "last.pt").rename(base / "moved.pt")
    assert train_depth.main(["--out", str(started), "--resume", "--steps", "2", "--override", "--no-progress"]) == 0
    assert torch.load(started / "last.pt", weights_only=True)["step"] == 2
    # A headed checkpoint as init of a depth-only run: the heads are dropped and said so.
    capsys.readouterr()
    plain = tmp_path / "plain"
    assert train_depth.main(_unet_args(tiny_root, plain, "--init", str(started / "last.pt"),
                                       "--model-arg", "heads=depth", "--loss", "l1:1", "--steps", "1")) == 0
    assert "not used: extra_head, extra_refine, extra_trunk" in capsys.readouterr().out


@pytest.mark.parametrize("extra, needle", [
    (["--init", "nowhere.pt"], "no checkpoint file nowhere.pt"),
    (["--init", "BASE", "--model", "dense_unet"], "drop --model or pass --model sparse_unet"),
    (["--init", "BASE", "--model-arg", "width=8"], "wrong shape"),
    (["--init", "NOTCKPT"], "NOTCKPT"),
])
def test_init_errors_are_one_line_and_create_no_run(tiny_root, unet_run, tmp_path, capsys, extra, needle):
    (tmp_path / "notckpt.pt").write_bytes(b"not a checkpoint")
    subst = {"BASE": str(unet_run / "last.pt"), "NOTCKPT": str(tmp_path / "notckpt.pt")}
    extra = [subst.get(a, a) for a in extra]
    needle = subst.get(needle, needle)
    capsys.readouterr()
    out = tmp_path / "run"
    code = train_depth.cli_main(_unet_args(tiny_root, out, "--loss", "l1:1", "--steps", "1", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err
    assert not out.exists()


# --------------------------------------------------------------------------- issue 25 items 6, 12, 16, 20


def test_full_disk_inside_torch_save_is_one_line_not_the_zip_writer_traceback(tiny_root, tmp_path, capsys,
                                                                              monkeypatch):
    """The real failure: the file's write raises ENOSPC inside torch.save, whose zip writer then
    raises RuntimeError("unexpected pos"); the user sees one line with the disk's reason."""
    import builtins
    import errno

    run = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, run, "--steps", "2")) == 0
    capsys.readouterr()
    good = (run / "last.pt").read_bytes()

    class FullFile:
        def __init__(self, path, mode):
            self.f, self.written = builtins.open(path, mode), 0

        def write(self, data):
            self.written += len(data)
            if self.written > 2000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(ckpt_io, "open", FullFile, raising=False)  # save_checkpoint's open()
    assert train_depth.cli_main(_args(tiny_root, run, "--steps", "4", "--resume", "--override")) == 2
    err = _one_line_error(capsys)
    # the first save of the resumed run (best.pt after validation, or last.pt) hits the full disk
    assert re.search(r"(last|best)\.pt: cannot write \(No space left on device\)", err), err
    assert "unexpected pos" not in err and "Traceback" not in err
    assert (run / "last.pt").read_bytes() == good and not list(run.glob(".*.tmp*"))


def test_a_run_removes_the_temp_files_of_its_killed_writes(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, run, "--steps", "2")) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [run / f".last.pt.{dead.pid}-x1.tmp.pt", run / ".best.pt.k2jx_9a.tmp.pt",  # older name form too
             run / f".summary.json.{dead.pid}-y2.tmp.json"]
    mine = run / ".notes.txt.tmp.txt"  # not a file the run writes: not touched
    for p in (*stale, mine):
        p.write_bytes(b"half")
    capsys.readouterr()
    assert train_depth.main(_args(tiny_root, run, "--steps", "3", "--resume", "--override")) == 0
    out = capsys.readouterr().out
    assert not any(p.exists() for p in stale) and mine.exists()
    assert sum(line.startswith("note: removed .") for line in out.splitlines()) == 3


def test_ctrl_c_says_the_step_and_the_resume_command_and_resume_counts_this_session(tiny_root, tmp_path, capsys,
                                                                                   monkeypatch):
    import shlex

    run = tmp_path / "run"
    real_step = Trainer.train_step

    def interrupted(self, batch):
        if self.step == 5:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    assert train_depth.cli_main(_args(tiny_root, run, "--steps", "8", "--ckpt-every", "2")) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"depthsense-train: interrupted at step 5 of 8; {run / 'last.pt'} holds step 4, step 5 "
                          "will run again. Continue with: depthsense-train --out ")
    command = err.split("Continue with: ", 1)[1].strip()
    monkeypatch.setattr(Trainer, "train_step", real_step)
    assert train_depth.main(shlex.split(command)[1:]) == 0
    out = capsys.readouterr().out
    assert "trained 4 steps in this session (steps 5-8; the run has 8)" in out
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 8


def test_tensorboard_order_after_resume_does_not_depend_on_the_clock(tiny_root, tmp_path):
    """The first session's event file is named as if opened later than the resumed one
    (same second, a larger counter or clock skew): the resumed events still come after it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert train_depth.main(_args(tiny_root, run, "--steps", "3", "--log-every", "1")) == 0
    (first,) = (run / "tb").glob("events.out.tfevents.*")
    parts = first.name.split(".")
    parts[3] = f"{int(time.time()) + 3600:010d}"  # sorts after any file opened now
    first.rename(first.with_name(".".join(parts)))
    assert train_depth.main(_args(tiny_root, run, "--steps", "5", "--log-every", "1", "--resume", "--override")) == 0
    ea = EventAccumulator(str(run / "tb"))
    ea.Reload()
    assert [e.step for e in ea.Scalars("train/loss")] == [1, 2, 3, 4, 5]

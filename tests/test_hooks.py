"""Trainer hooks (depthsense/engine/hooks.py), on a tiny generated KITTI-layout set."""

import json

import pytest
import torch

from depthsense.config import TrainConfig
from depthsense.engine import HookBase, Trainer, build_datasets, default_hooks
from depthsense.engine.distributed import DistInfo
from depthsense.engine.hooks import (BestCheckpoint, PeriodicCheckpoint, PeriodicValidation, ProgressBar, RunSummary,
                                     TensorBoardWriter)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from depthsense.data import synthetic

    root = tmp_path_factory.mktemp("tiny_kitti")
    synthetic.generate(root, layout="kitti", frames=8, seed=3, height=64, width=192)
    return root


def _cfg(root, out, **overrides):
    return TrainConfig(dataset="synthetic", data_root=str(root), model="sparse_convnet", loss="l1:1.0",
                       crop=(32, 96), batch_size=2, workers=0, out=str(out), progress=False, val_samples=1,
                       lr=3e-3, **overrides).resolved()  # fmt: skip


def _trainer(root, out, hooks=None, **overrides):
    from depthsense import losses, models

    cfg = _cfg(root, out, **overrides)
    train_set, val_set = build_datasets(cfg, str(root))
    torch.manual_seed(0)
    return Trainer(cfg, models.build_model("sparse_convnet"), losses.build_loss("l1"), train_set, val_set,
                   torch.device("cpu"), hooks=hooks)  # fmt: skip


class _Recorder(HookBase):
    """Records every call with the trainer's step; checks it always gets the same trainer."""

    def __init__(self, out=None):
        self.calls, self.trainers, self.out = [], set(), out

    def before_train(self, trainer):
        self.trainers.add(id(trainer))
        self.calls.append(("before_train", trainer.step))

    def after_step(self, trainer, terms):
        self.trainers.add(id(trainer))
        self.calls.append(("after_step", trainer.step, sorted(terms)))

    def after_train(self, trainer):
        self.trainers.add(id(trainer))
        # the default hooks listed before this one have done the end-of-run work
        done = None if self.out is None else sorted(p.name for p in self.out.iterdir() if p.suffix in (".pt", ".json"))
        self.calls.append(("after_train", trainer.step, done))

    def close(self, trainer, failed):
        self.calls.append(("close", trainer.step, failed))


def test_hooks_are_called_in_order_with_the_step_and_the_trainer(tiny_root, tmp_path):
    rec = _Recorder()
    trainer = _trainer(tiny_root, tmp_path / "r", hooks=[rec], steps=3)
    result = trainer.fit()
    assert result.steps == 3
    assert rec.calls == [
        ("before_train", 0),
        ("after_step", 1, ["l1", "loss"]),
        ("after_step", 2, ["l1", "loss"]),
        ("after_step", 3, ["l1", "loss"]),
        ("after_train", 3, None),
        ("close", 3, False),
    ]
    assert rec.trainers == {id(trainer)}
    # The list replaced the default hooks: nothing was logged, validated or saved.
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == []
    assert trainer.best == {} and trainer.validated_at is None and result.best_checkpoint is None


def test_an_extra_hook_after_the_defaults_sees_the_run_finished(tiny_root, tmp_path):
    out = tmp_path / "r"
    cfg = _cfg(tiny_root, out, steps=2)
    rec = _Recorder(out)
    trainer = _trainer(tiny_root, out, hooks=[*default_hooks(cfg), rec], steps=2)
    trainer.fit()
    assert rec.calls[-2:] == [("after_train", 2, ["best.pt", "last.pt", "summary.json"]), ("close", 2, False)]
    assert (out / "tb").is_dir() and trainer.writer is None  # closed by the TensorBoard hook
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


def test_an_error_skips_after_train_but_every_hook_is_closed(tiny_root, tmp_path, monkeypatch):
    first, second = _Recorder(), _Recorder()
    trainer = _trainer(tiny_root, tmp_path / "r", hooks=[first, second], steps=4)
    real_step = Trainer.train_step

    def boom(self, batch):
        if self.step == 2:
            raise RuntimeError("boom")
        return real_step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", boom)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit()
    for rec in (first, second):
        assert [c[0] for c in rec.calls] == ["before_train", "after_step", "after_step", "close"]
        assert rec.calls[-1] == ("close", 2, True)


def test_default_hooks_follow_the_config_and_only_rank_0_gets_them(tmp_path):
    cfg = TrainConfig(progress=False)
    assert [type(h) for h in default_hooks(cfg)] == [TensorBoardWriter, PeriodicValidation, BestCheckpoint,
                                                     PeriodicCheckpoint, RunSummary]  # fmt: skip
    assert type(default_hooks(TrainConfig(progress=True))[0]) is ProgressBar
    assert default_hooks(cfg, main=False) == []


def test_a_trainer_of_rank_1_has_no_writing_hook(tiny_root, tmp_path):
    from depthsense import losses, models

    cfg = _cfg(tiny_root, tmp_path / "r", steps=1)
    train_set, val_set = build_datasets(cfg, str(tiny_root))
    trainer = Trainer(cfg, models.build_model("sparse_convnet"), losses.build_loss("l1"), train_set, val_set,
                      torch.device("cpu"), DistInfo(rank=1))  # fmt: skip
    assert trainer.hooks == []


class _Spy:
    """Stands in for a SummaryWriter: records every call."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, args[:1], args[2:3]))


def test_validate_returns_metrics_and_writes_nothing(tiny_root, tmp_path):
    out = tmp_path / "r"
    trainer = _trainer(tiny_root, out, steps=1)
    spy = trainer.writer = _Spy()  # as while the TensorBoard hook has it open
    metrics = trainer.validate()
    assert {"mae", "rmse", "imae", "irmse"} <= set(metrics) and metrics["rmse"] > 0
    assert spy.calls == []
    assert list(out.iterdir()) == []  # no best.pt, no tb
    assert trainer.best == {} and trainer.last_val == {} and trainer.validated_at is None
    batch, pred = trainer.val_panel
    assert pred.shape == batch["gt"].shape


def test_validation_hook_logs_scalars_and_panel_and_records_the_step(tiny_root, tmp_path):
    trainer = _trainer(tiny_root, tmp_path / "r", steps=1)
    trainer.step = 7
    spy = trainer.writer = _Spy()
    metrics = PeriodicValidation(0).run(trainer)
    scalars = [c for c in spy.calls if c[0] == "add_scalar"]
    assert [c[1][0] for c in scalars] == [f"val/{k}" for k in metrics] and all(c[2] == (7,) for c in scalars)
    assert spy.calls[-1] == ("add_image", ("val/panel",), (7,))
    assert trainer.last_val is metrics and trainer.validated_at == 7
    assert not (tmp_path / "r" / "best.pt").exists()  # best.pt is the BestCheckpoint hook's


@pytest.mark.parametrize("steps, val_every, expected", [(4, 2, [2, 4]), (3, 2, [2, 3]), (4, 0, [2, 4]), (3, 0, [2, 3])])
def test_validation_runs_every_val_every_or_epoch_and_once_at_the_end(tiny_root, tmp_path, monkeypatch,
                                                                     steps, val_every, expected):
    # 4 training frames, batch 2: an epoch is 2 steps.
    trainer = _trainer(tiny_root, tmp_path / "r", hooks=[PeriodicValidation(val_every)], steps=steps)
    assert trainer.steps_per_epoch == 2
    at = []
    monkeypatch.setattr(trainer, "validate", lambda: at.append(trainer.step) or {"rmse": 1.0})
    trainer.fit()
    assert at == expected and trainer.validated_at == steps


def test_best_checkpoint_only_on_improvement(tiny_root, tmp_path):
    out = tmp_path / "r"
    trainer = _trainer(tiny_root, out, steps=1)
    hook = BestCheckpoint()

    def validated(step, rmse):
        trainer.step = trainer.validated_at = step
        trainer.last_val = {"mae": rmse / 2, "rmse": rmse}

    def best_pt():
        return torch.load(out / "best.pt", weights_only=True)

    validated(1, 500.0)
    hook.after_step(trainer, {})
    assert best_pt()["step"] == 1 and trainer.best == {"mae": 250.0, "rmse": 500.0, "step": 1}
    first = (out / "best.pt").read_bytes()
    validated(2, 600.0)  # worse
    hook.after_step(trainer, {})
    validated(3, 500.0)  # equal is no improvement
    hook.after_step(trainer, {})
    assert (out / "best.pt").read_bytes() == first and trainer.best["step"] == 1
    trainer.step = 4  # a step without validation
    trainer.last_val = {"rmse": 1.0}
    hook.after_step(trainer, {})
    assert trainer.best["step"] == 1
    validated(5, 300.0)
    hook.after_step(trainer, {})
    assert best_pt()["step"] == 5 and best_pt()["metrics"] == {"mae": 150.0, "rmse": 300.0}
    assert trainer.best == {"mae": 150.0, "rmse": 300.0, "step": 5}
    # The same validation is judged once (after_step, then after_train at the same step).
    (out / "best.pt").unlink()
    trainer.best = {}
    hook.after_train(trainer)
    assert not (out / "best.pt").exists()
    # No score (no validation images): never a best.pt.
    validated(6, 1.0)
    trainer.last_val = {}
    hook.after_step(trainer, {})
    assert not (out / "best.pt").exists() and trainer.best == {}


def test_periodic_checkpoint_every_ckpt_every_and_at_the_end(tiny_root, tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(Trainer, "_save", lambda self, name, metrics=None: saved.append((name, self.step)))
    trainer = _trainer(tiny_root, tmp_path / "r", hooks=[PeriodicCheckpoint(2)], steps=5)
    trainer.fit()
    assert saved == [("last.pt", 2), ("last.pt", 4), ("last.pt", 5)]


def test_tensorboard_writer_logs_at_step_1_and_every_log_every_and_resets_timings(tiny_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "r"
    trainer = _trainer(tiny_root, out, hooks=[TensorBoardWriter(3)], steps=7)
    trainer.fit()
    assert trainer.writer is None
    ea = EventAccumulator(str(out / "tb"))
    ea.Reload()
    assert [e.step for e in ea.Scalars("train/loss")] == [1, 3, 6]
    assert [e.step for e in ea.Scalars("time/forward_s_per_step")] == [1, 3, 6]
    assert {"train/l1", "train/lr", "time/data_s_per_step"} <= set(ea.Tags()["scalars"])
    assert trainer.timings["forward"] > 0  # step 7's time, not logged: reset only when logged
    assert list(out.iterdir()) == [out / "tb"]  # no checkpoint, no summary: those are other hooks

"""Tests for evaluation/loop.py and evaluation/evaluators.py: the one evaluation loop that
validation during training and ``depthsense-evaluate`` share."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from depthsense import losses, models
from depthsense.config import TrainConfig
from depthsense.engine import Trainer, build_datasets
from depthsense.evaluation.evaluators import Evaluator, TimingEvaluator
from depthsense.evaluation.loop import ModelRun, evaluate_level, inference_on_dataset
from depthsense.evaluation.report import EvalModel, Level
from depthsense.metrics import DEFAULT_METRICS


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from depthsense.data import synthetic

    root = tmp_path_factory.mktemp("loop_kitti")
    synthetic.generate(root, layout="kitti", frames=6, seed=2, height=48, width=128,
                       splits={"train": 2, "val": 3, "val_selection": 0, "test": 1})
    return root


class _QuantisedHeads(nn.Module):
    """A model with extra heads whose confidence takes four values only (ties, as in an
    untrained or saturated head) and whose foreground is a real mix of 0 and 1."""

    heads = ("conf", "fg")
    needs_rgb, needs_sparse, learned = True, True, True

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(1.0))

    def forward(self, sparse, mask, rgb=None, *, return_heads=False):
        depth = self.gain * (5.0 + 20.0 * rgb.mean(1, keepdim=True))
        if not return_heads:
            return depth
        conf = torch.round(4 * rgb[:, 1:2]) / 4
        fg = (rgb[:, :1] > 0.5).float()
        return {"depth": depth, "conf": conf, "scale": 1 - conf + 0.01, "fg": fg, "fg_logit": 8 * fg - 4}


def _model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "quantised":
        return _QuantisedHeads()
    if kind == "unet_heads":  # an untrained head: one constant confidence, all pixels tied
        return models.build_model("sparse_unet", width=4, heads="depth,conf,fg")
    return models.build_model("sparse_convnet")


@pytest.mark.parametrize("kind", ["plain", "unet_heads", "quantised"])
def test_validate_and_depthsense_evaluate_give_the_same_numbers(root, tmp_path, kind):
    cfg = TrainConfig(dataset="synthetic", data_root=str(root), model="sparse_convnet", loss="l1:1.0",
                      crop=(32, 96), batch_size=2, workers=0, out=str(tmp_path / "run"), progress=False, steps=1,
                      val_samples=3).resolved()  # fmt: skip
    train_set, val_set = build_datasets(cfg, str(root))
    model = _model(kind)
    trainer = Trainer(cfg, model, losses.build_loss("l1"), train_set, val_set, torch.device("cpu"))
    val = trainer.validate()
    assert val["images"] == len(val_set) == 3
    level = Level("lidar", "lidar")
    tables, _, stats, _, heads, _ = evaluate_level(
        level, val_set, [EvalModel("m", model.eval(), "checkpoint", False)], list(range(len(val_set))),
        torch.device("cpu"), 0, {}, False, set(), None)  # fmt: skip
    assert stats["images_with_gt"] == 3
    for name in DEFAULT_METRICS:
        assert val[name] == tables["m"][name], name  # exactly: one loop, one accumulator
    if kind == "plain":
        assert heads == {} and not any(k.startswith(("conf", "fg")) for k in val)
        return
    conf = heads["m"]["confidence"]["conf"]
    assert set(heads["m"]["confidence"]) == {"conf", "distance"}
    assert val["conf_ause"] == conf["ause"] and val["conf_rmse_cut_20"] == conf["rmse_cut_20"]
    assert val["fg_iou"] == heads["m"]["fg"]["iou"]
    if kind == "quantised":
        assert 0.0 < val["fg_iou"] < 1.0 and val["conf_ause"] > 0


class _Recorder(Evaluator):
    def __init__(self, log: list) -> None:
        self.log = log

    def process(self, image, outputs, ms):
        self.log.append(("model", image.index, outputs["depth"].dtype, tuple(outputs), image.sparse.shape))


class _Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, sparse, mask, rgb=None):
        self.calls += 1
        return sparse.double() + 1.0  # not float32: the loop hands evaluators float32 depth


def test_inference_on_dataset_feeds_every_evaluator_once_per_image_after_one_warm_up():
    data = [{"rgb": torch.rand(3, 4, 5), "sparse": torch.rand(1, 4, 5), "mask": torch.ones(1, 4, 5),
             "gt": torch.rand(1, 4, 5) + 1} for _ in range(4)]  # fmt: skip
    log: list = []
    warm, cold = _Counting(), _Counting()
    timing = TimingEvaluator()
    runs = [ModelRun(warm, [_Recorder(log), timing], warm_up=True), ModelRun(cold, [_Recorder(log)])]
    inference_on_dataset(runs, data, [2, 0, 3], torch.device("cpu"),
                         on_image=lambda image: log.append(("image", image.index)))
    assert warm.calls == 4 and cold.calls == 3  # one untimed first call, then one per image
    per_model = ("model", None, torch.float32, ("depth",), (1, 1, 4, 5))
    expected = []
    for i in (2, 0, 3):
        expected += [per_model[:1] + (i,) + per_model[2:]] * 2 + [("image", i)]
    assert log == expected
    assert len(timing.times) == 3 and timing.result() >= 0.0

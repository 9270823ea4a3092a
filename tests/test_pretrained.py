"""The pretrained completion model shipped in the package (depthsense/pretrained/completion.pt)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthsense.checkpoint import build_model_from_checkpoint, load_checkpoint
from depthsense.data import build_dataset, sparsify, synthetic
from depthsense.data.lidar import project_file, read_calibration
from depthsense.data.patterns import apply_pattern
from depthsense.data.synthetic_indoor import render_indoor
from depthsense.inference import PRETRAINED_CHECKPOINT, Predictor, pretrained_about
from depthsense.io import read_depth, read_rgb, write_depth, write_rgb
from depthsense.metrics import depth_metrics
from depthsense.models import build_model
from depthsense.tools import infer

# A fixed synthetic set the model never saw: seed 7 (training used seed 1, the demo seed 0).
_SEED, _FRAMES, _H, _W = 7, 3, 176, 608


@pytest.fixture(scope="module")
def shipped():
    assert PRETRAINED_CHECKPOINT.is_file(), f"{PRETRAINED_CHECKPOINT} is missing: run `make pretrained`"
    ckpt = torch.load(PRETRAINED_CHECKPOINT, map_location="cpu", weights_only=True)  # safe load, no code
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return ckpt, build_model_from_checkpoint(ckpt).eval()


@pytest.fixture(scope="module")
def frames():
    return [synthetic.render_frame(_SEED, i, _H, _W) for i in range(_FRAMES)]


def test_shipped_checkpoint_is_small_and_records_its_making(shipped):
    ckpt, model = shipped
    assert PRETRAINED_CHECKPOINT.stat().st_size <= 5 * 1024 * 1024
    about = ckpt["about"]
    assert about["command"].startswith("python -m depthsense.pretrain")
    assert "synthetic" in about["training_data"] and "real" in about["training_data"]
    assert about["train_minutes"] > 0 and about["scores"]
    # the every-sensor recipe: per-image depth scale, three pre-fills, RGB guidance
    assert model.prefill == ("nearest", "pyramid", "ip_basic") and model.norm == "image" and model.use_rgb
    assert "indoor" in about["training_data"]["synthetic"] and "RGB-D dev" in about["training_data"]["real"]
    assert "/" not in about["command"].replace("python -m depthsense.pretrain", "")  # no machine path recorded
    assert pretrained_about() == about


def _predict(model, frame, sparse):
    with torch.no_grad():
        s = torch.from_numpy(sparse)[None, None]
        rgb = torch.from_numpy(frame.rgb.transpose(2, 0, 1).copy())[None]
        return model(s, (s > 0).float(), rgb)[0, 0].numpy()


def test_beats_ip_basic_on_a_fixed_synthetic_set(shipped, frames):
    """A test random weights would fail: RMSE and MAE below IP-Basic on LiDAR input."""
    _, model = shipped
    ours, ip = [], []
    ipb = build_model("ip_basic").eval()
    for f in frames:
        gt = torch.from_numpy(f.gt)[None, None]
        pred = torch.from_numpy(_predict(model, f, f.sparse))[None, None]
        ref = ipb(torch.from_numpy(f.sparse)[None, None], None)
        ours.append(depth_metrics(pred, gt, names=("mae", "rmse")))
        ip.append(depth_metrics(ref, gt, names=("mae", "rmse")))
    for k in ("mae", "rmse"):
        a = float(np.mean([float(m[k]) for m in ours]))
        b = float(np.mean([float(m[k]) for m in ip]))
        assert a < b, (k, a, b)


def test_untrained_weights_do_not_beat_ip_basic(shipped, frames):
    """The control for the test above: the same architecture with its initial weights."""
    ckpt, _ = shipped
    torch.manual_seed(0)
    fresh = build_model(ckpt["model"], **ckpt["model_cfg"]).eval()
    for layer in fresh.modules():  # initial weights: head and refinement start at zero; perturb them
        if isinstance(layer, torch.nn.Module) and hasattr(layer, "weight") and getattr(layer, "weight") is not None:
            with torch.no_grad():
                layer.weight.normal_(0, 0.05)
    f = frames[0]
    gt = torch.from_numpy(f.gt)[None, None]
    pred = torch.from_numpy(_predict(fresh, f, f.sparse))[None, None]
    ref = build_model("ip_basic").eval()(torch.from_numpy(f.sparse)[None, None], None)
    assert float(depth_metrics(pred, gt, names=("rmse",))["rmse"]) > float(depth_metrics(ref, gt, names=("rmse",))["rmse"])


@pytest.mark.parametrize("level", ["0.5%", "8 beams"])
def test_outputs_stay_within_zero_and_max_depth_at_low_density(shipped, frames, level):
    _, model = shipped
    f = frames[1]
    if level == "0.5%":
        sparse = sparsify.uniform(f.gt, 0.005, np.random.default_rng(0))
    else:
        sparse = sparsify.thin_beams(f.sparse, f.K, 8, lidar_height_offset=0.08, lidar_behind_offset=0.27)
    assert (sparse > 0).sum() > 10
    out = _predict(model, f, sparse)
    assert out.shape == (_H, _W) and np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= model.max_depth
    # physically plausible: within the range of the scene's depths (plus a margin), not blown up
    assert out[f.gt > 0].max() <= 1.5 * f.gt.max()


def _versus_nearest(model, items):
    """Mean RMSE, MAE (mm) of the model and of nearest-pixel fill over (rgb HxWx3 float, gt, sparse)
    items, scored where the input is silent, as depthsense-evaluate does."""
    near = build_model("nearest").eval()
    ours, ref = [], []
    for rgb, gt, sparse in items:
        s, g = torch.from_numpy(sparse)[None, None], torch.from_numpy(gt)[None, None]
        with torch.no_grad():
            out = model(s, (s > 0).float(), torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None])
            fill = near(s, (s > 0).float())
        assert torch.isfinite(out).all() and (out[g > 0] > 0).all()  # a depth everywhere it was asked
        for scores, pred in ((ours, out), (ref, fill)):
            m = depth_metrics(pred, g, s <= 0, names=("rmse", "mae"))
            scores.append((m["rmse"], m["mae"]))
    return np.mean(ours, axis=0), np.mean(ref, axis=0)


def test_beats_nearest_on_a_fixed_synthetic_indoor_set_at_500_samples(shipped):
    """Indoors (0.2-10 m, never KITTI's scale), RMSE below nearest-pixel fill at the hidden pixels.

    Only RMSE: in MAE the model is about level with nearest here and 1.2-1.3x behind it on real
    frames (it trades a slightly larger typical error for fewer large ones; docs/shipped_model.md).
    """
    _, model = shipped
    items = []
    for i in range(3):  # seed 9: training used seed 1, the pretrain evaluation seed 0
        f = render_indoor(9, i)  # 480x640, the size of the indoor world and of NYU / RealSense frames
        items.append((f.rgb, f.gt, apply_pattern("samples:500", f.gt, np.random.default_rng(i), rgb=f.rgb)))
    (rmse, _), (rmse_n, _) = _versus_nearest(model, items)
    assert rmse < rmse_n, (rmse, rmse_n)
    # the control: the same architecture with its initial weights (its start is a blend of the
    # pre-fills, which is already close to nearest here) must not reach the trained model
    ckpt, _ = shipped
    torch.manual_seed(0)
    (rmse_init, _), _ = _versus_nearest(build_model(ckpt["model"], **ckpt["model_cfg"]).eval(), items)
    assert rmse < 0.95 * rmse_init, (rmse, rmse_init)


def test_beats_nearest_on_a_real_dev_rgbd_frame(shipped, indoor_rgbd_root):
    """A real RealSense frame of the dev split (graspnet_rs) in millimetres, 500 samples."""
    _, model = shipped
    ds = build_dataset("rgbd", indoor_rgbd_root, "graspnet_rs", pattern="samples:500")
    s = ds[0]
    rgb = s["rgb"].numpy().transpose(1, 2, 0)
    (rmse, _), (rmse_n, _) = _versus_nearest(model, [(rgb, s["gt"][0].numpy(), s["sparse"][0].numpy())])
    assert rmse < rmse_n, (rmse, rmse_n)


def test_predicts_a_real_shared_frame(shipped, kitti_object_root):
    _, model = shipped
    base = kitti_object_root / "training"
    rgb = read_rgb(base / "image_2" / "000000.png")  # 1224x370, not a multiple of anything
    _, scan = project_file(base / "velodyne" / "000000.bin", read_calibration(base / "calib" / "000000.txt"),
                           rgb.shape[:2])
    p = Predictor()
    assert p.pretrained and p.default_model_used
    out = p.predict(rgb, scan.depth_map())
    assert out.shape == (370, 1224) and np.isfinite(out).all() and out.min() >= 0
    rows = np.nonzero(scan.depth_map().any(axis=1))[0]
    assert (out[rows.min():] > 0).all()  # a completion: every pixel below the top scan line has depth


def test_infer_without_checkpoint_uses_it_and_says_so(shipped, frames, tmp_path, capsys):
    f = frames[2]
    write_rgb(tmp_path / "img.png", f.rgb)
    write_depth(tmp_path / "sparse.png", f.sparse)
    assert infer.main([str(tmp_path / "img.png"), str(tmp_path / "sparse.png"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "pretrained completion model shipped with DepthSense" in out
    depth = read_depth(tmp_path / "o" / "img_depth.png")
    assert depth.shape == (_H, _W) and (depth > 0).mean() > 0.9
    # --model ip_basic still gives the classical fill
    assert infer.main([str(tmp_path / "img.png"), str(tmp_path / "sparse.png"), "--model", "ip_basic",
                       "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "ip_basic (classical, no learned weights)" in out
    classical = read_depth(tmp_path / "c" / "img_depth.png")
    assert not np.array_equal(classical, depth)


def test_about_prints_data_command_and_scores(shipped, capsys):
    assert infer.main(["--about"]) == 0
    out = capsys.readouterr().out
    assert "command: python -m depthsense.pretrain" in out
    assert "training data (synthetic)" in out and "scores," in out and "MAE / RMSE mm" in out


def test_init_pretrained_fine_tunes_the_shipped_model_with_heads(tmp_path, capsys):
    from depthsense.tools import train_depth

    root = tmp_path / "data"
    synthetic.generate(root, layout="kitti", frames=6, seed=2, height=64, width=192)
    out = tmp_path / "run"
    argv = ["--dataset", "synthetic", "--data-root", str(root), "--init", "pretrained",
            "--model-arg", "heads=depth,conf,fg", "--loss", "mae:1,laplace_nll:0.2,fg_bce:1,fg_dice:1",
            "--crop", "32x96", "--batch-size", "2", "--steps", "1", "--workers", "0", "--val-samples", "1",
            "--no-progress", "--out", str(out)]
    assert train_depth.main(argv) == 0
    assert "--init pretrained: sparse_unet weights loaded; new layers start fresh" in capsys.readouterr().out
    ckpt = load_checkpoint(out / "last.pt")
    shipped_cfg = load_checkpoint(PRETRAINED_CHECKPOINT)["model_cfg"]
    assert ckpt["model_cfg"] == {**shipped_cfg, "heads": "depth,conf,fg"}
    model = build_model_from_checkpoint(out / "last.pt")
    assert model.heads == ("conf", "fg")

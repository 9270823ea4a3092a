"""Tests of depthsense.inference (Predictor, writers, pairing, ONNX) and depthsense.inference.pointcloud."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from depthsense import models
from depthsense.data.synthetic import render_frame
from depthsense.checkpoint import save_checkpoint
from depthsense.config import UsageError
from depthsense.errors import CheckpointError, DatasetError, DepthFileError, ShapeError
from depthsense import inference
from depthsense.inference import predictor
from depthsense.inference import (
    DEFAULT_MODEL,
    Prediction,
    Predictor,
    check_output_dir,
    export_onnx,
    kitti_test_dirs,
    make_output_dir,
    pair_files,
    relative_to_uint16,
    write_prediction,
)
from depthsense.io import read_depth, write_depth, write_rgb
from depthsense.inference.pointcloud import depth_to_points, write_ply

H, W = 64, 192

# Small configurations: the tests check plumbing, not capacity.
SMALL_CFG = {
    "sparse_convnet": {"channels": 4},
    "sparse_unet": {"width": 4, "depth": 3},
    "convnet": {"channels": 4},
    "convnet_mask": {"channels": 4},
    "dense_unet": {"width": 4, "depth": 3},
    "monocular": {"width": 4},
}


@pytest.fixture(scope="module")
def frame():
    return render_frame(0, 0, H, W)


def make_checkpoint(path, name: str, **cfg):
    """A DepthSense checkpoint of a freshly initialised model; returns (path, model)."""
    model = models.build_model(name, **cfg)
    if name == "monocular":
        # Its head starts at zero (flat output); random weights make the output vary.
        torch.nn.init.normal_(model.head.weight, std=0.05)
    save_checkpoint(
        path,
        {"format": 1, "model": name, "model_cfg": model.config, "state_dict": model.state_dict(),
         "train_cfg": {}, "step": 7, "metrics": {}},
    )
    return path, model.eval()


# --------------------------------------------------------------------------- Predictor


def test_default_predictor_is_the_shipped_model_and_ip_basic_without_it(frame, monkeypatch, tmp_path):
    shipped = Predictor(device="cpu")
    assert shipped.pretrained and shipped.checkpoint == inference.PRETRAINED_CHECKPOINT
    assert shipped.name == "sparse_unet" and "pretrained" in shipped.describe()
    # An installation without the packaged checkpoint falls back to the classical fill.
    monkeypatch.setattr(predictor, "PRETRAINED_CHECKPOINT", tmp_path / "absent.pt")  # where Predictor reads it
    p = Predictor(device="cpu")
    assert not p.pretrained
    assert p.name == DEFAULT_MODEL == "ip_basic"
    assert p.default_model_used and not p.relative and p.checkpoint is None
    out = p.predict(frame.rgb, frame.sparse)
    assert out.shape == (H, W) and out.dtype == np.float32
    np.testing.assert_array_equal(out, models.ip_basic_fill(frame.sparse))
    assert "classical" in p.describe()


def test_classical_model_by_name_with_options(frame):
    p = Predictor(model="ip_basic", model_args={"extrapolate": False}, device="cpu")
    assert not p.default_model_used
    np.testing.assert_array_equal(p.predict(None, frame.sparse), models.ip_basic_fill(frame.sparse, extrapolate=False))
    q = Predictor(model="nearest", device="cpu")
    np.testing.assert_array_equal(q.predict(frame.rgb, frame.sparse), models.nearest_fill(frame.sparse))


@pytest.mark.parametrize("name", models.available_models())
def test_every_model_any_size_and_checkpoint_weights_are_used(tmp_path, name):
    """Odd sizes come back at exactly (H,W); a checkpoint gives its model's own output."""
    h, w = 37, 53
    f = render_frame(1, 0, 64, 96)
    rgb, sparse = f.rgb[:h, :w], f.sparse[:h, :w]
    assert (sparse > 0).any()
    if models.build_model(name, **SMALL_CFG.get(name, {})).learned:
        ckpt, model = make_checkpoint(tmp_path / "m.pt", name, **SMALL_CFG.get(name, {}))
        p = Predictor(checkpoint=ckpt, device="cpu")
        assert p.step == 7 and p.name == name
    else:
        p, model = Predictor(model=name, device="cpu"), models.build_model(name).eval()
    out = p.predict(rgb, None if p.relative else sparse)
    assert out.shape == (h, w) and out.dtype == np.float32 and np.isfinite(out).all()
    s = torch.from_numpy(np.ascontiguousarray(sparse))[None, None]
    r = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        ref = model(None if p.relative else s, None if p.relative else (s > 0).float(), r)[0, 0].numpy()
    # Predictor runs learned models channels_last on CPU (faster), whose convolutions
    # round differently from the NCHW reference: measured up to 8e-5 m here.
    tol = 5e-4 if p.channels_last else 1e-5
    predicted = ref > 2 * tol if not p.relative else np.ones(ref.shape, bool)
    np.testing.assert_allclose(out[predicted], ref[predicted], rtol=tol, atol=tol)
    if not p.relative:
        assert (out > 0).all()  # what an (untrained) model leaves at 0 m is filled, never 0
    assert np.ptp(out) > 0  # not a constant map (the weights/fill did something)


def test_inputs_are_checked_against_model_needs(tmp_path, frame):
    mono, _ = make_checkpoint(tmp_path / "mono.pt", "monocular", width=4)
    with pytest.raises(ShapeError, match="needs the RGB image"):
        Predictor(checkpoint=mono, device="cpu").predict(None, frame.sparse)
    with pytest.raises(ShapeError, match="completes sparse depth"):
        Predictor(device="cpu").predict(frame.rgb, None)
    rgb_unet, _ = make_checkpoint(tmp_path / "u.pt", "sparse_unet", width=4, depth=3, rgb=True)
    with pytest.raises(ShapeError, match="needs the RGB image"):
        Predictor(checkpoint=rgb_unet, device="cpu").predict(None, frame.sparse)
    p = Predictor(device="cpu")
    with pytest.raises(ShapeError, match=r"image is 64x192 but sparse depth is 64x190"):
        p.predict(frame.rgb, frame.sparse[:, :190])
    with pytest.raises(ShapeError, match="no valid pixel"):
        p.predict(frame.rgb, np.zeros((H, W), np.float32))
    with pytest.raises(ShapeError, match="float metres"):
        p.predict(frame.rgb, (frame.sparse * 256).astype(np.uint16))
    with pytest.raises(ShapeError, match="NaN/Inf/negative"):
        p.predict(frame.rgb, np.where(frame.sparse > 0, -1.0, 0.0).astype(np.float32))
    with pytest.raises(ShapeError, match=r"divide 8-bit values by 255"):
        p.predict(frame.rgb * 255.0, frame.sparse)
    # uint8 RGB is accepted and means value/255
    q = Predictor(checkpoint=rgb_unet, device="cpu")
    u8 = np.rint(frame.rgb * 255).astype(np.uint8)
    np.testing.assert_allclose(q.predict(u8, frame.sparse), q.predict(u8 / np.float32(255), frame.sparse), rtol=1e-6)


def test_predict_files_validates_files(tmp_path, frame):
    write_rgb(tmp_path / "img.png", frame.rgb)
    write_depth(tmp_path / "sp.png", frame.sparse)
    write_depth(tmp_path / "small.png", frame.sparse[:, :100])
    write_depth(tmp_path / "zero.png", np.zeros((H, W), np.float32))
    p = Predictor(device="cpu")
    pred = p.predict_files(tmp_path / "img.png", tmp_path / "sp.png")
    assert isinstance(pred, Prediction) and not pred.relative
    np.testing.assert_array_equal(pred.sparse, read_depth(tmp_path / "sp.png"))
    np.testing.assert_array_equal(pred.depth, p.predict(pred.rgb, pred.sparse))
    with pytest.raises(DepthFileError, match=r"small\.png: sparse depth is 64x100 but image .*img\.png is 64x192"):
        p.predict_files(tmp_path / "img.png", tmp_path / "small.png")
    with pytest.raises(DepthFileError, match=r"zero\.png: no valid depth pixels"):
        p.predict_files(tmp_path / "img.png", tmp_path / "zero.png")
    with pytest.raises(UsageError, match="monocular checkpoint"):
        p.predict_files(tmp_path / "img.png")
    mono, _ = make_checkpoint(tmp_path / "mono.pt", "monocular", width=4)
    with pytest.raises(UsageError, match="drop the sparse depth"):
        Predictor(checkpoint=mono, device="cpu").predict_files(tmp_path / "img.png", tmp_path / "sp.png")


def test_checkpoint_errors(tmp_path):
    # weights of another model under the sparse_convnet name: first missing / unexpected keys named
    unet = models.build_model("sparse_unet", width=4, depth=3)
    save_checkpoint(tmp_path / "bad.pt", {"format": 1, "model": "sparse_convnet", "model_cfg": {"channels": 4},
                                          "state_dict": unet.state_dict(), "train_cfg": {}, "step": 0, "metrics": {}})
    with pytest.raises(CheckpointError) as info:
        Predictor(checkpoint=tmp_path / "bad.pt", device="cpu")
    msg = str(info.value)
    assert str(tmp_path / "bad.pt") in msg and "missing (first: ['layers.0.weight'" in msg
    assert f"unexpected (first: ['{next(iter(unet.state_dict()))}'" in msg
    # a bare state dict is not a DepthSense checkpoint
    torch.save(unet.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="not a DepthSense checkpoint"):
        Predictor(checkpoint=tmp_path / "bare.pt", device="cpu")
    # learned model without weights, contradicting names, unknown names, options with a checkpoint
    with pytest.raises(UsageError, match="needs trained weights"):
        Predictor(model="sparse_unet", device="cpu")
    ckpt, _ = make_checkpoint(tmp_path / "ok.pt", "sparse_convnet", channels=4)
    with pytest.raises(UsageError, match="holds a 'sparse_convnet' model"):
        Predictor(checkpoint=ckpt, model="monocular", device="cpu")
    assert Predictor(checkpoint=ckpt, model="sparse_convnet", device="cpu").name == "sparse_convnet"
    with pytest.raises(UsageError, match="drop --model-arg"):
        Predictor(checkpoint=ckpt, model_args={"channels": 8}, device="cpu")
    with pytest.raises(KeyError, match="known models"):
        Predictor(model="no_such_model", device="cpu")
    with pytest.raises(UsageError, match="blur"):
        Predictor(model="ip_basic", model_args={"blur": "box"}, device="cpu")


def test_code_carrying_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "hacked"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"echo hacked > {marker}",))

    torch.save({"format": 1, "model": "ip_basic", "model_cfg": {}, "state_dict": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused to load"):
        Predictor(checkpoint=tmp_path / "evil.pt", device="cpu")
    assert not marker.exists()


def test_non_finite_output_is_an_error(tmp_path, frame):
    model = models.build_model("sparse_convnet", channels=4)
    with torch.no_grad():
        model.layers[-1].bias.fill_(float("nan"))
    save_checkpoint(tmp_path / "nan.pt", {"format": 1, "model": "sparse_convnet", "model_cfg": model.config,
                                          "state_dict": model.state_dict(), "train_cfg": {}, "step": 0, "metrics": {}})
    with pytest.raises(CheckpointError, match="NaN/Inf"):
        Predictor(checkpoint=tmp_path / "nan.pt", device="cpu").predict(None, frame.sparse)


# --------------------------------------------------------------------------- writers


def test_relative_to_uint16_hand_values():
    rel = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32)
    np.testing.assert_array_equal(relative_to_uint16(rel), [[0, 16384], [32768, 65535]])
    # values 7, 4, 1, -5: (v+5)/12*65535, rounded half to even (32767.5 -> 32768)
    np.testing.assert_array_equal(relative_to_uint16(rel * -3 + 7), [[65535, 49151], [32768, 0]])
    assert relative_to_uint16(np.full((3, 4), 2.5)).max() == 0
    with pytest.raises(ShapeError, match="NaN"):
        relative_to_uint16(np.array([[0.0, np.nan]]))


def test_depth_to_points_hand_values():
    depth = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 4.0]], np.float32)
    K = np.array([[2.0, 0, 1.0], [0, 4.0, 0.5], [0, 0, 1]])
    pts, valid = depth_to_points(depth, K)
    # (u=1, v=0, Z=2): X=(1-1)*2/2=0, Y=(0-0.5)*2/4=-0.25 ; (u=2, v=1, Z=4): X=(2-1)*4/2=2, Y=(1-0.5)*4/4=0.5
    np.testing.assert_allclose(pts, [[0.0, -0.25, 2.0], [2.0, 0.5, 4.0]])
    assert valid.sum() == 2
    with pytest.raises(ShapeError, match="3x3"):
        depth_to_points(depth, np.eye(2))
    with pytest.raises(ShapeError, match="positive"):
        depth_to_points(depth, np.diag([0.0, 1.0, 1.0]))


def read_ply(path):
    """Minimal PLY reader for the writer's two formats: (header lines, structured array)."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    n = int(next(line.split()[2] for line in header if line.startswith("element vertex")))
    props = [line.split() for line in header if line.startswith("property")]
    dtype = [(p[2], "<f4" if p[1] == "float" else "u1") for p in props]
    if "format binary_little_endian 1.0" in header:
        return header, np.frombuffer(data[end:], dtype=dtype, count=n)
    rows = np.loadtxt(data[end:].decode("ascii").splitlines(), ndmin=2) if n else np.zeros((0, len(dtype)))
    return header, np.array([tuple(r) for r in rows], dtype=dtype)


@pytest.mark.parametrize("binary", [True, False])
def test_write_ply_one_vertex_per_valid_pixel(tmp_path, frame, binary):
    depth = frame.gt.copy()
    depth[:5] = 0.0
    n = write_ply(tmp_path / "c.ply", depth, frame.K, frame.rgb, binary=binary)
    header, verts = read_ply(tmp_path / "c.ply")
    valid = depth > 0
    assert n == int(valid.sum()) == len(verts) and 0 < n < depth.size
    assert [name for name, _ in verts.dtype.descr] == ["x", "y", "z", "red", "green", "blue"]
    pts, _ = depth_to_points(depth, frame.K)
    np.testing.assert_allclose(np.stack([verts["x"], verts["y"], verts["z"]], 1), pts, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(verts["red"], np.rint(frame.rgb[valid][:, 0] * 255).astype(np.uint8))
    # without colour: xyz only
    write_ply(tmp_path / "p.ply", depth, frame.K, binary=binary)
    _, plain = read_ply(tmp_path / "p.ply")
    assert plain.dtype.names == ("x", "y", "z") and len(plain) == n
    with pytest.raises(ShapeError, match="like the depth map"):
        write_ply(tmp_path / "x.ply", depth, frame.K, frame.rgb[:10])


def test_write_prediction_files(tmp_path, frame):
    p = Predictor(device="cpu")
    pred = Prediction(depth=p.predict(frame.rgb, frame.sparse), rgb=frame.rgb, sparse=frame.sparse)
    written = write_prediction(tmp_path, "a", pred, frame.K)
    assert sorted(k for k in written) == ["color", "depth", "ply", "points"]
    np.testing.assert_allclose(read_depth(written["depth"]), pred.depth, atol=0.5 / 256 + 1e-6)
    assert written["points"] == int((pred.depth > 0).sum())
    rel = Prediction(depth=np.arange(H * W, dtype=np.float32).reshape(H, W), rgb=frame.rgb, relative=True)
    with pytest.raises(UsageError, match="metric depth"):
        write_prediction(tmp_path, "r", rel, frame.K)
    assert not list(tmp_path.glob("r_*"))
    written = write_prediction(tmp_path, "r", rel)
    assert written["depth"].name == "r_relative.png" and written["color"].name == "r_relative_color.png"


def test_check_output_dir_creates_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DepthFileError, match="is a file"):
        check_output_dir(tmp_path / "file" / "out")
    with pytest.raises(DepthFileError, match="is a file"):
        check_output_dir(tmp_path / "file")
    target = tmp_path / "a" / "b"
    assert check_output_dir(target) == target and not (tmp_path / "a").exists()
    assert make_output_dir(target).is_dir()


# --------------------------------------------------------------------------- folders


def test_pair_files_by_name_and_kitti_naming(tmp_path):
    img, sp = tmp_path / "img", tmp_path / "sp"
    img.mkdir(), sp.mkdir()
    for name in ["a.png", "b.jpg", "c.png", "2011_09_26_drive_0001_sync_image_0000000005_image_02.png"]:
        (img / name).write_bytes(b"x")
    for name in ["a.png", "b.png", "d.png", "2011_09_26_drive_0001_sync_velodyne_raw_0000000005_image_02.png"]:
        (sp / name).write_bytes(b"x")
    result = pair_files(img, sp)
    pairs = {i.name: s.name for i, s in result.pairs}
    assert pairs == {
        "a.png": "a.png",
        "b.jpg": "b.png",
        "2011_09_26_drive_0001_sync_image_0000000005_image_02.png":
            "2011_09_26_drive_0001_sync_velodyne_raw_0000000005_image_02.png",
    }
    assert result.sparse_count == 4 and len(result.problems) == 2
    assert any("c.png" in p and "no sparse depth" in p for p in result.problems)
    assert any("d.png" in p and "no image" in p for p in result.problems)
    only_images = pair_files(img)
    assert [s for _, s in only_images.pairs] == [None] * 4 and not only_images.problems
    with pytest.raises(DepthFileError, match="--sparse-dir"):
        pair_files(img, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DepthFileError, match="no images"):
        pair_files(tmp_path / "empty")


def test_pair_files_refuses_images_sharing_a_stem(tmp_path):
    img, sp = tmp_path / "img", tmp_path / "sp"
    img.mkdir(), sp.mkdir()
    for name in ["a.png", "a.jpg", "b.png"]:
        (img / name).write_bytes(b"x")
    for name in ["a.png", "b.png"]:
        (sp / name).write_bytes(b"x")
    result = pair_files(img, sp)
    assert [(i.name, s.name) for i, s in result.pairs] == [("b.png", "b.png")]  # no guess which "a" is meant
    assert result.problems == [f"{img}: several images named a.*: ['a.jpg', 'a.png']; keep one"]
    only_images = pair_files(img)  # RGB-only models: the same rule
    assert [i.name for i, _ in only_images.pairs] == ["b.png"] and len(only_images.problems) == 1


def test_kitti_test_dirs(tmp_path):
    base = tmp_path / "depth_selection" / "test_depth_completion_anonymous"
    with pytest.raises(DatasetError, match="test_depth_completion_anonymous"):
        kitti_test_dirs(tmp_path)
    (base / "image").mkdir(parents=True)
    (base / "velodyne_raw").mkdir()
    assert kitti_test_dirs(tmp_path) == (base / "image", base / "velodyne_raw")
    assert kitti_test_dirs(base) == (base / "image", base / "velodyne_raw")


# --------------------------------------------------------------------------- ONNX


def test_onnx_export_refuses_classical_models(tmp_path):
    with pytest.raises(UsageError, match="classical model"):
        export_onnx(Predictor(model="ip_basic", device="cpu"), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_export_sparse_unet_parity_at_two_sizes(tmp_path):
    """TorchScript exporter here (fast); the dynamo exporter is tested through the CLI."""
    import onnxruntime as ort

    model = models.build_model("sparse_unet", width=4, depth=3).eval()
    result = export_onnx(model, tmp_path / "u.onnx", exporter="torchscript", check_sizes=((48, 96), (37, 61)))
    assert result.exporter == "torchscript" and result.inputs == ["sparse", "mask"]
    assert [c[0] for c in result.checks] == [(48, 96), (37, 61)]
    # Independent check at sizes the exporter never saw, batch 2, not multiples of 2**depth.
    sess = ort.InferenceSession(str(tmp_path / "u.onnx"), providers=["CPUExecutionProvider"])
    for h, w in [(40, 72), (29, 51)]:
        f0, f1 = render_frame(3, 0, 64, 96), render_frame(3, 1, 64, 96)
        s = torch.from_numpy(np.stack([f0.sparse[:h, :w], f1.sparse[:h, :w]]))[:, None].contiguous()
        m = (s > 0).float()
        with torch.inference_mode():
            ref = model(s, m).numpy()
        got = sess.run(None, {"sparse": s.numpy(), "mask": m.numpy()})[0]
        assert got.shape == (2, 1, h, w)
        assert np.abs(got - ref).max() <= 1e-4 + 1e-4 * np.abs(ref).max()  # the export tolerance


def test_onnx_auto_falls_back_to_torchscript(tmp_path, monkeypatch):
    import depthsense.inference.onnx_export as onnx_export

    def broken(*args, **kwargs):
        raise RuntimeError("dynamo exporter unavailable")

    monkeypatch.setattr(onnx_export, "_export_dynamo", broken)
    model = models.build_model("sparse_convnet", channels=4).eval()
    result = export_onnx(model, tmp_path / "c.onnx", check_sizes=((32, 48),))
    assert result.exporter == "torchscript" and "dynamo exporter unavailable" in result.fallback_reason
    assert (tmp_path / "c.onnx").is_file()


class _ShapeBranchNet(torch.nn.Module):
    """A model with a Python branch on the input width: tracing freezes it. It uses
    ``mask`` so the export keeps both inputs and the graph runs at every size: only the
    numeric comparison can tell that it is wrong."""

    name, needs_sparse, needs_rgb, learned = "shape_branch", True, False, True

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, sparse, mask, rgb=None):
        if sparse.shape[-1] > 80:
            return sparse * mask * self.w * 2
        return sparse * mask * self.w


def test_onnx_parity_failure_writes_nothing(tmp_path):
    """A graph frozen at the example size (width 96 takes the x2 branch) is wrong at
    37x61: the check must catch that and keep no file."""
    import depthsense.inference as inference

    with pytest.raises(inference.OnnxParityError) as exc:
        export_onnx(_ShapeBranchNet().eval(), tmp_path / "u.onnx", exporter="torchscript",
                    check_sizes=((48, 96), (37, 61)))
    msg = str(exc.value)
    # the graph ran at 37x61 (no onnxruntime failure) and the numbers were compared: off by 2x
    assert "37x61: max |onnx - torch|" in msg and "48x96" not in msg and "failed to run" not in msg, msg
    assert list(tmp_path.iterdir()) == []

def test_onnx_export_on_a_full_disk_fails_at_once_without_the_fallback(tmp_path, monkeypatch):
    import errno

    import depthsense.inference.onnx_export as onnx_export
    from depthsense.io import WriteError

    def dynamo_full(*args, **kwargs):  # the exporter wraps the OSError of its write
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("Failed to export the model") from exc

    fallback = []
    monkeypatch.setattr(onnx_export, "_export_dynamo", dynamo_full)
    monkeypatch.setattr(onnx_export, "_export_torchscript", lambda *a, **k: fallback.append(a))
    model = models.build_model("sparse_convnet", channels=4).eval()
    with pytest.raises(WriteError, match="c.onnx: cannot write \\(No space left on device\\)"):
        export_onnx(model, tmp_path / "c.onnx", check_sizes=((32, 48),))
    assert fallback == [] and list(tmp_path.iterdir()) == []


def test_onnx_export_removes_the_temp_files_a_killed_export_left(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [tmp_path / f".c.onnx.{dead.pid}-ab12.tmp.onnx", tmp_path / f".c.onnx.{dead.pid}-ab12.tmp.onnx.data"]
    live = tmp_path / f".c.onnx.{os.getpid()}-cd34.tmp.onnx"  # another export of this process, in progress
    other = tmp_path / f".d.onnx.{dead.pid}-ef56.tmp.onnx"  # not this destination's
    for p in (*stale, live, other):
        p.write_bytes(b"partial")
    model = models.build_model("sparse_convnet", channels=4).eval()
    export_onnx(model, tmp_path / "c.onnx", exporter="torchscript", check_sizes=((32, 48),))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["c.onnx", live.name, other.name])

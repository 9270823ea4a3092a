"""The RGB-D folder data set (data/rgbd.py): layout, units, splits, errors, the shared frames."""

from __future__ import annotations

import numpy as np
import pytest

from depthsense.data import build_dataset
from depthsense.errors import DatasetError, DepthFileError
from depthsense.io import write_depth, write_rgb


def _frame(root, source, name, depth, unit="kitti", suffix=".png", K=None, size=None):
    h, w = depth.shape
    (root / source / "rgb").mkdir(parents=True, exist_ok=True)
    (root / source / "gt").mkdir(parents=True, exist_ok=True)
    rh, rw = size or (h, w)
    write_rgb(root / source / "rgb" / f"{name}.png", np.random.default_rng(0).random((rh, rw, 3)).astype(np.float32))
    write_depth(root / source / "gt" / f"{name}{suffix}", depth, unit)
    if K is not None:
        (root / source / "K").mkdir(exist_ok=True)
        (root / source / "K" / f"{name}.txt").write_text(" ".join(str(v) for v in np.ravel(K)))


def _depth(seed=0, h=24, w=32):
    d = np.random.default_rng(seed).uniform(0.4, 6.0, (h, w)).astype(np.float32)
    d[:3] = 0.0
    return d


@pytest.mark.parametrize("unit", ["kitti", "mm", "tum", "2000"])
def test_reads_every_unit(tmp_path, unit):
    d = _depth()
    _frame(tmp_path, "cam", "a", d, unit=unit)
    ds = build_dataset("rgbd", tmp_path, "all", depth_unit=unit, pattern="samples:30")
    gt = ds[0]["gt"][0].numpy()
    scale = {"kitti": 256, "mm": 1000, "tum": 5000}.get(unit, 2000)
    np.testing.assert_allclose(gt, d, atol=0.51 / scale)
    assert int(ds[0]["mask"].sum()) == 30


def test_npy_ground_truth_and_intrinsics(tmp_path):
    d = _depth(1)
    K = [[500.0, 0, 16], [0, 500.0, 12], [0, 0, 1]]
    _frame(tmp_path, "cam", "a", d, suffix=".npy", K=K)
    s = build_dataset("rgbd", tmp_path, "all", pattern="holes:20%")[0]
    np.testing.assert_allclose(s["gt"][0].numpy(), d)
    np.testing.assert_allclose(s["meta"]["K"].numpy(), K)
    assert s["sparse"].count_nonzero() == round(0.8 * np.count_nonzero(d))


def test_splits_choose_sources_and_groups_name_them(tmp_path):
    for src in ("nyu", "ycb", "synthetic/icl", "synthetic/redwood"):
        _frame(tmp_path, src, "f0", _depth())
        _frame(tmp_path, src, "f1", _depth(2))
    ds = build_dataset("rgbd", tmp_path, "all", pattern="samples:10")
    assert ds.sources == ["nyu", "synthetic/icl", "synthetic/redwood", "ycb"] and len(ds) == 8
    ds = build_dataset("rgbd", tmp_path, "ycb,synthetic", pattern="samples:10")
    assert [ds.group(i) for i in range(len(ds))] == ["ycb", "ycb", "synthetic/icl", "synthetic/icl",
                                                     "synthetic/redwood", "synthetic/redwood"]
    with pytest.raises(DatasetError, match="unknown split 'kinect'.*valid splits: all, nyu"):
        build_dataset("rgbd", tmp_path, "kinect")


def test_bad_folders_are_one_line_naming_the_file(tmp_path):
    _frame(tmp_path, "cam", "a", _depth(), size=(20, 32))  # image and depth of different sizes
    with pytest.raises(DatasetError, match=r"gt/a.png: ground truth is 32x24 .* image .*rgb/a.png is 32x20") as e:
        build_dataset("rgbd", tmp_path, "all", pattern="samples:5")[0]
    assert "\n" not in str(e.value)
    (tmp_path / "cam" / "gt" / "b.png").write_bytes((tmp_path / "cam" / "gt" / "a.png").read_bytes())
    with pytest.raises(DatasetError, match="gt/b.png: no rgb/b"):
        build_dataset("rgbd", tmp_path, "all")
    (tmp_path / "cam" / "gt" / "b.png").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no RGB-D source"):
        build_dataset("rgbd", empty, "all")
    with pytest.raises(DatasetError, match="lines:16"):
        build_dataset("rgbd", tmp_path, "all", beams=16)
    with pytest.raises(DatasetError, match="has no LiDAR input; use lines:16"):
        build_dataset("rgbd", tmp_path, "all", pattern="beams:16")


def test_a_wrong_unit_is_refused_naming_the_file(tmp_path):
    _frame(tmp_path, "cam", "a", _depth(), unit="mm")
    ds = build_dataset("rgbd", tmp_path, "all", depth_unit="0.5", pattern="samples:5")  # half-units per metre
    with pytest.raises(DepthFileError, match=r"cam/gt/a.png: depth values reach \d+ m"):
        ds[0]
    with pytest.raises(DatasetError, match="depth unit 'feet'"):
        build_dataset("rgbd", tmp_path, "all", depth_unit="feet")


def test_the_shared_indoor_frames(indoor_rgbd_root):
    report = build_dataset("rgbd", indoor_rgbd_root, "slambook_nyu,posecnn_ycbvideo,o3d_sunrgbd",
                           pattern="keypoints:1000")
    assert len(report) == 11 and report.group(0) == "slambook_nyu"
    s = report[0]
    assert s["rgb"].shape == (3, 480, 640) and 0.5 < float(s["gt"][s["gt"] > 0].median()) < 10.0
    assert 900 <= int(s["mask"].sum()) <= 1000
    assert build_dataset("rgbd", indoor_rgbd_root, "synthetic").sources[-1] == "synthetic/slambook2_iclnuim"

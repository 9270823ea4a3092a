"""Tests for data/kitti.py and the data registry (data/__init__.py) on tiny KITTI trees."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from depthsense import data
from depthsense.data import DepthDataset, SparsitySpec, build_dataset
from depthsense.data.kitti import KittiDataset, SyntheticKittiDataset, read_lidar_offsets
from depthsense.data.sparsify import thin_beams
from depthsense.data.transforms import eval_transform, train_transform
from depthsense.errors import DatasetError, DepthFileError
from depthsense.io import read_depth, write_depth, write_rgb

H, W = 32, 96
DRIVES = ("2011_09_26_drive_0001", "2011_09_28_drive_0002")
FRAMES = ("0000000005", "0000000006")
P2 = [[80.0, 0.0, 47.5, 4.0], [0.0, 81.0, 15.5, 0.0], [0.0, 0.0, 1.0, 0.0]]
P3 = [[80.0, 0.0, 46.0, -30.0], [0.0, 81.0, 16.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
SEL_K = [[70.0, 0.0, 40.0], [0.0, 71.0, 14.0], [0.0, 0.0, 1.0]]


def _frame(seed: int):
    rng = np.random.default_rng(seed)
    rgb = rng.uniform(0, 1, (H, W, 3)).astype(np.float32)
    gt = np.where(rng.random((H, W)) < 0.5, rng.uniform(2, 60, (H, W)), 0.0)
    gt = (np.rint(gt * 256) / 256).astype(np.float32)  # exactly representable on disk
    sparse = np.where(rng.random((H, W)) < 0.1, gt, 0.0).astype(np.float32)
    return rgb, sparse, gt


def _row(values) -> str:
    return " ".join(f"{v:.6e}" for v in np.ravel(values))


def make_kitti(root: Path, *, calib_for=(DRIVES[0][:10],)) -> Path:
    """2 train drives x 2 frames (image_02; image_03 for the first drive), 1 val drive,
    2 val_selection and 2 test samples, RGB in the raw layout under root."""
    seed = 0
    for split, drives in (("train", DRIVES), ("val", DRIVES[:1])):
        for d, drive in enumerate(drives):
            cams = ("image_02", "image_03") if d == 0 else ("image_02",)
            for cam in cams:
                proj = root / split / f"{drive}_sync" / "proj_depth"
                rgb_dir = root / drive[:10] / f"{drive}_sync" / cam / "data"
                for sub in (proj / "velodyne_raw" / cam, proj / "groundtruth" / cam, rgb_dir):
                    sub.mkdir(parents=True, exist_ok=True)
                for frame in FRAMES:
                    rgb, sparse, gt = _frame(seed)
                    seed += 1
                    write_rgb(rgb_dir / f"{frame}.png", rgb)
                    write_depth(proj / "velodyne_raw" / cam / f"{frame}.png", sparse)
                    write_depth(proj / "groundtruth" / cam / f"{frame}.png", gt)
    for date in calib_for:
        (root / date).mkdir(parents=True, exist_ok=True)
        (root / date / "calib_cam_to_cam.txt").write_text(
            f"calib_time: 09-Jan-2012 13:57:47\nP_rect_00: {_row(P2)}\nP_rect_02: {_row(P2)}\nP_rect_03: {_row(P3)}\n"
        )
    sel = root / "depth_selection" / "val_selection_cropped"
    test = root / "depth_selection" / "test_depth_completion_anonymous"
    for sub in ("image", "velodyne_raw", "groundtruth_depth", "intrinsics"):
        (sel / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("image", "velodyne_raw", "intrinsics"):
        (test / sub).mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(FRAMES):
        rgb, sparse, gt = _frame(100 + i)
        d = f"{DRIVES[0]}_sync"
        write_rgb(sel / "image" / f"{d}_image_{frame}_image_02.png", rgb)
        write_depth(sel / "velodyne_raw" / f"{d}_velodyne_raw_{frame}_image_02.png", sparse)
        write_depth(sel / "groundtruth_depth" / f"{d}_groundtruth_depth_{frame}_image_02.png", gt)
        (sel / "intrinsics" / f"{d}_image_{frame}_image_02.txt").write_text(_row(SEL_K) + "\n")
        name = f"{i:010d}"
        write_rgb(test / "image" / f"{name}.png", rgb)
        write_depth(test / "velodyne_raw" / f"{name}.png", sparse)
        (test / "intrinsics" / f"{name}.txt").write_text(_row(SEL_K) + "\n")
    return root


@pytest.fixture(scope="module")
def kitti_root(tmp_path_factory) -> Path:
    return make_kitti(tmp_path_factory.mktemp("kitti"))


def _check_sample(s, *, has_gt=True, shape=(H, W)):
    h, w = shape
    assert s["rgb"].shape == (3, h, w) and s["rgb"].dtype == torch.float32
    assert 0.0 <= s["rgb"].min() and s["rgb"].max() <= 1.0
    for k in ("sparse", "mask") + (("gt",) if has_gt else ()):
        assert s[k].shape == (1, h, w) and s[k].dtype == torch.float32, k
    assert torch.equal(s["mask"], (s["sparse"] > 0).float())
    assert ("gt" in s) == has_gt
    m = s["meta"]
    assert set(m) == {"rgb_path", "sparse_path", "gt_path", "fg_path", "K", "size", "index"}
    assert m["K"].shape == (3, 3) and m["K"].dtype == torch.float32
    assert m["size"].dtype == torch.int64


# --------------------------------------------------------------------------- splits


def test_train_split_pairs_files_and_loads_exact_values(kitti_root):
    ds = KittiDataset(kitti_root, "train")
    assert len(ds) == 6  # 2 drives x 2 frames image_02 + 2 frames image_03
    names = [r.name for r in ds.samples]
    assert names == sorted(names)
    assert names[0] == f"{DRIVES[0]}_sync/image_02/{FRAMES[0]}"
    s = ds[0]
    _check_sample(s)
    rec = ds.samples[0]
    assert s["meta"]["rgb_path"] == str(kitti_root / "2011_09_26" / f"{DRIVES[0]}_sync/image_02/data/{FRAMES[0]}.png")
    assert s["meta"]["sparse_path"].endswith(f"proj_depth/velodyne_raw/image_02/{FRAMES[0]}.png")
    assert s["meta"]["gt_path"].endswith(f"proj_depth/groundtruth/image_02/{FRAMES[0]}.png")
    np.testing.assert_array_equal(s["sparse"][0].numpy(), read_depth(rec.sparse))
    np.testing.assert_array_equal(s["gt"][0].numpy(), read_depth(rec.gt))
    assert s["meta"]["size"].tolist() == [H, W] and s["meta"]["index"] == 0


def test_K_from_calib_per_camera_and_zeros_without_calib(kitti_root):
    ds = KittiDataset(kitti_root, "train")
    by_name = {r.name: i for i, r in enumerate(ds.samples)}
    k2 = ds[by_name[f"{DRIVES[0]}_sync/image_02/{FRAMES[0]}"]]["meta"]["K"]
    k3 = ds[by_name[f"{DRIVES[0]}_sync/image_03/{FRAMES[0]}"]]["meta"]["K"]
    np.testing.assert_allclose(k2.numpy(), np.array(P2)[:, :3])
    np.testing.assert_allclose(k3.numpy(), np.array(P3)[:, :3])
    k_none = ds[by_name[f"{DRIVES[1]}_sync/image_02/{FRAMES[0]}"]]["meta"]["K"]
    assert not k_none.any()


def test_cameras_option_and_val_split(kitti_root):
    assert len(KittiDataset(kitti_root, "train", cameras=("image_02",))) == 4
    assert len(KittiDataset(kitti_root, "train", cameras="image_03")) == 2
    assert len(KittiDataset(kitti_root, "val")) == 4


def test_val_selection_split(kitti_root):
    ds = KittiDataset(kitti_root, "val_selection")
    assert len(ds) == 2
    s = ds[1]
    _check_sample(s)
    np.testing.assert_allclose(s["meta"]["K"].numpy(), SEL_K)
    assert Path(s["meta"]["gt_path"]).name == f"{DRIVES[0]}_sync_groundtruth_depth_{FRAMES[1]}_image_02.png"
    assert Path(s["meta"]["rgb_path"]).name == f"{DRIVES[0]}_sync_image_{FRAMES[1]}_image_02.png"


def test_val_selection_camera_filter_can_leave_nothing(kitti_root):
    with pytest.raises(DatasetError, match="no samples found"):
        KittiDataset(kitti_root, "val_selection", cameras=("image_03",))


def test_test_split_has_no_gt_and_collates(kitti_root):
    ds = KittiDataset(kitti_root, "test")
    assert len(ds) == 2
    s = ds[0]
    _check_sample(s, has_gt=False)
    assert s["meta"]["gt_path"] == ""
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert "gt" not in batch and batch["sparse"].shape == (2, 1, H, W)


def test_default_collate_batches_train_samples(kitti_root):
    ds = KittiDataset(kitti_root, "train", transform=train_transform(crop=(16, 64)))
    batch = next(iter(DataLoader(ds, batch_size=3, shuffle=False)))
    assert batch["rgb"].shape == (3, 3, 16, 64)
    for k in ("sparse", "mask", "gt"):
        assert batch[k].shape == (3, 1, 16, 64)
    assert batch["meta"]["K"].shape == (3, 3, 3)
    assert batch["meta"]["size"].tolist() == [[H, W]] * 3
    assert batch["meta"]["index"].tolist() == [0, 1, 2]
    assert len(batch["meta"]["rgb_path"]) == 3 and isinstance(batch["meta"]["rgb_path"][0], str)


def test_dataset_pickles_for_dataloader_workers(kitti_root):
    ds = KittiDataset(kitti_root, "train", transform=train_transform(crop=(16, 64)),
                      sparsity=SparsitySpec(density=0.05))
    ds2 = pickle.loads(pickle.dumps(ds))
    assert torch.equal(ds[2]["sparse"], ds2[2]["sparse"])


def test_rgb_root_and_alternative_rgb_locations(tmp_path):
    root = make_kitti(tmp_path / "k")
    raw = tmp_path / "raw"
    # Move the first drive's RGB to <rgb_root>/<drive>_sync/... and the second to
    # <root>/train/<drive>_sync/image_02/data.
    raw.mkdir()
    (root / DRIVES[0][:10] / f"{DRIVES[0]}_sync").rename(raw / f"{DRIVES[0]}_sync")
    src = root / DRIVES[1][:10] / f"{DRIVES[1]}_sync" / "image_02"
    src.rename(root / "train" / f"{DRIVES[1]}_sync" / "image_02")
    with pytest.raises(DatasetError, match="no RGB image"):
        KittiDataset(root, "train")
    ds = KittiDataset(root, "train", rgb_root=raw)
    paths = [str(r.rgb) for r in ds.samples]
    assert sum(p.startswith(str(raw)) for p in paths) == 4
    assert sum("/train/" in p for p in paths) == 2
    _check_sample(ds[5])
    assert "rgb_root" in ds.describe()


# --------------------------------------------------------------------------- errors


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="does not exist") as e:
        KittiDataset(tmp_path / "nope", "train")
    assert str(tmp_path / "nope") in str(e.value)


def test_unknown_split_lists_valid_splits(kitti_root):
    with pytest.raises(DatasetError, match="valid splits: train, val, val_selection, test"):
        KittiDataset(kitti_root, "training")


def test_empty_split_says_what_was_searched(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DatasetError, match="no samples found") as e:
        KittiDataset(tmp_path, "train")
    assert "velodyne_raw" in str(e.value) and str(tmp_path / "train") in str(e.value)
    with pytest.raises(DatasetError, match="split folder not found"):
        KittiDataset(tmp_path, "val")
    with pytest.raises(DatasetError, match="val_selection_cropped"):
        KittiDataset(tmp_path, "val_selection")


def test_velodyne_without_gt_is_named(tmp_path):
    root = make_kitti(tmp_path)
    gt_dir = root / "train" / f"{DRIVES[1]}_sync" / "proj_depth" / "groundtruth" / "image_02"
    for f in gt_dir.iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match="2 velodyne_raw frames have no ground truth") as e:
        KittiDataset(root, "train")
    velo = root / "train" / f"{DRIVES[1]}_sync" / "proj_depth" / "velodyne_raw" / "image_02"
    assert str(velo / f"{FRAMES[0]}.png") in str(e.value)


def test_velodyne_without_gt_lists_at_most_three(tmp_path):
    root = make_kitti(tmp_path)
    for d in root.glob("train/*/proj_depth/groundtruth/*"):
        for f in d.iterdir():
            f.unlink()
    with pytest.raises(DatasetError, match="6 velodyne_raw frames") as e:
        KittiDataset(root, "train")
    assert "and 3 more" in str(e.value) and str(e.value).count(str(root / "train")) == 3


def test_val_selection_without_gt_or_image(tmp_path):
    root = make_kitti(tmp_path)
    sel = root / "depth_selection" / "val_selection_cropped"
    victim = sel / "groundtruth_depth" / f"{DRIVES[0]}_sync_groundtruth_depth_{FRAMES[0]}_image_02.png"
    victim.unlink()
    with pytest.raises(DatasetError, match="no groundtruth_depth") as e:
        KittiDataset(root, "val_selection")
    assert f"{DRIVES[0]}_sync_velodyne_raw_{FRAMES[0]}_image_02.png" in str(e.value)
    (root / "depth_selection" / "test_depth_completion_anonymous" / "image" / "0000000001.png").unlink()
    with pytest.raises(DatasetError, match="no image"):
        KittiDataset(root, "test")


def test_size_mismatch_detected_at_load(tmp_path):
    root = make_kitti(tmp_path)
    ds = KittiDataset(root, "train")  # construction only checks existence
    write_depth(ds.samples[1].gt, np.ones((H, W - 2), np.float32))
    with pytest.raises(DatasetError, match="do not belong together") as e:
        ds[1]
    assert str(ds.samples[1].gt) in str(e.value)


def test_bad_depth_file_raises_depth_file_error(tmp_path):
    root = make_kitti(tmp_path)
    ds = KittiDataset(root, "train")
    write_rgb(ds.samples[0].sparse, np.zeros((H, W, 3), np.float32))  # an 8-bit RGB PNG
    with pytest.raises(DepthFileError, match="8-bit"):
        ds[0]


def test_bad_options(kitti_root):
    with pytest.raises(DatasetError, match="choose one"):
        build_dataset("kitti", kitti_root, "train", density=0.1, beams=16)
    with pytest.raises(DatasetError, match="seed"):
        KittiDataset(kitti_root, "train", seed=-1)
    with pytest.raises(DatasetError, match="beams"):
        build_dataset("kitti", kitti_root, "train", beams=12)
    ds = KittiDataset(kitti_root, "test")
    with pytest.raises(IndexError):
        ds[2]
    assert torch.equal(ds[-1]["sparse"], ds[1]["sparse"])


# --------------------------------------------------------------------------- sparsity


def test_density_samples_gt_deterministically(kitti_root):
    ds = KittiDataset(kitti_root, "train", sparsity=SparsitySpec(density=0.2), seed=3)
    a, b = ds[1], ds[1]
    assert torch.equal(a["sparse"], b["sparse"])
    n = int((a["sparse"] > 0).sum())
    gt_valid = int((a["gt"] > 0).sum())
    assert n == min(round(0.2 * H * W), gt_valid)
    kept = a["sparse"] > 0
    assert torch.equal(a["sparse"][kept], a["gt"][kept])  # sampled from GT
    other_seed = KittiDataset(kitti_root, "train", sparsity=SparsitySpec(density=0.2), seed=4)[1]
    assert not torch.equal(a["sparse"], other_seed["sparse"])
    assert not torch.equal(ds[2]["sparse"] > 0, a["sparse"] > 0)


def test_density_on_test_split_samples_the_sparse_input(kitti_root):
    full = KittiDataset(kitti_root, "test")[0]["sparse"]
    s = KittiDataset(kitti_root, "test", sparsity=SparsitySpec(density=0.02))[0]["sparse"]
    assert int((s > 0).sum()) == round(0.02 * H * W)
    kept = s > 0
    assert torch.equal(s[kept], full[kept])


def test_num_points(kitti_root):
    s = KittiDataset(kitti_root, "train", sparsity=SparsitySpec(num_points=50))[0]
    assert int((s["sparse"] > 0).sum()) == 50 and int(s["mask"].sum()) == 50


def test_density_is_applied_to_the_full_frame_before_the_crop(kitti_root):
    full = KittiDataset(kitti_root, "train", sparsity=SparsitySpec(density=0.1), seed=1)
    cropped = KittiDataset(kitti_root, "train", sparsity=SparsitySpec(density=0.1), seed=1,
                           transform=eval_transform(crop=(16, 48)))
    for i in (0, 3):
        a, b = full[i], cropped[i]
        x0 = (W - 48) // 2
        for k in ("rgb", "sparse", "gt"):
            assert torch.equal(b[k], a[k][:, H - 16 :, x0 : x0 + 48])
        assert b["meta"]["size"].tolist() == [H, W]


def test_crop_adjusts_K_and_epoch_changes_only_the_augmentation(kitti_root):
    ds = KittiDataset(kitti_root, "train", sparsity=SparsitySpec(density=0.3),
                      transform=train_transform(crop=(16, 64), hflip=0.5))
    ref = KittiDataset(kitti_root, "train", sparsity=SparsitySpec(density=0.3))[0]  # same sparsification, full frame
    k_full = ref["meta"]["K"]
    views = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        s = ds[0]
        k = s["meta"]["K"]
        assert float(k[1, 2]) == pytest.approx(float(k_full[1, 2]) - (H - 16))
        assert float(k[0, 0]) == pytest.approx(float(k_full[0, 0]))
        # Recover the crop from K (cx' = cx - x0, or 63 - (cx - x0) when flipped) and check
        # the sparse input is exactly that window of the epoch-independent full frame.
        cx, cx_full = float(k[0, 2]), float(k_full[0, 2])
        matches = []
        for flip in (False, True):
            x0 = cx_full - (63 - cx if flip else cx)
            if abs(x0 - round(x0)) < 1e-3 and 0 <= round(x0) <= W - 64:
                window = ref["sparse"][:, H - 16 :, round(x0) : round(x0) + 64]
                matches.append(torch.equal(s["sparse"], window.flip(-1) if flip else window))
        assert any(matches)
        views.add(round(cx, 3))
    assert len(views) > 1  # the augmentation changes with the epoch
    # Same (seed, index, epoch), same sample: a fresh data set after other reads gives it again.
    ds.set_epoch(2)
    s = ds[0]
    again = KittiDataset(kitti_root, "train", sparsity=SparsitySpec(density=0.3),
                         transform=train_transform(crop=(16, 64), hflip=0.5))
    again[1], again[0]  # reads in between must not shift any random stream
    again.set_epoch(2)
    t = again[0]
    for key in ("rgb", "sparse", "mask", "gt"):
        assert torch.equal(s[key], t[key]), key
    # and its ground truth is the crop of the GT file (read here) that K says it is
    gt_file = read_depth(ds.samples[0].gt)[H - 16 :]
    cx, cx_full = float(s["meta"]["K"][0, 2]), float(k_full[0, 2])
    crops = [gt_file[:, round(cx_full - cx) : round(cx_full - cx) + 64]]
    crops.append(gt_file[:, round(cx_full - 63 + cx) : round(cx_full - 63 + cx) + 64][:, ::-1])
    assert any(c.shape == (16, 64) and np.array_equal(s["gt"][0].numpy(), c) for c in crops)


def test_beams_use_K_and_the_velo_calibration(tmp_path):
    root = make_kitti(tmp_path)
    (root / "2011_09_26" / "calib_velo_to_cam.txt").write_text(
        "calib_time: 15-Mar-2012 11:37:16\nR: 1 0 0 0 1 0 0 0 1\nT: -4.069766e-03 -7.631618e-02 -2.717806e-01\n"
    )
    assert read_lidar_offsets(root / "2011_09_26" / "calib_velo_to_cam.txt") == pytest.approx((0.07631618, 0.2717806))
    ds = KittiDataset(root, "train", sparsity=SparsitySpec(beams=16))
    rec = ds.samples[0]
    expected = thin_beams(
        read_depth(rec.sparse), np.array(P2)[:, :3], 16, lidar_height_offset=0.07631618, lidar_behind_offset=0.2717806
    )
    np.testing.assert_array_equal(ds[0]["sparse"][0].numpy(), expected)
    # the calibration matters: other offsets or the default K thin differently here
    depth0 = read_depth(rec.sparse)
    assert 0 < (expected > 0).sum() < (depth0 > 0).sum()
    assert not np.array_equal(expected, thin_beams(depth0, np.array(P2)[:, :3], 16, lidar_behind_offset=0.0))
    assert not np.array_equal(expected, thin_beams(depth0, None, 16, lidar_behind_offset=0.2717806))
    # without calibration files: KITTI's default mount and the default K
    rec1 = ds.samples[4]
    assert rec1.lidar_calib is None and rec1.calib is None
    expected1 = thin_beams(read_depth(rec1.sparse), None, 16, lidar_height_offset=0.08, lidar_behind_offset=0.27)
    np.testing.assert_array_equal(ds[4]["sparse"][0].numpy(), expected1)
    (root / "2011_09_26" / "calib_velo_to_cam.txt").write_text("R: 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(DepthFileError, match="no 'T: x y z' line"):
        KittiDataset(root, "train", sparsity=SparsitySpec(beams=16))[0]


def test_ambiguous_keys_in_the_raw_calibration_are_errors(tmp_path):
    root = make_kitti(tmp_path)
    velo = root / "2011_09_26" / "calib_velo_to_cam.txt"
    velo.write_text("R: 1 0 0 0 1 0 0 0 1\nT: -4.069766e-03 -7.631618e-02 -2.717806e-01\nT: 0 0 0\n")
    with pytest.raises(DepthFileError, match=r"calib_velo_to_cam.txt: key 'T' appears on lines 2 and 3"):
        read_lidar_offsets(velo)
    with pytest.raises(DepthFileError, match=r"key 'T' appears on lines 2 and 3"):
        KittiDataset(root, "train", sparsity=SparsitySpec(beams=16))[0]
    velo.unlink()
    cam = root / "2011_09_26" / "calib_cam_to_cam.txt"
    cam.write_text(cam.read_text() + f"P_rect_02: {_row(P3)}\n")  # K of image_02 would be the last line's
    with pytest.raises(DepthFileError, match=r"calib_cam_to_cam.txt: key 'P_rect_02' appears on lines 3 and 5"):
        KittiDataset(root, "train", cameras=("image_02",))[0]


# --------------------------------------------------------------------------- registry


def test_registry_builds_kitti_and_synthetic(kitti_root):
    assert {"kitti", "nyu", "redweb", "synthetic"} <= set(data.available_datasets())
    ds = build_dataset("kitti", kitti_root, "train", cameras=("image_02",), density=0.05, seed=2)
    assert isinstance(ds, KittiDataset) and isinstance(ds, DepthDataset) and len(ds) == 4
    assert ds.seed == 2 and ds.density == 0.05
    syn = build_dataset("synthetic", kitti_root, "val_selection")
    assert isinstance(syn, SyntheticKittiDataset) and len(syn) == 2
    text = repr(ds)
    assert "KittiDataset(" in text and "split='train'" in text and "samples=4" in text and "density=0.05" in text


def test_registry_unknown_name_lists_known(kitti_root):
    with pytest.raises(KeyError, match="known data sets: kitti, kitti_object, nyu, redweb, rgbd, synthetic"):
        build_dataset("kiti", kitti_root, "train")


def test_register_duplicate_name_refused():
    with pytest.raises(KeyError, match="already registered"):
        data.register_dataset("kitti")(type("Other", (DepthDataset,), {}))
    assert data.build_dataset.__name__ in data.__all__


def test_synthetic_sets_yield_the_foreground_mask_and_a_partial_set_is_an_error(tmp_path):
    from depthsense.data.synthetic import generate

    generate(tmp_path / "s", "kitti", frames=6, seed=2, height=40, width=120)
    ds = build_dataset("synthetic", tmp_path / "s", "train", transform=train_transform((32, 96), hflip=1.0))
    s = ds[0]
    assert s["fg"].shape == (1, 32, 96) and set(s["fg"].unique().tolist()) <= {0.0, 1.0}
    assert s["meta"]["fg_path"].endswith("proj_depth/fg/image_02/0000000005.png")
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["fg"].shape == (2, 1, 32, 96)
    sel = build_dataset("synthetic", tmp_path / "s", "val_selection")
    assert sel[0]["fg"].shape == (1, 40, 120)
    assert "fg" not in build_dataset("synthetic", tmp_path / "s", "test")[0]
    for p in sorted((tmp_path / "s/train").rglob("fg/image_02/*.png"))[:1]:
        p.unlink()
    with pytest.raises(DatasetError, match="no foreground mask"):
        build_dataset("synthetic", tmp_path / "s", "train")


def test_real_kitti_samples_have_no_fg(tmp_path):
    s = KittiDataset(make_kitti(tmp_path), "train")[0]
    assert "fg" not in s and s["meta"]["fg_path"] == ""

"""Tests for data/nyu.py on tiny HDF5 files in the sparse-to-dense layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from depthsense.data import SparsitySpec, build_dataset
from depthsense.data.nyu import NYU_K, NyuDataset
from depthsense.data.transforms import eval_transform, train_transform
from depthsense.errors import DatasetError, DepthFileError

H, W = 48, 64


def _write_h5(path: Path, seed: int, rgb_shape=(3, H, W), depth_shape=(H, W)) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    depth = rng.uniform(0.5, 10.0, depth_shape).astype(np.float32)
    depth[:4] = 0.0  # Kinect holes
    with h5py.File(path, "w") as f:
        f.create_dataset("rgb", data=rng.integers(0, 256, rgb_shape, dtype=np.uint8))
        f.create_dataset("depth", data=depth)


def make_nyu(root: Path) -> Path:
    # numeric order differs from string order: 2 < 10
    for i, (scene, n) in enumerate([("bedroom_0001", 10), ("bedroom_0001", 2), ("office_0003", 1)]):
        _write_h5(root / "train" / scene / f"{n}.h5", i)
    _write_h5(root / "val" / "official" / "00001.h5", 9)
    return root


@pytest.fixture(scope="module")
def nyu_root(tmp_path_factory) -> Path:
    return make_nyu(tmp_path_factory.mktemp("nyu"))


def test_samples_shapes_and_default_500_points(nyu_root):
    ds = NyuDataset(nyu_root, "train")
    assert [r.name for r in ds.samples] == ["bedroom_0001/2", "bedroom_0001/10", "office_0003/1"]
    s = ds[0]
    assert s["rgb"].shape == (3, H, W) and s["rgb"].dtype == torch.float32
    assert s["sparse"].shape == s["mask"].shape == s["gt"].shape == (1, H, W)
    assert int(s["mask"].sum()) == 500
    kept = s["sparse"] > 0
    assert torch.equal(s["sparse"][kept], s["gt"][kept])
    assert not s["sparse"][:, :4].any()  # holes are never sampled
    np.testing.assert_allclose(s["meta"]["K"].numpy(), NYU_K)
    assert s["meta"]["size"].tolist() == [H, W]
    assert s["meta"]["rgb_path"] == s["meta"]["gt_path"] and s["meta"]["sparse_path"] == ""


def test_values_match_the_file(nyu_root):
    ds = NyuDataset(nyu_root, "train")
    s = ds[2]
    with h5py.File(ds.samples[2].rgb, "r") as f:
        rgb, depth = f["rgb"][()], f["depth"][()]
    np.testing.assert_allclose(s["rgb"].numpy(), rgb.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(s["gt"][0].numpy(), depth)


def test_density_and_num_points_options(nyu_root):
    s = NyuDataset(nyu_root, "val", sparsity=SparsitySpec(density=0.1))[0]
    assert int(s["mask"].sum()) == round(0.1 * H * W)
    s = build_dataset("nyu", nyu_root, "val", num_points=20)[0]
    assert int(s["mask"].sum()) == 20
    with pytest.raises(DatasetError, match="no LiDAR scan lines"):
        build_dataset("nyu", nyu_root, "val", beams=32)


def test_deterministic_per_seed_and_index(nyu_root):
    a = NyuDataset(nyu_root, "train", seed=5)
    b = NyuDataset(nyu_root, "train", seed=5)
    c = NyuDataset(nyu_root, "train", seed=6)
    assert torch.equal(a[1]["sparse"], b[1]["sparse"])
    assert not torch.equal(a[1]["sparse"], c[1]["sparse"])


def test_crop_adjusts_K_and_collates(nyu_root):
    ds = NyuDataset(nyu_root, "train", transform=eval_transform(crop=(32, 48), bottom=False))
    s = ds[0]
    assert s["rgb"].shape == (3, 32, 48)
    assert float(s["meta"]["K"][0, 2]) == pytest.approx(float(NYU_K[0, 2]) - 8)
    assert float(s["meta"]["K"][1, 2]) == pytest.approx(float(NYU_K[1, 2]) - 8)
    ds = NyuDataset(nyu_root, "train", transform=train_transform(crop=(32, 48), bottom=False))
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["gt"].shape == (3, 1, 32, 48) and batch["meta"]["K"].shape == (3, 3, 3)


def test_hwc_rgb_is_accepted(tmp_path):
    _write_h5(tmp_path / "train" / "s" / "1.h5", 0, rgb_shape=(H, W, 3))
    assert NyuDataset(tmp_path, "train")[0]["rgb"].shape == (3, H, W)


def test_errors(tmp_path, nyu_root):
    with pytest.raises(DatasetError, match="does not exist"):
        NyuDataset(tmp_path / "missing", "train")
    with pytest.raises(DatasetError, match="valid splits: train, val"):
        NyuDataset(nyu_root, "test")
    (tmp_path / "train" / "empty_scene").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no samples found; searched .*\*\.h5") as e:
        NyuDataset(tmp_path, "train")
    assert str(tmp_path / "train") in str(e.value)


def test_corrupt_and_inconsistent_h5(tmp_path):
    bad = tmp_path / "train" / "s" / "1.h5"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)  # truncated HDF5
    ds = NyuDataset(tmp_path, "train")
    with pytest.raises(DepthFileError, match="not a readable HDF5") as e:
        ds[0]
    assert str(bad) in str(e.value)
    with h5py.File(bad, "w") as f:
        f.create_dataset("rgb", data=np.zeros((3, H, W), np.uint8))
    with pytest.raises(DepthFileError, match="lacks"):
        ds[0]
    _write_h5(bad, 0, rgb_shape=(3, H, W + 1))
    with pytest.raises(DatasetError, match="'rgb' has shape") as e:
        ds[0]
    assert str(bad) in str(e.value)

"""Tests for data/redweb.py on a tiny ReDWeb-layout folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from depthsense.data import build_dataset
from depthsense.data.redweb import RedwebDataset, read_relative_depth
from depthsense.data.transforms import train_transform
from depthsense.errors import DatasetError, DepthFileError
from depthsense.io import write_rgb

H, W = 24, 40


def make_redweb(root: Path, n: int = 12) -> Path:
    (root / "Imgs").mkdir(parents=True)
    (root / "RDs").mkdir()
    for i in range(n):
        rng = np.random.default_rng(i)
        write_rgb(root / "Imgs" / f"img_{i:03d}.jpg", rng.uniform(0, 1, (H, W, 3)))
        rd = rng.integers(0, 255, (H, W), dtype=np.uint8)
        rd[:3] = 255  # sky
        rd[3, :3] = (0, 254, 127)
        cv2.imwrite(str(root / "RDs" / f"img_{i:03d}.png"), rd)
    return root


@pytest.fixture(scope="module")
def redweb_root(tmp_path_factory) -> Path:
    return make_redweb(tmp_path_factory.mktemp("redweb"))


def test_relative_depth_convention(redweb_root):
    rd = cv2.imread(str(redweb_root / "RDs" / "img_000.png"), cv2.IMREAD_UNCHANGED)
    gt = read_relative_depth(redweb_root / "RDs" / "img_000.png")
    assert gt.dtype == np.float32 and gt.shape == (H, W)
    assert not gt[:3].any()  # 255 = sky -> 0 = missing
    np.testing.assert_allclose(gt[3, :3], [1 / 255, 1.0, 128 / 255])
    valid = rd != 255
    np.testing.assert_allclose(gt[valid], (rd[valid] + 1.0) / 255.0)
    # order preserved: larger RD value = farther = larger gt
    assert np.all(np.diff(gt[valid][np.argsort(rd[valid], kind="stable")]) >= 0)


def test_sample_contract(redweb_root):
    ds = RedwebDataset(redweb_root, "all")
    assert len(ds) == 12
    s = ds[4]
    assert s["rgb"].shape == (3, H, W) and s["gt"].shape == (1, H, W)
    assert not s["sparse"].any() and not s["mask"].any() and s["mask"].shape == (1, H, W)
    assert not s["meta"]["K"].any() and s["meta"]["sparse_path"] == ""
    assert Path(s["meta"]["rgb_path"]).name == "img_004.jpg" and Path(s["meta"]["gt_path"]).name == "img_004.png"
    np.testing.assert_array_equal(s["gt"][0].numpy(), read_relative_depth(redweb_root / "RDs" / "img_004.png"))


def test_default_split_every_tenth_to_val(redweb_root):
    val = RedwebDataset(redweb_root, "val")
    train = RedwebDataset(redweb_root, "train")
    assert [r.name for r in val.samples] == ["img_000", "img_010"]
    assert len(train) == 10 and not {r.name for r in train.samples} & {r.name for r in val.samples}


def test_split_list_file(tmp_path):
    root = make_redweb(tmp_path / "r", n=4)
    (root / "mini.txt").write_text("# my split\nImgs/img_002.jpg\n\nimg_000\n")
    ds = RedwebDataset(root, "mini")
    assert [r.name for r in ds.samples] == ["img_002", "img_000"]
    (root / "train.txt").write_text("img_003\n")
    assert [r.name for r in RedwebDataset(root, "train").samples] == ["img_003"]
    (root / "bad.txt").write_text("img_009\n")
    with pytest.raises(DatasetError, match="1 listed samples have no image") as e:
        RedwebDataset(root, "bad")
    assert "img_009" in str(e.value) and str(root / "bad.txt") in str(e.value)


def test_collate_with_crop(redweb_root):
    ds = build_dataset("redweb", redweb_root, "train", transform=train_transform(crop=(16, 32), colour_jitter=False))
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["rgb"].shape == (4, 3, 16, 32) and batch["gt"].shape == (4, 1, 16, 32)
    assert batch["meta"]["K"].abs().sum() == 0  # unknown K stays zeros after crop/flip


def test_errors(tmp_path, redweb_root):
    with pytest.raises(DatasetError, match="does not exist"):
        RedwebDataset(tmp_path / "missing", "train")
    with pytest.raises(DatasetError, match="valid splits: train, val, all"):
        RedwebDataset(redweb_root, "test")
    with pytest.raises(DatasetError, match="relative depth only"):
        build_dataset("redweb", redweb_root, "train", density=0.1)
    (tmp_path / "Imgs").mkdir()
    with pytest.raises(DatasetError, match="RDs") as e:
        RedwebDataset(tmp_path, "train")
    assert str(tmp_path / "RDs") in str(e.value)
    (tmp_path / "RDs").mkdir()
    with pytest.raises(DatasetError, match="no samples found"):
        RedwebDataset(tmp_path, "all")


def test_image_without_rd(tmp_path):
    root = make_redweb(tmp_path / "r", n=5)
    (root / "RDs" / "img_001.png").unlink()
    (root / "RDs" / "img_003.png").unlink()
    with pytest.raises(DatasetError, match="2 images have no relative-depth map") as e:
        RedwebDataset(root, "all")
    assert str(root / "Imgs" / "img_001.jpg") in str(e.value)


def test_bad_rd_files(tmp_path):
    root = make_redweb(tmp_path / "r", n=3)
    ds = RedwebDataset(root, "all")
    cv2.imwrite(str(root / "RDs" / "img_001.png"), np.zeros((H, W), np.uint16))
    with pytest.raises(DepthFileError, match="uint16 image with 1 channel") as e:
        ds[1]
    assert str(root / "RDs" / "img_001.png") in str(e.value)
    cv2.imwrite(str(root / "RDs" / "img_001.png"), np.zeros((H, W, 3), np.uint8))
    with pytest.raises(DepthFileError, match="3 channel"):
        ds[1]
    (root / "RDs" / "img_001.png").write_bytes(b"not a png")
    with pytest.raises(DepthFileError, match="cannot be decoded"):
        ds[1]
    cv2.imwrite(str(root / "RDs" / "img_002.png"), np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DatasetError, match="do not belong together"):
        ds[2]
    assert torch.is_tensor(ds[0]["gt"])

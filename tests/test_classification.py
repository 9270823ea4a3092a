"""Classification image sets (depthsense.data.classification, .digits, .mnist, .caltech) and drop_mask."""

import gzip
import struct

import cv2
import numpy as np
import pytest
import torch

from depthsense.data.caltech import read_class_folders
from depthsense.data.classification import available_image_sets, drop_mask, load_image_set
from depthsense.data.digits import render_digits
from depthsense.data.mnist import MNIST_FILES, load_mnist, read_idx
from depthsense.errors import DatasetError, DepthFileError


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX by hand: 00 00, type 0x08 (uint8), ndim, big-endian sizes, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(root, n_train=5, n_test=3, gz=False):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)), "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)), "test_labels": rng.integers(0, 10, n_test),
    }
    for key, name in MNIST_FILES.items():
        data = _idx_bytes(arrays[key])
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)
    return arrays


# ----------------------------------------------------------------------------- IDX / MNIST


def test_read_idx_reads_a_hand_written_file(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
    arr = read_idx(path)
    assert arr.dtype == np.uint8 and arr.shape == (2, 1, 3)
    assert arr.ravel().tolist() == [1, 2, 3, 4, 5, 6]
    # big-endian int16 values come back in native order
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2]) + struct.pack(">hh", -2, 300))
    assert read_idx(path).tolist() == [-2, 300]


@pytest.mark.parametrize("content, message", [
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 5, 1, 2]), "truncated: 10 bytes"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 1, 2, 3]), "trailing bytes"),
    (bytes([0, 0, 0x08, 3, 0, 0]), "truncated IDX header"),
    (b"\x89PNG\r\n\x1a\n", "not an IDX file"),
    (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 0]), "unknown IDX type code 0x42"),
])
def test_read_idx_refuses_malformed_files_naming_them(tmp_path, content, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_plain_or_gzipped_idx_files(tmp_path, gz):
    arrays = _write_mnist(tmp_path, gz=gz)
    parts = load_mnist(tmp_path)
    assert parts["train_images"].shape == (5, 1, 28, 28) and parts["train_images"].dtype == np.uint8
    assert np.array_equal(parts["train_images"][:, 0], arrays["train_images"])
    assert np.array_equal(parts["test_labels"], arrays["test_labels"]) and parts["test_labels"].dtype == np.int64
    image_set = load_image_set("mnist", tmp_path, train_images=4)
    assert image_set.num_classes == 10 and len(image_set.train_labels) == 4 and len(image_set.test_labels) == 3


def test_mnist_errors_name_the_file_and_the_expected_files(tmp_path):
    with pytest.raises(DatasetError, match="missing train-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    _write_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])  # a cut-short download
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz: cannot read.*expects train-images"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(np.zeros((2, 28, 28)))))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz: 3 labels for 2 images; --dataset mnist expects"):
        load_mnist(tmp_path)


# ----------------------------------------------------------------------------- folder per class


def _write_tree(root, per_class=(5, 3)):
    rng = np.random.default_rng(0)
    for c, n in enumerate(per_class):
        folder = root / f"class_{'ab'[c]}"
        folder.mkdir(parents=True)
        for i in range(n):
            image = np.full((20 + 7 * i, 30, 3), 40 * (c + 1), np.uint8) + rng.integers(0, 20, (20 + 7 * i, 30, 3),
                                                                                        dtype=np.uint8)
            cv2.imwrite(str(folder / f"image_{i:04d}.{'png' if i % 2 else 'jpg'}"), image)
        (folder / "notes.txt").write_text("not an image")
    clutter = root / "BACKGROUND_Google"
    clutter.mkdir()
    cv2.imwrite(str(clutter / "x.png"), np.zeros((9, 9, 3), np.uint8))


def test_folder_reader_reads_a_tiny_tree_and_splits_every_class(tmp_path):
    _write_tree(tmp_path / "101_ObjectCategories")
    parts = read_class_folders(tmp_path, size=16, test_fraction=0.4, seed=0)  # finds 101_ObjectCategories/
    assert parts["classes"] == ["class_a", "class_b"]  # sorted; BACKGROUND_Google and .txt left out
    assert parts["train_images"].shape[1:] == (3, 16, 16) and parts["train_images"].dtype == np.uint8
    assert len(parts["train_labels"]) + len(parts["test_labels"]) == 8
    assert sorted(parts["test_labels"].tolist()) == [0, 0, 1]  # round(0.4*5)=2 of a, round(0.4*3)=1 of b
    assert set(parts["train_labels"].tolist()) == {0, 1}
    # colour follows the class (40 vs 80 grey plus noise), so labels match their images
    means = parts["train_images"].reshape(len(parts["train_labels"]), -1).mean(1)
    assert (means[parts["train_labels"] == 0] < 65).all() and (means[parts["train_labels"] == 1] > 75).all()
    again = read_class_folders(tmp_path, size=16, test_fraction=0.4, seed=0)
    assert np.array_equal(again["test_images"], parts["test_images"])  # seeded split
    image_set = load_image_set("caltech101", tmp_path, size=16)
    assert image_set.channels == 3 and image_set.image_size == (16, 16) and image_set.num_classes == 2


def test_folder_reader_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(DatasetError, match="not a folder.*one sub-folder of images per class"):
        read_class_folders(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folder with images"):
        read_class_folders(tmp_path / "empty")
    _write_tree(tmp_path / "one", per_class=(3, 1))
    with pytest.raises(DatasetError, match="class_b: 1 image"):
        read_class_folders(tmp_path / "one")
    _write_tree(tmp_path / "broken")
    bad = tmp_path / "broken" / "class_a" / "image_0000.jpg"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DepthFileError, match="image_0000.jpg"):
        read_class_folders(tmp_path / "broken")


# ----------------------------------------------------------------------------- digits, registry, masks


def test_digits_are_deterministic_balanced_and_mnist_like():
    a, la = render_digits(30, seed=(3, 0))
    b, lb = render_digits(30, seed=(3, 0))
    c, _ = render_digits(30, seed=(4, 0))
    assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
    assert np.bincount(la, minlength=10).tolist() == [3] * 10
    assert a.shape == (30, 1, 28, 28) and a.dtype == np.uint8 and a.max() == 255
    assert (a[:, :, :2].max() < 128) and (a[:, :, -2:].max() < 128)  # centred, black border like MNIST
    stroke = (a > 127).mean()
    assert 0.05 < stroke < 0.4


def test_load_image_set_registry_and_argument_errors(tmp_path):
    assert available_image_sets() == ["caltech101", "digits", "mnist"]
    digits = load_image_set("digits", train_images=20, test_images=10, seed=1)
    assert len(digits.train_labels) == 20 and digits.train_images.dtype == torch.uint8 and digits.channels == 1
    with pytest.raises(KeyError, match="known image sets"):
        load_image_set("cifar")
    with pytest.raises(DatasetError, match="needs --data-root"):
        load_image_set("mnist")
    with pytest.raises(DatasetError, match="drop --data-root"):
        load_image_set("digits", tmp_path)
    _write_mnist(tmp_path)
    with pytest.raises(DatasetError, match="28x28"):
        load_image_set("mnist", tmp_path, size=32)


def test_drop_mask_drops_an_exact_share_reproducibly():
    m = drop_mask(4, 10, 20, 0.9, key=(0, 5))
    assert m.shape == (4, 1, 10, 20) and m.dtype == torch.float32
    assert m.sum(dim=(1, 2, 3)).tolist() == [20.0] * 4  # exactly 10 % of 200 pixels kept, per image
    assert torch.equal(m, drop_mask(4, 10, 20, 0.9, key=(0, 5)))  # same key: same pixels for every net
    assert not torch.equal(m, drop_mask(4, 10, 20, 0.9, key=(0, 6)))
    assert not torch.equal(m[0], m[1])  # images differ
    assert drop_mask(2, 5, 5, 0.0, key=1).min() == 1.0
    assert drop_mask(1, 5, 5, 0.999, key=1).sum() == 1.0  # at least one pixel survives
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        drop_mask(1, 5, 5, 1.0, key=1)


def test_mnist_train_and_test_images_of_different_sizes_name_both_files(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / MNIST_FILES["test_images"]).write_bytes(_idx_bytes(np.zeros((3, 32, 32))))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte: 32x32 images, but .*train-images-idx3-ubyte "
                                           r"holds 28x28; the training and test images must have one size"):
        load_mnist(tmp_path)


def test_a_single_class_is_refused_not_scored_against_chance_100(tmp_path):
    _write_tree(tmp_path / "one", per_class=(4,))
    with pytest.raises(DatasetError, match="1 class folder .*classification needs at least 2 classes"):
        load_image_set("caltech101", tmp_path / "one", size=16)
    _write_tree(tmp_path / "two", per_class=(4, 4))
    with pytest.raises(DatasetError, match=r"the train images hold 1 class\(es\).*raise --train-images \(now 1\)"):
        load_image_set("caltech101", tmp_path / "two", size=16, train_images=1)

"""depthsense/pretrain.py pieces: the per-sample sparsity mix and the data-set mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from depthsense.data import build_dataset, synthetic
from depthsense.errors import DatasetError
from depthsense.pretrain import SPARSITY_MIX, MixedDataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("synth")
    synthetic.generate(r, layout="kitti", frames=6, seed=5, height=64, width=192,
                       splits={"train": 6, "val": 0, "val_selection": 0, "test": 0})
    return r


def test_sparsity_mix_draws_per_sample_and_epoch_reproducibly(root):
    ds = build_dataset("synthetic", root, "train", seed=3)
    ds.set_sparsity_mix([{"density": (0.01, 0.5)}, {}], [0.5, 0.5])
    lidar = build_dataset("synthetic", root, "train", seed=3)
    densities = set()
    for epoch in range(16):
        ds.set_epoch(epoch)
        a, b = ds[2], ds[2]
        torch.testing.assert_close(a["sparse"], b["sparse"])  # same (index, epoch): same input
        d = float(a["mask"].mean())
        own = torch.equal(a["sparse"], lidar[2]["sparse"])
        if not own:  # a uniform sample of the ground truth, inside the range
            assert (a["sparse"][a["mask"] > 0] == a["gt"][a["mask"] > 0]).all()
            assert 0.01 * 0.9 <= d <= 0.5 * 1.1
        densities.add(round(d, 4))
    assert len(densities) >= 3  # the draw changes with the epoch


def test_sparsity_mix_rejects_bad_options(root):
    ds = build_dataset("synthetic", root, "train")
    with pytest.raises(DatasetError, match="at most one of"):
        ds.set_sparsity_mix([{"density": 0.1, "beams": 16}])
    with pytest.raises(DatasetError, match="density"):
        ds.set_sparsity_mix([{"density": (0.01, 2.0)}])
    with pytest.raises(DatasetError, match="weights"):
        ds.set_sparsity_mix([{}, {"beams": 16}], [1.0])
    options, weights = zip(*SPARSITY_MIX)
    ds.set_sparsity_mix(options, weights)  # the shipped recipe is valid
    assert abs(sum(weights) - 1.0) < 1e-9


def test_mixture_repeats_parts_and_reaches_every_epoch(root):
    a = build_dataset("synthetic", root, "train", density=0.05)
    b = build_dataset("synthetic", root, "train", density=0.2)
    mix = MixedDataset([(a, 1), (Subset(b, [0, 1]), 3)])
    assert len(mix) == 6 + 2 * 3
    torch.testing.assert_close(mix[0]["sparse"], a[0]["sparse"])
    torch.testing.assert_close(mix[6]["sparse"], b[0]["sparse"])
    torch.testing.assert_close(mix[9]["sparse"], b[1]["sparse"])  # 6 + 3 -> repeat 2 of item 1
    mix.set_epoch(4)
    assert a.epoch == 4 and b.epoch == 4
    assert float(np.mean([float(mix[i]["mask"].mean()) for i in range(6, 12)])) > 0.15

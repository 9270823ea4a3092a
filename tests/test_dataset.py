"""depthsense.data.dataset: the registry answers by abilities (datasets_with)."""

from __future__ import annotations

import pytest

from depthsense import data
from depthsense.data import DepthDataset, datasets_with


def test_datasets_with_reads_the_abilities_declared_on_the_classes():
    assert datasets_with(is_real_scan=True) == ["kitti_object"]
    assert datasets_with(has_metric_depth=False) == ["redweb"]
    assert datasets_with(can_train=True) == ["kitti", "kitti_object", "nyu", "redweb", "synthetic"]
    assert datasets_with(can_train=False) == ["rgbd"]  # RGB-D folders are for evaluation only
    assert datasets_with(can_train=True, has_metric_depth=True) == ["kitti", "kitti_object", "nyu", "synthetic"]
    assert datasets_with() == data.available_datasets()


def test_datasets_with_follows_a_newly_registered_class(monkeypatch):
    from depthsense.data import dataset as registry

    class _Scans(DepthDataset):
        is_real_scan = True
        has_dense_gt = False

    monkeypatch.setitem(registry._DATASETS, "zz_scans", _Scans)
    assert datasets_with(is_real_scan=True) == ["kitti_object", "zz_scans"]


def test_datasets_with_refuses_an_ability_no_class_declares():
    with pytest.raises(AttributeError, match="is_real_scans is no ability of DepthDataset"):
        datasets_with(is_real_scans=True)

"""Tests for data/sparsity.py (SparsitySpec) and the data-set abilities read by name."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from depthsense import data
from depthsense.data.patterns import SensorPattern, apply_pattern, parse_pattern
from depthsense.data.sparsify import apply_sparsity
from depthsense.data.sparsity import SPARSITY_OPTIONS, SparsitySpec


def _gt(h=24, w=32, seed=0):
    rng = np.random.default_rng(seed)
    gt = (2.0 + 10.0 * rng.random((h, w))).astype(np.float32)
    gt[rng.random((h, w)) < 0.2] = 0.0
    return gt


def test_fields_are_the_sparsity_keywords_and_the_spec_is_frozen():
    assert tuple(f.name for f in dataclasses.fields(SparsitySpec)) == SPARSITY_OPTIONS
    with pytest.raises(dataclasses.FrozenInstanceError):
        SparsitySpec(density=0.1).density = 0.2  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, match", [
    ({"density": 0.1, "beams": 16}, "choose one"),
    ({"density": 0.1, "pattern": "holes:25%"}, "choose one"),
    ({"density": 2.0}, r"density=2.0; expected a fraction"),
    ({"density": (0.01, 2.0)}, "density=2.0"),
    ({"density": (0.01,)}, r"a range is \(low, high\)"),
    ({"beams": 12}, "divisor of 64"),
    ({"num_points": -1}, "num_points"),
    ({"pattern": "bogus:1"}, "unknown kind"),
])
def test_bad_specs_name_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SparsitySpec(**kwargs)


def test_pattern_text_is_parsed_and_flags():
    spec = SparsitySpec(pattern="holes:25%")
    assert spec.pattern == SensorPattern("holes", 25.0) and spec.samples_gt and not spec.is_own_input
    assert SparsitySpec().is_own_input and not SparsitySpec().samples_gt
    assert not SparsitySpec(beams=16).samples_gt and not SparsitySpec(pattern="beams:16").samples_gt
    assert SparsitySpec(num_points=5).samples_gt
    assert [str(s) for s in (SparsitySpec(), SparsitySpec(density=0.05), SparsitySpec(density=(0.01, 0.5)),
                             SparsitySpec(beams=16), SparsitySpec(num_points=500), spec)] == [
        "own input", "density=0.05", "density=0.01..0.5", "beams=16", "num_points=500", "pattern=holes:25%"]


def test_draw_resolves_a_density_range_log_uniformly_and_leaves_the_rest():
    spec = SparsitySpec(density=(0.01, 0.5))
    drawn = spec.draw(np.random.default_rng(3))
    expected = float(np.exp(np.random.default_rng(3).uniform(np.log(0.01), np.log(0.5))))
    assert drawn == SparsitySpec(density=expected) and 0.01 <= drawn.density <= 0.5
    for fixed in (SparsitySpec(density=0.1), SparsitySpec(pattern="holes:5%..60%"), SparsitySpec()):
        assert fixed.draw(np.random.default_rng(0)) is fixed
    with pytest.raises(ValueError, match="draw a value first"):
        spec.make_input(_gt(), None, np.random.default_rng(0))


def test_make_input_is_the_sparsifier_or_the_pattern():
    gt = _gt()
    for spec, ref in (
        (SparsitySpec(density=0.1), lambda r: apply_sparsity(None, gt, None, r, density=0.1)),
        (SparsitySpec(num_points=40), lambda r: apply_sparsity(None, gt, None, r, num_points=40)),
        (SparsitySpec(pattern="lines:4"), lambda r: apply_pattern(parse_pattern("lines:4"), gt, r)),
    ):
        np.testing.assert_array_equal(spec.make_input(gt, None, np.random.default_rng(7)),
                                      ref(np.random.default_rng(7)))
    own = (gt * (np.arange(gt.size).reshape(gt.shape) % 7 == 0)).astype(np.float32)
    np.testing.assert_array_equal(SparsitySpec().make_input(gt, own, np.random.default_rng(0)), own)
    rgb = np.zeros((24, 32, 3), np.float32)
    empty = SparsitySpec().make_input(gt, None, np.random.default_rng(0), rgb=rgb)  # monocular data: no input
    assert empty.shape == (24, 32) and not empty.any()


def test_abilities_are_declared_on_the_classes_and_read_by_name():
    assert data.dataset_class("kitti").has_lidar and data.dataset_class("synthetic").has_lidar
    real = data.dataset_class("kitti_object")
    assert real.is_real_scan and not real.has_dense_gt and real.crop_bottom and real.default_crop == (256, 1216)
    assert not data.dataset_class("redweb").has_metric_depth
    assert data.dataset_class("nyu").default_sparsity == SparsitySpec(num_points=500)
    assert data.dataset_class("nyu").own_input == "500 points" and data.dataset_class("kitti").own_input == "lidar"
    rgbd = data.dataset_class("rgbd")
    assert rgbd.default_crop is None and rgbd.own_input is None and not rgbd.has_lidar
    assert [str(parse_pattern(p)) for p in rgbd.default_patterns] == list(rgbd.default_patterns)
    with pytest.raises(KeyError, match="known data sets: kitti, kitti_object, nyu"):
        data.dataset_class("kiti")

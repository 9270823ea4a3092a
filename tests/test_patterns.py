"""Sensor patterns (data/patterns.py): counts, placement, determinism and errors."""

from __future__ import annotations

import numpy as np
import pytest

from depthsense.data import build_dataset, synthetic
from depthsense.data.patterns import SensorPattern, apply_pattern, holes, keypoints, lines, parse_pattern
from depthsense.errors import DatasetError


def _gt(h=40, w=60, seed=1):
    gt = np.random.default_rng(seed).uniform(1.0, 5.0, (h, w)).astype(np.float32)
    gt[:4] = 0.0  # a band without ground truth
    gt[20:23, 10:30] = 0.0
    return gt


def _rgb(h=40, w=60, seed=2):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def _same_values(out, gt):
    on = out > 0
    assert (gt[on] > 0).all() and np.array_equal(out[on], gt[on])


def test_counts_are_exact():
    gt, rgb = _gt(), _rgb()
    valid = int((gt > 0).sum())
    rng = np.random.default_rng(0)
    assert (apply_pattern("samples:100", gt, rng) > 0).sum() == 100
    assert (apply_pattern("samples:100000", gt, rng) > 0).sum() == valid  # capped by what has depth
    assert (apply_pattern("uniform:5%", gt, rng) > 0).sum() == round(0.05 * 40 * 60)
    out = apply_pattern("holes:25%", gt, rng, rgb=rgb)
    assert (out > 0).sum() == valid - round(0.25 * valid)
    assert (apply_pattern("keypoints:30", gt, rng, rgb=rgb) > 0).sum() == 30
    for spec in ("samples:100", "uniform:5%", "holes:25%", "keypoints:30", "lines:5"):
        _same_values(apply_pattern(spec, gt, rng, rgb=rgb), gt)


def test_lines_keep_whole_evenly_spaced_rows():
    gt = np.ones((40, 10), np.float32)
    out = lines(gt, 8, np.random.default_rng(3))
    rows = np.flatnonzero(out.any(axis=1))
    assert len(rows) == 8 and (out[rows] == 1).all()
    assert set(np.diff(rows)) <= {5}  # H/K = 5 rows apart
    assert rows[0] < 5  # the phase lies in the first period
    assert len(np.flatnonzero(lines(gt, 40, np.random.default_rng(0)).any(axis=1))) == 40
    with pytest.raises(ValueError, match="image height"):
        lines(gt, 41, np.random.default_rng(0))


def test_keypoints_sit_on_corners_with_depth():
    rgb = np.zeros((40, 40, 3), np.float32)
    rgb[10:30, 10:30] = 1.0  # one bright square: four corners
    gt = np.full((40, 40), 2.0, np.float32)
    out = keypoints(gt, 4, rgb)
    v, u = np.nonzero(out)
    assert len(v) == 4
    for y, x in zip(v, u):
        assert min(abs(y - 10), abs(y - 29)) <= 1 and min(abs(x - 10), abs(x - 29)) <= 1
    gt[5:15, 5:15] = 0.0  # the top-left corner has no depth: skipped, never invented
    out = keypoints(gt, 4, rgb)
    assert (out > 0).sum() == 3 and not out[5:15, 5:15].any()


def test_holes_prefer_depth_edges_dark_and_far_pixels():
    h, w = 60, 80
    gt = np.full((h, w), 2.0, np.float32)
    gt[:, 40:] = 4.0  # a depth edge at column 40
    rgb = np.full((h, w, 3), 0.5, np.float32)
    rgb[:10, :10] = 0.0  # a black patch
    edge = np.zeros((h, w), bool)
    edge[:, 38:42] = True
    dark = np.zeros((h, w), bool)
    dark[:10, :10] = True
    hit_edge, hit_dark, hit_other = [], [], []
    for seed in range(10):
        out = holes(gt, 20.0, np.random.default_rng(seed), rgb)
        gone = (out == 0) & (gt > 0)
        hit_edge.append(gone[edge].mean())
        hit_dark.append(gone[dark].mean())
        hit_other.append(gone[~edge & ~dark].mean())
    assert np.mean(hit_edge) > 2 * np.mean(hit_other)
    assert np.mean(hit_dark) > 1.5 * np.mean(hit_other)
    # The holes are regions, not salt-and-pepper: most removed pixels have removed neighbours.
    gone = holes(np.full((h, w), 2.0, np.float32), 25.0, np.random.default_rng(0)) == 0
    neighbours = gone[1:-1, 1:-1] & gone[:-2, 1:-1] & gone[2:, 1:-1]
    assert neighbours.sum() > 0.6 * gone[1:-1, 1:-1].sum()


def test_deterministic_under_a_seed_and_different_across_seeds():
    gt, rgb = _gt(), _rgb()
    for spec in ("samples:50", "uniform:3%", "lines:6", "holes:30%", "samples:10..1000", "holes:5%..60%"):
        a = apply_pattern(spec, gt, np.random.default_rng([7, 1]), rgb=rgb)
        b = apply_pattern(spec, gt, np.random.default_rng([7, 1]), rgb=rgb)
        c = apply_pattern(spec, gt, np.random.default_rng([8, 1]), rgb=rgb)
        assert np.array_equal(a, b) and not np.array_equal(a, c), spec


def test_ranges_draw_values_inside_them():
    p = parse_pattern("samples:10..1000")
    drawn = [p.draw(np.random.default_rng(s)).value for s in range(200)]
    assert min(drawn) >= 10 and max(drawn) <= 1000 and all(v == int(v) for v in drawn)
    assert np.median(drawn) < 250  # log-uniform: the geometric middle is 100
    q = parse_pattern("holes:5%..60%").draw(np.random.default_rng(0))
    assert q.high is None and 5 <= q.value <= 60


@pytest.mark.parametrize("spec, message", [
    ("samples:0", "at least 1"), ("lines:0", "at least 1"), ("keypoints:0", "at least 1"),
    ("holes:100%", "less than 100|< 100%"), ("holes:0%", "0% < P"), ("uniform:0%", "0% < P"),
    ("uniform:150%", "P <= 100%"), ("uniform:5", "percentage"), ("samples:5%", "count"),
    ("beams:3", "divide 64"), ("bogus:3", "unknown kind"), ("samples", "no ':'"),
    ("samples:abc", "not a number"), ("samples:2.5", "whole number"), ("samples:100..10", "LOW < HIGH"),
])
def test_impossible_parameters_are_clear_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_pattern(spec)


def test_round_trip_text():
    for spec in ("samples:500", "uniform:5%", "lines:16", "beams:16", "holes:25%", "keypoints:1000",
                 "samples:50..5000", "holes:5%..60%"):
        assert str(parse_pattern(spec)) == spec
    assert parse_pattern(SensorPattern("samples", 5)) == SensorPattern("samples", 5)


def test_missing_inputs_are_named():
    gt = _gt()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no image"):
        apply_pattern("keypoints:10", gt, rng)
    with pytest.raises(ValueError, match="lines:16"):
        apply_pattern("beams:16", gt, rng)
    with pytest.raises(ValueError, match="ground truth"):
        apply_pattern("samples:10", None, rng)


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    r = tmp_path_factory.mktemp("street")
    synthetic.generate(r, layout="kitti", frames=2, seed=5, height=64, width=192,
                       splits={"train": 2, "val": 0, "val_selection": 0, "test": 0})
    return r


def test_data_sets_apply_patterns_per_sample(street):
    ds = build_dataset("synthetic", street, "train", pattern="samples:40", seed=3)
    a = ds[0]
    assert int(a["mask"].sum()) == 40 and ds.pattern == parse_pattern("samples:40")
    assert np.array_equal(a["sparse"].numpy(), build_dataset("synthetic", street, "train", pattern="samples:40",
                                                             seed=3)[0]["sparse"].numpy())
    lidar = build_dataset("synthetic", street, "train")[0]["sparse"].numpy()
    thinned = build_dataset("synthetic", street, "train", pattern="beams:8")[0]["sparse"].numpy()
    assert 0 < (thinned > 0).sum() < (lidar > 0).sum() and np.array_equal(thinned[thinned > 0], lidar[thinned > 0])
    with pytest.raises(DatasetError, match="unknown kind"):
        build_dataset("synthetic", street, "train", pattern="bogus:1")
    mixed = build_dataset("synthetic", street, "train", seed=3)
    mixed.set_sparsity_mix([{"pattern": "holes:10%..50%"}, {"pattern": "keypoints:20"}])
    counts = set()
    for epoch in range(6):
        mixed.set_epoch(epoch)
        counts.add(int(mixed[1]["mask"].sum()))
    assert len(counts) >= 3


def test_hidden_target_keeps_only_the_pixels_the_input_lacks(street):
    ds = build_dataset("synthetic", street, "train", pattern="holes:30%", seed=1)
    full = ds[0]
    ds.hidden_target = True
    hid = ds[0]
    sparse, gt, g_full = hid["sparse"][0].numpy(), hid["gt"][0].numpy(), full["gt"][0].numpy()
    assert not ((sparse > 0) & (gt > 0)).any()  # never both input and target
    holes_ = (g_full > 0) & (sparse == 0)
    assert np.array_equal(gt > 0, holes_) and np.array_equal(gt[holes_], g_full[holes_])
    assert abs(holes_.sum() / (g_full > 0).sum() - 0.3) < 0.01

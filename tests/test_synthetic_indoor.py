"""The procedural indoor world (data/synthetic_indoor.py)."""

from __future__ import annotations

import numpy as np
import pytest

from depthsense.data import build_dataset
from depthsense.data.synthetic_indoor import MAX_DEPTH, MIN_DEPTH, generate_indoor, render_indoor


@pytest.fixture(scope="module")
def frames():
    return [render_indoor(3, i, 120, 160) for i in range(6)]


def test_deterministic_per_seed_and_index():
    a, b, c = render_indoor(1, 2, 96, 128), render_indoor(1, 2, 96, 128), render_indoor(1, 3, 96, 128)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.gt, b.gt) and np.array_equal(a.K, b.K)
    assert not np.array_equal(a.gt, c.gt)


def test_depth_is_a_depth_cameras(frames):
    for f in frames:
        valid = f.gt > 0
        assert 0.6 < valid.mean() < 1.0  # a few sensor holes, mostly dense
        assert f.gt[valid].min() >= MIN_DEPTH * 0.9 and f.gt[valid].max() <= MAX_DEPTH * 1.1
        clean = f.clean > 0
        noise = np.abs(f.gt[valid & clean] - f.clean[valid & clean])
        assert 0 < np.median(noise) < 0.05  # noisy, but millimetres to centimetres
        assert f.rgb.shape == (120, 160, 3) and 0.0 <= f.rgb.min() and f.rgb.max() <= 1.0
        fx = f.K[0, 0] * 640 / 160
        assert 450 * 0.99 <= fx <= 1100 * 1.01
    medians = [float(np.median(f.gt[f.gt > 0])) for f in frames]
    assert min(medians) < 1.5 and max(medians) > 1.5  # close table tops and whole rooms


def test_colour_edges_follow_depth_edges(frames):
    """Pixels at depth discontinuities change colour more often than other pixels."""
    at_edge, elsewhere = [], []
    for f in frames:
        d = np.log(np.maximum(f.clean, 1e-3))
        jump = np.abs(np.diff(d, axis=1)) > 0.1
        dc = np.abs(np.diff(f.rgb, axis=1)).sum(-1)
        at_edge.append(dc[jump].mean() if jump.any() else np.nan)
        elsewhere.append(dc[~jump].mean())
    assert np.nanmean(at_edge) > 2 * np.mean(elsewhere)


def test_written_frames_read_as_an_rgbd_source(tmp_path):
    info = generate_indoor(tmp_path, frames=3, seed=2, height=96, width=128)
    assert info["files"] == 9 and info["source"] == "synthetic_indoor"
    ds = build_dataset("rgbd", tmp_path, "all", pattern="samples:50")
    assert len(ds) == 3 and ds.group(0) == "synthetic_indoor"
    s = ds[1]
    ref = render_indoor(2, 1, 96, 128)
    np.testing.assert_allclose(s["gt"][0].numpy(), ref.gt, atol=0.5 / 256 + 1e-6)  # KITTI units on disk
    np.testing.assert_allclose(s["meta"]["K"].numpy(), ref.K, rtol=1e-5)
    assert int(s["mask"].sum()) == 50

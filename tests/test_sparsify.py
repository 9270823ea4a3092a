"""Tests for data/sparsify.py: densities, keep-n, scan-line grouping and beam thinning."""

from __future__ import annotations

import numpy as np
import pytest

from depthsense.data import sparsify
from depthsense.data.sparsify import (
    KITTI_K,
    apply_sparsity,
    check_sparsity_args,
    default_intrinsics,
    keep_n,
    scanline_ids,
    thin_beams,
    uniform,
)

H, W = 375, 1242


def _lidar_scan(height_offset=0.08, behind_offset=0.0, n_beams=64, seed=0):
    """A 64-beam scan projected through KITTI's K: returns (depth, beam index per pixel).

    Beams have elevations uniformly from +2 deg down to -24.8 deg (HDL-64E span), 900
    azimuths each over +-42 deg, random ranges 3..70 m, seen from a LiDAR sitting
    ``height_offset`` m above and ``behind_offset`` m behind the camera. Depth is
    quantised like a KITTI PNG and a
    z-buffer keeps the nearest point per pixel.
    """
    rng = np.random.default_rng(seed)
    elev = np.deg2rad(np.linspace(2.0, -24.8, n_beams))
    az = np.deg2rad(np.linspace(-42.0, 42.0, 900))
    beam = np.repeat(np.arange(n_beams), az.size)
    th = elev[beam]
    ph = np.tile(az, n_beams)
    r = rng.uniform(3.0, 70.0, size=th.size)
    x = r * np.cos(th) * np.sin(ph)
    y = -height_offset - r * np.sin(th)
    z = r * np.cos(th) * np.cos(ph) - behind_offset
    u = np.rint(KITTI_K[0, 0] * x / z + KITTI_K[0, 2]).astype(int)
    v = np.rint(KITTI_K[1, 1] * y / z + KITTI_K[1, 2]).astype(int)
    ok = (u >= 0) & (u < W) & (v >= 0) & (v < H) & (z > 0.5)
    u, v, z, beam = u[ok], v[ok], z[ok], beam[ok]
    order = np.argsort(-z)  # far first, so the nearest point per pixel is written last
    depth = np.zeros((H, W), np.float32)
    ids = np.full((H, W), -1, int)
    depth[v[order], u[order]] = z[order]
    ids[v[order], u[order]] = beam[order]
    depth = np.rint(depth * 256.0).astype(np.float32) / 256.0  # KITTI PNG quantisation
    ids[depth == 0] = -1
    return depth, ids


@pytest.fixture(scope="module")
def scan():
    return _lidar_scan()


# --------------------------------------------------------------------------- uniform / keep_n


@pytest.mark.parametrize("f", [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
def test_uniform_density_within_10_percent(f):
    rng = np.random.default_rng(1)
    gt = rng.uniform(1, 80, size=(64, 200)).astype(np.float32)
    out = uniform(gt, f, rng)
    density = (out > 0).mean()
    assert abs(density - f) <= 0.1 * f
    kept = out > 0
    np.testing.assert_array_equal(out[kept], gt[kept])  # values are copied, not altered


def test_uniform_is_capped_by_valid_gt_and_only_samples_valid_pixels():
    rng = np.random.default_rng(0)
    gt = np.zeros((40, 50), np.float32)
    gt[30:, :] = 5.0  # 20% valid
    out = uniform(gt, 0.5, rng)
    assert (out > 0).sum() == (gt > 0).sum()  # capped: all valid GT kept
    out = uniform(gt, 0.1, rng)
    assert (out > 0).sum() == 200
    assert np.all(out[:30] == 0)


def test_uniform_is_spread_over_the_image():
    gt = np.ones((100, 100), np.float32)
    out = uniform(gt, 0.2, np.random.default_rng(3))
    quadrants = [out[:50, :50], out[:50, 50:], out[50:, :50], out[50:, 50:]]
    for q in quadrants:
        assert abs((q > 0).mean() - 0.2) < 0.04


def test_uniform_same_rng_seed_same_output_different_seed_differs():
    gt = np.random.default_rng(0).uniform(1, 9, (30, 40)).astype(np.float32)
    a = uniform(gt, 0.1, np.random.default_rng([7, 3]))
    b = uniform(gt, 0.1, np.random.default_rng([7, 3]))
    c = uniform(gt, 0.1, np.random.default_rng([7, 4]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_uniform_rejects_bad_fraction(bad):
    with pytest.raises(ValueError, match="fraction_of_pixels"):
        uniform(np.ones((4, 4), np.float32), bad, np.random.default_rng(0))


def test_keep_n_exact_count_and_cap():
    rng = np.random.default_rng(0)
    gt = np.zeros((48, 64), np.float32)
    gt[::2] = 3.0  # 1536 valid
    assert (keep_n(gt, 500, rng) > 0).sum() == 500
    assert (keep_n(gt, 0, rng) > 0).sum() == 0
    assert (keep_n(gt, 5000, rng) > 0).sum() == 1536
    with pytest.raises(ValueError, match="n="):
        keep_n(gt, -1, rng)


def test_empty_depth_gives_empty_output():
    z = np.zeros((8, 8), np.float32)
    assert not uniform(z, 0.5, np.random.default_rng(0)).any()
    assert not keep_n(z, 10, np.random.default_rng(0)).any()
    assert (scanline_ids(z, None) == -1).all()


# --------------------------------------------------------------------------- scan lines


def test_scanline_ids_recover_the_true_beams(scan):
    depth, true_ids = scan
    ids = scanline_ids(depth, KITTI_K)
    valid = depth > 0
    assert np.array_equal(ids >= 0, valid)
    pairs = np.unique(np.stack([true_ids[valid], ids[valid]], 1), axis=0)
    # one-to-one: every true beam maps to one line and every line to one beam
    assert len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))
    # numbered top-down over the visible beams: consecutive, same order as the beams
    visible = np.unique(true_ids[valid])
    assert np.array_equal(visible, np.arange(visible[0], visible[0] + visible.size))
    assert np.array_equal(pairs[:, 1], pairs[:, 0] - visible[0])
    assert 30 <= visible.size <= 50  # KITTI's camera sees roughly 40 of the 64 beams


def _one_to_one(true_ids, ids, valid):
    pairs = np.unique(np.stack([true_ids[valid], ids[valid]], 1), axis=0)
    return len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))


def test_scanline_grouping_needs_the_lidar_height_offset(scan):
    depth, true_ids = scan
    ids = scanline_ids(depth, KITTI_K, lidar_height_offset=0.0)
    assert not _one_to_one(true_ids, ids, depth > 0)  # lines get mixed up
    with pytest.warns(RuntimeWarning, match="scan line"):
        thin_beams(depth, KITTI_K, 32, lidar_height_offset=0.0)


def test_scanline_grouping_with_lidar_behind_the_camera():
    depth, true_ids = _lidar_scan(height_offset=0.08, behind_offset=0.27, seed=1)
    valid = depth > 0
    ids = scanline_ids(depth, KITTI_K, lidar_behind_offset=0.27)
    assert _one_to_one(true_ids, ids, valid)
    assert not _one_to_one(true_ids, scanline_ids(depth, KITTI_K), valid)


@pytest.mark.parametrize("beams", [32, 16, 8])
def test_thin_beams_keeps_every_kth_beam(scan, beams):
    depth, true_ids = scan
    out = thin_beams(depth, KITTI_K, beams)
    step = 64 // beams
    kept = out > 0
    first = true_ids[depth > 0].min()
    kept_beams = np.unique(true_ids[kept])
    assert np.all((kept_beams - first) % step == 0)
    # all points of a kept beam survive, none of a dropped one
    expected = (depth > 0) & ((true_ids - first) % step == 0)
    np.testing.assert_array_equal(kept, expected)
    np.testing.assert_array_equal(out[kept], depth[kept])
    frac = kept.sum() / (depth > 0).sum()
    assert abs(frac - 1 / step) < 0.1 / step * 2  # about 1/step of the points


def test_thin_beams_64_is_identity_and_32_keeps_about_half(scan):
    depth, _ = scan
    np.testing.assert_array_equal(thin_beams(depth, KITTI_K, 64), depth)
    frac = (thin_beams(depth, KITTI_K, 32) > 0).sum() / (depth > 0).sum()
    assert 0.4 < frac < 0.6


def test_thin_beams_unknown_K_uses_default(scan):
    depth, _ = scan
    np.testing.assert_allclose(default_intrinsics(H, W), KITTI_K)
    np.testing.assert_array_equal(thin_beams(depth, np.zeros((3, 3)), 16), thin_beams(depth, KITTI_K, 16))
    np.testing.assert_array_equal(thin_beams(depth, None, 16), thin_beams(depth, KITTI_K, 16))


def test_default_intrinsics_scales_with_image():
    K = default_intrinsics(188, 621)
    assert K[0, 0] == pytest.approx(KITTI_K[0, 0] / 2)
    assert K[1, 1] == K[0, 0]
    assert K[0, 2] == pytest.approx(KITTI_K[0, 2] / 2)
    assert K[1, 2] == pytest.approx(KITTI_K[1, 2] * 188 / 375)


def test_scanline_ids_cap_at_total_beams(scan):
    # ~45 visible beams but a 16-beam sensor: at most 16 lines, each a run of whole beams.
    depth, true_ids = scan
    valid = depth > 0
    ids = scanline_ids(depth, KITTI_K, total_beams=16)
    assert ids.max() == 15
    pairs = np.unique(np.stack([true_ids[valid], ids[valid]], 1), axis=0)
    assert len(np.unique(pairs[:, 0])) == len(pairs)  # a beam is never split
    assert np.all(np.diff(pairs[:, 1]) >= 0)  # lines stay in top-down order


@pytest.mark.parametrize("bad", [0, 3, 65, 2.0, True])
def test_thin_beams_rejects_bad_beam_counts(bad):
    with pytest.raises(ValueError, match="beams"):
        thin_beams(np.ones((4, 4), np.float32), None, bad)


# --------------------------------------------------------------------------- apply_sparsity


def test_apply_sparsity_sources():
    rng = np.random.default_rng(0)
    gt = np.full((20, 30), 4.0, np.float32)
    sparse = np.zeros_like(gt)
    sparse[::5, ::5] = 2.0
    out = apply_sparsity(sparse, gt, None, rng, density=0.5)
    assert (out > 0).sum() == 300 and set(np.unique(out)) == {0.0, 4.0}  # sampled from GT
    out = apply_sparsity(sparse, None, None, rng, density=0.5)
    np.testing.assert_array_equal(out, sparse)  # no GT: from sparse, capped
    out = apply_sparsity(sparse, gt, None, rng, num_points=7)
    assert (out > 0).sum() == 7
    np.testing.assert_array_equal(apply_sparsity(sparse, gt, None, rng), sparse)


def test_check_sparsity_args():
    check_sparsity_args(0.05, None, None)
    check_sparsity_args(None, 16, None)
    check_sparsity_args(None, None, 500)
    with pytest.raises(ValueError, match="choose one"):
        check_sparsity_args(0.05, 16, None)
    with pytest.raises(ValueError, match="density"):
        check_sparsity_args(2.0, None, None)
    with pytest.raises(ValueError, match="beams"):
        check_sparsity_args(None, 12, None)
    with pytest.raises(ValueError, match="num_points"):
        check_sparsity_args(None, None, -3)


def test_module_exports():
    for name in sparsify.__all__:
        assert hasattr(sparsify, name)


def test_elevation_angles_hand_values():
    """A point straight ahead at the principal point: the LiDAR, h above the camera, looks
    down at it by atan(h/z); a point at row v is y = (v - cy) z / fy below the optical axis."""
    K = np.array([[100.0, 0, 20.0], [0, 50.0, 10.0], [0, 0, 1.0]])
    depth = np.zeros((21, 41), np.float32)
    depth[10, 20] = 10.0  # on the principal point
    depth[15, 20] = 10.0  # 5 rows down: y = 5 * 10 / 50 = 1 m below the axis
    depth[10, 30] = 10.0  # 10 columns right: x = 10 * 10 / 100 = 1 m
    el = sparsify.elevation_angles(depth, K, lidar_height_offset=0.5)
    assert el.shape == depth.shape and el.dtype == np.float64
    assert el[10, 20] == pytest.approx(np.arctan2(-0.5, 10.0))
    assert el[15, 20] == pytest.approx(np.arctan2(-1.5, 10.0))
    assert el[10, 30] == pytest.approx(np.arctan2(-0.5, np.hypot(1.0, 10.0)))
    # behind the camera the LiDAR sees the same point at a shallower angle
    behind = sparsify.elevation_angles(depth, K, lidar_height_offset=0.5, lidar_behind_offset=0.3)
    assert behind[10, 20] == pytest.approx(np.arctan2(-0.5, 10.3))
    # None or an all-zero K means the KITTI-like default for this size
    default = sparsify.default_intrinsics(21, 41)
    np.testing.assert_array_equal(sparsify.elevation_angles(depth, None), sparsify.elevation_angles(depth, default))
    np.testing.assert_array_equal(sparsify.elevation_angles(depth, np.zeros((3, 3))),
                                  sparsify.elevation_angles(depth, default))
    with pytest.raises(ValueError, match="non-positive focal"):
        sparsify.elevation_angles(depth, np.diag([-1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(3,3\)"):
        sparsify.elevation_angles(depth, np.eye(4))

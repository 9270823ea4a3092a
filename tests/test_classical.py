"""Tests of models/classical.py: IP-Basic style completion and nearest-valid-pixel fill."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthsense.errors import ShapeError
from depthsense.models import build_model
from depthsense.models.classical import colorization_fill, ip_basic_fill, nearest_fill, pyramid_fill

TOP_ROW = 30  # first LiDAR row of the synthetic frame


def _street_scene(h=88, w=304, f=180.0, cx=152.0, cy=44.0, cam_h=1.65, wall=40.0, box_z=12.0):
    """Dense GT depth (m) of a ground plane, a 40 m facade and a box face at 12 m, rendered
    analytically with KITTI-like intrinsics at 1/4 scale (pixel centres)."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    ground = np.where(v > cy, f * cam_h / np.maximum(v - cy, 1e-9), np.inf)
    gt = np.minimum(wall, ground)
    # Box face: X in [-1.5, 2.5] m, from 0.5 m above the camera down to the ground.
    cols = (u >= cx - f * 1.5 / box_z) & (u < cx + f * 2.5 / box_z)
    rows = (v >= cy - f * 0.5 / box_z) & (v < cy + f * cam_h / box_z)
    box = cols & rows
    gt = np.where(box, np.minimum(gt, box_z), gt)
    return gt.astype(np.float32)


def _scan(gt, seed=0):
    """Scan-line sparse input: every 4th row from TOP_ROW down, ~50% of the columns."""
    keep = np.zeros(gt.shape, bool)
    keep[TOP_ROW::4] = True
    keep &= np.random.default_rng(seed).random(gt.shape) < 0.5
    return np.where(keep, gt, 0).astype(np.float32)


# Measured on this scene: RMSE 1.55 m (gaussian), 1.82 m (bilateral), nearest 2.00 m;
# errors sit on the box outline. Bounds are measured * ~1.5.
@pytest.mark.parametrize("blur,bound", [("gaussian", 2.3), ("bilateral", 2.7)])
def test_ip_basic_fills_synthetic_frame_accurately(blur, bound):
    gt = _street_scene()
    out = ip_basic_fill(_scan(gt), blur=blur)
    below = out[TOP_ROW:]
    assert (below > 0).mean() >= 0.95
    filled = below > 0
    rmse = float(np.sqrt(((below - gt[TOP_ROW:])[filled] ** 2).mean()))
    assert rmse <= bound, rmse
    # With extrapolation the rows above the first LiDAR row are filled too.
    assert (out > 0).all()


def test_nearest_fills_synthetic_frame():
    gt = _street_scene()
    out = nearest_fill(_scan(gt))
    assert (out > 0).all()
    assert np.sqrt(((out[TOP_ROW:] - gt[TOP_ROW:]) ** 2).mean()) <= 3.0  # measured 2.00


def test_constant_depth_stays_constant():
    sparse = np.zeros((40, 60), np.float32)
    sparse[10::4, ::3] = 20.0
    out = ip_basic_fill(sparse)
    np.testing.assert_allclose(out, 20.0, atol=1e-4)


def test_extrapolation_to_the_top_is_optional():
    sparse = np.zeros((40, 40), np.float32)
    sparse[30, 20] = 10.0
    up = ip_basic_fill(sparse, extrapolate=True, fill_holes=False)
    no = ip_basic_fill(sparse, extrapolate=False, fill_holes=False)
    assert up[0, 20] == pytest.approx(10.0, abs=1e-3)
    # Without it only the 31x31 fill (radius 15) plus the first dilations reach upwards.
    assert no[0, 20] == 0 and no[16, 20] == pytest.approx(10.0, abs=1e-3)
    # fill_holes (the default) fills what is left, from the same point.
    assert ip_basic_fill(sparse, extrapolate=False)[0, 20] == pytest.approx(10.0, abs=1e-3)


def test_closer_points_win_between_near_and_far():
    """The inversion makes max-filters prefer the near surface (it occludes the far one)."""
    sparse = np.zeros((21, 24), np.float32)
    sparse[10, 10], sparse[10, 12] = 5.0, 30.0
    out = ip_basic_fill(sparse)
    assert out[10, 11] == pytest.approx(5.0, abs=0.5)
    assert out[10, 10] == pytest.approx(5.0, abs=0.5)


def test_depth_beyond_max_depth_is_clipped_not_lost():
    sparse = np.zeros((20, 20), np.float32)
    sparse[10, 10] = 150.0
    out = ip_basic_fill(sparse, max_depth=100.0)
    np.testing.assert_allclose(out, 99.5, atol=1e-3)


def test_nearest_matches_brute_force_where_unambiguous():
    rng = np.random.default_rng(1)
    h, w = 30, 40
    sparse = np.where(rng.random((h, w)) < 0.03, rng.uniform(1, 50, (h, w)), 0).astype(np.float32)
    out = nearest_fill(sparse)
    ys, xs = np.nonzero(sparse)
    vv, uu = np.mgrid[0:h, 0:w]
    dist = np.sqrt((vv[..., None] - ys) ** 2 + (uu[..., None] - xs) ** 2)
    order = np.sort(dist, axis=-1)
    brute = sparse[ys, xs][dist.argmin(-1)]
    # OpenCV's 5x5 distance mask approximates Euclidean distance; demand exactness only
    # where the runner-up is clearly farther.
    clear = order[..., 1] - order[..., 0] > 0.5
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(out[clear], brute[clear])
    assert np.array_equal(out[sparse > 0], sparse[sparse > 0])


def test_nearest_hand_example():
    sparse = np.zeros((3, 5), np.float32)
    sparse[1, 1], sparse[1, 4] = 2.0, 7.0
    expected = np.array([[2, 2, 2, 7, 7]] * 3, np.float32)
    np.testing.assert_array_equal(nearest_fill(sparse), expected)


@pytest.mark.parametrize("fill", [ip_basic_fill, nearest_fill])
def test_empty_input_gives_zeros(fill):
    out = fill(np.zeros((8, 9), np.float32))
    assert out.shape == (8, 9) and out.dtype == np.float32 and not out.any()


def test_errors():
    with pytest.raises(ShapeError, match=r"\(H,W\)"):
        ip_basic_fill(np.zeros((1, 8, 8), np.float32))
    with pytest.raises(ShapeError, match=r"\(H,W\)"):
        nearest_fill(np.zeros((1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="blur must be one of"):
        ip_basic_fill(np.zeros((8, 8), np.float32), blur="box")
    with pytest.raises(ValueError, match="blur must be one of"):
        build_model("ip_basic", blur="median")


@pytest.mark.parametrize("name", ["ip_basic", "nearest"])
def test_model_wrapper_runs_per_image_and_keeps_dtype(name):
    gt = _street_scene()
    a, b = _scan(gt, seed=0), _scan(gt, seed=1)
    sparse = torch.from_numpy(np.stack([a, b]))[:, None].double()
    model = build_model(name)
    out = model(sparse, (sparse > 0).float())
    fill = ip_basic_fill if name == "ip_basic" else nearest_fill
    assert out.dtype == torch.float64 and out.shape == sparse.shape and not out.requires_grad
    np.testing.assert_allclose(out[1, 0].numpy(), fill(b), rtol=1e-6)
    np.testing.assert_allclose(out[0, 0].numpy(), fill(a), rtol=1e-6)
    assert list(model.parameters()) == []


# ---------------------------------------------------------------- pinned to the published pipeline

_DIAMOND = np.array([[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]], np.uint8)


def _published_fast(depth, max_depth=100.0, extrapolate=True, blur="gaussian"):
    """IP-Basic's fast pipeline written out step by step, independently of the module
    (boolean indexing and a per-column loop, as the paper describes it)."""
    import cv2

    d = depth.astype(np.float32).copy()
    valid = d > 0.1
    d[valid] = max_depth - d[valid]
    d = cv2.dilate(d, _DIAMOND)
    d = cv2.morphologyEx(d, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    empty = d < 0.1
    d[empty] = cv2.dilate(d, np.ones((7, 7), np.uint8))[empty]
    if extrapolate:
        top = np.argmax(d > 0.1, axis=0)
        for col in range(d.shape[1]):
            d[: top[col], col] = d[top[col], col]
    empty = d < 0.1
    d[empty] = cv2.dilate(d, np.ones((31, 31), np.uint8))[empty]
    d = cv2.medianBlur(d, 5)
    if blur == "bilateral":
        d = cv2.bilateralFilter(d, 5, 1.5, 2.0)
    else:
        valid = d > 0.1
        d[valid] = cv2.GaussianBlur(d, (5, 5), 0)[valid]
    valid = d > 0.1
    d[valid] = max_depth - d[valid]
    d[~valid] = 0
    return d


def _lidar_like(seed, h=120, w=200):
    """Scan lines every 6 rows from row 25 to 55, then one at row 115 (a 60-row gap: wider
    than the 31x31 fill), 30 % of the columns; ground below row 40, a 60 m wall above and a
    near box in front."""
    rng = np.random.default_rng(seed)
    v = np.arange(h, dtype=np.float32)[:, None].repeat(w, 1)
    gt = np.where(v > 40, np.minimum(400.0 / np.maximum(v - 40, 1), 60.0), 60.0).astype(np.float32)
    gt[30:90, 60:110] = np.minimum(gt[30:90, 60:110], 8.0 + rng.random() * 4)
    keep = np.zeros((h, w), bool)
    keep[[25, 31, 37, 43, 49, 55, 115]] = True
    keep &= rng.random((h, w)) < 0.3
    return np.where(keep, gt, 0).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("blur,extrapolate", [("gaussian", True), ("gaussian", False), ("bilateral", True)])
def test_ip_basic_equals_the_published_fast_pipeline(seed, blur, extrapolate):
    """Every step counts: skipping or changing one (the closing, a kernel, the median)
    moves pixels by metres and fails this exact comparison."""
    sparse = _lidar_like(seed)
    ours = ip_basic_fill(sparse, blur=blur, extrapolate=extrapolate, fill_holes=False)
    ref = _published_fast(sparse, blur=blur, extrapolate=extrapolate)
    assert (ref > 0).mean() < 1.0, "the scene must leave holes for the hole test below to mean anything"
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_fill_holes_only_touches_pixels_the_pipeline_leaves_empty(seed):
    sparse = _lidar_like(seed)
    published = ip_basic_fill(sparse, fill_holes=False)
    filled = ip_basic_fill(sparse)
    assert (published == 0).any()
    kept = published > 0
    np.testing.assert_array_equal(filled[kept], published[kept])
    assert (filled > 0).all()
    # Holes take depths of their own neighbourhood (a dilation of real measurements), not
    # max_depth: every filled value lies within the input's depth range.
    lo, hi = sparse[sparse > 0].min(), sparse.max()
    assert ((filled[~kept] >= lo - 1e-3) & (filled[~kept] <= hi + 1e-3)).all()


def test_hand_built_step_scene_known_output():
    """Scan lines at rows 15 and 25: 10 m on columns 0-29, 30 m on columns 30-59.

    Worked out by hand from the kernels: the diamond (+-2) and the 7x7 fill (+-3) fill
    rows 10-30 before the 31x31 fill, so between the lines each side keeps its own depth
    except within 5 px (+4 px of blur) of the edge, where the near side wins; the top rows
    copy each column's first value; below the last line the 31x31 fill lets the near side
    grow over the far one."""
    sparse = np.zeros((40, 60), np.float32)
    sparse[[15, 25], :30] = 10.0
    sparse[[15, 25], 30:] = 30.0
    out = ip_basic_fill(sparse)
    np.testing.assert_allclose(out[:27, :26], 10.0, atol=1e-4)
    np.testing.assert_allclose(out[:27, 42:], 30.0, atol=1e-4)
    assert (out[14:27, 30:33] < 29.0).all()  # the near side wins the boundary columns
    assert out[39, 36] < 20.0  # and grows wider below the last line


# --------------------------------------------------------------------------- colorization


def _colorization_by_the_loop(depth, rgb, alpha=1.0):
    """NYU toolbox's fill_depth_colorization written pixel by pixel (a dense solve)."""
    h, w = depth.shape
    grey = rgb @ np.array([0.2989, 0.5870, 0.1140])
    known = depth > 0
    top = depth[known].max()
    n = h * w
    A = np.zeros((n, n))
    for i in range(h):
        for j in range(w):
            p = i * w + j
            nbrs = [(a, b) for a in range(max(0, i - 1), min(h, i + 2)) for b in range(max(0, j - 1), min(w, j + 2))
                    if (a, b) != (i, j)]
            g = np.array([grey[a, b] for a, b in nbrs])
            allg = np.append(g, grey[i, j])
            csig = max(np.mean((allg - allg.mean()) ** 2) * 0.6, -np.min((g - grey[i, j]) ** 2) / np.log(0.01), 2e-6)
            wts = np.exp(-((g - grey[i, j]) ** 2) / csig)
            wts /= wts.sum()
            for (a, b), wt in zip(nbrs, wts):
                A[p, a * w + b] = -wt
            A[p, p] = 1.0 + alpha * known[i, j]
    b = alpha * known.ravel() * np.minimum(depth.ravel() / top, 1.0)
    return np.linalg.solve(A, b).reshape(h, w) * top


def test_colorization_equals_the_toolbox_loop():
    rng = np.random.default_rng(0)
    rgb = rng.random((7, 9, 3))
    depth = np.zeros((7, 9), np.float32)
    depth[1, 2], depth[5, 7], depth[3, 4] = 2.0, 5.0, 3.5
    ours = colorization_fill(depth, rgb.astype(np.float32))
    np.testing.assert_allclose(ours, _colorization_by_the_loop(depth, rgb), rtol=1e-4, atol=1e-4)


def test_colorization_follows_colour_edges_where_nearest_does_not():
    rgb = np.zeros((20, 30, 3), np.float32)
    rgb[:, 10:] = 1.0  # two flat regions: dark left, bright right (the edge off the midline)
    depth = np.zeros((20, 30), np.float32)
    depth[10, 2], depth[10, 27] = 1.0, 4.0  # one point in each
    out = colorization_fill(depth, rgb)
    assert np.abs(out[:, :10] - 1.0).max() < 0.1 and np.abs(out[:, 10:] - 4.0).max() < 0.1  # a little leaks across
    near = nearest_fill(depth)
    assert (near[:, 10:14] == 1.0).all()  # nearest crosses the colour edge: 3 m off there
    assert colorization_fill(np.zeros((4, 4), np.float32), np.zeros((4, 4, 3), np.float32)).max() == 0.0
    with pytest.raises(ShapeError):
        colorization_fill(depth, rgb[:5])
    model = build_model("colorization")
    t = model(torch.from_numpy(depth)[None, None], None, torch.from_numpy(rgb).permute(2, 0, 1)[None])
    np.testing.assert_allclose(t[0, 0].numpy(), out, atol=1e-6)
    with pytest.raises(ShapeError, match="rgb"):
        model(torch.from_numpy(depth)[None, None], None)


def test_pyramid_fill_interpolates_smoothly_and_keeps_measurements():
    d = np.zeros((33, 33), np.float32)
    d[0, 0], d[0, 32], d[32, 0], d[32, 32] = 1.0, 2.0, 3.0, 4.0
    out = pyramid_fill(d)
    assert out[0, 0] == 1.0 and out[32, 32] == 4.0  # measurements unchanged
    assert 2.0 < out[16, 16] < 3.0  # between the corners (their mean is 2.5)
    assert np.abs(np.diff(out, axis=1)).max() < 0.5  # no Voronoi steps, unlike nearest
    assert np.abs(np.diff(nearest_fill(d), axis=1)).max() == 1.0
    ramp = np.tile(np.linspace(1, 5, 64, dtype=np.float32), (16, 1))
    sparse = np.where(np.random.default_rng(0).random(ramp.shape) < 0.1, ramp, 0).astype(np.float32)
    assert np.abs(pyramid_fill(sparse) - ramp).mean() < np.abs(nearest_fill(sparse) - ramp).mean()
    line = np.zeros((1, 5), np.float32)
    line[0, 2] = 3.0
    assert (pyramid_fill(line) == 3.0).all() and pyramid_fill(np.zeros((4, 4), np.float32)).max() == 0

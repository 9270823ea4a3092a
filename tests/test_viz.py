"""Tests of depthsense.viz: shapes, dtypes, colour conventions, shared ranges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthsense import viz as V
from depthsense.errors import ShapeError

H, W = 6, 8


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _depth(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = rng.uniform(2.0, 40.0, (H, W)).astype(np.float32)
    d[rng.random((H, W)) < 0.3] = 0.0
    return d


# --------------------------------------------------------------------------- colorize_depth


def test_colorize_depth_shape_dtype_and_torch_numpy_agree():
    d = _depth()
    img = V.colorize_depth(d)
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(V.colorize_depth(torch.from_numpy(d)[None]), img)  # (1,H,W)
    np.testing.assert_array_equal(V.colorize_depth(torch.from_numpy(d)[None, None].double()), img)


def test_invalid_is_black_and_valid_never_black():
    d = _depth()
    d[0, 0], d[0, 1], d[0, 2] = np.nan, np.inf, -3.0
    img = V.colorize_depth(d)
    invalid = ~(np.isfinite(d) & (d > 0))
    assert (img[invalid] == 0).all()
    assert (img[~invalid].sum(axis=1) > 0).all()  # the farthest colour is still visible


def test_ramp_is_monotone_near_bright_far_dark():
    ramp = np.linspace(1.0, 50.0, 64, dtype=np.float32)[None, :]
    luma = _luma(V.colorize_depth(ramp, vmin=1.0, vmax=50.0)[0])
    assert np.all(np.diff(luma) <= 0)  # farther never brighter
    assert luma[0] > luma[-1] + 100  # and a clear difference end to end


def test_explicit_range_clips_and_validates():
    d = np.array([[0.5, 1.0, 10.0, 99.0]], np.float32)
    img = V.colorize_depth(d, vmin=1.0, vmax=10.0)
    np.testing.assert_array_equal(img[0, 0], img[0, 1])  # below vmin = nearest colour
    np.testing.assert_array_equal(img[0, 2], img[0, 3])  # beyond vmax = farthest colour
    with pytest.raises(ValueError, match="vmin < vmax"):
        V.colorize_depth(d, vmin=5.0, vmax=5.0)
    with pytest.raises(ShapeError, match="depth"):
        V.colorize_depth(np.ones((2, H, W), np.float32))
    with pytest.raises(KeyError, match="colormap"):
        V.colorize_depth(d, cmap="no-such-map")


def test_depth_range_uses_valid_percentiles():
    d = np.zeros((10, 10), np.float32)
    d[:5] = np.linspace(1, 100, 50).reshape(5, 10)
    lo, hi = V.depth_range(d)
    valid = d[d > 0]
    assert lo == pytest.approx(np.percentile(valid, 2)) and hi == pytest.approx(np.percentile(valid, 98))
    assert V.depth_range(np.zeros((3, 3))) is None
    lo, hi = V.depth_range(np.full((3, 3), 7.0))  # constant: still a usable range
    assert lo < hi


# --------------------------------------------------------------------------- error, overlay


def test_colorize_error_black_where_gt_missing_and_brighter_for_larger_error():
    gt = np.array([[10.0, 10.0, 10.0, 0.0]], np.float32)
    pred = np.array([[10.0, 11.0, 14.0, 50.0]], np.float32)
    img = V.colorize_error(pred, gt, vmax=4.0)
    assert img.shape == (1, 4, 3) and img.dtype == np.uint8
    assert (img[0, 3] == 0).all()
    luma = _luma(img[0, :3])
    assert luma[0] < luma[1] < luma[2]
    assert img[0, 0].sum() > 0  # zero error is dark but distinguishable from "no GT"
    np.testing.assert_array_equal(V.colorize_error(torch.from_numpy(pred), torch.from_numpy(gt)[None], vmax=4.0), img)
    with pytest.raises(ShapeError, match="differ"):
        V.colorize_error(pred, gt[:, :3])


def test_sparse_overlay_draws_points_nearer_wins():
    rgb = np.full((H, W, 3), 0.5, np.float32)
    sparse = np.zeros((H, W), np.float32)
    sparse[2, 2], sparse[2, 4] = 5.0, 30.0
    out0 = V.sparse_overlay(rgb, sparse, radius=0, vmin=1.0, vmax=40.0)
    background = np.full(3, 128, np.uint8)
    changed = (out0 != background).any(axis=2)
    assert changed.sum() == 2 and changed[2, 2] and changed[2, 4]
    point = V.colorize_depth(sparse, 1.0, 40.0)
    np.testing.assert_array_equal(out0[2, 2], point[2, 2])
    out1 = V.sparse_overlay(rgb, sparse, radius=1, vmin=1.0, vmax=40.0)
    changed1 = (out1 != background).any(axis=2)
    # radius-1 discs are "plus" shapes; the two overlap at (2,3): 5 + 5 - 1 pixels
    plus = np.zeros((H, W), bool)
    for y, x in [(2, 2), (2, 4)]:
        plus[y, x - 1:x + 2] = True
        plus[y - 1:y + 2, x] = True
    np.testing.assert_array_equal(changed1, plus)
    assert plus.sum() == 9
    # the shared column 3 belongs to both discs: the nearer point (5 m) colours it
    np.testing.assert_array_equal(out1[2, 3], point[2, 2])
    # torch (3,H,W) image and no image at all
    out_t = V.sparse_overlay(torch.from_numpy(rgb).permute(2, 0, 1), torch.from_numpy(sparse), 0, 1.0, 40.0)
    np.testing.assert_array_equal(out_t, out0)
    on_black = V.sparse_overlay(None, sparse, 0, 1.0, 40.0)
    assert (on_black[~changed] == 0).all()
    with pytest.raises(ShapeError, match="same H and W"):
        V.sparse_overlay(rgb[:3], sparse)


# --------------------------------------------------------------------------- panel, grid


def _tile(panel: np.ndarray, k: int) -> np.ndarray:
    top = k * (V.PANEL_TITLE_HEIGHT + H) + V.PANEL_TITLE_HEIGHT
    return panel[top:top + H]


def test_make_panel_layout_titles_and_shared_range():
    rng = np.random.default_rng(3)
    rgb = rng.random((H, W, 3)).astype(np.float32)
    gt = _depth(4)
    sparse = np.where(rng.random((H, W)) < 0.2, gt, 0).astype(np.float32)
    preds = {"exact": gt.copy(), "double": 2 * gt, "half_off": 1.5 * gt}
    panel = V.make_panel(rgb, sparse, preds, gt)
    # rgb, sparse, 3 predictions, gt, 3 error maps
    n_tiles = 2 + 3 + 1 + 3
    bars = 2 * (V.PANEL_TITLE_HEIGHT + V.COLORBAR_HEIGHT)  # depth and error colour bars at the bottom
    assert panel.shape == (n_tiles * (V.PANEL_TITLE_HEIGHT + H) + bars, W, 3) and panel.dtype == np.uint8
    np.testing.assert_array_equal(_tile(panel, 0), np.rint(rgb * 255).astype(np.uint8))
    assert panel[:V.PANEL_TITLE_HEIGHT].any()  # the title strip has text in it
    # one vmin/vmax for every depth tile: the exact prediction looks like the gt ...
    np.testing.assert_array_equal(_tile(panel, 2), _tile(panel, 5))
    # ... and 2*gt does not (per-tile percentile ranges would make them identical)
    assert not np.array_equal(_tile(panel, 2), _tile(panel, 3))
    # one error range for every error tile: |gt| and |0.5 gt| errors look different
    assert not np.array_equal(_tile(panel, 7), _tile(panel, 8))
    valid = gt > 0
    assert _luma(_tile(panel, 7)[valid]).mean() > _luma(_tile(panel, 8)[valid]).mean()
    exact_err = _tile(panel, 6)[valid]
    assert (exact_err == exact_err[0]).all()  # zero error: one colour


def test_make_panel_without_gt_and_torch_inputs():
    gt = _depth(5)
    panel = V.make_panel(torch.rand(3, H, W), torch.from_numpy(gt)[None],
                         {"a": torch.from_numpy(gt)[None, None]})
    assert panel.shape == (3 * (V.PANEL_TITLE_HEIGHT + H) + V.PANEL_TITLE_HEIGHT + V.COLORBAR_HEIGHT, W, 3)
    with pytest.raises(ShapeError, match="same H and W"):
        V.make_panel(np.zeros((H, W, 3)), gt, {"a": gt[:, :4]})


def test_tensorboard_grid_shape_range_and_content():
    b = 3
    gt = torch.from_numpy(np.stack([_depth(s) for s in range(b)]))[:, None]
    rgb = torch.rand(b, 3, H, W)
    batch = {"rgb": rgb, "sparse": gt * (torch.rand(b, 1, H, W) < 0.2), "gt": gt,
             "mask": torch.ones(b, 1, H, W), "meta": {}}
    grid = V.tensorboard_grid(batch, gt + 1.0, max_images=2)
    assert grid.shape == (3, 5 * H, 2 * W) and grid.dtype == torch.float32
    assert grid.min() >= 0 and grid.max() <= 1 and grid.max() > 0
    torch.testing.assert_close(grid[:, :H, :W], torch.round(rgb[0] * 255) / 255)
    # the GT tile's invalid pixels are black
    gt_tile = grid[:, 3 * H:4 * H, W:2 * W]
    assert (gt_tile[:, gt[1, 0] == 0] == 0).all()
    # inference batch: no gt -> black gt and error tiles
    grid2 = V.tensorboard_grid({"rgb": rgb, "sparse": batch["sparse"]}, gt, max_images=8)
    assert grid2.shape == (3, 5 * H, b * W)
    assert (grid2[:, 3 * H:] == 0).all()
    with pytest.raises(ShapeError, match="pred"):
        V.tensorboard_grid(batch, gt[:, 0])
    with pytest.raises(ValueError, match="max_images"):
        V.tensorboard_grid(batch, gt, max_images=0)


# --------------------------------------------------------------------------- issue 15: colour bars


def test_colorbar_ramps_like_the_images_it_explains_and_is_labelled():
    bar = V.colorbar(120, 2.0, 40.0)
    assert bar.shape == (V.COLORBAR_HEIGHT, 120, 3) and bar.dtype == np.uint8
    ramp = _luma(bar[2])
    assert ramp[0] > ramp[-1] and (np.diff(ramp) <= 1e-6).all()  # depth: near (vmin, left) bright
    np.testing.assert_array_equal(bar[2, 0], V.colorize_depth(np.array([[2.0]]), 2.0, 40.0)[0, 0])
    np.testing.assert_array_equal(bar[2, -1], V.colorize_depth(np.array([[40.0]]), 2.0, 40.0)[0, 0])
    err = _luma(V.colorbar(120, 0.0, 3.0, "inferno", kind="error")[2])
    assert err[0] < err[-1]  # errors: small = dark, left
    assert V.colorbar(120, 2.0, 40.0)[12:].max() > 200  # label text under the ramp
    assert not np.array_equal(V.colorbar(120, 2.0, 40.0)[12:], V.colorbar(120, 2.0, 41.0)[12:])  # the values
    with pytest.raises(ValueError, match="vmin < vmax"):
        V.colorbar(120, 3.0, 3.0)
    img = np.zeros((5, 120, 3), np.uint8)
    assert V.with_colorbar(img, 0.5, 9.0).shape == (5 + V.COLORBAR_HEIGHT, 120, 3)


def test_make_panel_ends_with_depth_and_error_colour_bars():
    gt = _depth(4)
    panel = V.make_panel(np.zeros((H, W, 3), np.float32), gt, {"p": 2 * gt}, gt, vmin=1.0, vmax=30.0, err_vmax=5.0)
    bars = panel[-2 * (V.PANEL_TITLE_HEIGHT + V.COLORBAR_HEIGHT):]
    depth_bar = bars[V.PANEL_TITLE_HEIGHT:V.PANEL_TITLE_HEIGHT + V.COLORBAR_HEIGHT]
    error_bar = bars[-V.COLORBAR_HEIGHT:]
    np.testing.assert_array_equal(depth_bar, V.colorbar(W, 1.0, 30.0))
    np.testing.assert_array_equal(error_bar, V.colorbar(W, 0.0, 5.0, "inferno", kind="error"))

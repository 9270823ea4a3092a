"""Tests for data/synthetic.py, data/synthetic_world.py and tools/make_synthetic.py.

Most tests use tiny images; the LiDAR-geometry tests render a few frames at the default
1216x352 (about 0.1 s each) because density and scan-line spacing are defined there.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from depthsense.data import synthetic as syn
from depthsense.data import synthetic_world as world
from depthsense.data.synthetic import (
    KITTI_DATE,
    LidarSpec,
    generate,
    kitti_intrinsics,
    relative_depth_u8,
    render_frame,
    split_counts,
)
from depthsense.errors import DepthFileError
from depthsense.io import png_info, read_depth, read_intrinsics, read_mask, read_rgb
from depthsense.tools import make_synthetic

SMALL = (64, 216)


@pytest.fixture(scope="module")
def full_frames() -> list[syn.SyntheticFrame]:
    """Two default-size frames, rendered once for the module."""
    return [render_frame(0, i) for i in range(2)]


@pytest.fixture(scope="module")
def kitti_tree(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("kitti")
    return out, generate(out, "kitti", frames=4, seed=1, height=SMALL[0], width=SMALL[1])


# --------------------------------------------------------------------------- frames


def test_render_frame_shapes_types_and_invariants():
    f = render_frame(2, 3, *SMALL)
    h, w = SMALL
    assert f.rgb.shape == (h, w, 3) and f.rgb.dtype == np.float32
    assert f.gt.shape == f.sparse.shape == f.beam.shape == (h, w)
    assert f.gt.dtype == f.sparse.dtype == np.float32 and f.beam.dtype == np.int16
    assert 0.0 <= f.rgb.min() and f.rgb.max() <= 1.0
    assert f.gt.min() >= 0 and f.gt.max() <= syn.MAX_DEPTH
    assert f.sparse.min() >= 0 and f.sparse.max() <= syn.MAX_DEPTH
    np.testing.assert_array_equal(f.beam >= 0, f.sparse > 0)
    np.testing.assert_allclose(f.K, kitti_intrinsics(h, w))
    assert (f.gt == 0).any(), "some sky (or > 80 m) must be invalid"


def test_kitti_intrinsics_match_the_cropped_kitti_camera():
    k = kitti_intrinsics()
    np.testing.assert_allclose(k, [[721.5377, 0, 596.5593], [0, 721.5377, 149.854], [0, 0, 1]])
    half = kitti_intrinsics(176, 608)
    np.testing.assert_allclose(half[:2], k[:2] / 2)


def test_ray_primitives_hit_where_computed_by_hand():
    o = (0.0, 0.0, 0.0)
    d = np.array([[0.0, 0.1, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]], np.float32)
    inv = 1.0 / np.where(d == 0, np.float32(1e-12), d)
    t = world._ray_box(o, inv, (-1.0, -1.0, 5.0), (1.0, 1.0, 7.0))
    # straight on: z = 5; tilted 0.1: still enters through z = 5 (x = 0.5);
    # 45 deg in x leaves the x-slab at t = 1 before reaching z = 5; 45 deg down likewise.
    np.testing.assert_allclose(t, [5.0, 5.0, np.inf, np.inf])
    t = world._ray_cylinder(o, d, (0.0, 10.0, 1.0), -5.0, 5.0)
    # front of the cylinder at z = 9; the downward ray is at y = 9 there, below the bottom.
    np.testing.assert_allclose(t[[0, 3]], [9.0, np.inf])
    np.testing.assert_allclose(t[1], _cyl_entry(0.1, 10.0, 1.0), rtol=1e-5)
    t = world._ray_sphere(o, np.array([[0.0], [0.0], [2.0]], np.float32), (0.0, 0.0, 10.0, 2.0))
    np.testing.assert_allclose(t, [4.0])  # |d| = 2: hit at z = 8 is t = 4


def test_foreground_mask_matches_the_object_ids_of_a_hand_placed_scene():
    # Camera at the origin looking down +z (identity rig). A car whose front face at
    # z = 10 spans x -1..1 and y -1..1.45 (its top is above the camera, so only the
    # front face is seen), a pole at x = 3, z = 8 (radius 0.2), a tree trunk (background)
    # at x = 0, z = 6 in front of the car, and a building wall behind everything at z = 30.
    h, w = 120, 160
    f, cx, cy = 100.0, 80.0, 60.0
    K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    prims = [
        world.Prim("box", (-1.0, -1.0, 10.0), (1.0, 1.45, 14.0), world._M_CAR, (0.5, 0.1, 0.1)),
        world.Prim("cyl", (2.8, -6.0, 7.8), (3.2, 1.65, 8.2), world._M_POLE, (0.5, 0.5, 0.5), (3.0, 8.0, 0.2)),
        world.Prim("cyl", (-0.1, -6.0, 5.9), (0.1, 1.65, 6.1), world._M_TRUNK, (0.4, 0.3, 0.2), (0.0, 6.0, 0.1)),
        world.Prim("box", (-50.0, -20.0, 30.0), (50.0, 1.65, 31.0), world._M_BUILDING, (0.6, 0.6, 0.6), (3, 3, 21)),
    ]
    tex = np.zeros((256, 256), np.float32)
    scene = world.Scene(prims, (-4.0, 4.0, 0.0), np.array([0.0, -1.0, 0.0]), tex, tex)
    t, pid, _ = world.cast_rays(scene, (0.0, 0.0, 0.0), world.camera_rays(K, h, w, np.eye(3)))
    fg = world.foreground_mask(scene, pid, t)
    # the mask is exactly the pixels whose nearest hit is the car or the pole
    np.testing.assert_array_equal(fg, (pid == 1) | (pid == 2))
    # ... and those are where the geometry puts them (by hand: u = cx + f x / z)
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    car = (np.abs(u - cx) < f * 1.0 / 10 - 1) & (v > cy - f * 1.0 / 10 + 1) & (v < cy + f * 1.45 / 10 - 1)
    near_trunk = np.abs(u - cx) < f * 0.1 / 6 + 1
    in_trunk = np.abs(u - cx) < f * 0.1 / 6 - 1
    assert fg[car & ~near_trunk].all() and not fg[car & in_trunk].any()
    pole = (np.abs(u - (cx + f * 3.0 / 8)) < f * 0.2 / 8 - 1) & (v > cy - f * 6.0 / 8 + 1) & (v < cy + f * 1.65 / 8 - 1)
    assert fg[pole].all()
    near_car = (np.abs(u - cx) < f * 1.0 / 10 + 1) & (v > cy - f * 1.0 / 10 - 1) & (v < cy + f * 1.45 / 10 + 1)
    near_pole = np.abs(u - (cx + f * 3.0 / 8)) < f * 0.2 / 8 + 1
    assert not fg[~near_car & ~near_pole].any()
    # farther than 80 m: background, like the ground truth
    assert not world.foreground_mask(scene, pid, t * 11.0).any()


def test_rendered_frames_carry_a_foreground_mask(full_frames):
    for f in full_frames:
        assert f.fg.dtype == bool and f.fg.shape == f.gt.shape
    assert any(f.fg.any() for f in full_frames)
    assert all(f.fg.mean() < 0.5 for f in full_frames)


def _cyl_entry(dx: float, cz: float, r: float) -> float:
    """Entry t of the ray (dx, 0, 1) into the vertical cylinder at (0, cz) radius r."""
    a, b, c = dx * dx + 1.0, -cz, cz * cz - r * r
    return (-b - math.sqrt(b * b - a * c)) / a


def test_same_seed_and_index_give_identical_arrays_and_different_seed_differs():
    a, b, c = render_frame(5, 1, *SMALL), render_frame(5, 1, *SMALL), render_frame(6, 1, *SMALL)
    for name in ("rgb", "gt", "sparse", "beam"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.gt, c.gt)
    assert not np.array_equal(a.gt, render_frame(5, 2, *SMALL).gt)


def test_density_at_full_resolution(full_frames):
    for f in full_frames:
        assert 0.03 < f.density < 0.08, f.density
        assert np.count_nonzero(f.gt) / f.gt.size > 0.5


def test_density_scaling_with_image_size():
    # Default sensor follows the image width: KITTI-like density at any size.
    small = render_frame(0, 0, 96, 320)
    assert 0.03 < small.density < 0.08
    # The full HDL-64E squeezed into a small image: many more pixels get a point
    # (density grows ~ 1 / pixels until points merge).
    physical = render_frame(0, 0, 96, 320, lidar=LidarSpec())
    assert physical.density > 4 * small.density


def test_lidar_agrees_with_gt_except_bleed_through_at_edges(full_frames):
    for i, f in enumerate(full_frames):
        s, g = f.sparse, f.gt
        valid = s > 0
        within = np.abs(s - g) <= np.maximum(0.1, 0.01 * g)
        assert within[valid].mean() > 0.9
        consistent = _neighbourhood_consistent(s, g)
        bleed = valid & ~consistent
        assert consistent[valid].mean() > 0.97
        assert bleed.sum() > 20  # the offset LiDAR sees past occluding edges
        # Bleed-through points lie *behind* the surface the camera sees ...
        assert (s > g + 0.1)[bleed].mean() > 0.95
        # ... and next to a depth discontinuity (parallax of a 0.27 m baseline).
        assert (_distance_to_depth_edge(g)[bleed] <= 12).mean() > 0.95
        # Control: a LiDAR at the camera centre without noise has no bleed-through.
        ideal = LidarSpec(offset_m=(0.0, 0.0, 0.0), range_noise_m=0.0, dropout=0.0)
        control = render_frame(0, i, lidar=ideal)
        c_valid = control.sparse > 0
        c_bad = c_valid & ~_neighbourhood_consistent(control.sparse, control.gt)
        assert c_bad.sum() / c_valid.sum() < 0.002
        assert bleed.sum() > 3 * c_bad.sum()


def test_scan_lines_are_horizontal_bands_one_per_beam(full_frames):
    f = full_frames[0]
    v = f.sparse > 0
    n = v.sum()
    horizontal = (v[:, :-2] & (v[:, 1:-1] | v[:, 2:])).sum() / n
    vertical = (v[:-2] & (v[1:-1] | v[2:])).sum() / n
    assert horizontal > 10 * vertical
    # In a column, each beam that lands there makes one run of valid rows.
    runs = (v & ~np.vstack([np.zeros((1, v.shape[1]), bool), v[:-1]])).sum(axis=0)
    beams = np.array([np.unique(col[col >= 0]).size for col in f.beam.T])
    hit = beams > 0
    assert (runs[hit] == beams[hit]).mean() > 0.85
    # Upper-block beams are 1/3 deg (~4 px) apart, so rows of one column are well spread.
    gaps = [np.median(np.diff(np.nonzero(v[:, c])[0])) for c in range(0, v.shape[1], 8) if v[:, c].sum() > 3]
    assert np.median(gaps) >= 3
    assert np.unique(f.beam[f.beam >= 0]).size >= 30


def test_rgb_edges_coincide_with_depth_edges(full_frames):
    f = full_frames[0]
    g = f.gt
    grad = np.abs(np.diff(f.rgb, axis=1)).sum(axis=2)
    both = (g[:, 1:] > 0) & (g[:, :-1] > 0)
    ratio = np.maximum(g[:, 1:], 1e-3) / np.maximum(g[:, :-1], 1e-3)
    edge = both & ((ratio > 1.3) | (ratio < 1 / 1.3))
    flat = both & (np.abs(ratio - 1) < 0.02)
    assert edge.sum() > 100
    assert grad[edge].mean() > 3 * grad[flat].mean()


# --------------------------------------------------------------------------- KITTI layout


def test_split_counts_by_hand():
    assert split_counts(1) == {"train": 1, "val": 0, "val_selection": 0, "test": 0}
    assert split_counts(2) == {"train": 1, "val": 1, "val_selection": 0, "test": 0}
    assert split_counts(3) == {"train": 2, "val": 1, "val_selection": 0, "test": 0}
    assert split_counts(4) == {"train": 1, "val": 1, "val_selection": 1, "test": 1}
    assert split_counts(10) == {"train": 6, "val": 2, "val_selection": 1, "test": 1}
    assert split_counts(100) == {"train": 75, "val": 15, "val_selection": 5, "test": 5}
    for n in range(1, 60):
        c = split_counts(n)
        assert sum(c.values()) == n and c["train"] >= 1 and min(c.values()) >= 0
    with pytest.raises(ValueError, match="frames"):
        split_counts(0)


def test_kitti_tree_has_the_official_paths_and_formats(kitti_tree):
    out, summary = kitti_tree
    h, w = SMALL
    assert summary["splits"] == {"train": 1, "val": 1, "val_selection": 1, "test": 1}
    assert summary["drives"] == {
        "train": ["2011_09_26_drive_0001"],
        "val": ["2011_09_26_drive_0002"],
        "val_selection": ["2011_09_26_drive_0003"],
    }
    depth_files = [
        out / "train/2011_09_26_drive_0001_sync/proj_depth/velodyne_raw/image_02/0000000005.png",
        out / "train/2011_09_26_drive_0001_sync/proj_depth/groundtruth/image_02/0000000005.png",
        out / "val/2011_09_26_drive_0002_sync/proj_depth/velodyne_raw/image_02/0000000005.png",
        out / "val/2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000005.png",
        out / "depth_selection/val_selection_cropped/velodyne_raw/2011_09_26_drive_0003_sync_velodyne_raw_0000000005_image_02.png",
        out / "depth_selection/val_selection_cropped/groundtruth_depth/2011_09_26_drive_0003_sync_groundtruth_depth_0000000005_image_02.png",
        out / "depth_selection/test_depth_completion_anonymous/velodyne_raw/0000000000.png",
    ]
    rgb_files = [
        out / KITTI_DATE / "2011_09_26_drive_0001_sync/image_02/data/0000000005.png",
        out / KITTI_DATE / "2011_09_26_drive_0002_sync/image_02/data/0000000005.png",
        out / "depth_selection/val_selection_cropped/image/2011_09_26_drive_0003_sync_image_0000000005_image_02.png",
        out / "depth_selection/test_depth_completion_anonymous/image/0000000000.png",
    ]
    k_files = [
        out / "depth_selection/val_selection_cropped/intrinsics/2011_09_26_drive_0003_sync_image_0000000005_image_02.txt",
        out / "depth_selection/test_depth_completion_anonymous/intrinsics/0000000000.txt",
    ]
    fg_files = [
        out / "train/2011_09_26_drive_0001_sync/proj_depth/fg/image_02/0000000005.png",
        out / "val/2011_09_26_drive_0002_sync/proj_depth/fg/image_02/0000000005.png",
        out / "depth_selection/val_selection_cropped/fg/2011_09_26_drive_0003_sync_fg_0000000005_image_02.png",
    ]
    calib = [out / KITTI_DATE / "calib_cam_to_cam.txt", out / KITTI_DATE / "calib_velo_to_cam.txt"]
    expected = depth_files + rgb_files + k_files + fg_files + calib
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert written == sorted(expected)
    assert summary["files"] == len(expected)
    assert not (out / "depth_selection/test_depth_completion_anonymous/groundtruth_depth").exists()
    for p in depth_files:
        info = png_info(p.read_bytes(), p)
        assert (info["bit_depth"], info["colour_type"], info["height"], info["width"]) == (16, 0, h, w)
        assert read_depth(p).max() > 0
    for p in rgb_files:
        assert read_rgb(p).shape == (h, w, 3)
    for p in fg_files:
        info = png_info(p.read_bytes(), p)
        assert (info["bit_depth"], info["colour_type"], info["height"], info["width"]) == (8, 0, h, w)
    k = kitti_intrinsics(h, w)
    for p in k_files:
        assert len(p.read_text().split()) == 9
        np.testing.assert_allclose(read_intrinsics(p), k, rtol=1e-6)
    np.testing.assert_allclose(read_intrinsics(calib[0], key="P_rect_02"), k, rtol=1e-6)


def test_written_depth_round_trips_the_rendered_frame(kitti_tree):
    out, summary = kitti_tree
    f = render_frame(1, 0, *SMALL)  # frame 0 of seed 1 is the train frame
    proj = out / "train/2011_09_26_drive_0001_sync/proj_depth"
    sparse = read_depth(proj / "velodyne_raw/image_02/0000000005.png")
    gt = read_depth(proj / "groundtruth/image_02/0000000005.png")
    np.testing.assert_allclose(sparse, f.sparse, atol=0.5 / 256 + 1e-6)
    np.testing.assert_allclose(gt, f.gt, atol=0.5 / 256 + 1e-6)
    np.testing.assert_array_equal(sparse > 0, f.sparse > 0)
    np.testing.assert_array_equal(read_mask(proj / "fg/image_02/0000000005.png") > 0, f.fg)
    assert summary["mean_density"] == pytest.approx(
        np.mean([render_frame(1, i, *SMALL).density for i in range(4)])
    )
    assert 0.03 < summary["mean_density"] < 0.08 and summary["mean_gt_density"] > 0.5


def test_generate_is_byte_identical_per_seed(tmp_path):
    size = dict(height=40, width=120)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / name, "kitti", frames=4, seed=seed, **size)
    files = {n: _read_tree(tmp_path / n) for n in "abc"}
    assert files["a"] == files["b"]
    assert files["a"].keys() == files["c"].keys()
    images = [k for k in files["a"] if k.suffix == ".png"]
    assert len(images) == 14  # 4 train (rgb, sparse, gt, fg) + 4 val + 4 val_selection + 2 test
    assert all(files["a"][k] != files["c"][k] for k in images)


def test_many_frames_fill_several_drives(tmp_path):
    splits = {"train": 3, "val": 2, "val_selection": 0, "test": 0}
    summary = generate(tmp_path, "kitti", frames=5, seed=0, height=32, width=64, frames_per_drive=1, splits=splits)
    assert summary["drives"]["train"] == [syn.drive_name(n) for n in (1, 2, 3)]
    assert summary["drives"]["val"] == [syn.drive_name(n) for n in (4, 5)]
    names = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert names == [f"{syn.drive_name(n)}_sync" for n in (1, 2, 3)]


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="known layouts: kitti, redweb"):
        generate(tmp_path, "nyu", frames=1)
    with pytest.raises(ValueError, match="frames=0"):
        generate(tmp_path, frames=0)
    with pytest.raises(ValueError, match="height=16"):
        generate(tmp_path, frames=1, height=16)
    with pytest.raises(ValueError, match="sum to frames=3"):
        generate(tmp_path, frames=3, splits={"train": 1, "val": 1})
    with pytest.raises(ValueError, match="unknown keys"):
        generate(tmp_path, frames=1, splits={"training": 1})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DepthFileError, match="cannot create the output directory"):
        generate(blocker / "sub", frames=1)
    with pytest.raises(ValueError, match="seed=-1"):
        render_frame(-1, 0)
    with pytest.raises(ValueError, match="beams"):
        LidarSpec(beams=0)
    assert list(tmp_path.iterdir()) == [blocker]


def test_sizes_beyond_the_renderer_are_refused_before_anything_is_written(tmp_path):
    for h, w in ((100_000, 100_000), (2_000_000, 32), (4001, 4000)):
        with pytest.raises(ValueError, match=rf"{h}x{w} is [0-9,]+ megapixels a frame; rendering needs ~200 bytes"):
            generate(tmp_path / "o", frames=1, height=h, width=w)
        with pytest.raises(ValueError, match="frames are limited to 16 MP"):
            render_frame(0, 0, h, w)
    assert not (tmp_path / "o").exists()
    syn.check_frame_size(4000, 4000)  # the limit itself is fine


@pytest.mark.parametrize("layout,writes,message", [
    ("kitti", 1 + 2 + 4 + 2, "holds 1 of 4 frames (6 files)"),  # marker, 2 calibration files, a frame, then full
    ("redweb", 1 + 2 * 2 + 1, "holds 2 of 4 frames (4 files)"),
])
def test_an_unfinished_set_stays_marked_and_loaders_refuse_it(tmp_path, disk_full_after, monkeypatch, layout, writes,
                                                              message):
    from depthsense.data import INCOMPLETE_MARKER, build_dataset
    from depthsense.errors import DatasetError

    out = tmp_path / "set"
    disk_full_after(writes)
    with pytest.raises(DepthFileError) as err:
        generate(out, layout, frames=4, height=32, width=96)
    monkeypatch.undo()  # room again
    assert "No space left on device" in str(err.value) and message in str(err.value)
    assert f"stays marked incomplete by {INCOMPLETE_MARKER}, so no loader reads it" in str(err.value)
    assert (out / INCOMPLETE_MARKER).is_file()
    name, split = ("synthetic", "train") if layout == "kitti" else ("redweb", "train")
    with pytest.raises(DatasetError, match=rf"{out}: incomplete data set: .*--layout {layout} --frames 4"):
        build_dataset(name, out, split)
    generate(out, layout, frames=4, height=32, width=96)  # the same command again completes it
    assert not (out / INCOMPLETE_MARKER).exists()
    assert len(build_dataset(name, out, split)) > 0


def test_an_interrupted_generation_leaves_the_marker(tmp_path, monkeypatch):
    real = syn.render_frame

    def interrupted(seed, index, *a, **kw):
        if index == 2:
            raise KeyboardInterrupt  # as Ctrl-C (kill -9 leaves the marker the same way)
        return real(seed, index, *a, **kw)

    monkeypatch.setattr(syn, "render_frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, "kitti", frames=4, height=32, width=96)
    assert (tmp_path / ".incomplete").is_file()


def test_cli_huge_size_full_disk_and_out_of_memory_are_one_line(tmp_path, capsys, monkeypatch, disk_full_after):
    rc = make_synthetic.main(["--out", str(tmp_path / "o"), "--height", "100000", "--width", "100000"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "10,000 megapixels a frame" in err and "limited to 16 MP" in err
    assert not (tmp_path / "o").exists()
    small = ["--height", "32", "--width", "96", "--frames", "4", "--no-progress"]
    disk_full_after(4)
    rc = make_synthetic.main(["--out", str(tmp_path / "full"), *small])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "holds 0 of 4 frames" in err and "marked incomplete" in err

    def no_memory(*a, **kw):
        raise MemoryError

    monkeypatch.setattr(syn, "render_frame", no_memory)
    rc = make_synthetic.main(["--out", str(tmp_path / "mem"), *small])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "out of memory rendering a frame" in err and "Traceback" not in err
    assert (tmp_path / "mem" / ".incomplete").is_file()


# --------------------------------------------------------------------------- ReDWeb layout


def test_relative_depth_u8_by_hand():
    e = math.e
    gt = np.array([[0.0, 1.0, e, e * e]], np.float32)
    np.testing.assert_array_equal(relative_depth_u8(gt), [[255, 0, 127, 254]])
    np.testing.assert_array_equal(relative_depth_u8(np.full((2, 2), 3.0)), np.zeros((2, 2)))
    np.testing.assert_array_equal(relative_depth_u8(np.zeros((2, 2))), np.full((2, 2), 255))


def test_redweb_layout_and_convention(tmp_path):
    summary = generate(tmp_path, "redweb", frames=2, seed=7, height=SMALL[0], width=SMALL[1])
    assert summary["files"] == 4 and summary["splits"] == {"all": 2}
    assert sorted(p.name for p in (tmp_path / "Imgs").iterdir()) == ["synth_000000.jpg", "synth_000001.jpg"]
    assert sorted(p.name for p in (tmp_path / "RDs").iterdir()) == ["synth_000000.png", "synth_000001.png"]
    for i in range(2):
        gt = render_frame(7, i, *SMALL).gt
        img = tmp_path / "Imgs" / f"synth_{i:06d}.jpg"
        assert img.read_bytes()[:2] == b"\xff\xd8" and read_rgb(img).shape == (*SMALL, 3)
        rd_path = tmp_path / "RDs" / f"synth_{i:06d}.png"
        info = png_info(rd_path.read_bytes(), rd_path)
        assert (info["bit_depth"], info["colour_type"]) == (8, 0)
        rd = cv2.imread(str(rd_path), cv2.IMREAD_UNCHANGED)
        assert rd.dtype == np.uint8 and rd.shape == SMALL
        np.testing.assert_array_equal(rd == 255, gt == 0)
        order = np.argsort(gt[gt > 0], kind="stable")
        assert np.all(np.diff(rd[gt > 0][order].astype(int)) >= 0)  # larger = farther
        assert rd[gt > 0].min() == 0 and rd[gt > 0].max() == 254


# --------------------------------------------------------------------------- CLI


def test_cli_writes_files_and_returns_zero(tmp_path, capsys):
    out = tmp_path / "synth"
    small = ["--height", "48", "--width", "160"]
    rc = make_synthetic.main(["--out", str(out), "--frames", "2", "--seed", "1", *small])
    assert rc == 0
    assert (out / "train/2011_09_26_drive_0001_sync/proj_depth/velodyne_raw/image_02/0000000005.png").is_file()
    assert (out / "val/2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000005.png").is_file()
    assert "wrote 10 files" in capsys.readouterr().out  # 2 x (rgb, sparse, gt, fg) + 2 calibration files
    rc = make_synthetic.main(["--out", str(tmp_path / "rw"), "--layout", "redweb", "--frames", "1", *small])
    assert rc == 0 and (tmp_path / "rw/RDs/synth_000000.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frames", "0"], "--frames 0"),
        (["--frames", "x"], "invalid int value"),
        (["--height", "16"], "--height 16"),
        (["--width", "31"], "--width 31"),
        (["--seed", "-2"], "--seed -2"),
        (["--layout", "nyu"], "invalid choice"),
    ],
)
def test_cli_bad_arguments_one_line_exit_2(tmp_path, capsys, args, message):
    rc = make_synthetic.main(["--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_cli_unwritable_output_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = make_synthetic.main(["--out", str(blocker / "sub"), "--frames", "1", "--height", "32"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot create the directory" in err and err.count("\n") == 1


def test_cli_missing_out_exit_2(capsys):
    assert make_synthetic.main(["--frames", "1"]) == 2
    assert "--out" in capsys.readouterr().err


# --------------------------------------------------------------------------- helpers


def _read_tree(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _neighbourhood_consistent(s: np.ndarray, g: np.ndarray, tol: float = 0.1) -> np.ndarray:
    """Sparse depth within [min, max] of the GT 3x3 neighbourhood (+- tol).

    A point projects to the nearest pixel centre, up to half a pixel from where it
    hit, so on slanted surfaces and at edges the pixel's own GT may differ; the
    neighbourhood brackets it unless the surface is not visible to the camera there.
    """
    kernel = np.ones((3, 3), np.uint8)
    filled = np.where(g > 0, g, 1e4).astype(np.float32)
    lo = cv2.erode(filled, kernel)
    hi = cv2.dilate(filled, kernel)
    return (s >= lo - tol) & (s <= hi + tol)


def _distance_to_depth_edge(g: np.ndarray) -> np.ndarray:
    """Pixel distance to the nearest GT depth discontinuity (3x3 max/min > 1.1)."""
    kernel = np.ones((3, 3), np.uint8)
    filled = np.where(g > 0, g, 1e4).astype(np.float32)
    edge = cv2.dilate(filled, kernel) / cv2.erode(filled, kernel) > 1.1
    return cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 5)


def test_cli_removes_the_temp_files_a_killed_run_left_anywhere_in_its_tree(tmp_path, capsys):
    """kill -9 during make-synthetic leaves hidden temp files deep in the layout; a rerun into
    the same --out removes those whose writer is gone (issue 25 item 12)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    deep = tmp_path / "o" / "train" / "2011_09_26_drive_0001_sync" / "proj_depth"
    deep.mkdir(parents=True)
    stale = deep / f".0000000003.png.{proc.pid}-ab1.tmp.png"
    stale.write_bytes(b"half")
    small = ["--height", "32", "--width", "96", "--frames", "2", "--no-progress"]
    assert make_synthetic.main(["--out", str(tmp_path / "o"), *small]) == 0
    assert not stale.exists()
    assert "note: removed 1 temporary file(s)" in capsys.readouterr().out

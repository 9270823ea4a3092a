"""tools/project_lidar.py (depthsense-project-lidar) on the real frames and on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depthsense.data.lidar import project_file, read_calibration, read_velodyne, ring_ids
from depthsense.io import read_depth, read_rgb
from depthsense.tools import project_lidar


def _files(root, i="000010"):
    b = root / "training"
    return b / "velodyne" / f"{i}.bin", b / "calib" / f"{i}.txt", b / "image_2" / f"{i}.png"


def _run(argv, capsys):
    rc = project_lidar.cli_main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_one_frame_with_overlay(kitti_object_root, tmp_path, capsys):
    scan, calib, image = _files(kitti_object_root)
    rc, out, err = _run([scan, "--calib", calib, "--image", image, "--out", tmp_path / "d.png",
                         "--overlay", tmp_path / "o.png"], capsys)
    assert rc == 0, err
    depth = read_depth(tmp_path / "d.png")
    expected = project_file(scan, read_calibration(calib), (375, 1242))[1].depth_map()
    assert depth.shape == (375, 1242)
    np.testing.assert_array_equal(depth > 0, expected > 0)
    assert np.abs(depth - expected).max() <= 0.5 / 256 + 1e-6
    overlay = read_rgb(tmp_path / "o.png")
    assert overlay.shape == (375, 1242, 3)
    assert np.abs(overlay - read_rgb(image)).max() > 0.2  # points were drawn
    assert f"{int((depth > 0).sum())} points" in out


def test_size_instead_of_image_and_beam_thinning(kitti_object_root, tmp_path, capsys):
    scan, calib, _ = _files(kitti_object_root)
    rc, _, err = _run([scan, "--calib", calib, "--size", "375x1242", "--out", tmp_path / "d16.png", "--beams", "16"],
                      capsys)
    assert rc == 0, err
    pts = read_velodyne(scan)
    proj = project_file(scan, read_calibration(calib), (375, 1242))[1]
    keep = ring_ids(pts)[proj.index] % 4 == 0
    np.testing.assert_array_equal(read_depth(tmp_path / "d16.png") > 0, proj.depth_map(keep) > 0)


def test_folder_mode_writes_every_frame(kitti_object_root, tmp_path, capsys):
    out = tmp_path / "proj"
    rc, printed, err = _run(["--data-root", kitti_object_root, "--split", "report", "--out-dir", out, "--overlay",
                             "--beams", "32", "--no-progress"], capsys)
    assert rc == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{i}.png" for i in ("000010", "000021", "000076", "000142", "000217")]
                           + [f"{i}_overlay.png" for i in ("000010", "000021", "000076", "000142", "000217")])
    assert f"wrote 5 of 5 frames to {out}: 5 depth PNGs and 5 overlays" in printed
    d = read_depth(out / "000076.png")
    assert d.shape == (374, 1238) and 0.01 < (d > 0).mean() < 0.03


def test_an_image_of_another_size_is_fine(kitti_object_root, tmp_path, capsys):
    scan, calib, _ = _files(kitti_object_root)
    rc, _, err = _run([scan, "--calib", calib, "--size", "300x1000", "--out", tmp_path / "small.png"], capsys)
    assert rc == 0, err
    assert read_depth(tmp_path / "small.png").shape == (300, 1000)


def _bad_scan(tmp_path, kind, root=None):
    p = tmp_path / f"{kind}.bin"
    if kind == "odd":
        p.write_bytes(b"\0" * 20)
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "nan":
        np.array([[1.0, np.nan, 0, 0]], np.float32).tofile(p)
    elif kind == "behind":
        np.array([[-10.0, 0, 0, 0]], np.float32).tofile(p)
    elif kind == "float64":
        np.fromfile(_files(root)[0], "<f4").astype("<f8").tofile(p)
    return p


@pytest.mark.parametrize("kind,message", [
    ("odd", "20 bytes is not a multiple of 16"), ("empty", "empty scan"), ("nan", "NaN/Inf coordinates"),
    ("behind", "none of its 1 points lands in the 1242x375 image"),
    ("float64", "lie beyond 500 m (up to 3.69e+19 m), farther than any LiDAR measures. It looks like float64: re-save "
                "it as N x 4 little-endian float32"),
])
def test_bad_scans_are_one_line_errors_and_write_nothing(kitti_object_root, tmp_path, capsys, kind, message):
    _, calib, image = _files(kitti_object_root)
    scan = _bad_scan(tmp_path, kind, kitti_object_root)
    rc, _, err = _run([scan, "--calib", calib, "--image", image, "--out", tmp_path / "d.png"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("depthsense-project-lidar: error:") or "error:" in err
    assert str(scan) in err and message in err
    assert not (tmp_path / "d.png").exists()


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("P2:", "PX:"), "no 'P2' line"),
    (lambda t: t.replace("Tr_velo_to_cam:", "Tr_other:"), "no 'Tr_velo_to_cam' line"),
    (lambda t: t.replace("R0_rect: 9.999128000000e-01", "R0_rect:"), "'R0_rect' has 8 values"),
    (lambda t: t + t.splitlines()[2].replace("7.070493", "7.3") + "\n", "key 'P2' appears on lines 3 and 8 (different"),
    (lambda t: t + t.splitlines()[2] + "\n", "key 'P2' appears on lines 3 and 8 (the same values)"),
    (lambda t: t + t.splitlines()[2].replace("P2:", "P2 old:") + "\n", "key 'P2 old' is not one word"),
])
def test_bad_calibrations_name_the_key(kitti_object_root, tmp_path, capsys, edit, message):
    scan, calib, image = _files(kitti_object_root, "000000")
    bad = tmp_path / "calib.txt"
    bad.write_text(edit(calib.read_text()))
    rc, _, err = _run([scan, "--calib", bad, "--image", image, "--out", tmp_path / "d.png"], capsys)
    assert rc == 2 and str(bad) in err and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d.png").exists()


@pytest.mark.parametrize("extra,message", [
    (["--beams", "12"], "--beams 12: not a divisor of 64"),
    (["--size", "375"], "expected HxW"),
    (["--bogus"], "unrecognized arguments"),
    (["--size", "-5x10"], "argument --size: size '-5x10': both sides must be >= 1 pixel"),
    (["--size", "375x-1242"], "argument --size: size '375x-1242': both sides must be >= 1 pixel"),
    (["--size", "100000x100000"], "--size 100000x100000: 10,000 megapixels; DepthSense reads and writes images of at "
                                  "most 100 MP"),
    (["--size", "2000000x10"], "--size 2000000x10: a PNG side may be at most 1,000,000 pixels"),
])
def test_bad_options(kitti_object_root, tmp_path, capsys, extra, message):
    scan, calib, _ = _files(kitti_object_root)
    argv = [scan, "--calib", calib, "--out", tmp_path / "d.png"] + (["--size", "375x1242"] if "--size" not in extra
                                                                      else []) + extra
    rc, _, err = _run(argv, capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d.png").exists()


def test_never_writes_over_an_input(kitti_object_root, tmp_path, capsys):
    scan, calib, image = _files(kitti_object_root)
    copy = tmp_path / "image.png"
    copy.write_bytes(image.read_bytes())
    before = copy.read_bytes()
    rc, _, err = _run([scan, "--calib", calib, "--image", copy, "--out", copy], capsys)
    assert rc == 2 and f"{copy}: this output is the input {copy}; refusing to overwrite an input" in err
    assert copy.read_bytes() == before


def test_a_depth_map_given_as_the_image_is_named_without_an_argument_order(kitti_object_root, tmp_path, capsys):
    scan, calib, _ = _files(kitti_object_root)
    rc, _, err = _run([scan, "--calib", calib, "--size", "375x1242", "--out", tmp_path / "d.png"], capsys)
    assert rc == 0, err
    rc, _, err = _run([scan, "--calib", calib, "--image", tmp_path / "d.png", "--out", tmp_path / "e.png"], capsys)
    assert rc == 2 and "d.png: single-channel uint16 image looks like a depth map" in err
    assert "first" not in err and len(err.strip().splitlines()) == 1  # --image has no position to get wrong
    assert not (tmp_path / "e.png").exists()


# --------------------------------------------------------------------------- two outputs, one path


@pytest.mark.parametrize("overlay", ["same.png", "x/../same.png", "link.png", "sub/same.png", "./same.png"])
def test_two_outputs_may_not_share_a_path(kitti_object_root, tmp_path, capsys, monkeypatch, overlay):
    scan, calib, image = _files(kitti_object_root)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "link.png").symlink_to("same.png")
    (tmp_path / "sub").symlink_to(".")
    rc, out, err = _run([scan, "--calib", calib, "--image", image, "--out", "same.png", "--overlay", overlay], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and not out
    assert f"--overlay {Path(overlay)}: is the same file as --out same.png" in err and "nothing was written" in err
    assert not (tmp_path / "same.png").exists()


@pytest.fixture
def root_of(kitti_object_root, tmp_path):
    """Make a KITTI-object root of symlinks to the shared frames: ``frames`` maps a frame
    name to (shared id, {"velodyne"|"calib"|"image_2": bytes written instead})."""
    def make(frames: dict) -> Path:
        base = tmp_path / "root" / "training"
        for sub in ("velodyne", "calib", "image_2"):
            (base / sub).mkdir(parents=True)
        for name, (src, replace) in frames.items():
            for sub, ext, shared in zip(("velodyne", "calib", "image_2"), (".bin", ".txt", ".png"),
                                        _files(kitti_object_root, src)):
                target = base / sub / f"{name}{ext}"
                if sub in replace:
                    target.write_bytes(replace[sub])
                else:
                    target.symlink_to(shared)
        return tmp_path / "root"
    return make


def test_folder_mode_refuses_frames_whose_files_collide(root_of, tmp_path, capsys):
    root = root_of({"000010": ("000010", {}), "000010_overlay": ("000021", {})})
    rc, out, err = _run(["--data-root", root, "--out-dir", tmp_path / "p", "--overlay", "--no-progress"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "000010_overlay's depth PNG" in err and "is the same file as 000010's overlay" in err
    assert not (tmp_path / "p").exists()


# --------------------------------------------------------------------------- folder mode: skip, report, say what stays


def test_folder_mode_skips_bad_frames_lists_them_and_exits_1(root_of, kitti_object_root, tmp_path, capsys):
    scan = np.fromfile(_files(kitti_object_root, "000021")[0], "<f4")
    calib = _files(kitti_object_root, "000076")[1].read_text()
    root = root_of({"000010": ("000010", {}),
                    "000021": ("000021", {"velodyne": scan.astype("<f8").tobytes()}),
                    "000076": ("000076", {"calib": (calib + calib.splitlines()[2] + "\n").encode()}),
                    "000142": ("000142", {"image_2": _files(kitti_object_root, "000142")[2].read_bytes()[:5000]})})
    out_dir = tmp_path / "p"
    rc, out, err = _run(["--data-root", root, "--out-dir", out_dir, "--overlay", "--no-progress"], capsys)
    assert rc == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["000010.png", "000010_overlay.png"]
    assert f"wrote 1 of 4 frames to {out_dir}: 1 depth PNGs and 1 overlays" in out
    lines = err.strip().splitlines()
    assert lines[0] == "3 problem(s) (4 frames):" and len(lines) == 4, err
    assert "skipped 000021: " in lines[1] and "It looks like float64" in lines[1]
    assert "skipped 000076: " in lines[2] and "key 'P2' appears on lines 3 and 9" in lines[2]
    assert "skipped 000142: " in lines[3] and "truncated PNG" in lines[3]


def test_folder_mode_on_a_full_disk_stops_and_says_what_stays(root_of, tmp_path, capsys, disk_full_after):
    root = root_of({i: (i, {}) for i in ("000010", "000021", "000076")})
    disk_full_after(3)  # the first frame's depth PNG and overlay, the second's depth PNG, then full
    out_dir = tmp_path / "p"
    rc, out, err = _run(["--data-root", root, "--out-dir", out_dir, "--overlay", "--no-progress"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and not out
    assert "No space left on device" in err
    assert (f"Before it, 1 of 3 frames were written completely to {out_dir} and stay (000010); the other 2 were not."
            in err)
    # the second frame's depth PNG was written but not its overlay: neither is under its real name
    assert sorted(p.name for p in out_dir.iterdir()) == ["000010.png", "000010_overlay.png"]


def test_one_frame_writes_depth_and_overlay_together_or_neither(kitti_object_root, tmp_path, capsys,
                                                                disk_full_after):
    scan, calib, image = _files(kitti_object_root)
    disk_full_after(1)  # the depth PNG fits, its overlay does not
    rc, _, err = _run([scan, "--calib", calib, "--image", image, "--out", tmp_path / "d.png",
                       "--overlay", tmp_path / "o.png"], capsys)
    assert rc == 2 and "No space left on device" in err and not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- notes


def test_notes_are_note_lines_not_python_warnings(kitti_object_root, root_of, tmp_path, capsys):
    scan, calib, image = _files(kitti_object_root)
    far = tmp_path / "far.bin"
    pts = read_velodyne(scan)
    pts[:, :3] *= 4  # up to ~320 m: plausible for a LiDAR, beyond the PNG's 256 m
    pts.tofile(far)
    rc, out, err = _run([far, "--calib", calib, "--image", image, "--out", tmp_path / "d.png"], capsys)
    assert rc == 0 and err == ""
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith(f"note: {tmp_path / 'd.png'}: ") and "were clipped" in notes[0]
    root = root_of({"000010": ("000010", {"velodyne": pts.tobytes()}), "000021": ("000021", {})})
    rc, out, err = _run(["--data-root", root, "--out-dir", tmp_path / "p", "--no-progress"], capsys)
    assert rc == 0 and err == "" and out.count("note: ") == 1 and "000010.png: " in out and "were clipped" in out


def test_both_modes_remove_the_temp_files_a_killed_run_left(kitti_object_root, tmp_path, capsys):
    """A killed project-lidar leaves hidden temp files next to its outputs; the next run into
    that folder removes those whose writer is gone, with a note (issue 25 item 12)."""
    import os
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    scan, calib, image = _files(kitti_object_root)
    out_dir = tmp_path / "p"
    out_dir.mkdir()
    stale = [out_dir / f".000010.png.{proc.pid}-q1.tmp.png", out_dir / f".d.png.{proc.pid}-q2.tmp.png"]
    live = out_dir / f".other.png.{os.getpid()}-q3.tmp.png"
    for p in (*stale, live):
        p.write_bytes(b"half")
    rc, out, err = _run([scan, "--calib", calib, "--image", image, "--out", out_dir / "d.png"], capsys)
    assert rc == 0, err
    assert "note: removed 2 temporary file(s)" in out and not any(p.exists() for p in stale) and live.exists()
    stale[0].write_bytes(b"half")
    rc, out, err = _run(["--data-root", kitti_object_root, "--split", "report", "--out-dir", out_dir,
                         "--no-progress"], capsys)
    assert rc == 0, err
    assert "note: removed 1 temporary file(s)" in out and not stale[0].exists() and live.exists()

"""data/lidar.py: reading scans and calibrations, projection, rings, hold-out splits."""

from __future__ import annotations

import numpy as np
import pytest

from depthsense.data.lidar import (
    Calibration,
    HoldoutSpec,
    LidarError,
    LidarWarning,
    holdout_split,
    keep_rings,
    parse_holdout,
    project_file,
    project_points,
    read_calibration,
    read_velodyne,
    ring_ids,
)
from depthsense.io import read_depth, write_depth

REPORT_IDS = ("000010", "000021", "000076", "000142", "000217")


def _simple_calib(f=100.0, cx=50.0, cy=20.0) -> Calibration:
    """Camera at the LiDAR origin looking along +x (LiDAR x forward, y left, z up)."""
    P = np.array([[f, 0, cx, 0], [0, f, cy, 0], [0, 0, 1, 0]], np.float64)
    Tr = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]], np.float64)  # cam x = -y, y = -z, z = x
    return Calibration(P=P, R0=np.eye(3), Tr=Tr, source="test")


def _object_calib_text(P2, R0, Tr, extra_p=True) -> str:
    rows = []
    if extra_p:
        rows += [f"P{i}: " + " ".join(f"{v:.12e}" for v in P2.ravel()) for i in (0, 1)]
    rows += ["P2: " + " ".join(f"{v:.12e}" for v in P2.ravel()),
             "R0_rect: " + " ".join(f"{v:.12e}" for v in R0.ravel()),
             "Tr_velo_to_cam: " + " ".join(f"{v:.12e}" for v in Tr.ravel())]
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------ projection, by hand


def test_hand_made_points_land_on_expected_pixels_and_nearest_wins():
    calib = _simple_calib()
    pts = np.array([
        [10.0, 0.0, 0.0, 0],    # straight ahead: u = cx = 50, v = cy = 20, depth 10
        [5.0, -1.0, 0.5, 0],    # right and up: u = 50 + 100*1/5 = 70, v = 20 - 100*0.5/5 = 10
        [20.0, 0.0, 0.0, 0],    # behind the first one, same pixel: the nearer (10 m) wins
        [4.0, -0.004, 0.0, 0],  # u = 50.1 -> rounds to pixel 50 too, nearer still: 4 m wins
        [-3.0, 0.0, 0.0, 0],    # behind the camera: dropped
        [0.05, 0.0, 0.0, 0],    # 5 cm in front: below the 0.1 m minimum depth, dropped
        [1.0, 1.0, 0.0, 0],     # u = -50: outside the image, dropped
        [2.0, -0.0249, 0.0, 0], # u = 51.245 -> 51
    ], np.float32)
    scan = project_points(pts, calib, (40, 100))
    depth = scan.depth_map()
    assert depth.shape == (40, 100)
    expected = {(20, 50): 4.0, (10, 70): 5.0, (20, 51): 2.0}
    assert {(int(r), int(c)) for r, c in zip(*np.nonzero(depth))} == set(expected)
    for (r, c), d in expected.items():
        assert depth[r, c] == pytest.approx(d)
    assert sorted(scan.index.tolist()) == [0, 1, 2, 3, 7]  # positions in the file of the kept points


def test_projection_matrix_is_p_times_r0_times_tr():
    rng = np.random.default_rng(0)
    P = np.array([[700.0, 0, 600, 45], [0, 700, 180, -0.3], [0, 0, 1, 0.005]])
    a = 0.01
    R0 = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    Tr = np.array([[0, -1, 0, 0.02], [0, 0, -1, -0.06], [1, 0, 0, -0.3]])
    calib = Calibration(P=P, R0=R0, Tr=Tr)
    x = rng.uniform([2, -5, -1, 0], [40, 5, 2, 1], (200, 4)).astype(np.float32)
    manual = P @ np.vstack([R0 @ (Tr[:, :3] @ x[:, :3].T + Tr[:, 3:]), np.ones(200)])
    scan = project_points(x, calib, (375, 1242))
    np.testing.assert_allclose(scan.depth, manual[2, scan.index], rtol=1e-6)
    np.testing.assert_array_equal(scan.cols, np.round(manual[0, scan.index] / manual[2, scan.index]))


# ------------------------------------------------------------------ the real frames


def _frame(root, i):
    base = root / "training"
    return base / "velodyne" / f"{i}.bin", base / "calib" / f"{i}.txt", base / "image_2" / f"{i}.png"


def test_every_shared_scan_has_64_rings_and_kitti_density(kitti_object_root):
    ids = sorted(p.stem for p in (kitti_object_root / "training" / "velodyne").glob("*.bin"))
    assert len(ids) == 15
    for i in ids:
        scan_path, calib_path, _ = _frame(kitti_object_root, i)
        pts = read_velodyne(scan_path)
        rings = ring_ids(pts, source=scan_path)
        assert rings.max() + 1 == 64 and rings.min() == 0
        assert np.all(np.diff(rings) >= 0)  # stored ring after ring
        # ring 0 is the top beam: it points higher than the last ring
        elev = np.degrees(np.arctan2(pts[:, 2], np.hypot(pts[:, 0], pts[:, 1])))
        assert np.median(elev[rings == 0]) > np.median(elev[rings == 63]) + 20
        _, scan = project_file(scan_path, read_calibration(calib_path), (375, 1242))
        density = (scan.depth_map() > 0).mean()
        assert 0.03 <= density <= 0.05, (i, density)


def test_rings_survive_a_crop_to_the_camera_view_and_other_orders_are_errors(kitti_object_root):
    scan_path, _, _ = _frame(kitti_object_root, "000010")
    pts = read_velodyne(scan_path)
    full = ring_ids(pts)
    az = np.degrees(np.arctan2(pts[:, 1], pts[:, 0]))
    # Rings start and end in front of the car, so a scan cropped to the camera's view
    # (KITTI's "reduced" scans) keeps every ring boundary: the same rings, point for point.
    front = np.abs(az) < 45
    np.testing.assert_array_equal(ring_ids(pts[front]), full[front])
    # A crop without the front (here the left side) has no ring boundary left: an error,
    # not a scan of one ring.
    side = (az > 60) & (az < 120)
    with pytest.raises(LidarError, match="side.bin: found 1 laser rings where a full 64-beam scan has 64"):
        ring_ids(pts[side], source="side.bin")
    shuffled = pts[np.random.default_rng(0).permutation(len(pts))]
    with pytest.raises(LidarError, match="ring after ring"):
        ring_ids(shuffled, source="shuffled.bin")


@pytest.mark.parametrize("spec", ["beams:2", "beams:4", "points:0.5"])
def test_holdout_has_no_pixel_in_both_input_and_target(kitti_object_root, spec):
    scan_path, calib_path, _ = _frame(kitti_object_root, "000021")
    pts, scan = project_file(scan_path, read_calibration(calib_path), (375, 1242))
    rings = ring_ids(pts)
    h = parse_holdout(spec)
    for phase in range(h.k if h.kind == "beams" else 1):
        inp, tgt = holdout_split(scan, h, rings=rings, phase=phase, rng=np.random.default_rng(1))
        assert not ((inp > 0) & (tgt > 0)).any()
        assert (inp > 0).sum() > 1000 and (tgt > 0).sum() > 1000
        full = scan.depth_map()
        # every input pixel and every target pixel is a pixel of the full scan
        assert ((inp > 0) <= (full > 0)).all() and ((tgt > 0) <= (full > 0)).all()
    if h.kind == "beams":
        inp, _ = holdout_split(scan, h, rings=rings, phase=0)
        kept = rings[scan.index] % h.k == 0
        np.testing.assert_array_equal(inp, scan.depth_map(kept))
    else:  # seeded: the same generator seed gives the same split
        a = holdout_split(scan, h, rng=np.random.default_rng(7))
        b = holdout_split(scan, h, rng=np.random.default_rng(7))
        np.testing.assert_array_equal(a[0], b[0])
        assert 0.4 < (a[0] > 0).sum() / (full > 0).sum() < 0.6


def test_projected_png_round_trips_through_io(kitti_object_root, tmp_path):
    scan_path, calib_path, _ = _frame(kitti_object_root, "000076")
    _, scan = project_file(scan_path, read_calibration(calib_path), (374, 1238))
    depth = scan.depth_map()
    write_depth(tmp_path / "d.png", depth)
    back = read_depth(tmp_path / "d.png")
    assert back.shape == depth.shape
    np.testing.assert_array_equal(back > 0, depth > 0)
    assert np.abs(back - depth).max() <= 0.5 / 256 + 1e-6  # uint16 quantisation only


def test_raw_calibration_gives_the_object_projection(kitti_object_root, tmp_path):
    scan_path, calib_path, _ = _frame(kitti_object_root, "000003")
    obj = read_calibration(calib_path)
    fmt = lambda m: " ".join(f"{v:.12e}" for v in np.asarray(m).ravel())  # noqa: E731
    (tmp_path / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\ncorner_dist: 9.950000e-02\n"
        f"R_rect_00: {fmt(obj.R0)}\nP_rect_00: {fmt(obj.P)}\nP_rect_02: {fmt(obj.P)}\n"
    )
    (tmp_path / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 15-Mar-2012 11:37:16\nR: {fmt(obj.Tr[:, :3])}\nT: {fmt(obj.Tr[:, 3])}\n"
        "delta_f: 0 0\ndelta_c: 0 0\n"
    )
    for raw in (read_calibration(tmp_path / "calib_cam_to_cam.txt"), read_calibration(tmp_path)):
        np.testing.assert_allclose(raw.velo_to_image, obj.velo_to_image, rtol=1e-12)
        a = project_file(scan_path, obj, (375, 1242))[1].depth_map()
        b = project_file(scan_path, raw, (375, 1242))[1].depth_map()
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ bad input


def test_bad_scans(tmp_path):
    bad = tmp_path / "odd.bin"
    bad.write_bytes(b"\0" * 18)
    with pytest.raises(LidarError, match=r"odd.bin: 18 bytes is not a multiple of 16"):
        read_velodyne(bad)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(LidarError, match=r"empty.bin: empty scan"):
        read_velodyne(empty)
    pts = np.zeros((4, 4), np.float32)
    pts[2, 1] = np.nan
    pts[3, 0] = np.inf
    nan = tmp_path / "nan.bin"
    pts.tofile(nan)
    with pytest.raises(LidarError, match=r"nan.bin: 2 of 4 points have NaN/Inf coordinates"):
        read_velodyne(nan)
    with pytest.raises(LidarError, match="not found"):
        read_velodyne(tmp_path / "missing.bin")
    with pytest.raises(LidarError, match="is a folder"):
        read_velodyne(tmp_path)


def _resaved(pts: np.ndarray, kind: str) -> bytes:
    """The real scan written the ways a user might get it wrong."""
    if kind == "float64":
        return pts.astype("<f8").tobytes()
    if kind == "big-endian":
        return pts.astype(">f4").tobytes()
    if kind == "xyz":
        return pts[: len(pts) // 4 * 4, :3].tobytes()
    if kind == "millimetres":
        return (pts * np.array([1000, 1000, 1000, 1], np.float32)).tobytes()
    if kind == "float16":
        return pts.astype("<f2").tobytes()
    q = pts.copy()
    if kind == "one far point":
        q[7, 0] = 600.0
    elif kind == "nan reflectance":
        q[3, 3] = np.nan
    elif kind == "reflectance -1000..1000":
        q[:, 3] = q[:, 3] * 2000 - 1000
    return q.tobytes()


@pytest.mark.parametrize("kind,message", [
    ("float64", "lie beyond 500 m (up to 3.69e+19 m), farther than any LiDAR measures. It looks like float64: "
                "re-save it as N x 4 little-endian float32"),
    ("big-endian", "have NaN/Inf coordinates (first at point 70). It looks like big-endian float32"),
    ("xyz", "outside 0..255 (KITTI: 0..1), so it is not reflectance. It looks like N x 3 float32 (no reflectance"),
    ("millimetres", "115875 of 115875 points lie beyond 500 m (up to 7.84e+04 m), farther than any LiDAR measures. "
                    "Its x, y, z look like millimetres: divide them by 1000"),
    ("float16", "is not a multiple of 16; a KITTI Velodyne scan is N x 4 float32 (x, y, z, reflectance). It looks "
                "like N x 4 2-byte values (float16/int16)"),
    ("one far point", "1 of 115875 points lie beyond 500 m (up to 600 m)"),
    ("nan reflectance", "1 of 115875 points have a NaN/Inf reflectance (first at point 3)"),
    ("reflectance -1000..1000", "reflectance column spans -1e+03..980, outside 0..255"),
])
def test_implausible_scans_are_errors_naming_the_likely_format(kitti_object_root, tmp_path, kind, message):
    scan_path, calib_path, _ = _frame(kitti_object_root, "000010")
    bad = tmp_path / "scan.bin"
    bad.write_bytes(_resaved(read_velodyne(scan_path), kind))
    with pytest.raises(LidarError) as err:
        project_file(bad, read_calibration(calib_path), (375, 1242))
    assert str(err.value).startswith(f"{bad}: ") and message in str(err.value), str(err.value)


def test_a_scan_with_almost_no_point_in_the_image_warns(kitti_object_root, tmp_path):
    scan_path, calib_path, _ = _frame(kitti_object_root, "000010")
    pts = read_velodyne(scan_path)
    pts[:, 0] = -np.abs(pts[:, 0])  # everything behind the car ...
    pts[:5, :3] = [20.0, 0.0, 0.0]  # ... but five points
    bad = tmp_path / "behind.bin"
    pts.tofile(bad)
    with pytest.warns(LidarWarning, match=r"behind.bin: only 5 of its 115875 points \(0.00%\) land in the 1242x375 "
                                          r"image \(a full KITTI scan puts 14-18% there\)"):
        project_file(bad, read_calibration(calib_path), (375, 1242))


def test_every_shared_scan_is_plausible(kitti_object_root, recwarn):
    for scan in sorted((kitti_object_root / "training" / "velodyne").glob("*.bin")):
        calib = read_calibration(kitti_object_root / "training" / "calib" / f"{scan.stem}.txt")
        project_file(scan, calib, (375, 1242))
    assert not [w for w in recwarn if issubclass(w.category, LidarWarning)]


def test_a_scan_with_no_point_in_the_image_is_an_error(tmp_path):
    behind = tmp_path / "behind.bin"
    np.array([[-5.0, 0, 0, 0], [-8.0, 1, 0, 0]], np.float32).tofile(behind)
    with pytest.raises(LidarError, match=r"behind.bin: none of its 2 points lands in the 100x40 image"):
        project_file(behind, _simple_calib(), (40, 100))


def test_bad_calibrations(tmp_path):
    P2, R0, Tr = np.eye(3, 4), np.eye(3), np.eye(3, 4)
    good = tmp_path / "good.txt"
    good.write_text(_object_calib_text(P2, R0, Tr))
    assert read_calibration(good).P.shape == (3, 4)
    no_p2 = tmp_path / "no_p2.txt"
    no_p2.write_text(_object_calib_text(P2, R0, Tr, extra_p=False).replace("P2:", "P9:"))
    with pytest.raises(LidarError, match=r"no_p2.txt: calibration has no 'P2' line"):
        read_calibration(no_p2)
    no_tr = tmp_path / "no_tr.txt"
    no_tr.write_text(_object_calib_text(P2, R0, Tr).replace("Tr_velo_to_cam:", "Tr_imu_to_velo:"))
    with pytest.raises(LidarError, match=r"no 'Tr_velo_to_cam' line"):
        read_calibration(no_tr)
    short = tmp_path / "short.txt"
    short.write_text(_object_calib_text(P2, R0, Tr).replace("R0_rect: 1.000000000000e+00 ", "R0_rect: "))
    with pytest.raises(LidarError, match=r"short.txt: 'R0_rect' has 8 values; a 3x3 matrix needs 9"):
        read_calibration(short)
    text = tmp_path / "text.txt"
    text.write_text(_object_calib_text(P2, R0, Tr).replace("P2: 1.0", "P2: abc"))
    with pytest.raises(LidarError, match="'P2' holds non-numeric values"):
        read_calibration(text)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "calib_cam_to_cam.txt").write_text(
        "R_rect_00: " + " ".join(["1"] * 9) + "\nP_rect_02: " + " ".join(["1"] * 12) + "\n")
    with pytest.raises(LidarError, match="calib_velo_to_cam.txt: not found"):
        read_calibration(tmp_path / "raw")
    (tmp_path / "raw" / "calib_velo_to_cam.txt").write_text("R: " + " ".join(["1"] * 9) + "\n")
    with pytest.raises(LidarError, match=r"no 'T' line"):
        read_calibration(tmp_path / "raw")
    with pytest.raises(LidarError, match="holds no calib_cam_to_cam.txt"):
        read_calibration(tmp_path)


@pytest.mark.parametrize("edit,message", [
    (lambda t: t + t.splitlines()[2].replace("1.0", "2.0", 1) + "\n", "key 'P2' appears on lines 3 and 6 (different values)"),
    (lambda t: t + t.splitlines()[3] + "\n", "key 'R0_rect' appears on lines 4 and 6 (the same values)"),
    (lambda t: t + t.splitlines()[2].replace("P2:", "P2 (old):") + "\n", "line 6: key 'P2 (old)' is not one word"),
    (lambda t: t.replace("P2:", "P2 :") + "P2: " + " ".join(["1"] * 12) + "\n", "key 'P2' appears on lines 3 and 6"),
])
def test_object_calibration_with_an_ambiguous_key_is_an_error(tmp_path, edit, message):
    path = tmp_path / "calib.txt"
    path.write_text(edit(_object_calib_text(np.eye(3, 4), np.eye(3), np.eye(3, 4))))
    with pytest.raises(LidarError, match=r"calib.txt: ") as err:
        read_calibration(path)
    assert message in str(err.value)


@pytest.mark.parametrize("which,extra,message", [
    ("calib_cam_to_cam.txt", "P_rect_02: " + " ".join(["2"] * 12), "key 'P_rect_02' appears on lines 2 and 4"),
    ("calib_cam_to_cam.txt", "R_rect_00: " + " ".join(["1"] * 9), "key 'R_rect_00' appears on lines 1 and 4 (the same"),
    ("calib_velo_to_cam.txt", "T: 0 0 0", "key 'T' appears on lines 2 and 3 (different values)"),
])
def test_raw_calibration_with_an_ambiguous_key_is_an_error(tmp_path, which, extra, message):
    (tmp_path / "calib_cam_to_cam.txt").write_text(
        "R_rect_00: " + " ".join(["1"] * 9) + "\nP_rect_02: " + " ".join(["1"] * 12) + "\ncalib_time: 09-Jan-2012 13:57:47\n")
    (tmp_path / "calib_velo_to_cam.txt").write_text("R: " + " ".join(["1"] * 9) + "\nT: 1 2 3\n")
    read_calibration(tmp_path)  # fine as it is
    with open(tmp_path / which, "a") as f:
        f.write(extra + "\n")
    for path in (tmp_path, tmp_path / "calib_cam_to_cam.txt"):
        with pytest.raises(LidarError, match=which) as err:
            read_calibration(path)
        assert message in str(err.value)


@pytest.mark.parametrize("spec,expected", [
    ("beams:2", HoldoutSpec("beams", k=2)), (" BEAMS:4 ", HoldoutSpec("beams", k=4)),
    ("points:0.25", HoldoutSpec("points", fraction=0.25)),
])
def test_holdout_specs_parse(spec, expected):
    assert parse_holdout(spec) == expected
    assert parse_holdout(str(expected)) == expected


@pytest.mark.parametrize("spec", ["beams", "beams:1", "beams:3", "beams:x", "points:0", "points:1.5", "rings:2", ""])
def test_bad_holdout_specs(spec):
    with pytest.raises(ValueError, match="beams:K") as err:
        parse_holdout(spec)
    # one account of K: the accepted values are listed once, and nothing contradicts them
    form = "use beams:K with K = 2, 4, 8, 16, 32 or 64 (e.g. beams:2) or points:F with 0 < F < 1 (e.g. points:0.5)"
    assert str(err.value).endswith(form) and str(err.value).count("K = 2") == 1 and "K >= 2" not in str(err.value)


def test_keep_rings_every_nth():
    rings = np.arange(64).repeat(3)
    assert np.unique(rings[keep_rings(rings, 16)]).tolist() == list(range(0, 64, 4))
    assert keep_rings(rings, 64).all()
    with pytest.raises(ValueError, match="not a divisor of 64"):
        keep_rings(rings, 12)

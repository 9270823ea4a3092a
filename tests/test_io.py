import os
import sys
import struct
import types
import zlib

import cv2
import numpy as np
import pytest
import torch

from depthsense import io
from depthsense import atomic
from depthsense.errors import DepthFileError, ShapeError


def _depth(rng, h=17, w=23):
    d = rng.uniform(0.5, 90.0, size=(h, w)).astype(np.float32)
    d[rng.random((h, w)) < 0.3] = 0.0
    return d


def test_depth_png_round_trip_within_quantisation(tmp_path):
    rng = np.random.default_rng(1)
    d = _depth(rng)
    io.write_depth(tmp_path / "d.png", d)
    back = io.read_depth(tmp_path / "d.png")
    assert back.dtype == np.float32 and back.shape == d.shape
    assert np.all(np.abs(back - d) <= 0.5 / 256 + 1e-6)
    np.testing.assert_array_equal(back == 0, d == 0)


def test_depth_png_is_kitti_uint16(tmp_path):
    io.write_depth(tmp_path / "d.png", np.array([[0.0, 1.0], [2.5, 255.0]], np.float32))
    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_ANYDEPTH)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, [[0, 256], [640, 65280]])


def test_write_depth_accepts_tensor_and_leading_ones(tmp_path):
    t = torch.full((1, 1, 3, 4), 2.0)
    io.write_depth(tmp_path / "t.png", t)
    np.testing.assert_array_equal(io.read_depth(tmp_path / "t.png"), np.full((3, 4), 2.0, np.float32))


def test_write_depth_clips_far_values_with_warning(tmp_path):
    with pytest.warns(UserWarning, match="clipped"):
        io.write_depth(tmp_path / "far.png", np.array([[300.0, 1.0]], np.float32))
    back = io.read_depth(tmp_path / "far.png")
    assert back[0, 0] == pytest.approx(65535 / 256)


@pytest.mark.parametrize(
    "array, needle",
    [
        (np.array([[1.0, np.nan]], np.float32), "NaN"),
        (np.array([[1.0, np.inf]], np.float32), "NaN/Inf"),
        (np.array([[1.0, -2.0]], np.float32), "negative"),
        (np.array([[1, 2]], np.uint16), "float depth in metres"),
        (np.zeros((2, 3, 4), np.float32), "shape"),
    ],
)
def test_write_depth_rejects_bad_arrays(tmp_path, array, needle):
    target = tmp_path / "bad.png"
    with pytest.raises(DepthFileError, match=needle) as exc:
        io.write_depth(target, array)
    assert "bad.png" in str(exc.value)
    assert not target.exists()


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "d.png"
    io.write_depth(target, np.ones((4, 4), np.float32))
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with io.atomic_output(target) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["d.png"]


def test_write_into_missing_directory_names_it(tmp_path):
    with pytest.raises(DepthFileError, match="does not exist"):
        io.write_depth(tmp_path / "nope" / "d.png", np.ones((2, 2), np.float32))


def _bad_depth_file(tmp_path, kind):
    p = tmp_path / f"{kind}.png"
    if kind == "missing":
        return p
    if kind == "text":
        p.write_text("this is not an image")
    elif kind == "truncated":
        io.write_depth(p, np.ones((20, 20), np.float32))
        p.write_bytes(p.read_bytes()[:-30])
    elif kind == "eight_bit":
        cv2.imwrite(str(p), np.full((4, 4), 7, np.uint8))
    elif kind == "rgb16":
        cv2.imwrite(str(p), np.full((4, 4, 3), 700, np.uint16))
    elif kind == "rgb8":
        cv2.imwrite(str(p), np.full((4, 4, 3), 7, np.uint8))
    elif kind == "jpeg":
        p = tmp_path / "photo.jpg"
        cv2.imwrite(str(p), np.full((4, 4, 3), 7, np.uint8))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "corrupt_idat":
        io.write_depth(p, np.ones((20, 20), np.float32))
        data = bytearray(p.read_bytes())
        # Keep the header and IEND but scramble the compressed pixel data.
        start = data.index(b"IDAT") + 4
        for i in range(start, start + 20):
            data[i] ^= 0xFF
        p.write_bytes(bytes(data))
    return p


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("missing", "not found"),
        ("text", "not a PNG"),
        ("truncated", "truncated"),
        ("eight_bit", "8-bit"),
        ("rgb16", "single-channel"),
        ("rgb8", "8-bit"),
        ("jpeg", "not a PNG"),
        ("empty", "empty"),
        ("corrupt_idat", "cannot be decoded"),
    ],
)
def test_read_depth_rejects_bad_files_naming_them(tmp_path, kind, needle):
    p = _bad_depth_file(tmp_path, kind)
    with pytest.raises(DepthFileError, match=needle) as exc:
        io.read_depth(p)
    assert p.name in str(exc.value)
    assert "\n" not in str(exc.value)


def test_read_depth_rejects_directory(tmp_path):
    with pytest.raises(DepthFileError, match="directory"):
        io.read_depth(tmp_path)


def test_rgb_round_trip_png_and_channel_order(tmp_path):
    rgb = np.zeros((5, 6, 3), np.float32)
    rgb[..., 0] = 1.0  # pure red
    io.write_rgb(tmp_path / "im.png", rgb)
    back = io.read_rgb(tmp_path / "im.png")
    assert back.dtype == np.float32 and back.shape == (5, 6, 3)
    np.testing.assert_allclose(back, rgb)
    # OpenCV stores BGR: the red channel lands in the last plane on disk.
    assert cv2.imread(str(tmp_path / "im.png"))[0, 0].tolist() == [0, 0, 255]


def test_read_rgb_grey_and_alpha(tmp_path):
    cv2.imwrite(str(tmp_path / "g.png"), np.full((3, 3), 51, np.uint8))
    g = io.read_rgb(tmp_path / "g.png")
    assert g.shape == (3, 3, 3) and np.allclose(g, 0.2)
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 1] = 255
    bgra[..., 3] = 10
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert np.allclose(io.read_rgb(tmp_path / "a.png")[..., 1], 1.0)


def test_read_rgb_rejects_depth_map_and_truncated_jpeg(tmp_path):
    io.write_depth(tmp_path / "depth.png", np.ones((4, 4), np.float32))
    with pytest.raises(DepthFileError, match="looks like a depth map"):
        io.read_rgb(tmp_path / "depth.png")
    io.write_rgb(tmp_path / "im.jpg", np.random.default_rng(0).random((32, 32, 3)))
    data = (tmp_path / "im.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DepthFileError, match="cut.jpg.*truncated"):
        io.read_rgb(tmp_path / "cut.jpg")


def test_write_rgb_shape_error(tmp_path):
    with pytest.raises(ShapeError, match=r"\(H,W,3\)"):
        io.write_rgb(tmp_path / "x.png", np.zeros((4, 4)))


def test_a_png_side_beyond_libpng_limit_is_a_one_line_error(tmp_path, capfd):
    with pytest.raises(DepthFileError, match=r"tall.png: a 1x1000001 image; a PNG side may be at most 1,000,000 pixels"):
        io.write_depth(tmp_path / "tall.png", np.ones((io.MAX_SIDE + 1, 1), np.float32))
    assert capfd.readouterr().err == ""  # libpng's own lines would precede ours
    assert not list(tmp_path.iterdir())


def test_read_intrinsics_formats(tmp_path):
    (tmp_path / "k9.txt").write_text("721.5 0 609.5 0 721.5 172.8 0 0 1\n")
    k = io.read_intrinsics(tmp_path / "k9.txt")
    assert k.shape == (3, 3) and k[0, 0] == 721.5 and k[1, 2] == 172.8
    (tmp_path / "calib.txt").write_text(
        "calib_time: 09-Jan-2012\nP_rect_02: 7.2e+02 0 6.0e+02 4.5e+01 0 7.2e+02 1.7e+02 0 0 0 1 0\n"
    )
    k = io.read_intrinsics(tmp_path / "calib.txt", key="P_rect_02")
    assert k[0, 2] == 600.0 and k[2, 2] == 1.0
    (tmp_path / "bad.txt").write_text("1 2 3")
    with pytest.raises(DepthFileError, match="bad.txt.*found 3 numbers"):
        io.read_intrinsics(tmp_path / "bad.txt")
    with pytest.raises(DepthFileError, match="no line 'P_rect_03"):
        io.read_intrinsics(tmp_path / "calib.txt", key="P_rect_03")


_CALIB = "calib_time: 09-Jan-2012 13:57:47\nP_rect_02: 7.2e+02 0 6.0e+02 4.5e+01 0 7.2e+02 1.7e+02 0 0 0 1 0\n"


@pytest.mark.parametrize("extra,message", [
    ("P_rect_02: 7.0e+02 0 6.0e+02 4.5e+01 0 7.0e+02 1.7e+02 0 0 0 1 0\n",
     "key 'P_rect_02' appears on lines 2 and 3 (different values)"),
    ("P_rect_02: 7.2e+02 0 6.0e+02 4.5e+01 0 7.2e+02 1.7e+02 0 0 0 1 0\n",
     "key 'P_rect_02' appears on lines 2 and 3 (the same values)"),
    ("  P_rect_02 : 7.0e+02 0 6.0e+02 4.5e+01 0 7.0e+02 1.7e+02 0 0 0 1 0\n", "appears on lines 2 and 3"),
    ("p_rect_02: 7.0e+02 0 6.0e+02 4.5e+01 0 7.0e+02 1.7e+02 0 0 0 1 0\n", "'P_rect_02' / 'p_rect_02' appears"),
    ("P_rect_02 old: 7.0e+02 0 6.0e+02 4.5e+01 0 7.0e+02 1.7e+02 0 0 0 1 0\n", "line 3: key 'P_rect_02 old' is not one word"),
    ("P_rect_02 7.0e+02 0 6.0e+02 4.5e+01 0 7.0e+02 1.7e+02 0 0 0 1 0\n", "line 3 ('P_rect_02 7.0e+02"),
])
def test_read_intrinsics_refuses_ambiguous_calibration_keys(tmp_path, extra, message):
    path = tmp_path / "calib.txt"
    path.write_text(_CALIB + extra)
    with pytest.raises(DepthFileError, match=r"calib.txt: ") as err:
        io.read_intrinsics(path, key="P_rect_02")
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DepthFileError, match="calib.txt"):  # the same for any key of that file
        io.parse_key_values(path.read_text(), path)


def test_parse_key_values_keeps_values_with_colons_and_skips_comments():
    text = "# made by hand\n\ncalib_time: 09-Jan-2012 13:57:47\r\nT: 1 2 3\n"
    assert io.parse_key_values(text) == {"calib_time": " 09-Jan-2012 13:57:47", "T": " 1 2 3"}


def test_read_h5_round_trip_and_errors(tmp_path):
    import h5py

    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["rgb"] = np.zeros((3, 4, 5), np.uint8)
        f["depth"] = np.ones((4, 5), np.float32)
    out = io.read_h5(tmp_path / "s.h5", ["rgb", "depth"])
    assert out["rgb"].shape == (3, 4, 5) and out["depth"].dtype == np.float32
    with pytest.raises(DepthFileError, match="lacks \\['normals'\\]"):
        io.read_h5(tmp_path / "s.h5", ["normals"])
    (tmp_path / "junk.h5").write_bytes(b"\x00" * 64)
    with pytest.raises(DepthFileError, match="junk.h5: not a readable HDF5"):
        io.read_h5(tmp_path / "junk.h5", ["rgb"])


def test_png_info_parses_header():
    ok, buf = cv2.imencode(".png", np.zeros((3, 5), np.uint16))
    info = io.png_info(buf.tobytes())
    assert (info["width"], info["height"], info["bit_depth"], info["colour_type"]) == (5, 3, 16, 0)
    bogus = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDX" + b"\x00" * 17 + struct.pack(">I", zlib.crc32(b""))
    with pytest.raises(DepthFileError, match="damaged"):
        io.png_info(bogus + b"IEND")


def test_runtime_allocator_tuning_is_idempotent_and_can_be_turned_off(monkeypatch):
    import depthsense.runtime as rt

    monkeypatch.setattr(rt, "_applied", False)
    monkeypatch.setenv("DEPTHSENSE_MALLOC_TUNING", "0")
    assert rt.tune_cpu_allocator() is False
    monkeypatch.delenv("DEPTHSENSE_MALLOC_TUNING")
    assert set(rt.MALLOC_ENV) == {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"}
    # A stand-in libc records what is asked of glibc's mallopt (M_TRIM_THRESHOLD -1,
    # M_TOP_PAD -2, M_MMAP_THRESHOLD -3): the values of MALLOC_ENV, once.
    calls, result = [], [1]

    def mallopt(param, value):
        calls.append((param, value))
        return result[0]

    libc = types.SimpleNamespace(mallopt=mallopt)
    monkeypatch.setattr(rt.sys, "platform", "linux")
    monkeypatch.setattr(rt.ctypes, "CDLL", lambda name: libc)
    assert rt.tune_cpu_allocator() is True
    env = rt.MALLOC_ENV
    assert sorted(calls) == [(-3, int(env["MALLOC_MMAP_THRESHOLD_"])), (-2, int(env["MALLOC_TOP_PAD_"])),
                             (-1, int(env["MALLOC_TRIM_THRESHOLD_"]))]
    assert rt.tune_cpu_allocator() is True and len(calls) == 3  # idempotent: applied once
    # mallopt refusing a setting, a libc without mallopt, no glibc: not in effect.
    monkeypatch.setattr(rt, "_applied", False)
    result[0] = 0
    assert rt.tune_cpu_allocator() is False
    assert rt.tune_cpu_allocator() is False and rt._applied is False  # tried again, not cached as done

    def no_glibc(name):
        raise OSError("libc.so.6: cannot open shared object file")

    monkeypatch.setattr(rt.ctypes, "CDLL", no_glibc)
    assert rt.tune_cpu_allocator() is False
    monkeypatch.setattr(rt.sys, "platform", "darwin")
    monkeypatch.setattr(rt.ctypes, "CDLL", lambda name: libc)
    result[0] = 1
    calls.clear()
    assert rt.tune_cpu_allocator() is False and calls == []


# --------------------------------------------------------------------------- issue 15: full disk, libpng


def test_a_set_of_files_is_replaced_together_or_not_at_all(tmp_path, monkeypatch):
    import errno

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    io.atomic_write_files({a: b"old a", b: b"old b"})
    real, calls = atomic._write_file, []

    def fill_up(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(atomic, "_write_file", fill_up)
    with pytest.raises(DepthFileError, match=r"b\.png: cannot write \(No space left on device\); free disk space"):
        io.atomic_write_files({a: b"new a", b: b"new b"})
    assert a.read_bytes() == b"old a" and b.read_bytes() == b"old b"  # not a new a next to an old b
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
    calls[:] = ["one file written before"]  # the next write is the second: it fails
    with pytest.raises(DepthFileError, match="No space left"):  # every writer goes through the same path
        io.write_depth(tmp_path / "d.png", np.ones((4, 4), np.float32))
    assert not (tmp_path / "d.png").exists()


def test_encoders_match_the_writers(tmp_path):
    d = _depth(np.random.default_rng(1))
    io.write_depth(tmp_path / "d.png", d)
    assert (tmp_path / "d.png").read_bytes() == io.encode_depth(tmp_path / "d.png", d)
    rgb = np.random.default_rng(2).random((5, 7, 3)).astype(np.float32)
    io.write_rgb(tmp_path / "c.png", rgb)
    assert (tmp_path / "c.png").read_bytes() == io.encode_rgb(tmp_path / "c.png", rgb)


def test_decoder_messages_of_libpng_are_silenced(tmp_path, capfd):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x07" + bytes(2 * 8) for _ in range(8))  # an invalid filter type in every row
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 16, 0, 0, 0, 0))
                                       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    with pytest.raises(DepthFileError, match="cannot be decoded"):
        io.read_depth(tmp_path / "bad.png")
    assert capfd.readouterr().err == ""  # was "libpng error: bad adaptive filter value"
    print("stderr works again", file=sys.stderr)
    assert "works again" in capfd.readouterr().err


def test_mask_png_round_trip_and_refuses_depth(tmp_path):
    m = np.zeros((5, 7), np.float32)
    m[1:3, 2:6] = 1.0
    io.write_mask(tmp_path / "m.png", torch.from_numpy(m)[None])
    info = io.png_info((tmp_path / "m.png").read_bytes())
    assert (info["bit_depth"], info["colour_type"]) == (8, 0)
    back = io.read_mask(tmp_path / "m.png")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, m)
    io.write_depth(tmp_path / "d.png", m * 3.0)
    with pytest.raises(DepthFileError, match="16-bit .* 8-bit single-channel"):
        io.read_mask(tmp_path / "d.png")


# --------------------------------------------------------------------------- depth units


@pytest.mark.parametrize("unit, scale", [("kitti", 256.0), ("mm", 1000.0), ("tum", 5000.0), ("4000", 4000.0)])
def test_depth_units_round_trip(tmp_path, unit, scale):
    depth = np.array([[0.0, 0.5, 1.234], [2.0, 9.5, 0.0]], np.float32)
    path = tmp_path / f"d_{unit}.png"
    io.write_depth(path, depth, unit)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw[0, 2] == round(1.234 * scale)
    np.testing.assert_allclose(io.read_depth(path, unit), depth, atol=0.5 / scale)
    assert io.parse_depth_unit(unit).scale == scale


def test_depth_npy_is_metres_and_validated(tmp_path):
    depth = np.array([[0.0, 1.5], [np.nan, 3.25]], np.float64)
    np.save(tmp_path / "d.npy", depth)
    np.testing.assert_array_equal(io.read_depth(tmp_path / "d.npy", "mm"), [[0.0, 1.5], [0.0, 3.25]])  # unit ignored
    io.write_depth(tmp_path / "o.npy", np.array([[1.0, 2.0]], np.float32))
    assert np.load(tmp_path / "o.npy").dtype == np.float32
    np.save(tmp_path / "mm.npy", np.array([[1500.0, 2300.0]]))
    with pytest.raises(DepthFileError, match=r"mm.npy: depth values reach 2300 m.*divide millimetres"):
        io.read_depth(tmp_path / "mm.npy")
    np.save(tmp_path / "neg.npy", np.array([[-1.0, 2.0]]))
    with pytest.raises(DepthFileError, match="neg.npy: 1 negative"):
        io.read_depth(tmp_path / "neg.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    with pytest.raises(DepthFileError, match=r"cube.npy: .*shape \(2, 3, 4\)"):
        io.read_depth(tmp_path / "cube.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DepthFileError, match="obj.npy"):  # never unpickled
        io.read_depth(tmp_path / "obj.npy")


def test_a_unit_that_cannot_be_depth_is_one_line_naming_the_file(tmp_path):
    io.write_depth(tmp_path / "mm.png", np.full((4, 4), 9.0, np.float32), "mm")  # 9000 stored
    with pytest.raises(DepthFileError, match=r"mm.png: depth values reach 9000 m.*--depth-unit") as err:
        io.read_depth(tmp_path / "mm.png", 1.0)  # declared as whole metres
    assert "\n" not in str(err.value)
    for bad in ("inches", "0", "-5", "nan"):
        with pytest.raises(ValueError, match="depth"):
            io.parse_depth_unit(bad)


def test_remove_stale_temps_takes_only_a_dead_or_old_writers_files(tmp_path):
    import subprocess
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = [tmp_path / f".last.pt.{dead.pid}-a1.tmp.pt",  # its writer was killed
            tmp_path / f".m.onnx.{dead.pid}-b2.tmp.onnx.data"]  # what an exporter put next to its temp file
    old = tmp_path / f".last.pt.{os.getpid()}-c3.tmp.pt"  # a live pid, but an hour old
    kept = [tmp_path / f".last.pt.{os.getpid()}-d4.tmp.pt",  # a write in progress
            tmp_path / ".last.pt.e5f6.tmp.pt",  # the older name form, fresh: it may be in progress
            tmp_path / f".best.pt.{dead.pid}-g7.tmp.pt",  # not a name asked for
            tmp_path / "last.pt"]
    for p in (*gone, old, *kept):
        p.write_bytes(b"x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    removed = io.remove_stale_temps(tmp_path, ["last.pt", "m.onnx"])
    assert sorted(removed) == sorted([*gone, old])
    assert all(p.exists() for p in kept)
    # min_age 0 (the caller holds the folder's lock, nobody else writes there): every matching file goes
    assert sorted(io.remove_stale_temps(tmp_path, ["last.pt"], min_age=0.0)) == sorted(kept[:2])
    assert (tmp_path / "last.pt").exists()


def test_temp_names_carry_the_writer_pid(tmp_path, monkeypatch):
    seen = []
    real = atomic._write_file
    monkeypatch.setattr(atomic, "_write_file", lambda path, data: (seen.append(path.name), real(path, data)))
    io.atomic_write_bytes(tmp_path / "a.json", b"{}")
    assert seen[0].startswith(f".a.json.{os.getpid()}-") and seen[0].endswith(".tmp.json")

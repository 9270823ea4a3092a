"""Shared test set-up: deterministic, quiet, small."""

import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


SHARED = Path(os.environ.get("DEPTHSENSE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
"""The workplace's shared read-only data (``../shared`` next to the checkout, or $DEPTHSENSE_SHARED)."""


@pytest.fixture(scope="session")
def kitti_object_root() -> Path:
    """``../shared/kitti_object``: 15 real KITTI-object frames (see its README).

    Skips when the folder is absent (a checkout outside the workplace); ``.ci/run`` makes
    CI fail instead, so the real-data tests can never be skipped silently there.
    """
    root = SHARED / "kitti_object"
    if not (root / "training" / "velodyne").is_dir():
        pytest.skip(f"real KITTI frames not found at {root} (set DEPTHSENSE_SHARED to the shared folder)")
    return root


@pytest.fixture(scope="session")
def indoor_rgbd_root() -> Path:
    """``../shared/indoor_rgbd``: 15 real RGB-D frames of 6 sources + 10 synthetic (see its README).

    Skips when absent, like :func:`kitti_object_root`; ``.ci/run`` makes CI fail instead.
    """
    root = SHARED / "indoor_rgbd"
    if not (root / "slambook_nyu" / "gt").is_dir():
        pytest.skip(f"indoor RGB-D frames not found at {root} (set DEPTHSENSE_SHARED to the shared folder)")
    return root


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    """A private ``$DEPTHSENSE_CACHE`` for the onnxruntime tests: the shipped model is exported
    into it once (30-120 s on 2 busy cores) and reused by every test of the session."""
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEPTHSENSE_CACHE", str(root))
        yield root


@pytest.fixture
def disk_full_after(monkeypatch):
    """``disk_full_after(n)``: depthsense.atomic's one writer (``_write_file``, every atomic
    write) writes ``n`` files, then fails with ENOSPC as a full disk does; returns the list
    of paths it was asked to write (temporary names, in order)."""
    import errno

    import depthsense.atomic as dio

    real = dio._write_file

    def install(n: int) -> list:
        calls: list = []

        def fill_up(path, data):
            calls.append(path)
            if len(calls) > n:
                raise OSError(errno.ENOSPC, "No space left on device")
            real(path, data)

        monkeypatch.setattr(dio, "_write_file", fill_up)
        return calls

    return install


def pytest_collection_modifyitems(config, items):
    """``DEPTHSENSE_TEST_SHUFFLE=<seed>``: run the tests in a seeded random order, to find
    tests that pass only after (or before) others. Off by default; the seed in the header
    reproduces an order."""
    seed = os.environ.get("DEPTHSENSE_TEST_SHUFFLE")
    if seed:
        import random

        random.Random(int(seed)).shuffle(items)


def pytest_report_header(config):
    seed = os.environ.get("DEPTHSENSE_TEST_SHUFFLE")
    return f"test order shuffled with seed {seed} (DEPTHSENSE_TEST_SHUFFLE)" if seed else None

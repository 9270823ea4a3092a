"""depthsense.checkpoint: what a file that is not a checkpoint is reported as; safe, atomic saving."""

from __future__ import annotations

import errno
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from depthsense.checkpoint import load_checkpoint, save_checkpoint
from depthsense.errors import CheckpointError, DepthFileError

_PAYLOAD = {"format": 1, "model": "nearest", "model_cfg": {}, "state_dict": {}, "train_cfg": {}, "step": 0,
            "metrics": {}}


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo hacked",))


def _files(tmp_path):
    """name -> (path, text the error must contain)."""
    rng = np.random.default_rng(0)
    torch.save({"w": torch.zeros(8)}, tmp_path / "good.pt")
    good = (tmp_path / "good.pt").read_bytes()
    files = {
        "random bytes": (rng.bytes(4096), "unknown binary data, not a PyTorch checkpoint"),
        "json": (json.dumps({"model": "sparse_unet"}).encode(), "text (JSON?), not a PyTorch checkpoint"),
        "empty": (b"", "empty file"),
        "truncated": (good[: len(good) // 2], "damaged zip archive"),
        "plain pickle of data": (pickle.dumps({"format": 1, "x": [1, 2]}, protocol=4), "a plain pickle"),
        "pickle stream garbage": (b"\x80\x04" + rng.bytes(200), "damaged checkpoint"),
    }
    out = {}
    for name, (data, needle) in files.items():
        path = tmp_path / (name.replace(" ", "_") + ".pt")
        path.write_bytes(data)
        out[name] = (path, needle)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("hello.txt", "hi")
    out["foreign zip"] = (tmp_path / "other.zip", "a zip archive (hello.txt) that is not a PyTorch checkpoint")
    return out


@pytest.mark.parametrize("name", ["random bytes", "json", "empty", "truncated", "plain pickle of data",
                                  "pickle stream garbage", "foreign zip"])
def test_corrupt_or_foreign_files_are_not_called_a_security_risk(tmp_path, capfd, name):
    path, needle = _files(tmp_path)[name]
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    msg = str(exc.value)
    assert needle in msg and "could run code" not in msg and "\n" not in msg, msg
    assert msg.startswith(str(path))
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""  # no torch warning above our message


def test_pickles_that_need_code_are_refused_and_named(tmp_path, capfd):
    torch.save({**_PAYLOAD, "hook": _Evil()}, tmp_path / "evil.pt")
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"x": _Evil()}, f)
    for path in (tmp_path / "evil.pt", tmp_path / "evil.pkl"):
        with pytest.raises(CheckpointError) as exc:
            load_checkpoint(path)
        msg = str(exc.value)
        assert "refused to load" in msg and "could run code" in msg and "system" in msg, msg
    captured = capfd.readouterr()
    assert "hacked" not in captured.out and captured.err == ""


def test_a_real_checkpoint_round_trips(tmp_path):
    save_checkpoint(tmp_path / "c.pt", _PAYLOAD)
    assert load_checkpoint(tmp_path / "c.pt")["model"] == "nearest"


def test_save_on_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "c.pt", _PAYLOAD)
    before = (tmp_path / "c.pt").read_bytes()
    real = torch.save

    def full(obj, f, *args, **kwargs):
        real(obj, f, *args, **kwargs)  # torch writes through the file object...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... and the disk fills up

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(DepthFileError, match=r"c\.pt: cannot write \(No space left on device\)"):
        save_checkpoint(tmp_path / "c.pt", {**_PAYLOAD, "step": 5})
    assert (tmp_path / "c.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary file left

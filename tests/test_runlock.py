"""depthsense/runlock.py: one run per output folder, for train, pretrain and evaluate."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from depthsense.runlock import LOCK_NAME, RunFolderBusy, refuse_if_locked, run_lock

ROOT = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _stale_lock(folder: Path) -> int:
    """A lock file as a run killed with -9 leaves it: content, but no process holding it."""
    pid = _dead_pid()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": "vm", "started": "2026-01-01 00:00:00",
                                                "command": "depthsense-train --out x"}))
    return pid


def test_a_held_folder_is_refused_naming_the_holder_and_freed_after(tmp_path):
    run = tmp_path / "run"
    with run_lock(run) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
        for check in (lambda: refuse_if_locked(run), lambda: run_lock(run).__enter__()):
            with pytest.raises(RunFolderBusy, match=f"--out {run} is in use by another run, pid {os.getpid()} on "):
                check()
    assert not (run / LOCK_NAME).exists()  # a clean exit leaves no lock
    with run_lock(run):  # and the folder is free again
        pass


def test_a_stale_lock_of_a_killed_run_is_taken_over_with_a_note(tmp_path):
    run = tmp_path / "run"
    pid = _stale_lock(run)
    notes = []
    refuse_if_locked(run)  # no live holder: not refused
    with run_lock(run, log=notes.append):
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(notes) == 1 and f"a lock of pid {pid} on vm" in notes[0] and "taken over" in notes[0]


def test_a_refused_or_failed_command_leaves_no_folder_it_created(tmp_path):
    with pytest.raises(ValueError):
        with run_lock(tmp_path / "new" / "deep"):
            raise ValueError("the command failed")
    assert not (tmp_path / "new" / "deep").exists()


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=str(ROOT))


def test_two_concurrent_trainings_into_one_folder_one_is_refused(tmp_path):
    """End to end: a second depthsense-train into a folder in use is refused with one line
    naming the first one's pid; after the first is killed with -9 the folder is not stuck."""
    from depthsense.data import synthetic

    data = tmp_path / "data"
    synthetic.generate(data, layout="kitti", frames=6, seed=3, height=48, width=96)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "depthsense.tools.train_depth", "--dataset", "synthetic", "--data-root", str(data),
           "--model", "sparse_convnet", "--model-arg", "channels=4", "--loss", "l1:1.0", "--crop", "32x64",
           "--batch-size", "1", "--workers", "0", "--no-progress", "--val-samples", "1", "--out", str(out),
           "--ckpt-every", "0"]  # fmt: skip
    first = subprocess.Popen(cmd + ["--steps", "100000", "--seed", "3"], env=_env(), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and first.poll() is None:
            try:
                if json.loads((out / LOCK_NAME).read_text())["pid"] == first.pid:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        assert first.poll() is None, first.stderr.read()
        second = subprocess.run(cmd + ["--steps", "2", "--seed", "5"], env=_env(), cwd=ROOT, capture_output=True,
                                text=True)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"is in use by another run, pid {first.pid}" in lines[0], second.stderr
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert (out / LOCK_NAME).exists()  # kill -9 leaves the file...
    third = subprocess.run(cmd + ["--steps", "2", "--seed", "5"], env=_env(), cwd=ROOT, capture_output=True, text=True)
    assert third.returncode == 0, third.stderr  # ...but it does not block
    assert f"a lock of pid {first.pid}" in third.stdout and "taken over" in third.stdout
    assert not (out / LOCK_NAME).exists()


def test_evaluate_and_pretrain_refuse_a_folder_in_use(tmp_path, capsys):
    from depthsense.config import run_cli
    from depthsense.experiments import pretrain
    from depthsense.tools import evaluate as evaluate_cli

    out = tmp_path / "out"
    with run_lock(out):
        rc = evaluate_cli.cli_main(["--dataset", "synthetic", "--data-root", str(tmp_path), "--baselines", "nearest",
                                    "--out", str(out), "--no-progress"])
        assert rc == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("depthsense-evaluate: error: --out") and f"pid {os.getpid()}" in err
        assert run_cli(pretrain.main, ["--out", str(out), "--no-progress"], prog="pretrain") == 2
        err = capsys.readouterr().err.strip()
        assert "is in use by another run" in err and f"pid {os.getpid()}" in err and "\n" not in err
    assert not out.exists()  # neither wrote anything (and the lock's folder went with it)

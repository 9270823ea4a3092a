"""One run per output folder: a lock file that a killed run cannot leave stuck.

``depthsense-train``, ``python -m depthsense.pretrain`` and ``depthsense-evaluate`` hold
:data:`LOCK_NAME` in their ``--out`` while they write there. Two commands into one folder
would otherwise both "succeed" while one's checkpoints, logs or report replace the
other's.

The lock is an ``flock`` on the file, which the kernel releases when the process ends,
however it ends; the file's content (pid, host, start time, command) only names the
holder in messages. A clean exit removes the file, so a file found with content but no
``flock`` on it was left by a killed run: it is stale, taken over, and said so.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from depthsense.errors import DepthSenseError

__all__ = ["LOCK_NAME", "RunFolderBusy", "run_lock", "refuse_if_locked"]

LOCK_NAME = ".depthsense.lock"
"""The lock file in a run or report folder."""


class RunFolderBusy(DepthSenseError):
    """Another live process holds the folder's lock (one line: its pid, host, start, command)."""


def refuse_if_locked(folder: str | os.PathLike, option: str = "--out") -> None:
    """Refuse a folder another running process holds, creating nothing (a cheap early check).

    Raises:
        RunFolderBusy: naming the other run's pid, host, start time and command.
    """
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no lock file (or unreadable: run_lock decides)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise RunFolderBusy(_busy_message(folder, option, _read(fd))) from None
            return
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, option: str = "--out",
             log: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold ``folder``'s lock while the body runs; the folder is created if missing.

    On exit the lock file is removed, and the folder too when this call created it and it
    is still empty (a refused or failed command leaves no empty ``--out`` behind).

    Args:
        folder: the run or report folder.
        option: the option that named it, for messages.
        log: where the note about a stale lock taken over goes (default: stderr).
    Yields:
        The lock file's path.
    Raises:
        RunFolderBusy: another live process holds the lock (names its pid).
        OSError: the folder cannot be created or the lock file written.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = None
    try:
        fd = _acquire(path, folder, option)
        previous = _read(fd)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python",
                                       *sys.argv[1:]])[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        if previous:
            say = log or (lambda line: print(line, file=sys.stderr, flush=True))
            say(f"note: {path}: a lock of {_holder(previous)} was left by a run that no longer runs (killed?); "
                "taken over")
        yield path
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                path.unlink()  # still holding the flock: nobody can take the file in between
            os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty


def _acquire(path: Path, folder: Path, option: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise RunFolderBusy(_busy_message(folder, option, holder)) from None
            raise
        try:  # the previous holder may have removed the file between our open and flock
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _read(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
    except OSError:
        return {}
    if not data.strip():
        return {}
    try:
        record = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return {"pid": "?"}
    return record if isinstance(record, dict) else {"pid": "?"}


def _holder(record: dict) -> str:
    text = f"pid {record.get('pid', '?')}"
    if record.get("host"):
        text += f" on {record['host']}"
    if record.get("started"):
        text += f" (started {record['started']})"
    return text


def _busy_message(folder: str | os.PathLike, option: str, record: dict) -> str:
    command = f": {record['command']}" if record.get("command") else ""
    return (f"{option} {folder} is in use by another run, {_holder(record)}{command}; wait for it to finish or "
            f"choose another {option}. Nothing was written.")

"""Atomic writes: a file appears under its real name complete, or not at all.

Every writer of DepthSense goes through here: the bytes go to a hidden temporary file
in the destination folder (``.<name>.<pid>-<random>.tmp<suffix>``), which is
``os.replace``-d onto the real name, so a crash, a kill or a full disk never leaves half
a file under it. :func:`remove_stale_temps` removes the temporary files of writers that
were killed; :func:`os_error_in` finds the ``OSError`` (a full disk) behind a library's
own error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from depthsense.errors import DepthFileError

__all__ = [
    "WriteError",
    "atomic_write_bytes",
    "atomic_write_files",
    "atomic_output",
    "atomic_outputs",
    "remove_stale_temps",
    "os_error_in",
]


class WriteError(DepthFileError):
    """An output could not be written (missing folder, permissions, a full disk).

    Unlike a bad input file, retrying the next file cannot help: commands stop on it.
    """


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    Raises:
        DepthFileError: the directory is missing or the write fails (e.g. a full disk);
            ``path`` keeps its previous content.
    """
    atomic_write_files({path: data})


def atomic_write_files(files: Mapping[str | os.PathLike, bytes]) -> None:
    """Write several files so that they are replaced together or not at all.

    Every file is first written (and fsynced) to a temporary file next to its
    destination; only when all of them are complete are they ``os.replace``-d, so a
    full disk or any other write error leaves every destination as it was (no new
    depth PNG next to an old preview).

    Raises:
        WriteError: a directory is missing, or a write fails (the message names the
            file and the cause, e.g. "No space left on device").
    """
    with atomic_outputs(list(files)) as tmps:
        for tmp, (path, data) in zip(tmps, files.items()):
            try:
                _write_file(tmp, data)
            except OSError as exc:
                raise WriteError(_write_error(exc, Path(path))) from None


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``.

    For writers that need a file name (``torch.save``, ``savefig``). On an exception
    the temporary file is removed and ``path`` is left untouched.

    Raises:
        DepthFileError: the directory is missing or not writable, or writing fails with
            an ``OSError`` (e.g. a full disk).
    """
    with atomic_outputs([path]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_outputs(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """:func:`atomic_output` for several files: all are replaced at the end, or none.

    Raises:
        DepthFileError: as :func:`atomic_output`.
    """
    paths = [Path(p) for p in paths]
    tmps: list[Path] = []
    current = paths[0] if paths else Path(".")
    try:
        for path in paths:
            current = path
            tmps.append(_temp_next_to(path))
        current = paths[0] if paths else current
        yield tmps
        # mkstemp creates 0600; give the files the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        for tmp in tmps:
            os.chmod(tmp, 0o666 & ~umask)
        for tmp, path in zip(tmps, paths):
            current = path
            os.replace(tmp, path)
    except OSError as exc:
        _remove(tmps)
        raise WriteError(_write_error(exc, current)) from None
    except BaseException:
        _remove(tmps)
        raise


def _temp_next_to(path: Path) -> Path:
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise WriteError(f"{path}: output directory {directory} does not exist; create it first.")
    # The pid in the name lets a later run tell a killed writer's leftovers (remove_stale_temps).
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=f".tmp{path.suffix}", dir=directory)
    os.close(fd)
    return Path(tmp_name)


def remove_stale_temps(folder: str | os.PathLike, names: Sequence[str] | None = None,
                       min_age: float = 300.0) -> list[Path]:
    """Remove the temporary files that writes into ``folder`` left when killed (kill -9).

    Only files this module's atomic writers could have made
    (``.<name>.<pid>-<random>.tmp<suffix>``, and what an exporter wrote next to one, such
    as ``....tmp.onnx.data``) are touched. With ``names``, those of ``folder/<name>`` for
    each name, when the process in their name is no longer running or they are older than
    ``min_age`` seconds (a write in progress in another process keeps its file; 0 when the
    caller holds the folder's lock). Without ``names``, any such file whose writer's pid
    is no longer running (never by age: a user's own hidden file is not ours to judge).

    Returns:
        The removed paths.
    """
    folder = Path(folder)
    wanted = None if names is None else set(names)
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or (wanted is not None and match["name"] not in wanted):
            continue
        suffix, rest = Path(match["name"]).suffix, match["rest"]
        if not (rest == suffix or rest.startswith(suffix + ".")):
            continue
        pid = int(match["pid"]) if match["pid"] else None
        if wanted is None and pid is None:
            continue
        try:
            if not entry.is_file():
                continue
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        if (pid is not None and not _pid_alive(pid)) or (wanted is not None and age >= min_age):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[A-Za-z0-9_]+\.tmp(?P<rest>.*)$")
"""The name of a temporary file of :func:`_temp_next_to` (older ones carry no pid), and
what an exporter put next to it."""


def os_error_in(exc: BaseException) -> OSError | None:
    """The ``OSError`` behind ``exc``: itself, or one in its cause/context chain.

    Libraries wrap a failed write in their own errors (``torch.save``'s zip writer raises
    ``RuntimeError: unexpected pos`` after the file's ``write`` raised "No space left on
    device"); this finds the real cause.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def _write_file(path: Path, data: bytes) -> None:
    """The one place that writes bytes to disk (tests simulate a full disk here)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _remove(paths: Sequence[Path]) -> None:
    for tmp in paths:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _write_error(exc: OSError, path: Path) -> str:
    """One line for a failed write: the file, the cause and the fix."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free disk space or write to another disk"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a writable output directory"
    else:
        fix = "check the disk and the output directory"
    return f"{path}: cannot write ({reason}); {fix}. Nothing was replaced."

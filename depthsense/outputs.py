"""Where commands write: output-folder guards and the cache of generated data.

Every command checks its outputs before any work (``check_output_dir``), never writes over
a file it reads (``refuse_overwrite``, ``refuse_shared_outputs``, ``refuse_output_inside``)
and creates its folder only once everything was checked (``make_output_dir``). Generated
data sets go to :func:`cache_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from depthsense.cli import UsageError
from depthsense.errors import DepthFileError

__all__ = [
    "check_output_dir",
    "remove_killed_writes",
    "make_output_dir",
    "refuse_overwrite",
    "refuse_shared_outputs",
    "refuse_output_inside",
    "cache_dir",
    "synthetic_cache_root",
]


def check_output_dir(path: str | os.PathLike, what: str = "output directory", option: str = "--out") -> Path:
    """Check that ``path`` is, or can be created as, a writable directory, creating nothing.

    Commands call this before any other work so that a bad ``--out`` neither costs a
    model load nor leaves an empty folder behind.

    Raises:
        DepthFileError: ``path`` (or an ancestor) is a file, or the nearest existing
            ancestor is not writable.
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is a file" if probe == path else f"cannot be created: {probe} is a file"
        raise DepthFileError(f"{option} {path}: {what} {where}, not a directory; choose another {option}.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise DepthFileError(f"{option} {path}: {what} is not writable ({probe}); choose a writable {what}.")
    return path


def make_output_dir(out: str | os.PathLike, what: str = "output directory", option: str = "--out") -> Path:
    """:func:`check_output_dir`, then create ``out`` (parents too) and prove it is writable.

    Raises:
        DepthFileError: ``out`` is a file, or cannot be created or written (one line, with the fix).
    """
    out = check_output_dir(out, what, option)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DepthFileError(f"{option} {out}: not writable ({exc.strerror}); choose a writable {what}") from None
    return out


def remove_killed_writes(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Remove the temporary files of atomic writes into ``folder`` whose process is gone
    (kill -9), with one ``note:`` line saying how many; writes in progress are left alone.

    For commands that write into a folder without holding a run lock (infer,
    project-lidar, make-synthetic); runs and reports remove their own files' temporaries
    under their lock (:mod:`depthsense.runlock`).

    ``recursive`` also looks in every folder below (a generated data set's tree).
    """
    from depthsense.atomic import remove_stale_temps
    from depthsense.cli import print_note

    folder = Path(folder)
    folders = [folder] if not recursive else [Path(d) for d, _, _ in os.walk(folder)]
    removed = [p for f in folders for p in remove_stale_temps(f)]
    if removed:
        print_note(f"removed {len(removed)} temporary file(s) that an interrupted write left in {folder} "
                   f"(e.g. {removed[0].name})")
    return removed


def refuse_overwrite(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike],
                     fix: str = "choose another --out") -> None:
    """Refuse to write any output that is one of the files the command reads.

    Compares real paths (symlinks resolved) and, for files that exist, device and inode
    (hard links, bind mounts, case-insensitive spellings).

    Raises:
        UsageError: ``<output>: is the input <input>; <fix>`` for the first clash.
    """
    seen: dict[Any, Path] = {}
    for p in inputs:
        p = Path(p)
        seen.setdefault(os.path.realpath(p), p)
        key = _inode(p)
        if key is not None:
            seen.setdefault(key, p)
    for o in outputs:
        o = Path(o)
        hit = seen.get(os.path.realpath(o))
        if hit is None:
            key = _inode(o)
            hit = seen.get(key) if key is not None else None
        if hit is not None:
            same = "is" if os.path.realpath(o) == os.path.realpath(hit) else "is the same file as"
            raise UsageError(f"{o}: this output {same} the input {hit}; refusing to overwrite an input, "
                             f"nothing was written. {fix[:1].upper()}{fix[1:]}")


def refuse_shared_outputs(outputs: Mapping[str, str | os.PathLike | None]
                          | Iterable[tuple[str, str | os.PathLike | None]]) -> None:
    """Refuse two outputs of one command that are the same file (one would replace the other).

    Compares real paths (symlinks and ``..`` resolved, also for files that do not exist
    yet) and, for files that exist, device and inode, as :func:`refuse_overwrite` does.

    Args:
        outputs: what each output is (an option such as ``"--overlay"``, or the path
            itself) -> its path, as a mapping or (name, path) pairs; None paths are skipped.
    Raises:
        UsageError: ``--overlay o/a.png: is the same file as --out o/a.png; ...``.
    """
    seen: dict[Any, tuple[str, Path]] = {}
    for name, path in (outputs.items() if isinstance(outputs, Mapping) else outputs):
        if path is None:
            continue
        path = Path(path)
        keys = [os.path.realpath(path)] + ([k] if (k := _inode(path)) is not None else [])
        hit = next((seen[k] for k in keys if k in seen), None)
        if hit is not None:
            def label(n: str, p: Path) -> str:
                return f"{n} {p}" if n != str(p) else str(p)
            raise UsageError(f"{label(name, path)}: is the same file as {label(*hit)}; two outputs of one command "
                             "cannot share a path (one would replace the other). Give each its own path; nothing "
                             "was written.")
        for k in keys:
            seen.setdefault(k, (name, path))


def refuse_output_inside(out: str | os.PathLike, roots: dict[str, str | os.PathLike | None],
                         option: str = "--out") -> None:
    """Refuse an output directory that is, or lies inside, a folder the command reads.

    New files there could replace data files or be scanned as data the next time.

    Raises:
        UsageError: naming both options.
    """
    real = os.path.realpath(out)
    for source, root in roots.items():
        if not root:
            continue
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            raise UsageError(f"{option} {out} is inside {source} {root}: a command must not write into the data "
                             f"it reads; choose an {option} outside it")


def _inode(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def cache_dir() -> Path:
    """Where generated data goes: ``$DEPTHSENSE_CACHE`` or ``~/.cache/depthsense``."""
    root = os.environ.get("DEPTHSENSE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "depthsense")
    return Path(root)


def synthetic_cache_root(frames: int = 48, seed: int = 0, size: tuple = (352, 1216)) -> Path:
    """The folder in :func:`cache_dir` of the synthetic KITTI-layout set with these settings.

    ``depthsense-train --dataset synthetic`` generates into it and ``depthsense-evaluate
    --dataset synthetic`` reads it, both without ``--data-root``; the defaults are
    :class:`TrainConfig`'s (``--synthetic-frames``, ``--seed``, ``--synthetic-size``).
    """
    h, w = size
    return cache_dir() / f"synthetic-kitti-{h}x{w}-n{frames}-s{seed}"

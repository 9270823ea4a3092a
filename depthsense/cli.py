"""Command-line plumbing every CLI shares: one-line errors, parsers, argument types.

:func:`run_cli` turns user errors (:class:`UsageError` and the other
:class:`~depthsense.errors.DepthSenseError`s, registry ``KeyError``s, ``OSError``s) into one
line on stderr and exit code 2; :class:`OneLineParser` makes argparse's errors such user
errors. The argument types (``parse_crop``, ``parse_size``, ``parse_kv``,
``resolve_device``) and the folder modes' summary lines live here too. The run
configurations built from these parsers are in :mod:`depthsense.config`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

from depthsense.errors import DepthSenseError

__all__ = [
    "UsageError",
    "OneLineParser",
    "DefaultsHelpFormatter",
    "run_cli",
    "print_note",
    "warnings_as_notes",
    "resolve_device",
    "parse_crop",
    "parse_size",
    "parse_kv",
    "report_problems",
    "written_so_far",
]


class UsageError(DepthSenseError, ValueError):
    """A command-line argument that cannot work (reported as one line, exit 2)."""


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line, ``<prog>: error: <what> (see <prog> --help)``.

    Plain argparse prints the whole usage block before the error; here the error raises
    :class:`UsageError`, which :func:`run_cli` prints as one line with exit code 2.
    """

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise UsageError(f"{message} (see {self.prog} --help)")

    def parse_known_args(self, args=None, namespace=None):  # noqa: D401 - argparse's hook
        # argparse takes the value of "--size -5x10" for an option and says "expected one
        # argument"; joined as "--size=-5x10" it reaches the option's own check and message.
        args = list(sys.argv[1:] if args is None else args)
        takes_one = {s for a in self._actions if a.option_strings and a.nargs is None for s in a.option_strings}
        joined: list = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                joined += args[i:]
                break
            nxt = args[i + 1] if i + 1 < len(args) else None
            if arg in takes_one and isinstance(nxt, str) and len(nxt) > 1 and nxt[0] == "-" and nxt[1].isdigit():
                joined.append(f"{arg}={nxt}")
                i += 2
            else:
                joined.append(arg)
                i += 1
        return super().parse_known_args(joined, namespace)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" only for real values: a None default means "see the help text"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default == [] or "(default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None,
            prog: str | None = None) -> int:
    """Run a CLI ``main``: user errors become one line on stderr and exit code 2.

    ``prog`` is the console-script name used as the prefix of every message
    (``depthsense-train: error: ...``), however the command was started.

    Caught: :class:`DepthSenseError` (incl. :class:`UsageError` from argparse), a
    ``KeyError`` from a registry lookup, ``OSError`` (missing files, permissions, a full
    disk: the environment, not a bug), and any error a library raised because a write
    hit a full disk (the ``OSError`` in its cause chain is reported). Everything else is a
    bug and still raises. Python warnings are printed as ``note: <message>`` lines, each
    once (:func:`warnings_as_notes`). A closed stdout (``| head -1``) ends the command
    quietly with 141, as ``cat`` does.
    """
    from depthsense.io import os_error_in
    from depthsense.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    if prog is None:
        prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "depthsense"
    _SHOWN_NOTES.clear()
    try:
        with warnings_as_notes():
            status = main(argv)
        sys.stdout.flush()  # a closed pipe fails here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        _stdout_to_devnull()
        return 141
    except DepthSenseError as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyError as exc:
        msg = str(exc.args[0]) if exc.args else ""
        if "known" not in msg:  # not a registry's "unknown name; known names: ..." -> a bug
            raise
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a command may say where it stopped (TrainingInterrupted)
        print(f"{prog}: interrupted" + (f" {_one_line(exc)}" if str(exc) else ""), file=sys.stderr)
        return 130
    except Exception as exc:
        import errno

        cause = os_error_in(exc)
        if cause is None or cause.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"{prog}: error: {_os_error_line(cause)}", file=sys.stderr)
        return 2


_SHOWN_NOTES: set[str] = set()


def print_note(message: str) -> None:
    """Print ``note: <message>`` on stdout, once per message in one command (:func:`run_cli`).

    The one format of notes: warnings (:func:`warnings_as_notes`) and the notes a
    command prints itself (a report's, a run's) go through here, so none appears twice.
    """
    text = " ".join(str(message).split())
    if text in _SHOWN_NOTES:
        return
    _SHOWN_NOTES.add(text)
    print(f"note: {text}", flush=True)


@contextlib.contextmanager
def warnings_as_notes() -> Iterator[None]:
    """Inside, a Python warning is a :func:`print_note` line: no ``file:line`` and source
    line of Python's default format, and each message once. Which warnings are shown is
    left to the warning filters."""
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: print_note(
            str(message))
        yield


def _stdout_to_devnull() -> None:
    # The reader of our stdout is gone: later writes (and the interpreter's final flush)
    # must not raise again.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n")).strip() or type(exc).__name__


def _os_error_line(exc: OSError) -> str:
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}{reason}; free disk space or write to another disk (--out)"
    return f"{where}{reason}"


def resolve_device(spec: str = "auto"):
    """``auto`` -> cuda when available, else cpu; validates explicit choices.

    Raises:
        UsageError: cuda asked for but not available, or an unknown device string.
    """
    import torch

    spec = (spec or "auto").lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto")
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {spec}: only cpu and cuda are supported")
    return dev


def parse_crop(text: str) -> tuple | None:
    """``"256x1216"`` -> (256, 1216); ``"none"`` -> () (meaning: no crop)."""
    if text.lower() in ("none", "full", "0"):
        return ()
    return parse_size(text, "crop", minimum=16, example="256x1216, or none")


def parse_size(text: str, what: str = "size", minimum: int = 1, example: str = "375x1242") -> tuple[int, int]:
    """``"375x1242"`` -> (375, 1242), both sides >= ``minimum`` (an argparse ``type``).

    Raises:
        argparse.ArgumentTypeError: not HxW, or a side below ``minimum`` (names ``what``).
    """
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r}: expected HxW such as {example}") from None
    if h < minimum or w < minimum:
        raise argparse.ArgumentTypeError(f"{what} {text!r}: both sides must be >= {minimum} pixel"
                                         f"{'s' if minimum > 1 else ''}")
    return (h, w)


def parse_kv(items: list[str] | None) -> dict:
    """``["width=16", "rgb=True", "name=x"]`` -> {"width": 16, "rgb": True, "name": "x"}."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--model-arg {item!r}: expected key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            low = value.strip().lower()
            out[key.strip()] = {"true": True, "false": False}.get(low, value.strip())
    return out


def report_problems(problems: Sequence[str], total: int, unit: str = "inputs") -> int:
    """Print what a folder mode skipped, on stderr: a count, then one line per problem.

    Returns:
        The exit status: 1 when there were problems, else 0.
    """
    if not problems:
        return 0
    print(f"{len(problems)} problem(s) ({total} {unit}):", file=sys.stderr)
    for line in problems:
        print(f"  {line}", file=sys.stderr)
    return 1


def written_so_far(done: Sequence[str], total: int, out: str | os.PathLike, unit: str = "frames") -> str:
    """The sentence a folder mode adds to an error that stopped it: exactly what stays written.

    Args:
        done: names of the items fully written before the error, in order.
        total: items the command was asked for.
        out: the output folder.
    """
    if not done:
        return f"None of the {total} {unit} was written to {out}."
    shown = ", ".join(done[:3]) + (f" ... {done[-1]}" if len(done) > 3 else "")
    return (f"Before it, {len(done)} of {total} {unit} were written completely to {out} and stay ({shown}); "
            f"the other {total - len(done)} were not.")

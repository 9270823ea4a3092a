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
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from depthsense.errors import DepthSenseError

__all__ = [
    "UsageError",
    "OneLineParser",
    "DefaultsHelpFormatter",
    "run_cli",
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
    ``KeyError`` from a registry lookup, and ``OSError`` (missing files, permissions, a
    full disk: the environment, not a bug). Everything else is a bug and still raises.
    """
    from depthsense.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    if prog is None:
        prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "depthsense"
    try:
        return main(argv)
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
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


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

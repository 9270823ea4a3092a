"""The machinery of run options: dataclass fields with help, the parsers generated from them.

A run's options are a frozen dataclass whose fields are made with :func:`option`: a
default, a help string and how the flag is parsed, all in one place.
:func:`options_parser` generates the command's argparse parser from those fields and
:func:`config_from_namespace` turns what it parsed back into the dataclass, so a flag,
its help, type and default are written once. The configs of :mod:`depthsense.config`
(training), :mod:`depthsense.eval_config` (evaluation), :mod:`depthsense.infer_config`
(inference) and the experiments are built this way. Model options (``--model-arg``) are
checked against the model's constructor here (:func:`build_model_from_options`), and
:func:`jsonable` turns configs and results into plain JSON data.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import field
from typing import Any, Callable, Sequence

from depthsense.cli import DefaultsHelpFormatter, OneLineParser, UsageError

__all__ = [
    "option",
    "options_parser",
    "add_options",
    "config_from_namespace",
    "field_default",
    "split_list",
    "number_list",
    "build_model_from_options",
    "jsonable",
]

PARSE_KEYS = ("flag", "positional", "action", "type", "nargs", "metavar", "choices", "group", "cli_help",
              "parse_default", "show", "convert")
"""The keys :func:`option` takes besides ``help`` (see there)."""


def option(default: Any, help: str, **parse: Any) -> Any:
    """A dataclass field with ``default`` and ``help``, and how its flag is parsed.

    A list or dict default is copied for every instance (``default_factory``).

    Args:
        default: the field's default; also the parser's, unless ``parse_default`` says otherwise.
        help: what the option means (the ``--help`` text unless ``cli_help`` is given).
        **parse: optional, for :func:`options_parser`: ``flag`` (default
            ``--field-name``), ``positional`` (True: an argument without a flag),
            ``action``, ``type``, ``nargs``, ``metavar``, ``choices`` (may be a callable,
            for names read from a registry), ``group`` (title of the ``--help``
            section), ``cli_help`` (the ``--help`` text, or a callable giving it, when
            it differs from ``help``: a negated flag, names read from a registry),
            ``parse_default`` (what argparse starts from when it differs from the
            field's default; None means "not given": the field's default),
            ``show`` (formats a default that the help text shows itself) and
            ``convert`` (applied to a parsed value that is not None).
    Raises:
        TypeError: an unknown key in ``parse`` (a typo would silently do nothing).
    """
    unknown = sorted(set(parse) - set(PARSE_KEYS))
    if unknown:
        raise TypeError(f"option(): unknown keys {unknown}; known: {', '.join(PARSE_KEYS)}")
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **parse})
    return field(default=default, metadata={"help": help, **parse})


def options_parser(cls: type, prog: str, description: str, *, defaults: bool = True,
                   defaults_in_help: bool = False) -> argparse.ArgumentParser:
    """The one-line-error parser of a command, generated from the fields of ``cls``.

    Args:
        cls: a dataclass whose fields are made with :func:`option`.
        prog, description: as argparse takes them.
        defaults: False gives every option the default ``argparse.SUPPRESS``, so the
            parsed namespace holds only the options given on the command line.
        defaults_in_help: how ``--help`` shows defaults: False, every real default
            (:class:`~depthsense.cli.DefaultsHelpFormatter`, booleans too); True, the
            string and number defaults only, written into the help text.
    """
    parser = OneLineParser(prog=prog, description=description,
                           formatter_class=argparse.HelpFormatter if defaults_in_help else DefaultsHelpFormatter)
    add_options(parser, cls, defaults=defaults, defaults_in_help=defaults_in_help)
    return parser


def add_options(parser: argparse.ArgumentParser, cls: type, *, defaults: bool = True,
                defaults_in_help: bool = False) -> None:
    """Add one argument per field of ``cls`` to ``parser`` (see :func:`options_parser`)."""
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        value = field_default(f)
        help_ = meta.get("cli_help", meta.get("help", ""))
        help_ = (help_() if callable(help_) else help_).replace("%", "%%")  # argparse %-formats help
        if defaults_in_help and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            help_ += f" (default: {value})"
        if "show" in meta and value:
            help_ += f" (default: {meta['show'](value)})"
        kw: dict[str, Any] = {"help": help_}
        kw["default"] = meta.get("parse_default", value) if defaults else argparse.SUPPRESS
        action = meta.get("action")
        if action is None and f.type in ("bool", bool):
            action = argparse.BooleanOptionalAction if value else "store_true"
        if action is not None:
            kw["action"] = action
        else:
            kind = meta.get("type", _TYPES.get(str(f.type)))
            if kind is not None:
                kw["type"] = kind
        for key in ("nargs", "metavar", "choices"):
            if key in meta:
                kw[key] = meta[key]() if key == "choices" and callable(meta[key]) else meta[key]
        target = parser
        if "group" in meta:
            if meta["group"] not in groups:
                groups[meta["group"]] = parser.add_argument_group(meta["group"])
            target = groups[meta["group"]]
        if meta.get("positional"):
            target.add_argument(f.name, **kw)
        else:
            target.add_argument(meta.get("flag", "--" + f.name.replace("_", "-")), dest=f.name, **kw)


def config_from_namespace(cls: type, values: dict) -> Any:
    """The ``cls`` instance of what a parser generated by :func:`options_parser` parsed.

    Each field's ``convert`` is applied to its value; a value that is None (not given)
    takes the field's default.
    """
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        value = values[f.name]
        if value is not None and "convert" in f.metadata:
            value = f.metadata["convert"](value)
        if value is None and field_default(f) is not None:
            continue
        kw[f.name] = value
    return cls(**kw)


def field_default(f: dataclasses.Field) -> Any:
    """The default of a dataclass field (a fresh one for ``default_factory`` fields)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def split_list(values: Sequence[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``: items given space- or comma-separated, blanks dropped."""
    return [v.strip() for item in values for v in str(item).split(",") if v.strip()]


def number_list(values: Sequence[str], kind: type, flag: str, example: str) -> tuple:
    """``["64,32", "16"]`` -> ``(64, 32, 16)`` (``kind`` int or float); ``none`` alone -> ``()``.

    Raises:
        UsageError: an item that is not a number of ``kind`` (names ``flag`` and shows ``example``).
    """
    items = split_list(values)
    if len(items) == 1 and items[0].lower() == "none":
        return ()
    out = []
    for item in items:
        try:
            out.append(kind(item))
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise UsageError(f"{flag}: {item!r} is not {what}; expected e.g. {flag} {example} (or none)") from None
    return tuple(out)


def build_model_from_options(name: str, options: dict | None = None, option: str = "--model-arg"):
    """``depthsense.models.build_model(name, **options)`` with user-facing errors.

    Option values are checked against the types of the constructor's defaults before
    the model is built (``width=abc`` is "expected an integer", not a comparison error
    from inside the constructor), and constructor errors become one line naming the
    option.

    Raises:
        UsageError: an unknown option, a value of the wrong type, or a value the model
            refuses (``ValueError``/``TypeError``/``RuntimeError`` from its constructor,
            which only ever sees these user-given values).
        KeyError: unknown model name (the message lists the known names).
    """
    import inspect

    from depthsense import models

    options = dict(options or {})
    params = inspect.signature(models.model_class(name).__init__).parameters  # KeyError lists the known names
    given = " ".join(f"{k}={v}" for k, v in options.items())
    for key, value in options.items():
        param = params.get(key)
        if param is None or key == "self":
            continue  # build_model names the unknown option and lists the known ones
        expected = _option_type(param.default)
        if expected is not None and not _fits(value, expected):
            raise UsageError(
                f"{option} {key}={value!r}: {name} expects {_TYPE_WORDS[expected]} for {key} "
                f"(default {param.default!r})"
            )
    try:
        return models.build_model(name, **options)
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. torch: "negative dimension -3"
        raise UsageError(f"{option} {given}: {name} cannot be built: {str(exc).strip().splitlines()[0]}") from None


def jsonable(x: Any) -> Any:
    """Plain JSON-able data from configs and results: tuples to lists, tensors and numpy
    scalars to numbers (large tensors to a short description), non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if _is_tensor(x):
        return jsonable(x.tolist()) if x.numel() <= 64 else f"<tensor {tuple(x.shape)}>"
    if _is_numpy_scalar(x):
        return jsonable(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)


_TYPES: dict[str, Callable] = {"int": int, "float": float, "int | None": int, "float | None": float}
"""Argument types by annotation; other fields are strings."""

_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _option_type(default: Any) -> type | None:
    for kind in (bool, int, float, str):  # bool first: it is an int too
        if isinstance(default, kind):
            return kind
    return None


def _fits(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "numel")


def _is_numpy_scalar(x: Any) -> bool:
    return type(x).__module__ == "numpy" and hasattr(x, "item") and getattr(x, "ndim", 1) == 0

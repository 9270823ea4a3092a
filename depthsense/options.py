"""The machinery of run options: dataclass fields with help, model options, JSON-able data.

A run's options are a frozen dataclass whose fields are made with :func:`option` (a
default and a help string, plus how the flag is parsed); the configs of
:mod:`depthsense.config` (training), :mod:`depthsense.eval_config` (evaluation) and the
experiments are built from it. Model options (``--model-arg``) are checked against the
model's constructor here (:func:`build_model_from_options`), and :func:`jsonable` turns
configs and results into plain JSON data.
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any

from depthsense.cli import UsageError

__all__ = ["option", "build_model_from_options", "jsonable"]


def option(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with ``default`` and ``help`` (and ``kw``) in its metadata.

    A list or dict default is copied for every instance (``default_factory``).
    """
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


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

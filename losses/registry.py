"""The registry of loss terms: name -> ``nn.Module`` class, filled by :func:`register_loss`
next to each class (:mod:`depthsense.losses` imports every term module, and builds a
weighted sum from a spec with :func:`depthsense.losses.build_loss`)."""

from __future__ import annotations

import re
from typing import Callable, TypeVar

from torch import nn

__all__ = ["LOSSES", "LOSS_NAME", "register_loss"]

LOSSES: dict[str, type[nn.Module]] = {}
"""Registry: term name -> module class, filled by :func:`register_loss`."""

LOSS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""What a loss term's name looks like (an identifier): registered names and loss specs."""

_M = TypeVar("_M", bound=type)


def register_loss(name: str) -> Callable[[_M], _M]:
    """Class decorator adding a loss term module to :data:`LOSSES` under ``name``.

    The class must accept only keyword hyper-parameters with defaults and implement
    ``forward(pred, gt, mask=None, rgb=None) -> scalar``.

    Raises:
        ValueError: ``name`` is not an identifier or is already registered.
    """
    if not LOSS_NAME.match(name):
        raise ValueError(f"register_loss: loss name {name!r} must be an identifier such as 'l1'")

    def decorate(cls: _M) -> _M:
        if name in LOSSES and LOSSES[name] is not cls:
            raise ValueError(f"register_loss: {name!r} is already registered to {LOSSES[name].__qualname__}")
        LOSSES[name] = cls
        return cls

    return decorate

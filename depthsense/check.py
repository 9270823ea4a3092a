"""The one shape checker: a tensor against a spec such as ``"B,1,H,W"``, at public entry points.

::

    dims = check_shape(pred, "B,1,H,W", "pred", where="masked_l1")
    check_shape(gt, "B,1,H,W", "gt", where="masked_l1", dims=dims)  # the same B, H and W as pred

A spec is a comma-separated list of dimensions. An integer is that exact size; a name
(``B``, ``C``, ``H``, ``W``, ``N``, ...) is any size, but the same size wherever the name
recurs, in this spec and in the ``dims`` an earlier check returned. ``|`` separates
alternatives, tried in order (``"B,1,H,W|B,H,W|H,W"``).

Only user input is checked, where it enters (a model's ``forward``, a loss, a metric, a
public layer): inner layers do not re-check what only a bug could break, so a bug
surfaces as a bug and not as a user error.

A leaf: it imports nothing from the project but :mod:`depthsense.errors`, so ``models``,
``losses`` and ``data`` use it too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache

from torch import Tensor

from depthsense.errors import ShapeError

__all__ = ["check_shape", "Dims", "ShapeError"]


class Dims(Mapping):
    """Sizes bound by :func:`check_shape`: ``dims["H"]`` is an int.

    Also remembers which tensor bound each name (its name and shape), so that a later
    mismatch names both tensors.
    """

    def __init__(self, sizes: dict[str, int] | None = None,
                 owners: dict[str, tuple[str, tuple[int, ...]]] | None = None) -> None:
        self._sizes = dict(sizes or {})
        self._owners = dict(owners or {})

    def __getitem__(self, name: str) -> int:
        return self._sizes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sizes)

    def __len__(self) -> int:
        return len(self._sizes)

    def __repr__(self) -> str:
        return f"Dims({self._sizes})"

    def owner(self, name: str) -> tuple[str, tuple[int, ...]] | None:
        """``(tensor name, its shape)`` of the tensor that bound ``name``, if known."""
        return self._owners.get(name)


def check_shape(x: object, spec: str, name: str, *, where: str = "", dims: Mapping[str, int] | None = None,
                hint: str = "") -> Dims:
    """Check that ``x`` is a tensor whose shape fits ``spec``; return the sizes it binds.

    Args:
        x: the tensor to check (anything else raises).
        spec: e.g. ``"B,1,H,W"``, ``"N"``, ``"B,C,H,W"``; alternatives ``"B,1,H,W|H,W"``.
        name: what the caller calls ``x`` (``"pred"``, ``"mask"``), for the message.
        where: the function or model that checks (message prefix), e.g. ``"masked_l1"``.
        dims: sizes an earlier check bound (:class:`Dims`, or a plain dict); names in
            ``spec`` that are bound there must have those sizes.
        hint: the fix, appended to the message (e.g. ``"Add the batch axis with .unsqueeze(0)."``).
    Returns:
        :class:`Dims` with the earlier ``dims`` and the sizes ``x`` bound.
    Raises:
        ShapeError: ``x`` is no tensor, or no alternative of ``spec`` fits its shape. The
            message names ``x``, its shape, what was expected and, for a size that differs
            from another tensor's, that tensor and its shape.

    Examples:
        >>> import torch
        >>> d = check_shape(torch.zeros(2, 1, 4, 5), "B,1,H,W", "pred")
        >>> d["B"], d["H"], d["W"]
        (2, 4, 5)
        >>> check_shape(torch.zeros(2, 1, 4, 6), "B,1,H,W", "gt", where="masked_l1", dims=d)
        Traceback (most recent call last):
            ...
        depthsense.errors.ShapeError: masked_l1: gt has shape (2, 1, 4, 6) but pred has (2, 1, 4, 5); expected (B,1,H,W) with the same B, H, W.
    """
    prefix = f"{where}: " if where else ""
    alternatives = _parse(spec)
    expected = _expected(alternatives)
    if not isinstance(x, Tensor):
        raise ShapeError(_sentence(f"{prefix}{name} is a {type(x).__name__}; expected a torch.Tensor of shape "
                                   f"{expected}", hint))
    # The sizes as the tensor has them: ints, or symbolic sizes while torch.export traces a
    # model for ONNX, which int() would fix to the example's size (a static ONNX input).
    shape = tuple(x.shape)
    sizes = dict(dims) if dims is not None else {}
    owners = {k: o for k in sizes if isinstance(dims, Dims) and (o := dims.owner(k)) is not None}
    conflict: list[str] | None = None
    for alt in alternatives:
        if len(alt) != len(shape):
            continue
        bound: dict[str, int] = {}
        fixed_ok, clash = True, []
        for token, n in zip(alt, shape):
            if isinstance(token, int):
                fixed_ok = fixed_ok and bool(n == token)
            elif token in bound:
                fixed_ok = fixed_ok and bool(bound[token] == n)
            elif token in sizes and bool(sizes[token] != n):
                clash.append(token)
                bound[token] = n
            else:
                bound[token] = n
        if fixed_ok and not clash:
            new_owners = {**owners, **{k: (name, shape) for k in bound if k not in sizes}}
            return Dims({**sizes, **bound}, new_owners)
        if fixed_ok and conflict is None:
            conflict = clash
    shape = tuple(int(n) for n in shape)
    shared = [t for t in dict.fromkeys(t for alt in alternatives for t in alt) if isinstance(t, str) and t in sizes]
    if conflict:
        other = owners.get(conflict[0])
        if other is not None:
            same = [t for t in shared if owners.get(t) == other]
            message = (f"{prefix}{name} has shape {shape} but {other[0]} has {other[1]}; expected {expected} "
                       f"with the same {', '.join(same)}")
        else:
            message = (f"{prefix}{name} has shape {shape}; expected {expected} with "
                       + ", ".join(f"{t} = {sizes[t]}" for t in shared))
        raise ShapeError(_sentence(message, hint))
    message = f"{prefix}{name} has shape {shape}; expected {expected}"
    by_owner: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for t in shared:
        if t in owners:
            by_owner.setdefault(owners[t], []).append(t)
    if by_owner:
        message += " with the " + " and the ".join(f"{', '.join(ts)} of {o[0]} {o[1]}" for o, ts in by_owner.items())
    raise ShapeError(_sentence(message, hint))


@lru_cache(maxsize=256)
def _parse(spec: str) -> tuple[tuple[int | str, ...], ...]:
    alternatives = []
    for alt in spec.split("|"):
        tokens = [t.strip() for t in alt.split(",")]
        if not all(tokens):
            raise ValueError(f"check_shape: malformed spec {spec!r}")  # a bug in the caller
        alternatives.append(tuple(int(t) if t.isdigit() else t for t in tokens))
    return tuple(alternatives)


def _expected(alternatives: tuple[tuple[int | str, ...], ...]) -> str:
    forms = ["(" + ",".join(str(t) for t in alt) + ")" for alt in alternatives]
    return forms[0] if len(forms) == 1 else ", ".join(forms[:-1]) + " or " + forms[-1]


def _sentence(message: str, hint: str) -> str:
    return message + "." + (f" {hint}" if hint else "")

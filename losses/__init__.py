"""Training losses, chosen by name and combined with weights.

``build_loss("l1:1.0,ssim:0.2,edge:0.1,rank:0.5")`` returns a :class:`CombinedLoss`
whose ``forward(pred, gt, mask=None, rgb=None)`` gives ``(total, terms)``: the weighted
sum and a dict of every term's unweighted value (detached, for TensorBoard).

Terms (registry name -> module):

========  ===================================  ==========================================
``l1``    :class:`depthsense.losses.pixel.MaskedL1Loss`    mean |pred - gt| over valid GT (m)
``l2``    :class:`depthsense.losses.pixel.MaskedL2Loss`    mean (pred - gt)^2 over valid GT (m^2)
``mae``   :class:`depthsense.losses.pixel.ImageMAELoss`    per-image MAE, mean over images (m)
``rmse``  :class:`depthsense.losses.pixel.ImageRMSELoss`   per-image RMSE, mean over images (m)
``nmae``  :class:`depthsense.losses.pixel.ScaleFreeMAELoss`   per-image MAE / the image's depth scale
``nrmse`` :class:`depthsense.losses.pixel.ScaleFreeRMSELoss`  per-image RMSE / the image's depth scale
``ssim``  :class:`depthsense.losses.structure.SSIMLoss`    (1 - SSIM)/2, depth / max_depth
``edge``  :class:`depthsense.losses.structure.EdgeLoss`    L1 of Sobel gradient differences
``rank``  :class:`depthsense.losses.ranking.RankingLoss`   ordinal ranking (Xian et al. 2018)
``ssi``   :class:`depthsense.losses.ssi.SSILoss`           scale-and-shift-invariant MAE (MiDaS)
========  ===================================  ==========================================

Terms of the U-Net's extra heads (:mod:`depthsense.losses.heads`; they need the model's
head outputs, passed as ``extras``):

===============  ============================================  ==========================================
``laplace_nll``  :class:`~depthsense.losses.heads.LaplaceNLLLoss`      confidence: ``|d-gt|/b + log b``, d detached
``fg_bce``       :class:`~depthsense.losses.heads.ForegroundBCELoss`   foreground: binary cross-entropy
``fg_dice``      :class:`~depthsense.losses.heads.ForegroundDiceLoss`  foreground: soft Dice, per image
``fg_edge``      :class:`~depthsense.losses.heads.ForegroundEdgeLoss`  foreground: L1 of Sobel gradients
===============  ============================================  ==========================================

Every term module has ``forward(pred, gt, mask=None, rgb=None) -> scalar tensor``
(head terms also take ``extras=``); ``mask`` is the *ground-truth* validity (default
``gt > 0``), not a batch's sparse-input mask. New terms register with :func:`register_loss` (:mod:`depthsense.losses.registry`).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from torch import Tensor, nn

from depthsense.losses.registry import LOSS_NAME, LOSSES, register_loss  # filled by the term modules below
from depthsense.losses.pixel import (
    ImageMAELoss,
    ImageRMSELoss,
    MaskedL1Loss,
    MaskedL2Loss,
    image_mae,
    image_rmse,
    masked_l1,
    masked_l2,
    masked_mean,
)
from depthsense.losses.structure import EdgeLoss, SSIMLoss, edge_loss, ssim_loss
from depthsense.losses.ranking import RankingLoss, ranking_loss, sample_pairs
from depthsense.losses.ssi import SSILoss, align_scale_shift, ssi_loss
from depthsense.losses.heads import (
    ForegroundBCELoss,
    ForegroundDiceLoss,
    ForegroundEdgeLoss,
    LaplaceNLLLoss,
    fg_bce,
    fg_dice,
    fg_edge,
    laplace_nll,
)

__all__ = [
    "LOSSES",
    "loss_class",
    "register_loss",
    "available_losses",
    "build_loss",
    "parse_loss_spec",
    "CombinedLoss",
    "masked_l1",
    "masked_l2",
    "masked_mean",
    "image_mae",
    "image_rmse",
    "ssim_loss",
    "edge_loss",
    "ranking_loss",
    "sample_pairs",
    "ssi_loss",
    "align_scale_shift",
    "MaskedL1Loss",
    "MaskedL2Loss",
    "ImageMAELoss",
    "ImageRMSELoss",
    "SSIMLoss",
    "EdgeLoss",
    "RankingLoss",
    "SSILoss",
    "laplace_nll",
    "fg_bce",
    "fg_dice",
    "fg_edge",
    "LaplaceNLLLoss",
    "ForegroundBCELoss",
    "ForegroundDiceLoss",
    "ForegroundEdgeLoss",
    "required_heads",
]

_SPEC_FORMAT = "'name:weight,name:weight' (e.g. 'l1:1.0,ssim:0.2'; a bare 'name' means weight 1.0)"


def available_losses() -> list[str]:
    """Sorted names of the registered loss terms."""
    return sorted(LOSSES)


def loss_class(name: str) -> type[nn.Module]:
    """The term class registered under ``name`` (its hyper-parameters, ``requires``, ...).

    Raises:
        KeyError: unknown ``name`` (the message lists the known terms).
    """
    if name not in LOSSES:
        raise KeyError(f"unknown loss term {name!r}; known terms: {', '.join(available_losses())}")
    return LOSSES[name]


class CombinedLoss(nn.Module):
    """Weighted sum of named loss terms.

    Args:
        terms: mapping name -> term module (each with the common forward signature).
        weights: mapping name -> non-negative weight, same keys as ``terms``.

    ``forward(pred, gt, mask=None, rgb=None, extras=None) -> (total, terms)``:
        pred, gt: (B,1,H,W); mask: (B,1,H,W) ground-truth validity, default ``gt > 0``;
        rgb: optional (B,3,H,W) in [0,1], used by terms that want it (edge-guided
        pairs of ``rank``); extras: the model's extra head outputs and their targets
        (``scale``, ``fg_logit``, ``fg_gt``; :mod:`depthsense.losses.heads`), passed
        only to the terms that use them. ``total`` is the scalar ``sum_k weight_k * term_k``;
        ``terms`` maps each name to its *unweighted* value as a detached scalar tensor
        (no ``.item()``: logging code decides when to synchronise).
    """

    def __init__(self, terms: dict[str, nn.Module], weights: dict[str, float]) -> None:
        super().__init__()
        if set(terms) != set(weights) or not terms:
            raise ValueError(
                f"CombinedLoss: terms {sorted(terms)} and weights {sorted(weights)} must have the same, non-empty keys"
            )
        self.terms = nn.ModuleDict(terms)
        self.weights = {name: float(weights[name]) for name in terms}

    def forward(
        self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, rgb: Tensor | None = None,
        extras: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if mask is None:
            mask = gt > 0  # once for all terms
        total: Tensor | None = None
        logged: dict[str, Tensor] = {}
        for name, term in self.terms.items():
            if getattr(term, "uses_extras", False):
                value = term(pred, gt, mask, rgb, extras=extras)
            else:
                value = term(pred, gt, mask, rgb)
            logged[name] = value.detach()
            weighted = value * self.weights[name]
            total = weighted if total is None else total + weighted
        assert total is not None  # __init__ guarantees at least one term
        return total, logged

    @property
    def required_heads(self) -> set[str]:
        """The model heads beyond depth that the terms train (e.g. ``{"conf", "fg"}``)."""
        return {getattr(t, "requires", "") for t in self.terms.values()} - {""}

    @property
    def spec(self) -> str:
        """The canonical spec string, e.g. ``'l1:1.0,ssim:0.2'``."""
        return ",".join(f"{name}:{weight!r}" for name, weight in self.weights.items())

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}"


def parse_loss_spec(spec: str) -> dict[str, float]:
    """Parse ``'name:weight,name:weight'`` into an ordered dict name -> weight.

    Whitespace around names, weights and separators is ignored; ``'l1'`` alone means
    ``l1:1.0``. Weights are finite and >= 0 (0 logs a term without training on it).

    Raises:
        ValueError: empty spec, empty item, missing or non-numeric weight, extra
            colons, a name that is not an identifier, a negative or non-finite weight,
            or a duplicate name; the message shows the expected format.
        KeyError: a well-formed name that is not registered; lists the known names.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"loss spec {spec!r} is empty; expected {_SPEC_FORMAT}")
    weights: dict[str, float] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"loss spec {spec!r} has an empty item (stray comma?); expected {_SPEC_FORMAT}")
        parts = [p.strip() for p in item.split(":")]
        if len(parts) > 2:
            raise ValueError(f"loss spec {spec!r}: item {item!r} has more than one ':'; expected {_SPEC_FORMAT}")
        name = parts[0]
        if not LOSS_NAME.match(name):
            raise ValueError(f"loss spec {spec!r}: {name!r} is not a loss name; expected {_SPEC_FORMAT}")
        weight = 1.0
        if len(parts) == 2:
            try:
                weight = float(parts[1])
            except ValueError:
                raise ValueError(
                    f"loss spec {spec!r}: weight {parts[1]!r} of {name!r} is not a number; expected {_SPEC_FORMAT}"
                ) from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(
                f"loss spec {spec!r}: weight of {name!r} is {weight}; weights must be finite and >= 0. "
                f"Expected {_SPEC_FORMAT}"
            )
        if name in weights:
            raise ValueError(
                f"loss spec {spec!r}: {name!r} appears twice; give each term once. Expected {_SPEC_FORMAT}"
            )
        weights[name] = weight
    unknown = [name for name in weights if name not in LOSSES]
    if unknown:
        raise KeyError(f"unknown loss term(s) {unknown} in spec {spec!r}; known terms: {', '.join(available_losses())}")
    return weights


def build_loss(spec: str, **kwargs: Any) -> CombinedLoss:
    """Build the weighted combination described by ``spec``.

    Args:
        spec: ``'name:weight,name:weight'``, e.g. ``'l1:1.0,ssim:0.2,edge:0.1,rank:0.5'``.
        **kwargs: hyper-parameters, each passed to every selected term whose constructor
            accepts it (e.g. ``max_depth`` to ssim, ``sigma``/``num_pairs``/``seed`` to
            rank, ``grad_weight`` to ssi). A keyword that no registered term accepts is
            an error (a typo); one that only unselected terms accept is ignored.
    Returns:
        A :class:`CombinedLoss`.
    Raises:
        ValueError: malformed spec (see :func:`parse_loss_spec`) or invalid hyper-parameter.
        KeyError: unknown term name (message lists the known terms).
        TypeError: a keyword argument that no registered term accepts.
    """
    weights = parse_loss_spec(spec)
    accepted = {name: _init_params(cls) for name, cls in LOSSES.items()}
    unused = sorted(k for k in kwargs if not any(k in params for params in accepted.values()))
    if unused:
        known = sorted(set().union(*accepted.values()))
        raise TypeError(f"build_loss: no loss term accepts {unused}; hyper-parameters known: {known}")
    terms = {name: LOSSES[name](**{k: v for k, v in kwargs.items() if k in accepted[name]}) for name in weights}
    return CombinedLoss(terms, weights)


def required_heads(spec: str) -> set[str]:
    """The extra model heads the terms of ``spec`` train, e.g. ``{"fg"}`` for ``"l1,fg_bce"``.

    Raises:
        ValueError, KeyError: as :func:`parse_loss_spec`.
    """
    return {getattr(loss_class(name), "requires", "") for name in parse_loss_spec(spec)} - {""}


def _init_params(cls: type) -> set[str]:
    """Names of the keyword hyper-parameters a term class's constructor takes."""
    if cls.__init__ is nn.Module.__init__:
        return set()
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

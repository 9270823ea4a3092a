"""Tests for depthsense/evaluation/heads_metrics.py: sparsification, AUSE, distance baseline, IoU/F1."""

from __future__ import annotations

import math

import pytest
import torch

from depthsense.errors import ShapeError
from depthsense.evaluation.heads_metrics import (
    SPARSIFICATION_FRACTIONS,
    HeadsAccumulator,
    ause,
    distance_to_measurement,
    f1_from_counts,
    iou_from_counts,
    mask_counts,
    oracle_curve,
    rmse_reduction,
    sparsification_curve,
)


def test_curve_by_hand():
    err = torch.tensor([1.0, 2.0, 3.0, 4.0])
    unc = torch.tensor([0.1, 0.9, 0.2, 0.5])  # removal order: 2.0, 4.0, 3.0, 1.0
    curve = sparsification_curve(err, unc, (0.0, 0.25, 0.5, 0.75))
    expected = [math.sqrt(30 / 4), math.sqrt(26 / 3), math.sqrt(10 / 2), 1.0]
    torch.testing.assert_close(curve, torch.tensor(expected, dtype=torch.float64))
    oracle = oracle_curve(err, (0.0, 0.25, 0.5, 0.75))
    torch.testing.assert_close(oracle, torch.tensor([math.sqrt(7.5), math.sqrt(14 / 3), math.sqrt(2.5), 1.0],
                                                    dtype=torch.float64))
    # trapezoids over 0.25-wide steps of the gaps (0, 0.78, 0.65, 0)
    gaps = [e - o for e, o in zip(expected, oracle.tolist())]
    area = sum((a + b) / 2 * 0.25 for a, b in zip(gaps[:-1], gaps[1:]))
    assert ause(curve, oracle, (0.0, 0.25, 0.5, 0.75)) == pytest.approx(area)


def test_ause_of_a_perfect_confidence_is_zero_and_of_a_random_one_is_not():
    gen = torch.Generator().manual_seed(0)
    err = torch.rand(1000, generator=gen).pow(3) * 5
    err[:100] = 0.5  # ties in the error do not matter
    curve = sparsification_curve(err, err.clone())  # the true error order
    assert ause(curve, oracle_curve(err)) == 0.0
    assert ause(curve * 1.0, oracle_curve(err)) == 0.0
    rand = sparsification_curve(err, torch.rand(1000, generator=gen))
    assert ause(rand, oracle_curve(err)) > 0.1
    assert rmse_reduction(oracle_curve(err)) > rmse_reduction(rand)


def test_ties_are_broken_at_random_not_by_position():
    err = torch.cat([torch.zeros(500), torch.ones(500)])  # large errors last
    curve = sparsification_curve(err, torch.zeros(1000), (0.0, 0.5))
    # a positional tie-break would remove the first 500 (all zero error) -> RMSE 1.0
    assert 0.6 < float(curve[1]) < 0.8


def test_curves_reject_bad_input():
    with pytest.raises(ShapeError, match="1-D"):
        sparsification_curve(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="fractions"):
        sparsification_curve(torch.zeros(3), torch.zeros(3), (0.0, 1.0))
    assert sparsification_curve(torch.zeros(0), torch.zeros(0)).shape == (len(SPARSIFICATION_FRACTIONS),)


def test_distance_to_measurement_by_hand():
    mask = torch.zeros(2, 1, 5, 6)
    mask[0, 0, 2, 1] = 1
    d = distance_to_measurement(mask)
    assert d[0, 0, 2, 1] == 0 and d[0, 0, 2, 4] == pytest.approx(3.0, abs=1e-3)
    assert d[0, 0, 0, 1] == pytest.approx(2.0, abs=1e-3) and d[0, 0, 3, 2] == pytest.approx(math.sqrt(2), abs=1e-2)
    assert (d[1] == 11).all()  # no measurement: H + W
    with pytest.raises(ShapeError):
        distance_to_measurement(torch.zeros(5, 6))


def test_iou_and_f1_by_hand():
    pred = torch.tensor([[0.9, 0.8, 0.1], [0.6, 0.2, 0.0]]).view(1, 1, 2, 3)
    target = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]).view(1, 1, 2, 3)
    tp, fp, fn = mask_counts(pred, target)
    assert (tp, fp, fn) == (2, 1, 1)
    assert iou_from_counts(tp, fp, fn) == pytest.approx(2 / 4)
    assert f1_from_counts(tp, fp, fn) == pytest.approx(4 / 6)
    assert iou_from_counts(0, 0, 0) == 1.0 and f1_from_counts(0, 0, 0) == 1.0
    with pytest.raises(ShapeError):
        mask_counts(pred, target[..., :2])


def test_accumulator_summary():
    gen = torch.Generator().manual_seed(1)
    gt = 5 + 20 * torch.rand(2, 1, 8, 10, generator=gen)
    gt[0, 0, 0] = 0  # missing ground truth
    pred = gt + torch.randn(2, 1, 8, 10, generator=gen)
    err = (pred - gt).abs()
    fg = (torch.rand(2, 1, 8, 10, generator=gen) < 0.3).float()
    acc = HeadsAccumulator()
    acc.update(pred, gt, {"perfect": err, "flat": torch.zeros_like(err)}, fg_prob=fg, fg_gt=fg)
    out = acc.compute()
    assert out["images"] == 2
    assert out["confidence"]["perfect"]["ause"] == pytest.approx(0.0, abs=1e-9)
    assert out["confidence"]["flat"]["ause"] > 0
    assert out["confidence"]["perfect"]["curve"] == out["oracle"]
    assert out["fg"]["iou"] == 1.0 and out["fg"]["f1"] == 1.0
    assert set(out["depth_in_fg"]) == {"inside", "outside"}
    assert out["depth_in_fg"]["inside"]["rmse"] > 0

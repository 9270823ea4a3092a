"""Tests for depthsense/check.py: the one shape checker."""

from __future__ import annotations

import doctest

import pytest
import torch

from depthsense import check
from depthsense.check import Dims, check_shape
from depthsense.errors import ShapeError


def test_binds_named_sizes_and_accepts_fixed_ones():
    dims = check_shape(torch.zeros(2, 1, 4, 5), "B,1,H,W", "pred")
    assert dict(dims) == {"B": 2, "H": 4, "W": 5}
    more = check_shape(torch.zeros(2, 3, 4, 5), "B,3,H,W", "rgb", dims=dims)
    assert dict(more) == {"B": 2, "H": 4, "W": 5}
    assert more.owner("H") == ("pred", (2, 1, 4, 5))
    assert dict(dims) == {"B": 2, "H": 4, "W": 5}  # the earlier binding is not changed


def test_a_name_repeated_in_one_spec_must_agree():
    check_shape(torch.zeros(3, 3), "N,N", "square")
    with pytest.raises(ShapeError, match=r"square has shape \(3, 4\); expected \(N,N\)"):
        check_shape(torch.zeros(3, 4), "N,N", "square")


def test_alternatives_are_tried_in_order_and_all_listed():
    assert dict(check_shape(torch.zeros(4, 5), "B,1,H,W|B,H,W|H,W", "gt")) == {"H": 4, "W": 5}
    assert dict(check_shape(torch.zeros(2, 4, 5), "B,1,H,W|B,H,W|H,W", "gt")) == {"B": 2, "H": 4, "W": 5}
    with pytest.raises(ShapeError, match=r"gt has shape \(2,\); expected \(B,1,H,W\), \(B,H,W\) or \(H,W\)"):
        check_shape(torch.zeros(2), "B,1,H,W|B,H,W|H,W", "gt")


def test_wrong_fixed_size_names_the_tensor_where_and_the_fix():
    with pytest.raises(ShapeError) as info:
        check_shape(torch.zeros(2, 3, 4, 5), "B,1,H,W", "pred", where="masked_l1", hint="Depth is one channel.")
    assert str(info.value) == "masked_l1: pred has shape (2, 3, 4, 5); expected (B,1,H,W). Depth is one channel."


def test_a_size_that_differs_from_an_earlier_tensor_names_both():
    dims = check_shape(torch.zeros(1, 1, 2, 2), "B,1,H,W", "pred")
    with pytest.raises(ShapeError) as info:
        check_shape(torch.zeros(1, 1, 3, 3), "B,1,H,W", "gt", where="masked_l2", dims=dims)
    assert str(info.value) == ("masked_l2: gt has shape (1, 1, 3, 3) but pred has (1, 1, 2, 2); "
                               "expected (B,1,H,W) with the same B, H, W.")


def test_wrong_rank_against_bound_sizes_still_names_the_other_tensor():
    dims = check_shape(torch.zeros(2, 3, 8, 8), "B,C,H,W", "features")
    with pytest.raises(ShapeError) as info:
        check_shape(torch.zeros(2, 8, 8), "B,1,H,W", "mask", dims=dims)
    assert str(info.value) == "mask has shape (2, 8, 8); expected (B,1,H,W) with the B, H, W of features (2, 3, 8, 8)."


def test_plain_dict_as_dims():
    with pytest.raises(ShapeError, match=r"curve has shape \(4,\); expected \(F\) with F = 5"):
        check_shape(torch.zeros(4), "F", "curve", dims={"F": 5})


@pytest.mark.parametrize("value", [None, [1.0, 2.0], 3.0])
def test_not_a_tensor(value):
    with pytest.raises(ShapeError, match=rf"x is a {type(value).__name__}; expected a torch.Tensor of shape \(B,1,H,W\)"):
        check_shape(value, "B,1,H,W", "x")


def test_shape_error_is_a_value_error_and_dims_is_a_mapping():
    assert issubclass(ShapeError, ValueError)
    assert isinstance(check_shape(torch.zeros(1), "N", "x"), Dims)


def test_docstring_examples_run():
    assert doctest.testmod(check, optionflags=doctest.ELLIPSIS).failed == 0

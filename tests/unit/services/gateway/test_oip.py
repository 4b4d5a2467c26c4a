"""Open Inference Protocol tensors → tabular rows, and the error for each wrong shape."""

from __future__ import annotations

import pytest

from services.gateway.errors import ApiError
from services.gateway.routes.oip import rows_from_inputs

FEATURES = ["a", "b", "c"]


def tensor(name: str, data: list, shape: list[int] | None = None) -> dict:
    return {"name": name, "shape": shape or [len(data)], "datatype": "FP64", "data": data}


def test_one_tensor_per_feature() -> None:
    inputs = [tensor("a", [1, 2]), tensor("b", [3, 4]), tensor("c", [[5], [6]], [2, 1])]
    assert rows_from_inputs(inputs, FEATURES) == [
        {"a": 1, "b": 3, "c": 5},
        {"a": 2, "b": 4, "c": 6},
    ]


def test_one_matrix_flat_or_nested() -> None:
    flat = tensor("input-0", [1, 2, 3, 4, 5, 6], [2, 3])
    nested = tensor("input-0", [[1, 2, 3], [4, 5, 6]], [2, 3])
    expected = [{"a": 1, "b": 2, "c": 3}, {"a": 4, "b": 5, "c": 6}]
    assert rows_from_inputs([flat], FEATURES) == expected
    assert rows_from_inputs([nested], FEATURES) == expected


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        (None, "non-empty list"),
        ([], "non-empty list"),
        (["x"], "non-empty list"),
        ([tensor("a", [1]), tensor("zz", [1])], "not a feature"),
        ([tensor("a", [1, 2]), tensor("b", [1])], "same row count"),
        ([tensor("m", [1, 2, 3], [1, 2])], "shape [N, 3]"),
        ([tensor("m", [1, 2], [1, 3])], "do not fill rows"),
        ([{"name": "a", "shape": [1], "datatype": "FP64"}], "no 'data' list"),
    ],
)
def test_wrong_shapes_are_a_clear_400(inputs: object, says: str) -> None:
    with pytest.raises(ApiError) as caught:
        rows_from_inputs(inputs, FEATURES)
    assert caught.value.status == 400 and caught.value.code == "malformed"
    assert says in caught.value.message

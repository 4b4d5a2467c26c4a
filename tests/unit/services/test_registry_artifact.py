"""Artifacts: both formats, both libraries, digests, chunking, task and class detection."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import linear_model, preprocessing
from sklearn.linear_model import LinearRegression, LogisticRegression

from services.registry import IntegrityError, InvalidModelError
from services.registry._artifact import (
    class_labels,
    deserialize,
    environment,
    guess_task,
    join,
    require_predictor,
    serialize,
    sha256,
    split,
    verify,
)

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = pd.Series([0, 0, 1, 1])


def river_model() -> object:
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for row, label in zip(X.to_dict("records"), Y, strict=True):
        model.learn_one(row, bool(label))
    return model


@pytest.mark.parametrize("fmt", ["cloudpickle", "joblib"])
def test_sklearn_round_trip(fmt: str) -> None:
    model = LogisticRegression().fit(X, Y)
    loaded = deserialize(serialize(model, fmt), fmt)
    assert list(loaded.predict(X)) == list(model.predict(X))  # type: ignore[attr-defined]


@pytest.mark.parametrize("fmt", ["cloudpickle", "joblib"])
def test_river_round_trip(fmt: str) -> None:
    model = river_model()
    loaded = deserialize(serialize(model, fmt), fmt)
    row = {"a": 2.5, "b": 0.0}
    assert loaded.predict_proba_one(row) == model.predict_proba_one(row)  # type: ignore[attr-defined]


def test_verify_detects_one_flipped_byte() -> None:
    data = serialize(LinearRegression().fit(X, Y))
    verify(data, sha256(data), what="m v1")
    tampered = bytes([data[0] ^ 1]) + data[1:]
    with pytest.raises(IntegrityError, match="m v1 does not match its SHA-256"):
        verify(tampered, sha256(data), what="m v1")


def test_garbage_does_not_load() -> None:
    with pytest.raises(InvalidModelError, match="could not be loaded as cloudpickle"):
        deserialize(b"not a pickle", "cloudpickle")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidModelError, match="use one of cloudpickle, joblib"):
        serialize(LinearRegression(), "onnx")


def test_a_predictor_is_required() -> None:
    assert require_predictor(river_model()) is not None
    with pytest.raises(InvalidModelError, match="expected a River model"):
        require_predictor({"weights": [1, 2]})


def test_task_and_classes() -> None:
    assert guess_task(LogisticRegression()) == "classification"
    assert guess_task(linear_model.LinearRegression()) == "regression"
    assert guess_task(river_model()) == "classification"
    assert class_labels(LogisticRegression().fit(X, Y)) == ["0", "1"]
    assert class_labels(LogisticRegression().fit(X, Y == 1)) == ["false", "true"]
    assert class_labels(river_model()) is None


@given(st.binary(max_size=5000), st.integers(1, 1200))
@settings(deadline=None)  # hypothesis' default 200 ms per example is a timing assertion
def test_split_join_round_trip(data: bytes, size: int) -> None:
    chunks = split(data, size)
    assert join(chunks) == data
    assert all(len(chunk) == size for chunk in chunks[:-1]) and len(chunks) > 0
    assert len(chunks) == max(1, -(-len(data) // size))


def test_split_rejects_zero_size() -> None:
    with pytest.raises(ValueError, match="chunk size"):
        split(b"abc", 0)


def test_environment_names_python_and_libraries() -> None:
    env = environment()
    assert {"python", "cloudpickle", "scikit-learn", "river"} <= set(env)

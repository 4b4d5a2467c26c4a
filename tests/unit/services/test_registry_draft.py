"""Registration inputs are checked before Kafka is touched."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from services.registry import (
    ArtifactTooLargeError,
    InvalidModelError,
    InvalidSchemaError,
    RegistryError,
)
from services.registry._artifact import serialize, sha256
from services.registry._draft import make_draft

SCHEMA = {
    "type": "record",
    "name": "Churn",
    "fields": [
        {"name": "age", "type": "double"},
        {"name": "plan", "type": {"type": "enum", "name": "Plan", "symbols": ["basic", "pro"]}},
        {"name": "sex", "type": ["null", "string"], "default": None},
    ],
}
TRAIN = pd.DataFrame(
    {
        "age": np.linspace(18, 80, 200),
        "plan": ["basic", "pro"] * 100,
        "sex": ["f", "m", None, "f"] * 50,
        "label": [0, 1] * 100,
    }
)
MODEL = LogisticRegression().fit(TRAIN[["age"]], TRAIN["label"])


def draft(**overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "name": "churn", "data": serialize(MODEL), "input_schema": SCHEMA, "model": MODEL,
        "task": None, "fmt": "cloudpickle", "max_bytes": 10**7,
    }  # fmt: skip
    kwargs |= overrides
    return make_draft(kwargs.pop("name"), kwargs.pop("data"), kwargs.pop("input_schema"), **kwargs)


def test_a_complete_draft() -> None:
    made = draft(
        reference=TRAIN, sensitive=["sex"], hyperparameters={"C": 1.0, "penalty": "l2"},
        training_metrics={"auc": 0.9, "n": 200}, code_version="abc", description="first",
        role="champion",
    )  # fmt: skip
    assert made.task == "classification" and made.classes == ("0", "1")
    assert made.features == ("age", "plan", "sex") and made.sensitive == ("sex",)
    assert made.hyperparameters == {"C": "1.0", "penalty": "l2"}
    assert made.training_metrics == {"auc": 0.9, "n": 200.0}
    assert set(made.profile["numeric"]) == {"age"}
    assert set(made.profile["categorical"]) == {"plan", "sex"}  # the label is not profiled
    assert made.profile["categorical"]["sex"]["missing"] == 50
    assert made.fingerprint.startswith("sha256:")
    mv = made.version(4, author="ana", at=datetime.now(UTC), chunk_count=1)
    assert (mv.version, mv.artifact_sha256, mv.author) == (4, sha256(made.data), "ana")


def test_task_is_guessed_or_taken() -> None:
    regressor = LinearRegression().fit(TRAIN[["age"]], TRAIN["label"])
    assert draft(model=regressor, data=serialize(regressor)).task == "regression"
    assert draft(task="regression").task == "regression"


class Opaque:
    def predict(self, rows: Any) -> list[int]:
        return [0 for _ in rows]


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"name": "bad.name"}, InvalidModelError, "model name 'bad.name' is not valid"),
        ({"task": "ranking"}, InvalidModelError, "task must be one of classification, regression"),
        ({"model": Opaque()}, InvalidModelError, "classifier or a regressor"),
        ({"model": object()}, InvalidModelError, "cannot serve predictions"),
        ({"fmt": "pickle"}, InvalidModelError, "use one of cloudpickle, joblib"),
        ({"role": "primary"}, InvalidModelError, "role must be one of champion"),
        ({"max_bytes": 10}, ArtifactTooLargeError, "over the registry's limit"),
        ({"sensitive": ["race"]}, InvalidSchemaError, "'race' is not a field"),
        ({"reference": TRAIN[["age"]]}, InvalidSchemaError, "no column for input fields plan, sex"),
        ({"training_metrics": {"auc": float("nan")}}, InvalidModelError, "finite number"),
        ({"training_metrics": {"auc": "high"}}, InvalidModelError, "finite number"),
        (
            {"input_schema": {"type": "record", "name": "R", "fields": []}},
            InvalidSchemaError,
            "at least one",
        ),
    ],
    ids=lambda value: re.sub(r" at 0x[0-9a-f]+", "", str(value))[:40],
)
def test_refused(overrides: dict[str, Any], error: type[RegistryError], message: str) -> None:
    with pytest.raises(error, match=message):
        draft(**overrides)

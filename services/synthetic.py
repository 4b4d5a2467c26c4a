"""Synthetic data and small trained models for the demo, the benchmark and the tests.

A binary classification problem on ``n`` numeric features ``x0..x{n-1}`` and one
categorical sensitive attribute ``group`` (``a`` | ``b``): the label is 1 when a fixed
linear score plus noise is positive. Everything is seeded and reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

__all__ = [
    "CHANGED_WEIGHTS",
    "WEIGHTS",
    "input_schema",
    "labelled_rows",
    "river_challenger",
    "river_champion",
    "rows",
    "true_label",
]

WEIGHTS = (1.0, -0.8, 0.6, 0.5, -0.4, 0.3, 0.2, -0.2, 0.1, 0.05)
#: the concept after a change: x0, x1 and x2 act the other way round (a model trained
#: before it is wrong on about 3 requests in 5, its inputs unchanged)
CHANGED_WEIGHTS = (-1.0, 0.8, -0.6, 0.5, -0.4, 0.3, 0.2, -0.2, 0.1, 0.05)


def input_schema(
    n_features: int = 10, *, sensitive: bool = True, name: str = "Features"
) -> dict[str, Any]:
    """The Avro input record: ``x0..x{n-1}`` doubles (+ ``group`` enum-like string)."""
    fields: list[dict[str, Any]] = [
        {"name": f"x{i}", "type": "double", "doc": f"numeric feature {i}"}
        for i in range(n_features)
    ]
    if sensitive:
        fields.append({"name": "group", "type": "string", "doc": "sensitive attribute: a | b"})
    return {"type": "record", "name": name, "namespace": "io.modelstream.demo", "fields": fields}


def rows(
    count: int, *, n_features: int = 10, seed: int = 7, shift: dict[str, float] | None = None,
    sensitive: bool = True, group_effect: float = 0.0,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Feature rows ~ N(0, 1); ``shift`` adds a constant to named features (drift);
    ``group_effect`` lowers x0 for group ``b`` (a group the model treats differently)."""
    rng = random.Random(seed)
    shift = shift or {}
    for _ in range(count):
        row: dict[str, Any] = {
            f"x{i}": rng.gauss(0.0, 1.0) + shift.get(f"x{i}", 0.0) for i in range(n_features)
        }
        if sensitive:
            row["group"] = "a" if rng.random() < 0.6 else "b"
            if row["group"] == "b":
                row["x0"] -= group_effect
        yield row


def true_label(
    row: dict[str, Any], rng: random.Random, weights: tuple[float, ...] = WEIGHTS
) -> bool:
    """The ground truth: a linear score plus noise (``CHANGED_WEIGHTS``: after the
    concept change)."""
    score = sum(w * row.get(f"x{i}", 0.0) for i, w in enumerate(weights))
    return bool(score + rng.gauss(0.0, 0.5) > 0)


def labelled_rows(count: int, *, seed: int = 1, **kwargs: Any) -> list[tuple[dict[str, Any], bool]]:
    rng = random.Random(seed + 1)
    return [(row, true_label(row, rng)) for row in rows(count, seed=seed, **kwargs)]


def _numeric(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "group"}


def river_champion(train: list[tuple[dict[str, Any], bool]]) -> Any:
    """StandardScaler → LogisticRegression, trained online on ``train``."""
    from river import compose, linear_model, preprocessing

    model = compose.Select(*sorted(_numeric(train[0][0]))) | preprocessing.StandardScaler()
    model = model | linear_model.LogisticRegression()
    for row, label in train:
        model.learn_one(row, label)
    return model


def river_challenger(train: list[tuple[dict[str, Any], bool]]) -> Any:
    """A different model on the same features: StandardScaler → Perceptron-ish
    LogisticRegression with a larger learning rate and L2."""
    from river import compose, linear_model, optim, preprocessing

    model = compose.Select(*sorted(_numeric(train[0][0]))) | preprocessing.StandardScaler()
    model = model | linear_model.LogisticRegression(optimizer=optim.SGD(0.1), l2=0.01)
    for row, label in train:
        model.learn_one(row, label)
    return model

"""Adapters give every model artifact one batch interface: ``predict(rows) -> outcomes``.

River models (``predict_proba_one`` / ``predict_one``) are called row by row, which is
their fast path (~3-6 µs a row); scikit-learn style models (``predict_proba`` /
``predict``) are called once per batch, which is theirs (~100 µs for one row, well under
1 µs a row in a batch). A batch call that raises is retried row by row so that only the
rows that really fail are reported failed (and can go to the backup model).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from streams.scoring.outcome import Outcome

__all__ = ["Predictor", "UnsupportedModelError", "adapt"]

Row = dict[str, Any]


class UnsupportedModelError(TypeError):
    """The artifact has none of the prediction methods modelstream knows."""


class Predictor(Protocol):
    def predict(self, rows: Sequence[Row]) -> list[Outcome]: ...


def _failure(exc: BaseException, started: float) -> Outcome:
    message = f"{type(exc).__name__}: {exc}"[:500]
    return Outcome.failed("model_failed", message, (time.perf_counter() - started) * 1e3)


def _label(value: Any) -> str | float:
    if isinstance(value, bool | str | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    return float(value)


class RiverClassifier:
    """``predict_proba_one`` per row; the label is the most probable class."""

    def __init__(self, model: Any) -> None:
        self._proba = model.predict_proba_one
        self._one = model.predict_one

    def predict(self, rows: Sequence[Row]) -> list[Outcome]:
        out = []
        clock = time.perf_counter
        for row in rows:
            started = clock()
            try:
                proba = self._proba(row)
                if proba:
                    best = max(proba, key=proba.__getitem__)
                    probs = {str(k): float(v) for k, v in proba.items()}
                    out.append(Outcome(_label(best), probs, (clock() - started) * 1e3))
                else:
                    out.append(Outcome(_label(self._one(row)), None, (clock() - started) * 1e3))
            except Exception as exc:  # noqa: BLE001 - a model failure is data, not a crash
                out.append(_failure(exc, started))
        return out


class RiverRegressor:
    """``predict_one`` per row."""

    def __init__(self, model: Any) -> None:
        self._one = model.predict_one

    def predict(self, rows: Sequence[Row]) -> list[Outcome]:
        out = []
        clock = time.perf_counter
        for row in rows:
            started = clock()
            try:
                value = float(self._one(row))
                out.append(Outcome(value, None, (clock() - started) * 1e3))
            except Exception as exc:  # noqa: BLE001
                out.append(_failure(exc, started))
        return out


class SklearnModel:
    """One ``predict_proba`` (or ``predict``) call per batch over the declared features."""

    def __init__(self, model: Any, features: Sequence[str], classification: bool) -> None:
        self._model = model
        self._features = list(features)
        self._proba = getattr(model, "predict_proba", None) if classification else None
        self._classes = [str(c) for c in getattr(model, "classes_", [])]

    def _matrix(self, rows: Sequence[Row]) -> Any:
        try:
            return np.array([[row[f] for f in self._features] for row in rows], dtype=float)
        except (TypeError, ValueError):  # categorical features: let the pipeline see names
            import pandas as pd

            return pd.DataFrame(list(rows), columns=self._features)

    def _call(self, rows: Sequence[Row]) -> list[Outcome]:
        started = time.perf_counter()
        matrix = self._matrix(rows)
        if self._proba is not None and self._classes:
            proba = self._proba(matrix)
            each = (time.perf_counter() - started) * 1e3 / len(rows)
            best = proba.argmax(axis=1)
            classes = self._classes
            return [
                Outcome(classes[b], dict(zip(classes, map(float, p), strict=True)), each)
                for b, p in zip(best, proba, strict=True)
            ]
        predicted = self._model.predict(matrix)
        each = (time.perf_counter() - started) * 1e3 / len(rows)
        return [Outcome(_label(v), None, each) for v in predicted]

    def predict(self, rows: Sequence[Row]) -> list[Outcome]:
        if not rows:
            return []
        try:
            return self._call(rows)
        except Exception:  # noqa: BLE001 - find the failing rows one by one
            if len(rows) == 1:
                started = time.perf_counter()
                try:
                    return self._call(rows)
                except Exception as exc:  # noqa: BLE001
                    return [_failure(exc, started)]
            return [outcome for row in rows for outcome in self.predict([row])]


def adapt(model: Any, *, task: str, features: Sequence[str]) -> Predictor:
    """Wrap ``model`` for ``task`` (classification | regression).

    >>> class Half:
    ...     def predict_one(self, x): return x["a"] / 2
    >>> adapt(Half(), task="regression", features=["a"]).predict([{"a": 3.0}])[0].output
    1.5
    """
    classification = task == "classification"
    if hasattr(model, "predict_proba") or (
        hasattr(model, "predict") and not hasattr(model, "predict_one")
    ):
        return SklearnModel(model, features, classification)
    if classification and hasattr(model, "predict_proba_one"):
        return RiverClassifier(model)
    if hasattr(model, "predict_one"):
        return RiverRegressor(model) if not classification else _RiverLabelOnly(model)
    raise UnsupportedModelError(
        f"{type(model).__name__} has no predict_proba_one/predict_one (River) or "
        "predict_proba/predict (scikit-learn): modelstream cannot call it"
    )


class _RiverLabelOnly(RiverRegressor):
    """A River classifier without probabilities: labels only."""

    def predict(self, rows: Sequence[Row]) -> list[Outcome]:
        out = []
        clock = time.perf_counter
        for row in rows:
            started = clock()
            try:
                out.append(Outcome(_label(self._one(row)), None, (clock() - started) * 1e3))
            except Exception as exc:  # noqa: BLE001
                out.append(_failure(exc, started))
        return out

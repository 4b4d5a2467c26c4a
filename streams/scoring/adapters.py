"""Adapters give every model artifact one batch interface: ``predict(frame) -> outcomes``.

- scikit-learn style models (``predict_proba`` / ``predict``): one call per batch on a
  float matrix built from the frame's columns (~100 µs for one row, well under 1 µs a row
  in a batch);
- River linear pipelines (:mod:`streams.scoring.linear`): compiled once per loaded
  version into numpy arithmetic over the columns that gives River's own numbers; a batch
  the program cannot do exactly falls back to River's row loop;
- any other River model (``predict_proba_one`` / ``predict_one``): row by row, which is
  its fast path (~3-13 µs a row).

A batch call that raises is retried row by row so that only the rows that really fail
are reported failed (and can go to the backup model).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from streams.scoring.frame import Frame, Row
from streams.scoring.linear import LinearProgram, Uncompilable, compile_river
from streams.scoring.outcome import Outcome

__all__ = ["CompiledRiver", "Predictor", "UnsupportedModelError", "adapt"]

Rows = Frame | Sequence[Row]


class UnsupportedModelError(TypeError):
    """The artifact has none of the prediction methods modelstream knows."""


class Predictor(Protocol):
    def predict(self, rows: Rows) -> list[Outcome]: ...


def _failure(exc: BaseException, started: float) -> Outcome:
    message = f"{type(exc).__name__}: {exc}"[:500]
    return Outcome.failed("model_failed", message, (time.perf_counter() - started) * 1e3)


def _label(value: Any) -> str | float:
    if isinstance(value, bool | str | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    return float(value)


def _class_outcomes(
    labels: list[Any], keys: list[str], proba: Any, started: float
) -> list[Outcome]:
    """One outcome per row of an (n, classes) probability matrix: the most probable class
    (the first on ties, like ``max`` over River's dict) and every class's probability."""
    best = proba.argmax(axis=1).tolist()
    rows = proba.tolist()
    each = (time.perf_counter() - started) * 1e3 / max(len(rows), 1)
    if len(keys) == 2:  # binary, the common case: a dict display is twice as fast as zip
        k0, k1 = keys
        pairs = zip(best, rows, strict=True)
        return [Outcome(labels[b], {k0: p[0], k1: p[1]}, each) for b, p in pairs]
    pairs = zip(best, rows, strict=True)
    return [Outcome(labels[b], dict(zip(keys, p, strict=True)), each) for b, p in pairs]


class RiverClassifier:
    """``predict_proba_one`` per row; the label is the most probable class."""

    def __init__(self, model: Any) -> None:
        self._proba = model.predict_proba_one
        self._one = model.predict_one

    def predict(self, rows: Rows) -> list[Outcome]:
        out = []
        clock = time.perf_counter
        for row in Frame.of(rows).rows:
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
    """``predict_one`` per row, as a number."""

    def __init__(self, model: Any) -> None:
        self._one = model.predict_one

    @staticmethod
    def _convert(value: Any) -> str | float:
        return float(value)

    def predict(self, rows: Rows) -> list[Outcome]:
        out = []
        clock, one, convert = time.perf_counter, self._one, self._convert
        for row in Frame.of(rows).rows:
            started = clock()
            try:
                out.append(Outcome(convert(one(row)), None, (clock() - started) * 1e3))
            except Exception as exc:  # noqa: BLE001 - a model failure is data, not a crash
                out.append(_failure(exc, started))
        return out


class _RiverLabelOnly(RiverRegressor):
    """A River classifier without probabilities: ``predict_one`` per row, as a label."""

    _convert = staticmethod(_label)


class CompiledRiver:
    """A River linear pipeline run as numpy arithmetic over the frame's columns.

    Gives River's numbers (:mod:`streams.scoring.linear`); a batch the program cannot
    do exactly (a null, a string where a number is scaled) goes to River's row loop,
    which reproduces River's own answer or failure for each row.

    ``inline``: its work is bounded (numpy over the batch, or River's own linear code for
    a fallback batch), so the scorer calls it on its own thread, without a deadline
    guard: no thread hand-over (~1-2 ms a batch under load) on the reply's path.
    """

    inline = True

    def __init__(self, program: LinearProgram, fallback: Predictor) -> None:
        self._program = program
        self._fallback = fallback
        classes = program.classes
        self._labels = [_label(c) for c in classes] if classes is not None else None
        self._keys = [str(c) for c in classes] if classes is not None else None

    def predict(self, rows: Rows) -> list[Outcome]:
        frame = Frame.of(rows)
        n = len(frame)
        if not n:
            return []
        started = time.perf_counter()
        try:
            result = self._program.predict(frame.columns(), n)
        except Uncompilable:
            return self._fallback.predict(frame)
        if self._labels is None or self._keys is None:
            values = result.tolist()
            each = (time.perf_counter() - started) * 1e3 / n
            return [Outcome(v, None, each) for v in values]
        return _class_outcomes(self._labels, self._keys, result, started)


class SklearnModel:
    """One ``predict_proba`` (or ``predict``) call per batch over the declared features."""

    def __init__(self, model: Any, features: Sequence[str], classification: bool) -> None:
        self._model = model
        self._features = list(features)
        self._proba = getattr(model, "predict_proba", None) if classification else None
        self._classes = [str(c) for c in getattr(model, "classes_", [])]

    def _matrix(self, frame: Frame) -> Any:
        columns = [frame.column(f) for f in self._features]
        try:
            return np.array(columns, dtype=float).T
        except (TypeError, ValueError):  # categorical features: let the pipeline see names
            import pandas as pd

            return pd.DataFrame(dict(zip(self._features, columns, strict=True)))

    def _call(self, frame: Frame) -> list[Outcome]:
        started = time.perf_counter()
        matrix = self._matrix(frame)
        n = len(frame)
        if self._proba is not None and self._classes:
            proba = np.asarray(self._proba(matrix), dtype=float)
            return _class_outcomes(self._classes, self._classes, proba, started)
        predicted = self._model.predict(matrix)
        each = (time.perf_counter() - started) * 1e3 / n
        return [Outcome(_label(v), None, each) for v in predicted]

    def predict(self, rows: Rows) -> list[Outcome]:
        frame = Frame.of(rows)
        if not len(frame):
            return []
        try:
            return self._call(frame)
        except Exception:  # noqa: BLE001 - find the failing rows one by one
            if len(frame) == 1:
                started = time.perf_counter()
                try:
                    return self._call(frame)
                except Exception as exc:  # noqa: BLE001
                    return [_failure(exc, started)]
            return [outcome for i in range(len(frame)) for outcome in self.predict(frame.take([i]))]


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
        loop: Predictor = RiverClassifier(model)
    elif hasattr(model, "predict_one"):
        loop = RiverRegressor(model) if not classification else _RiverLabelOnly(model)
    else:
        raise UnsupportedModelError(
            f"{type(model).__name__} has no predict_proba_one/predict_one (River) or "
            "predict_proba/predict (scikit-learn): modelstream cannot call it"
        )
    program = compile_river(model, task)
    return loop if program is None else CompiledRiver(program, loop)

"""Trainers that ship with modelstream, for ``modelstream retrain --trainer``.

A trainer is any function ``(frame, params) -> model`` (see ``services.lifecycle``): the
frame has one column per input field and ``label``, in time order; ``params`` are the
``--param k=v`` strings.

- :func:`river_logistic` -- ``services.lifecycle.trainers:river_logistic``: River's
  StandardScaler → LogisticRegression over the numeric input fields, learnt online in
  time order (``epochs`` passes). Labels ``True`` / ``False`` train a binary model that
  answers booleans, as the demo's champion does; any other classes train one logistic
  regression per class (one-vs-rest) that answers the class text.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"x0": [-2.0, -1.0, 1.0, 2.0] * 25, "group": ["a", "b"] * 50,
...                       "label": ["False", "False", "True", "True"] * 25})
>>> model = river_logistic(frame, {"lr": "0.5", "epochs": "2"})
>>> model.predict_one({"x0": 3.0, "group": "a"}), model.predict_one({"x0": -3.0, "group": "b"})
(True, False)
>>> river_logistic(frame, {"epochs": "zero"})
Traceback (most recent call last):
ValueError: param epochs must be a whole number >= 1, got 'zero'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pandas as pd

__all__ = ["river_logistic"]

_BOOLEAN_CLASSES: Final = frozenset({"True", "False"})


def river_logistic(frame: pd.DataFrame, params: Mapping[str, str]) -> Any:
    """River ``Select(numeric) | StandardScaler | LogisticRegression(SGD(lr))``, ``epochs``
    passes over ``frame`` in its order. Params: ``lr`` (default 0.05), ``epochs`` (1),
    ``l2`` (0)."""
    from river import compose, linear_model, multiclass, optim, preprocessing

    lr = _number(params, "lr", 0.05)
    l2 = _number(params, "l2", 0.0)
    epochs = _whole(params, "epochs", 1)
    numeric = [
        str(name)
        for name in frame.columns
        if name != "label"
        and pd.api.types.is_numeric_dtype(frame[name])
        and not pd.api.types.is_bool_dtype(frame[name])
    ]
    if not numeric:
        raise ValueError("river_logistic needs at least one numeric input field, got none")
    labels = frame["label"].astype(str)
    binary = set(labels.unique()) <= _BOOLEAN_CLASSES
    classifier: Any = linear_model.LogisticRegression(optimizer=optim.SGD(lr), l2=l2)
    if not binary:
        classifier = multiclass.OneVsRestClassifier(classifier)
    model = compose.Select(*numeric) | preprocessing.StandardScaler() | classifier
    # a missing value (NaN) is left out of its row, as River's sparse dicts expect
    rows = [
        {k: v for k, v in row.items() if v == v}
        for row in frame[numeric].astype(float).to_dict("records")
    ]
    targets = [label == "True" for label in labels] if binary else list(labels)
    for _ in range(epochs):
        for row, target in zip(rows, targets, strict=True):
            model.learn_one(row, target)
    return model


def _number(params: Mapping[str, str], name: str, default: float) -> float:
    text = params.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"param {name} must be a number, got {text!r}") from None
    if value < 0:
        raise ValueError(f"param {name} must be 0 or more, got {text!r}")
    return value


def _whole(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"param {name} must be a whole number >= 1, got {text!r}")
    return int(text)

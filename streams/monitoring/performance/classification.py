"""Classification metrics over one window of labelled predictions, scikit-learn's definitions.

Binary metrics take the positive label; a ratio with a zero denominator is 0 (sklearn's
``zero_division=0``). :func:`log_loss` takes the probability each prediction gave to the
*true* class, clipped to ``[eps, 1 - eps]`` with ``eps`` the float64 machine epsilon (as
:func:`sklearn.metrics.log_loss`).

Examples
--------
>>> y_true = ["a", "b", "a", "a"]
>>> y_pred = ["a", "a", "b", "a"]
>>> accuracy(y_true, y_pred)
0.5
>>> confusion(y_true, y_pred, positive="a")
Confusion(tp=2, fp=1, fn=1, tn=0)
>>> c = confusion(y_true, y_pred, positive="a")
>>> precision(c), recall(c), f1(c)
(0.6666666666666666, 0.6666666666666666, 0.6666666666666666)
>>> round(log_loss([0.9, 0.2, 0.6, 1.0]), 6)
0.556406
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from streams.monitoring.errors import EmptySampleError

__all__ = ["Confusion", "accuracy", "confusion", "f1", "log_loss", "precision", "recall"]

_EPS = float(np.finfo(np.float64).eps)


class Confusion(NamedTuple):
    """Counts of a binary confusion matrix."""

    tp: int
    fp: int
    fn: int
    tn: int


def accuracy(y_true: Sequence[object], y_pred: Sequence[object]) -> float:
    """Fraction of predictions equal to their label."""
    _check(y_true, y_pred)
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def confusion(y_true: Sequence[object], y_pred: Sequence[object], *, positive: object) -> Confusion:
    """Binary confusion counts, ``positive`` against every other label."""
    _check(y_true, y_pred)
    tp = fp = fn = 0
    for t, p in zip(y_true, y_pred, strict=True):
        if p == positive:
            tp, fp = (tp + 1, fp) if t == positive else (tp, fp + 1)
        elif t == positive:
            fn += 1
    return Confusion(tp, fp, fn, len(y_true) - tp - fp - fn)


def precision(c: Confusion) -> float:
    """``tp / (tp + fp)``, 0 when nothing was predicted positive."""
    return c.tp / (c.tp + c.fp) if c.tp + c.fp else 0.0


def recall(c: Confusion) -> float:
    """``tp / (tp + fn)``, 0 when no label was positive."""
    return c.tp / (c.tp + c.fn) if c.tp + c.fn else 0.0


def f1(c: Confusion) -> float:
    """``2 tp / (2 tp + fp + fn)``, 0 when there is nothing to score."""
    denominator = 2 * c.tp + c.fp + c.fn
    return 2 * c.tp / denominator if denominator else 0.0


def log_loss(p_true: Sequence[float]) -> float:
    """Mean negative log of the probability given to the true class."""
    if not p_true:
        raise EmptySampleError("expected at least one probability, got none")
    return -sum(math.log(min(max(p, _EPS), 1 - _EPS)) for p in p_true) / len(p_true)


def _check(y_true: Sequence[object], y_pred: Sequence[object]) -> None:
    if not y_true or len(y_true) != len(y_pred):
        raise EmptySampleError(
            f"expected as many predictions as labels, at least one, got {len(y_pred)} and "
            f"{len(y_true)}"
        )

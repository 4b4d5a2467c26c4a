"""The challenger of the shadow-impact phase: the bench challenger, 50 ms late per batch.

A scikit-learn-style model (``predict_proba`` over a matrix), so the scorer calls it once
per batch: each call sleeps :data:`SLEEP` seconds, then scores every row with the wrapped
River model. Registered by reference (this module is importable in the scorer process).
The phase compares the champion's reply latency at a modest load with this challenger
against the same champion with the ordinary one: the reply must not wait for it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SLEEP", "SleepyChallenger"]

SLEEP = 0.05  # seconds per batch call


class SleepyChallenger:
    """``inner``'s probabilities for ``features`` rows, after sleeping per call."""

    def __init__(self, inner: Any, features: Sequence[str], sleep: float = SLEEP) -> None:
        self.inner, self.features, self.sleep = inner, list(features), sleep
        self.classes_ = np.array([False, True])

    def predict_proba(self, matrix: Any) -> Any:
        time.sleep(self.sleep)
        rows = [
            dict(zip(self.features, values, strict=True)) for values in np.asarray(matrix).tolist()
        ]
        probabilities = [self.inner.predict_proba_one(row) for row in rows]
        return np.array([[p.get(False, 0.0), p.get(True, 0.0)] for p in probabilities])

    def predict(self, matrix: Any) -> Any:
        return self.classes_[self.predict_proba(matrix).argmax(axis=1)]

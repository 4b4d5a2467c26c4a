"""Regression metrics over one window, scikit-learn's definitions.

:func:`r2` is ``1 - SS_res / SS_tot``; when the labels are constant (``SS_tot = 0``) it
is 1 for a perfect fit and 0 otherwise, as :func:`sklearn.metrics.r2_score`.

Examples
--------
>>> y_true, y_pred = [3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0]
>>> mae(y_true, y_pred), rmse(y_true, y_pred)
(0.5, 0.6123724356957945)
>>> round(r2(y_true, y_pred), 6)
0.948608
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from streams.monitoring.errors import EmptySampleError

__all__ = ["mae", "r2", "rmse"]


def mae(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Mean absolute error."""
    t, p = _arrays(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def rmse(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Root mean squared error."""
    t, p = _arrays(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def r2(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Coefficient of determination."""
    t, p = _arrays(y_true, y_pred)
    residual = float(np.sum((t - p) ** 2))
    total = float(np.sum((t - t.mean()) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def _arrays(
    y_true: Sequence[float], y_pred: Sequence[float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if not y_true or len(y_true) != len(y_pred):
        raise EmptySampleError(
            f"expected as many predictions as labels, at least one, got {len(y_pred)} and "
            f"{len(y_true)}"
        )
    return np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)

"""Exact area under the ROC curve from the scores stored for one window.

``AUC = (R+ - n+ (n+ + 1) / 2) / (n+ n-)`` with ``R+`` the sum of the positives' ranks
among all scores (ties get their average rank): the Mann-Whitney statistic, equal to
:func:`sklearn.metrics.roc_auc_score` for binary labels. Undefined (``None``) when the
window holds only one class.

Examples
--------
>>> roc_auc([True, False, True, False], [0.9, 0.3, 0.4, 0.4])
0.875
>>> roc_auc([True, True], [0.2, 0.9]) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from streams.monitoring.errors import EmptySampleError

__all__ = ["roc_auc"]


def roc_auc(is_positive: Sequence[bool], scores: Sequence[float]) -> float | None:
    """ROC AUC of ``scores`` (higher = more likely positive) for binary labels."""
    if not scores or len(scores) != len(is_positive):
        raise EmptySampleError(
            f"expected one score per label, at least one, got {len(scores)} and {len(is_positive)}"
        )
    positive = np.asarray(is_positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))

"""Equalized odds: are both error profiles -- TPR and FPR -- the same across groups?

Fairlearn's ``equalized_odds_difference`` (``agg="worst_case"``): the larger of the TPR
difference and the FPR difference, each ``max - min`` across groups. Groups with an
undefined rate are left out of that rate's difference; ``None`` when neither difference
is defined.

Examples
--------
>>> tpr = {"f": 0.70, "m": 0.90}
>>> fpr = {"f": 0.10, "m": 0.35}
>>> round(equalized_odds_difference(tpr, fpr), 6)
0.25
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.monitoring.fairness.equal_opportunity import rate_difference

__all__ = ["equalized_odds_difference"]


def equalized_odds_difference(
    tpr: Mapping[str, float | None], fpr: Mapping[str, float | None]
) -> float | None:
    """``max(TPR difference, FPR difference)`` across groups."""
    found = [d for d in (rate_difference(tpr), rate_difference(fpr)) if d is not None]
    return max(found) if found else None

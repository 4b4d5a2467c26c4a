"""Equal opportunity: do qualified members of every group get selected at the same rate?

The difference of true positive rates across groups, ``max - min`` (Fairlearn's
``equal_opportunity_difference``). Groups without a labelled positive in the window have
no TPR and are left out (Fairlearn would count them as 0 through scikit-learn's
``zero_division``); ``None`` when fewer than two groups have one.

Examples
--------
>>> round(equal_opportunity_difference({"f": 0.7, "m": 0.9, "x": None}), 6)
0.2
>>> equal_opportunity_difference({"f": 0.7, "x": None}) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["equal_opportunity_difference", "rate_difference"]


def equal_opportunity_difference(tpr: Mapping[str, float | None]) -> float | None:
    """Largest minus smallest true positive rate across the groups that have one."""
    return rate_difference(tpr)


def rate_difference(rates: Mapping[str, float | None]) -> float | None:
    """``max - min`` of the defined rates; ``None`` with fewer than two."""
    values = [v for v in rates.values() if v is not None]
    return max(values) - min(values) if len(values) >= 2 else None

"""Demographic parity: do all groups get positive predictions at the same rate?

Fairlearn's definitions over the groups' selection rates: the **difference** is
``max - min`` (0 is parity), the **ratio** ``min / max`` (1 is parity; the "four-fifths
rule" flags a ratio below 0.8). With no positive prediction in any group the ratio is
undefined (``None``; Fairlearn gives NaN).

Examples
--------
>>> rates = {"f": 0.30, "m": 0.45}
>>> round(demographic_parity_difference(rates), 6), round(demographic_parity_ratio(rates), 6)
(0.15, 0.666667)
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.monitoring.errors import EmptySampleError

__all__ = ["demographic_parity_difference", "demographic_parity_ratio"]


def demographic_parity_difference(selection_rates: Mapping[str, float]) -> float:
    """Largest minus smallest selection rate across groups."""
    values = _values(selection_rates)
    return max(values) - min(values)


def demographic_parity_ratio(selection_rates: Mapping[str, float]) -> float | None:
    """Smallest over largest selection rate across groups."""
    values = _values(selection_rates)
    top = max(values)
    return min(values) / top if top > 0 else None


def _values(rates: Mapping[str, float]) -> list[float]:
    if not rates:
        raise EmptySampleError("expected at least one group, got none")
    return list(rates.values())

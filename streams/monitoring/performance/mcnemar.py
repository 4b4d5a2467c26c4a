"""McNemar's test: do two classifiers, scored on the same requests, differ in accuracy?

Only the discordant requests count: ``b`` where the first model was right and the second
wrong, ``c`` the reverse. With ``b + c < 25`` the p-value is the exact two-sided binomial
``min(1, 2 * P(Bin(b + c, 1/2) <= min(b, c)))`` and the statistic ``min(b, c)``; from 25
on, the chi-square statistic with continuity correction ``(|b - c| - 1)^2 / (b + c)`` on
1 degree of freedom (the conventions of ``statsmodels``' ``mcnemar``). No discordant pair:
statistic 0, p-value 1.

Examples
--------
>>> mcnemar(b=2, c=9)
Significance(statistic=2.0, p_value=0.0654296875)
>>> result = mcnemar(b=40, c=20)
>>> round(result.statistic, 4), round(result.p_value, 4)
(6.0167, 0.0142)
"""

from __future__ import annotations

from typing import Final

from scipy.stats import binom, chi2

from streams.monitoring.results import Significance

__all__ = ["EXACT_BELOW", "mcnemar", "mcnemar_counts"]

EXACT_BELOW: Final = 25


def mcnemar(b: int, c: int) -> Significance:
    """McNemar's test from the two discordant counts."""
    n = b + c
    if n == 0:
        return Significance(0.0, 1.0)
    if n < EXACT_BELOW:
        low = min(b, c)
        return Significance(float(low), float(min(1.0, 2.0 * binom.cdf(low, n, 0.5))))
    statistic = (abs(b - c) - 1) ** 2 / n
    return Significance(float(statistic), float(chi2.sf(statistic, 1)))


def mcnemar_counts(first_right: list[bool], second_right: list[bool]) -> tuple[int, int]:
    """``(b, c)``: requests only the first got right, requests only the second got right.

    >>> mcnemar_counts([True, True, False, False], [True, False, True, True])
    (1, 2)
    """
    b = sum(1 for x, y in zip(first_right, second_right, strict=True) if x and not y)
    c = sum(1 for x, y in zip(first_right, second_right, strict=True) if y and not x)
    return b, c

"""Confidence intervals for the performance chart: counts in, ``(low, high)`` out.

Accuracy is a proportion: its 95 % interval is Wilson's score interval, which stays
inside [0, 1] and behaves for small counts and for 0 or all hits (the normal
approximation does neither). A mean absolute error gets the normal interval of a mean,
``mean ± z s / sqrt(n)``: with the hundreds of labels a bucket holds, good enough.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["Z95", "mean_interval", "wilson"]

Z95: Final = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``hits / n``; (nan, nan) without observations.

    >>> [round(v, 4) for v in wilson(81, 100)]
    [0.7222, 0.8749]
    >>> [round(v, 4) for v in wilson(0, 10)]
    [0.0, 0.2775]
    >>> [round(v, 4) for v in wilson(10, 10)]
    [0.7225, 1.0]
    >>> wilson(0, 0)
    (nan, nan)
    """
    if n <= 0:
        return math.nan, math.nan
    p = hits / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(mean: float, sd: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Normal interval of a mean; the mean alone when one observation gives no spread.

    >>> [round(v, 4) for v in mean_interval(2.0, 1.0, 100)]
    [1.804, 2.196]
    >>> mean_interval(2.0, float("nan"), 1)
    (2.0, 2.0)
    """
    if n <= 1 or not math.isfinite(sd):
        return mean, mean
    half = z * sd / math.sqrt(n)
    return mean - half, mean + half

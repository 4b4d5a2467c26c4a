"""Population stability index (PSI) between two binned distributions.

``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over the bin proportions ``e`` (reference) and
``a`` (live). It is the symmetrised Kullback-Leibler divergence of the two histograms:
0 for identical ones, growing without bound as they part. Rule of thumb: below 0.1 stable,
0.1-0.2 moderate shift, above 0.2 significant shift.

An empty bin would make the logarithm infinite, so every proportion below
:data:`PSI_EPSILON` (``1e-4``) is raised to it before the sum (the convention of most
monitoring tools); the proportions are not renormalised afterwards.

Examples
--------
>>> psi([10, 20, 30, 40], [10, 20, 30, 40])
0.0
>>> round(psi([25, 25, 25, 25], [10, 20, 30, 40]), 6)
0.228217
>>> round(psi([50, 50, 0], [50, 45, 5]), 4)
0.3154
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

from streams.monitoring.errors import EmptySampleError

__all__ = ["PSI_EPSILON", "psi"]

PSI_EPSILON: Final = 1e-4


def psi(
    expected: Sequence[float] | NDArray[np.float64],
    actual: Sequence[float] | NDArray[np.float64],
    *,
    epsilon: float = PSI_EPSILON,
) -> float:
    """PSI of ``actual`` against ``expected``, both counts (or weights) per bin."""
    e = _proportions(expected, "expected")
    a = _proportions(actual, "actual")
    if len(e) != len(a):
        raise ValueError(f"expected as many bins in both, got {len(e)} and {len(a)}")
    total = 0.0
    for x, y in zip(e, a, strict=True):
        x, y = max(x, epsilon), max(y, epsilon)
        total += (y - x) * math.log(y / x)
    return total


def _proportions(counts: Sequence[float] | NDArray[np.float64], name: str) -> list[float]:
    values = [float(c) for c in counts]
    total = sum(values)
    if total <= 0:
        raise EmptySampleError(f"expected {name} counts with a positive sum, got {total}")
    return [v / total for v in values]

"""Jensen-Shannon distance between two binned distributions.

The square root of the Jensen-Shannon divergence, with the definition of
:func:`scipy.spatial.distance.jensenshannon`: both inputs are normalised to sum to 1,
``m = (p + q) / 2`` and ``JS = sqrt((KL(p || m) + KL(q || m)) / 2)``. In **base 2** (the
default here) it lies in ``[0, 1]``: 0 for identical histograms, 1 for disjoint ones. Empty
bins need no smoothing (``0 * log 0 = 0``). ``base=None`` gives natural logarithms.

Examples
--------
>>> jensen_shannon_distance([1, 0], [0, 1])
1.0
>>> round(jensen_shannon_distance([25, 25, 25, 25], [10, 20, 30, 40]), 6)
0.200503
>>> round(jensen_shannon_distance([25, 25, 25, 25], [10, 20, 30, 40], base=None), 6)
0.16693
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from streams.monitoring.errors import EmptySampleError

__all__ = ["jensen_shannon_distance"]


def jensen_shannon_distance(
    p: Sequence[float] | NDArray[np.float64],
    q: Sequence[float] | NDArray[np.float64],
    *,
    base: float | None = 2.0,
) -> float:
    """Jensen-Shannon distance of the histograms ``p`` and ``q`` (counts or weights)."""
    left, right = [float(v) for v in p], [float(v) for v in q]
    if len(left) != len(right):
        raise ValueError(f"expected as many bins in both, got {len(left)} and {len(right)}")
    left_sum, right_sum = sum(left), sum(right)
    if left_sum <= 0 or right_sum <= 0:
        raise EmptySampleError(f"expected positive sums, got {left_sum} and {right_sum}")
    divergence = 0.0
    for a, b in zip(left, right, strict=True):
        a, b = a / left_sum, b / right_sum
        middle = (a + b) / 2
        divergence += _relative_entropy(a, middle) + _relative_entropy(b, middle)
    if base is not None:
        divergence /= math.log(base)
    return math.sqrt(max(divergence / 2.0, 0.0))


def _relative_entropy(x: float, y: float) -> float:
    """``x log(x / y)`` with ``0 log 0 = 0`` (:func:`scipy.special.rel_entr`)."""
    return x * math.log(x / y) if x > 0 else 0.0

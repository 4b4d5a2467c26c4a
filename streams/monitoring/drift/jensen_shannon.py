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
from scipy.special import rel_entr

from streams.monitoring.errors import EmptySampleError

__all__ = ["jensen_shannon_distance"]


def jensen_shannon_distance(
    p: Sequence[float] | NDArray[np.float64],
    q: Sequence[float] | NDArray[np.float64],
    *,
    base: float | None = 2.0,
) -> float:
    """Jensen-Shannon distance of the histograms ``p`` and ``q`` (counts or weights)."""
    left = np.asarray(p, dtype=float)
    right = np.asarray(q, dtype=float)
    if left.shape != right.shape:
        raise ValueError(f"expected as many bins in both, got {left.size} and {right.size}")
    left_sum, right_sum = float(left.sum()), float(right.sum())
    if left_sum <= 0 or right_sum <= 0:
        raise EmptySampleError(f"expected positive sums, got {left_sum} and {right_sum}")
    left, right = left / left_sum, right / right_sum
    middle = (left + right) / 2.0
    divergence = float(np.sum(rel_entr(left, middle) + rel_entr(right, middle)))
    if base is not None:
        divergence /= math.log(base)
    return math.sqrt(max(divergence / 2.0, 0.0))

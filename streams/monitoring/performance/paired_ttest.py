"""Paired t-test: do two regressors, scored on the same requests, differ in error?

On the differences ``d = |e_second| - |e_first|`` of absolute errors:
``t = mean(d) / (sd(d) / sqrt(n))`` with ``n - 1`` degrees of freedom, two-sided -- the
definition of :func:`scipy.stats.ttest_rel`. Where SciPy returns NaN (fewer than two
pairs, or all differences equal) this returns statistic 0 and p-value 1 when the mean
difference is 0, and an infinite statistic with p-value 0 otherwise.

Examples
--------
>>> result = paired_ttest([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.0, 5.0])
>>> round(result.statistic, 4), round(result.p_value, 4)
(2.4495, 0.0917)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import t as student_t

from streams.monitoring.errors import EmptySampleError
from streams.monitoring.results import Significance

__all__ = ["paired_ttest"]


def paired_ttest(first: Sequence[float], second: Sequence[float]) -> Significance:
    """Two-sided paired t-test of ``second - first`` (e.g. absolute errors)."""
    if not first or len(first) != len(second):
        raise EmptySampleError(
            f"expected two paired samples, at least one pair, got {len(first)} and {len(second)}"
        )
    d = np.asarray(second, dtype=float) - np.asarray(first, dtype=float)
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0
    if sd == 0.0:
        return (
            Significance(0.0, 1.0)
            if mean == 0.0
            else Significance(math.copysign(math.inf, mean), 0.0)
        )
    statistic = mean / (sd / math.sqrt(d.size))
    return Significance(statistic, float(2.0 * student_t.sf(abs(statistic), d.size - 1)))

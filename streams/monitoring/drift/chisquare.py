"""Pearson's chi-square goodness-of-fit test of live category counts against a reference.

:func:`chisquare` has the definition of :func:`scipy.stats.chisquare`: ``sum (o - e)^2 / e``
with ``k - 1`` degrees of freedom, the expected frequencies ``e`` rescaled to the observed
total. :func:`chisquare_counts` prepares the expected frequencies from reference counts the
way the monitor needs them:

* bins empty in both the reference and the window are dropped (they carry no evidence);
* a reference proportion below ``epsilon`` (:data:`~streams.monitoring.drift.psi.PSI_EPSILON`,
  ``1e-4``) is raised to it, so a category never seen in training gives a huge but finite
  statistic (a new category *is* drift) instead of a division by zero.

Examples
--------
>>> result = chisquare([18, 22, 20], [20, 20, 20])
>>> round(result.statistic, 6), round(result.p_value, 6)
(0.4, 0.818731)
>>> round(chisquare_counts([500, 300, 200], [45, 35, 20]).p_value, 4)
0.5134
>>> chisquare_counts([50, 50, 0], [40, 40, 20]).p_value < 1e-9
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.special import chdtrc

from streams.monitoring.drift.psi import PSI_EPSILON
from streams.monitoring.errors import EmptySampleError
from streams.monitoring.results import Significance

__all__ = ["chisquare", "chisquare_counts"]


def chisquare(
    observed: Sequence[float] | NDArray[np.float64],
    expected: Sequence[float] | NDArray[np.float64],
) -> Significance:
    """Chi-square statistic and p-value of ``observed`` against ``expected`` frequencies.

    ``expected`` is rescaled to the observed total; every expected frequency must be > 0.
    """
    obs, exp = [float(v) for v in observed], [float(v) for v in expected]
    if len(obs) != len(exp) or len(obs) < 2:
        raise ValueError(f"expected >= 2 bins, as many in both, got {len(obs)} and {len(exp)}")
    total, expected_total = sum(obs), sum(exp)
    if total <= 0 or expected_total <= 0:
        raise EmptySampleError(f"expected positive totals, got {total} and {expected_total}")
    exp = [e * (total / expected_total) for e in exp]
    if min(exp) <= 0:
        raise ValueError(f"expected every expected frequency > 0, got {exp}")
    statistic = sum((o - e) ** 2 / e for o, e in zip(obs, exp, strict=True))
    return Significance(statistic, float(chdtrc(len(obs) - 1, statistic)))


def chisquare_counts(
    reference: Sequence[float] | NDArray[np.float64],
    observed: Sequence[float] | NDArray[np.float64],
    *,
    epsilon: float = PSI_EPSILON,
) -> Significance:
    """Chi-square test of ``observed`` counts per bin against ``reference`` counts per bin.

    Returns a statistic of 0 and a p-value of 1 when fewer than two bins hold data.
    """
    if len(reference) != len(observed):
        raise ValueError(f"expected as many bins in both, got {len(reference)} and {len(observed)}")
    pairs = [
        (float(r), float(o)) for r, o in zip(reference, observed, strict=True) if r > 0 or o > 0
    ]
    if len(pairs) < 2:
        return Significance(0.0, 1.0)
    total = sum(r for r, _ in pairs)
    if total <= 0:
        raise EmptySampleError("expected reference counts with a positive sum, got 0")
    return chisquare([o for _, o in pairs], [max(r / total, epsilon) for r, _ in pairs])

"""Two-sample Kolmogorov-Smirnov test: exact from samples, approximate from bin counts.

The statistic is ``D = sup_x |F(x) - G(x)|`` between the two empirical CDFs.

* :func:`ks_2samp` computes ``D`` exactly from two samples (the statistic of
  :func:`scipy.stats.ks_2samp`) and the two-sided p-value from Smirnov's asymptotic
  distribution, ``kstwo.sf(D, round(n*m / (n+m)))`` -- SciPy's ``method="asymp"``, which
  SciPy's default also uses once a sample exceeds 10,000 values. For monitoring windows
  (hundreds of values against a reference of thousands) the exact permutation p-value
  would cost far more and differ in the third decimal at most.
* :func:`ks_binned` works from the reference histogram and a live :class:`BinnedSample`,
  where the CDFs are known only at the bin edges (plus the mass below the lowest and
  above the highest edge). It returns ``D_b = max |F(e) - G(e)|`` over those points, so
  ``D_b <= D``, and ``D - D_b <= max_i max(p_i, q_i)`` (:func:`ks_binned_bound`; ``p``,
  ``q`` the bin proportions of reference and live values inside the edges). The p-value
  uses ``D_b`` with the reference and window sizes, so it errs on the side of no drift.

Examples
--------
>>> result = ks_2samp([0.1, 0.2, 0.3, 0.4], [0.35, 0.45, 0.55, 0.65])
>>> result.statistic
0.75
>>> from streams.monitoring.drift.histogram import BinnedSample
>>> from streams.monitoring.drift.reference import NumericReference
>>> reference = NumericReference((0.0, 1.0, 2.0, 3.0), (100, 100, 100))
>>> live = BinnedSample((0, 50, 150), above=40, above_sum=160.0)
>>> ks_binned(reference, live).statistic
0.41666666666666663
>>> ks_binned_bound(reference, live)
0.55
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.stats import kstwo

from streams.monitoring.drift.histogram import BinnedSample
from streams.monitoring.drift.reference import NumericReference
from streams.monitoring.errors import EmptySampleError
from streams.monitoring.results import Significance

__all__ = ["ks_2samp", "ks_binned", "ks_binned_bound", "ks_pvalue"]


def ks_2samp(
    reference: Sequence[float] | NDArray[np.float64], live: Sequence[float] | NDArray[np.float64]
) -> Significance:
    """Exact KS statistic of two samples and its asymptotic two-sided p-value."""
    a = np.sort(np.asarray(reference, dtype=float))
    b = np.sort(np.asarray(live, dtype=float))
    if a.size == 0 or b.size == 0:
        raise EmptySampleError(f"expected two non-empty samples, got {a.size} and {b.size}")
    both = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, both, side="right") / a.size
    cdf_b = np.searchsorted(b, both, side="right") / b.size
    statistic = float(np.max(np.abs(cdf_a - cdf_b)))
    return Significance(statistic, ks_pvalue(statistic, a.size, b.size))


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Two-sided p-value of ``statistic`` for samples of ``n`` and ``m`` values
    (Smirnov's asymptotic distribution, SciPy's ``method="asymp"``)."""
    big, small = sorted((float(n), float(m)), reverse=True)
    effective = np.round(big * small / (big + small))
    return float(np.clip(kstwo.sf(statistic, effective), 0.0, 1.0))


def ks_binned(reference: NumericReference, live: BinnedSample) -> Significance:
    """KS statistic on the CDFs at the reference's edges, and its p-value."""
    m = live.total
    if m == 0:
        raise EmptySampleError("expected a live window with values, got none")
    ref = np.asarray(reference.counts, dtype=float)
    cdf_ref = np.cumsum(ref)[:-1] / ref.sum()
    cdf_live = np.cumsum(np.asarray(live.counts, dtype=float))[:-1] / m
    inner = float(np.max(np.abs(cdf_ref - cdf_live))) if cdf_ref.size else 0.0
    statistic = max(inner, live.below / m, live.above / m)
    return Significance(statistic, ks_pvalue(statistic, reference.total, m))


def ks_binned_bound(reference: NumericReference, live: BinnedSample) -> float:
    """Upper bound on ``exact D - binned D`` for the samples behind the histograms."""
    m = live.total
    if m == 0:
        raise EmptySampleError("expected a live window with values, got none")
    p = np.asarray(reference.counts, dtype=float) / reference.total
    return float(np.max(np.maximum(p, _inside(live) / m)))


def _inside(live: BinnedSample) -> NDArray[np.float64]:
    """Counts per bin of the live values inside the reference edges."""
    counts = np.asarray(live.counts, dtype=float)
    counts[0] -= live.below
    counts[-1] -= live.above
    return counts

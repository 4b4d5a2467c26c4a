"""Two-sample Kolmogorov-Smirnov test: exact from samples, approximate from bin counts.

The statistic is ``D = sup_x |F(x) - G(x)|`` between the two empirical CDFs.

* :func:`ks_2samp` computes ``D`` exactly from two samples (the statistic of
  :func:`scipy.stats.ks_2samp`) and the two-sided p-value from Smirnov's asymptotic
  distribution, ``kstwo.sf(D, round(n*m / (n+m)))`` -- SciPy's ``method="asymp"``, which
  SciPy's default also uses once a sample exceeds 10,000 values. For monitoring windows
  (hundreds of values against a reference of thousands) the exact permutation p-value
  would cost far more and differ in the third decimal at most.
* :func:`ks_binned` works from the reference histogram and a live :class:`BinnedSample`,
  where the CDFs are known only at the reference's cut points (its edges and inner
  training quantiles) plus the mass below the lowest and above the highest edge. It
  returns ``D_b = max |F(c) - G(c)|`` over those points, so ``D_b <= D`` up to the
  quantile levels' own error (``2 / n``), and ``|D - D_b| <= max_j max(p_j, q_j) + 2 / n``
  (:func:`ks_binned_bound`; ``p``, ``q`` the proportions of reference and live values
  between consecutive cut points). The p-value uses ``D_b`` with the reference and window
  sizes, so it errs on the side of no drift; it is computed by Stephens' approximation
  (:func:`ks_pvalue_fast`), as the exact asymptotic one costs ~300 us per window.

Examples
--------
>>> result = ks_2samp([0.1, 0.2, 0.3, 0.4], [0.35, 0.45, 0.55, 0.65])
>>> result.statistic
0.75
>>> from streams.monitoring.drift.histogram import BinnedSample, cdfs_at_points
>>> from streams.monitoring.drift.reference import NumericReference
>>> reference = NumericReference((0.0, 1.0, 2.0, 3.0), (100, 100, 100))
>>> live = BinnedSample((0, 50, 150), above=40, above_sum=160.0)
>>> ks_binned(reference, live).statistic
0.41666666666666663
>>> ks_binned_bound(reference, live)
0.55
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.special import kolmogorov
from scipy.stats import kstwo

from streams.monitoring.drift.histogram import BinnedSample, cdfs_at_points
from streams.monitoring.drift.reference import NumericReference
from streams.monitoring.errors import EmptySampleError
from streams.monitoring.results import Significance

__all__ = ["ks_2samp", "ks_binned", "ks_binned_bound", "ks_pvalue", "ks_pvalue_fast"]


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
    (Smirnov's asymptotic distribution, SciPy's ``method="asymp"``; the effective size is
    at least 1, where SciPy gives NaN for two single values)."""
    big, small = sorted((float(n), float(m)), reverse=True)
    effective = max(np.round(big * small / (big + small)), 1.0)
    return float(np.clip(kstwo.sf(statistic, effective), 0.0, 1.0))


def ks_pvalue_fast(statistic: float, n: int, m: int) -> float:
    """:func:`ks_pvalue` by Stephens' approximation ``Q((sqrt(e) + 0.12 + 0.11 / sqrt(e)) D)``
    with ``Q`` the Kolmogorov limit and ``e = n m / (n + m)``: ~2 us instead of ~300 us,
    within 5 % (relative) of it down to p-values of 1e-16."""
    root = math.sqrt(n * m / (n + m))
    return float(kolmogorov((root + 0.12 + 0.11 / root) * statistic))


def ks_binned(reference: NumericReference, live: BinnedSample) -> Significance:
    """KS statistic on the CDFs at the reference's cut points, and its p-value
    (:func:`ks_pvalue_fast`)."""
    _, ref_cdf, live_cdf = cdfs_at_points(reference, live)
    statistic = max(abs(f - g) for f, g in zip(ref_cdf, live_cdf, strict=True))
    return Significance(statistic, ks_pvalue_fast(statistic, reference.total, live.total))


def ks_binned_bound(reference: NumericReference, live: BinnedSample) -> float:
    """Upper bound on ``|exact D - binned D|`` for the samples behind the histograms."""
    points, ref_cdf, live_cdf = cdfs_at_points(reference, live)
    slack = 2.0 / reference.total if len(points) > len(reference.edges) else 0.0
    steps = [
        max(ref_cdf[j + 1] - ref_cdf[j], live_cdf[j + 1] - live_cdf[j])
        for j in range(len(points) - 1)
    ]
    return max(steps) + slack

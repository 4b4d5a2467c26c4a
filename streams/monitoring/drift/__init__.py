"""Data drift: has the distribution of a model's inputs moved away from its training data?

Each model version carries a reference profile of its training data (per numeric feature
a quantile-binned histogram with exact counts and a few quantiles, per categorical
feature the category counts). Live inputs are compared with it window by window:

- :class:`FeatureDriftMonitor` -- per feature and method, one :class:`DriftResult` per
  closed window, drifted or not against a configurable threshold.
- Window sketches, O(log bins) per value and no raw values kept:
  :class:`HistogramWindow` (numeric) and :class:`CategoryWindow` (categorical).
- Statistics from bin counts: :func:`psi` (empty bins at ``1e-4``),
  :func:`jensen_shannon_distance` (base 2, in [0, 1]), :func:`chisquare_counts`,
  :func:`ks_binned` and :func:`wasserstein_binned` (approximations with stated bounds,
  :func:`ks_binned_bound`, :func:`wasserstein_binned_bound`).
- Exact statistics from raw samples, for offline checks: :func:`ks_2samp`,
  :func:`wasserstein_distance`, :func:`chisquare`.
- References: :class:`NumericReference`, :class:`CategoricalReference`,
  :func:`references_from_profile`.

Examples
--------
>>> import random
>>> from streams.monitoring import drift
>>> rng = random.Random(7)
>>> refs = {"x": drift.NumericReference.from_samples(rng.gauss(0, 1) for _ in range(5000))}
>>> monitor = drift.FeatureDriftMonitor(refs)
>>> results = []
>>> for i in range(1000):
...     results += monitor.update({"x": rng.gauss(0 if i < 500 else 1, 1)}, ts=i)
>>> [(r.window.index, r.method, r.drifted) for r in results if r.method == "psi"]
[(0, 'psi', False), (1, 'psi', True)]
"""

from streams.monitoring.drift.categories import CategorySample, CategoryWindow
from streams.monitoring.drift.chisquare import chisquare, chisquare_counts
from streams.monitoring.drift.histogram import BinnedSample, HistogramWindow
from streams.monitoring.drift.jensen_shannon import jensen_shannon_distance
from streams.monitoring.drift.ks import ks_2samp, ks_binned, ks_binned_bound, ks_pvalue
from streams.monitoring.drift.methods import (
    CATEGORICAL_METHODS,
    DEFAULT_THRESHOLDS,
    NUMERIC_METHODS,
    Measurement,
    measure,
)
from streams.monitoring.drift.monitor import DEFAULT_WINDOW, FeatureDriftMonitor
from streams.monitoring.drift.psi import PSI_EPSILON, psi
from streams.monitoring.drift.reference import (
    CategoricalReference,
    NumericReference,
    Reference,
    references_from_profile,
)
from streams.monitoring.drift.result import DriftResult, drift_alerts
from streams.monitoring.drift.wasserstein import (
    wasserstein_binned,
    wasserstein_binned_bound,
    wasserstein_distance,
)

__all__ = [
    "CATEGORICAL_METHODS",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_WINDOW",
    "NUMERIC_METHODS",
    "PSI_EPSILON",
    "BinnedSample",
    "CategoricalReference",
    "CategorySample",
    "CategoryWindow",
    "DriftResult",
    "FeatureDriftMonitor",
    "HistogramWindow",
    "Measurement",
    "NumericReference",
    "Reference",
    "chisquare",
    "chisquare_counts",
    "drift_alerts",
    "jensen_shannon_distance",
    "ks_2samp",
    "ks_binned",
    "ks_binned_bound",
    "ks_pvalue",
    "measure",
    "psi",
    "references_from_profile",
    "wasserstein_binned",
    "wasserstein_binned_bound",
    "wasserstein_distance",
]

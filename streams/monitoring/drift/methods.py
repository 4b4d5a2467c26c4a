"""The drift methods a monitor can run on a closed window, and their default thresholds.

===============  ============================  =========================  ==============
method           value                         drifted when               default
===============  ============================  =========================  ==============
``psi``          PSI (:mod:`.psi`)             value > threshold          0.2
``js``           Jensen-Shannon distance,      value > threshold          0.2
                 base 2
``wasserstein``  Wasserstein-1, feature        value > threshold *        0.25 (sd)
                 units (binned)                reference std
``ks``           KS statistic (binned)         p-value < threshold        1e-6
``chisquare``    chi-square statistic          p-value < threshold        1e-6
===============  ============================  =========================  ==============

Numeric features run ``psi, ks, js, wasserstein`` by default, categorical ones
``psi, js, chisquare``; ``ks`` and ``wasserstein`` need numeric features.

How the defaults were set (windows of 500 values, a reference of 10,000 N(0, 1) values
in 10 bins, 20,000 stable windows; ``/tmp`` calibration, numbers in the test suite):

* stable windows never came near them: PSI at most 0.09, JS at most 0.12, Wasserstein
  at most 0.24 sd (99.99 % below 0.19), KS p-values below 1e-5 never;
* a 0.5 sd mean shift crosses all of them in most windows (medians: PSI 0.27, JS 0.22,
  Wasserstein 0.52 sd, KS p 1e-18), a 1 sd shift in every window.

PSI 0.2 is the customary "significant shift". The p-value tests use 1e-6 because a
monitor runs up to 10^5-10^6 window tests a day at high throughput and a test's false
alarms grow with that count; the p-value is in every metric for other levels. The
distances do not need that: their values on stable data shrink as windows grow. They
do grow as windows shrink: below a few hundred values per window raise them (or rely
on the tests). For a constant reference feature the Wasserstein threshold is absolute.

Examples
--------
>>> from streams.monitoring.drift.histogram import BinnedSample
>>> from streams.monitoring.drift.reference import NumericReference
>>> ref = NumericReference((0.0, 1.0, 2.0), (50, 50), std=0.5)
>>> sample = BinnedSample((20, 80))
>>> [(name, round(measure(name, ref, sample).value, 4)) for name in NUMERIC_METHODS]
[('psi', 0.4159), ('ks', 0.3), ('js', 0.2704), ('wasserstein', 0.3)]
>>> threshold_scale("wasserstein", ref), is_drifted("ks", 0.3, 1e-9, 1e-6)
(0.5, True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

from streams.monitoring.drift.categories import CategorySample
from streams.monitoring.drift.chisquare import chisquare_counts
from streams.monitoring.drift.histogram import BinnedSample
from streams.monitoring.drift.jensen_shannon import jensen_shannon_distance
from streams.monitoring.drift.ks import ks_binned
from streams.monitoring.drift.psi import psi
from streams.monitoring.drift.reference import CategoricalReference, NumericReference, Reference
from streams.monitoring.drift.wasserstein import wasserstein_binned
from streams.monitoring.errors import MonitorConfigError

__all__ = [
    "CATEGORICAL_METHODS",
    "DEFAULT_THRESHOLDS",
    "NUMERIC_METHODS",
    "NUMERIC_ONLY",
    "P_VALUE_METHODS",
    "Measurement",
    "Sample",
    "is_drifted",
    "measure",
    "threshold_scale",
]

NUMERIC_METHODS: Final = ("psi", "ks", "js", "wasserstein")
CATEGORICAL_METHODS: Final = ("psi", "js", "chisquare")
P_VALUE_METHODS: Final = frozenset({"ks", "chisquare"})
NUMERIC_ONLY: Final = frozenset({"ks", "wasserstein"})
DEFAULT_THRESHOLDS: Final[Mapping[str, float]] = MappingProxyType(
    {"psi": 0.2, "js": 0.2, "wasserstein": 0.25, "ks": 1e-6, "chisquare": 1e-6}
)

Sample = BinnedSample | CategorySample


@dataclass(frozen=True, slots=True)
class Measurement:
    """A method's value on one window, and its p-value for the test methods."""

    value: float
    p_value: float | None = None


def measure(method: str, reference: Reference, sample: Sample) -> Measurement:
    """Run ``method`` on a closed window against its reference."""
    try:
        run = _METHODS[method]
    except KeyError:
        raise MonitorConfigError(
            f"expected a drift method in {sorted(_METHODS)}, got {method!r}"
        ) from None
    return run(reference, sample)


def is_drifted(method: str, value: float, p_value: float | None, threshold: float) -> bool:
    """The method's rule: p-value below the threshold for tests, value above it otherwise."""
    if method in P_VALUE_METHODS:
        return p_value is not None and p_value < threshold
    return value > threshold


def threshold_scale(method: str, reference: Reference) -> float:
    """What a threshold is multiplied by: the reference standard deviation for
    ``wasserstein`` (1 for a constant feature), 1 for the other methods."""
    if method != "wasserstein" or not isinstance(reference, NumericReference):
        return 1.0
    std = reference.std if reference.std is not None else _histogram_std(reference)
    return std if std > 0 else 1.0


def _histogram_std(reference: NumericReference) -> float:
    """Standard deviation of the histogram, values uniform within each bin."""
    edges = np.asarray(reference.edges, dtype=float)
    p = np.asarray(reference.counts, dtype=float) / reference.total
    low, high = edges[:-1], edges[1:]
    mean = float(np.sum(p * (low + high) / 2))
    second = float(np.sum(p * (low**2 + low * high + high**2) / 3))
    return float(np.sqrt(max(second - mean**2, 0.0)))


def _reference_counts(reference: Reference) -> tuple[int, ...]:
    if isinstance(reference, CategoricalReference):
        return reference.counts_with_other
    return reference.counts


def _numeric(
    reference: Reference, sample: Sample, method: str
) -> tuple[NumericReference, BinnedSample]:
    if not isinstance(reference, NumericReference) or not isinstance(sample, BinnedSample):
        raise MonitorConfigError(
            f"expected a numeric feature for {method!r}, got a categorical one"
        )
    return reference, sample


def _psi(reference: Reference, sample: Sample) -> Measurement:
    return Measurement(psi(_reference_counts(reference), sample.counts))


def _js(reference: Reference, sample: Sample) -> Measurement:
    return Measurement(jensen_shannon_distance(_reference_counts(reference), sample.counts))


def _chisquare(reference: Reference, sample: Sample) -> Measurement:
    statistic, p_value = chisquare_counts(_reference_counts(reference), sample.counts)
    return Measurement(statistic, p_value)


def _ks(reference: Reference, sample: Sample) -> Measurement:
    statistic, p_value = ks_binned(*_numeric(reference, sample, "ks"))
    return Measurement(statistic, p_value)


def _wasserstein(reference: Reference, sample: Sample) -> Measurement:
    return Measurement(wasserstein_binned(*_numeric(reference, sample, "wasserstein")))


_METHODS: Final[Mapping[str, Callable[[Reference, Sample], Measurement]]] = MappingProxyType(
    {"psi": _psi, "js": _js, "chisquare": _chisquare, "ks": _ks, "wasserstein": _wasserstein}
)

"""Every closed window of the feature drift monitor against SciPy.

PSI, which SciPy lacks, is computed in NumPy from the same bin counts. The data are
random but seeded; rows go in one at a time, as the services feed them, and the rows of
each window are found without the monitor; the oracle then runs on exactly those rows.
Exact quantities agree to 1e-9 (relative); the binned KS and Wasserstein values agree
with SciPy's exact ones within their documented bounds.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import jensenshannon

from streams.monitoring import WindowSpec
from streams.monitoring.drift import (
    PSI_EPSILON,
    CategoricalReference,
    DriftResult,
    FeatureDriftMonitor,
    HistogramWindow,
    NumericReference,
    ks_binned_bound,
    wasserstein_binned_bound,
)
from tests.unit.streams.monitoring.oracle_support import EXACT, SPECS, check_spans, timestamps

PLANS = ["basic", "pro", "max"]


@dataclass(frozen=True)
class DriftData:
    train: dict[str, np.ndarray]
    references: dict[str, NumericReference | CategoricalReference]
    rows: list[dict[str, object]]
    ts: list[int]


def _drift_data(n: int, seed: int) -> DriftData:
    """Two numeric features and a categorical one whose live distributions drift further
    window after window; a few values are missing, some fall beyond the reference edges
    and a category unknown to the reference appears."""
    rng = np.random.default_rng(seed)
    train = {
        "x": rng.normal(size=5000),
        "y": rng.exponential(2.0, size=3000),
        "plan": rng.choice(PLANS, p=[0.5, 0.3, 0.2], size=4000),
    }
    references = {
        "x": NumericReference.from_samples(train["x"]),
        "y": NumericReference.from_samples(train["y"], bins=6),
        "plan": CategoricalReference.from_values(train["plan"].tolist()),
    }
    progress = np.arange(n) / n
    x = rng.normal(1.5 * progress, 1 + progress)
    y = rng.exponential(2.0 + 3 * progress)
    plan = [
        str(rng.choice([*PLANS, "enterprise"], p=[0.5 - 0.3 * t, 0.3, 0.2, 0.3 * t]))
        for t in progress
    ]
    rows: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {"x": float(x[i]), "y": float(y[i]), "plan": plan[i]}
        if rng.random() < 0.03:
            row[str(rng.choice(["x", "y", "plan"]))] = rng.choice([None, math.nan])
        rows.append(row)
    return DriftData(train, references, rows, timestamps(rng, n))


@pytest.mark.parametrize("spec", SPECS, ids=["events", "millis"])
def test_drift_equals_scipy_on_every_window(spec: WindowSpec) -> None:
    data = _drift_data(2000, seed=12)
    monitor = FeatureDriftMonitor(data.references, window=spec, min_count=1)
    results: list[DriftResult] = []
    for row, ts in zip(data.rows, data.ts, strict=True):
        results += monitor.update(row, ts=ts)
    results += monitor.flush()
    by_window = {
        index: {(r.feature, r.method): r for r in run}
        for index, run in groupby(results, key=lambda r: r.window.index)
    }
    windows = [next(iter(found.values())).window for found in by_window.values()]
    check_spans(windows, data.ts, spec)
    compared: Counter[tuple[str, str]] = Counter()
    for window, found in zip(windows, by_window.values(), strict=True):
        chunk = data.rows[window.first_event : window.end_event]
        for feature, reference in data.references.items():
            values = [row.get(feature) for row in chunk]
            if isinstance(reference, NumericReference):
                methods = _check_numeric(found, feature, reference, data.train[feature], values)
            else:
                methods = _check_categorical(found, feature, reference, values)
            compared.update((feature, method) for method in methods)
    assert compared == {key: len(windows) for key in _monitor_methods(monitor)}


def _monitor_methods(monitor: FeatureDriftMonitor) -> list[tuple[str, str]]:
    """Every (feature, method) the monitor measures."""
    return [(f, m) for f in monitor.features for m in monitor.thresholds(f)]


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected / expected.sum(), PSI_EPSILON)
    a = np.maximum(actual / actual.sum(), PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def _check_numeric(
    found: dict[tuple[str, str], DriftResult],
    feature: str,
    reference: NumericReference,
    train: np.ndarray,
    values: list[object],
) -> list[str]:
    live = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)  # type: ignore[arg-type]
    edges = np.asarray(reference.edges)
    bins = np.clip(np.searchsorted(edges, live, side="right") - 1, 0, edges.size - 2)
    counts = np.bincount(bins, minlength=edges.size - 1).astype(float)
    ref_counts = np.asarray(reference.counts, dtype=float)
    psi, js = found[(feature, "psi")], found[(feature, "js")]
    assert psi.count == live.size and psi.missing == len(values) - live.size
    assert psi.value == pytest.approx(_psi(ref_counts, counts), **EXACT)
    assert js.value == pytest.approx(jensenshannon(ref_counts, counts, base=2), **EXACT)
    # ks and wasserstein are binned: SciPy's exact value on the raw samples is within
    # the documented bound of the monitor's
    sketch = HistogramWindow(reference)
    for value in values:
        sketch.add(value)
    sample = sketch.snapshot()
    ks, w1 = found[(feature, "ks")], found[(feature, "wasserstein")]
    exact = scipy.stats.ks_2samp(train, live)
    assert abs(ks.value - exact.statistic) <= ks_binned_bound(reference, sample) + 1e-12
    effective = round(train.size * live.size / (train.size + live.size))
    p_value = scipy.stats.kstwo.sf(ks.value, effective)
    if p_value > 1e-16:  # the monitor's is Stephens' approximation, documented within 5 %
        assert ks.p_value == pytest.approx(p_value, rel=0.05)
    w_exact = scipy.stats.wasserstein_distance(train, live)
    assert abs(w1.value - w_exact) <= wasserstein_binned_bound(reference, sample) + 1e-9
    return ["psi", "js", "ks", "wasserstein"]


def _check_categorical(
    found: dict[tuple[str, str], DriftResult],
    feature: str,
    reference: CategoricalReference,
    values: list[object],
) -> list[str]:
    tally = Counter(v for v in values if isinstance(v, str))
    known = [tally[c] for c in reference.categories]
    counts = np.array([*known, sum(tally.values()) - sum(known)], dtype=float)
    ref_counts = np.asarray(reference.counts_with_other, dtype=float)
    assert found[(feature, "psi")].value == pytest.approx(_psi(ref_counts, counts), **EXACT)
    js = jensenshannon(ref_counts, counts, base=2)
    assert found[(feature, "js")].value == pytest.approx(js, **EXACT)
    # the documented preparation: bins empty on both sides dropped, reference
    # proportions floored at PSI_EPSILON, then rescaled to the observed total
    keep = (ref_counts > 0) | (counts > 0)
    f_exp = np.maximum(ref_counts[keep] / ref_counts[keep].sum(), PSI_EPSILON)
    expected = scipy.stats.chisquare(counts[keep], f_exp * counts[keep].sum() / f_exp.sum())
    chi = found[(feature, "chisquare")]
    assert chi.value == pytest.approx(expected.statistic, rel=1e-9)
    assert chi.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=0)
    return ["psi", "js", "chisquare"]

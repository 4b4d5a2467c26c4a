"""Binned KS and Wasserstein agree with the exact values within their stated bounds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.monitoring.drift import (
    BinnedSample,
    HistogramWindow,
    NumericReference,
    ks_2samp,
    ks_binned,
    ks_binned_bound,
    wasserstein_binned,
    wasserstein_binned_bound,
)


def _binned(reference: NumericReference, values: np.ndarray) -> BinnedSample:
    window = HistogramWindow(reference)
    for value in values.tolist():
        window.add(value)
    return window.snapshot()


@pytest.mark.parametrize(
    "shift, scale", [(0.0, 1.0), (0.3, 1.0), (1.0, 1.0), (0.0, 2.0), (-2.5, 0.5), (6.0, 1.0)]
)
@pytest.mark.parametrize("bins", [4, 10, 20])
def test_binned_values_are_within_their_bounds(shift: float, scale: float, bins: int) -> None:
    rng = np.random.default_rng(bins)
    train, live = rng.normal(size=5000), rng.normal(shift, scale, size=700)
    reference = NumericReference.from_samples(train, bins=bins)
    sample = _binned(reference, live)
    exact_d = ks_2samp(train, live).statistic
    assert abs(ks_binned(reference, sample).statistic - exact_d) <= ks_binned_bound(
        reference, sample
    )
    exact_w = scipy.stats.wasserstein_distance(train, live)
    assert abs(wasserstein_binned(reference, sample) - exact_w) <= wasserstein_binned_bound(
        reference, sample
    )


@pytest.mark.parametrize("shift", [0.25, 0.5, 1.0, 2.0])
def test_binned_wasserstein_is_close_for_mean_shifts(shift: float) -> None:
    # the stated tolerance for the monitor's use: within 6 % + 0.02 sd of the exact value
    rng = np.random.default_rng(3)
    train, live = rng.normal(size=10_000), rng.normal(shift, 1.0, size=500)
    reference = NumericReference.from_samples(train)
    exact = scipy.stats.wasserstein_distance(train, live)
    assert wasserstein_binned(reference, _binned(reference, live)) == pytest.approx(
        exact, rel=0.06, abs=0.02
    )


@pytest.mark.parametrize("shift", [0.0, 0.25, 0.5, 1.0])
def test_binned_ks_is_close_for_mean_shifts(shift: float) -> None:
    rng = np.random.default_rng(4)
    train, live = rng.normal(size=10_000), rng.normal(shift, 1.0, size=500)
    reference = NumericReference.from_samples(train)
    exact = ks_2samp(train, live).statistic
    assert ks_binned(reference, _binned(reference, live)).statistic == pytest.approx(
        exact, abs=0.03
    )


@given(
    st.lists(st.floats(-100, 100), min_size=1, max_size=200),
    st.lists(st.floats(-150, 150), min_size=1, max_size=200),
    st.integers(1, 12),
)
@settings(max_examples=150, deadline=None)
def test_bounds_hold_for_any_data(train: list[float], live: list[float], bins: int) -> None:
    reference = NumericReference.from_samples(train, bins=bins)
    sample = _binned(reference, np.asarray(live))
    d_gap = abs(ks_binned(reference, sample).statistic - ks_2samp(train, live).statistic)
    assert d_gap <= ks_binned_bound(reference, sample) + 1e-12
    w_gap = abs(
        wasserstein_binned(reference, sample) - scipy.stats.wasserstein_distance(train, live)
    )
    assert w_gap <= wasserstein_binned_bound(reference, sample) + 1e-9


def test_binned_statistics_without_fine_counts_use_the_edges() -> None:
    reference = NumericReference((0.0, 1.0, 2.0), (50, 50))
    assert ks_binned(reference, BinnedSample((100, 0))).statistic == 0.5
    assert wasserstein_binned(reference, BinnedSample((100, 0))) == pytest.approx(0.5)

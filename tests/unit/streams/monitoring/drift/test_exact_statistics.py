"""Exact statistics agree with SciPy to 1e-9 on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from streams.monitoring import EmptySampleError
from streams.monitoring.drift import (
    chisquare,
    jensen_shannon_distance,
    ks_2samp,
    ks_pvalue,
    psi,
    wasserstein_distance,
)
from streams.monitoring.drift.ks import ks_pvalue_fast

samples = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=60)
counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # SciPy's own NaN for 1 x 1 samples
@given(samples, samples)
@settings(deadline=None)
def test_ks_statistic_equals_scipy(a: list[float], b: list[float]) -> None:
    expected = scipy.stats.ks_2samp(a, b, method="asymp")
    found = ks_2samp(a, b)
    assert math.isclose(found.statistic, expected.statistic, abs_tol=1e-9)
    if len(a) * len(b) > 1:  # SciPy's p-value is NaN for two single values
        assert math.isclose(found.p_value, expected.pvalue, rel_tol=1e-9, abs_tol=1e-12)


def test_ks_on_large_samples_equals_scipys_default_method(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=12_000), rng.normal(0.05, 1, size=11_000)
    expected = scipy.stats.ks_2samp(a, b)  # "auto" is "asymp" above 10,000 values
    assert ks_2samp(a, b) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-9)


@pytest.mark.parametrize("n, m", [(10_000, 500), (5000, 300), (2000, 2000), (100, 80)])
@pytest.mark.parametrize("d", [0.02, 0.05, 0.1, 0.2])
def test_fast_ks_pvalue_is_within_five_percent(n: int, m: int, d: float) -> None:
    exact = ks_pvalue(d, n, m)
    if exact > 1e-16:
        assert ks_pvalue_fast(d, n, m) == pytest.approx(exact, rel=0.05)


@given(samples, samples)
@settings(deadline=None)
def test_wasserstein_equals_scipy(a: list[float], b: list[float]) -> None:
    assert math.isclose(
        wasserstein_distance(a, b),
        scipy.stats.wasserstein_distance(a, b),
        rel_tol=1e-9,
        abs_tol=1e-9,
    )


@given(counts, counts)
@settings(max_examples=200, deadline=None)
def test_jensen_shannon_equals_scipy_in_base_2_and_e(p: list[int], q: list[int]) -> None:
    n = min(len(p), len(q))
    p, q = p[:n], q[:n]
    if sum(p) == 0 or sum(q) == 0:
        with pytest.raises(EmptySampleError):
            jensen_shannon_distance(p, q)
        return
    assert math.isclose(jensen_shannon_distance(p, q), jensenshannon(p, q, base=2), abs_tol=1e-9)
    assert math.isclose(jensen_shannon_distance(p, q, base=None), jensenshannon(p, q), abs_tol=1e-9)


def test_jensen_shannon_is_bounded_by_one_in_base_2() -> None:
    assert jensen_shannon_distance([1, 0, 0], [0, 0, 5]) == 1.0
    assert jensen_shannon_distance([3, 4], [6, 8]) == 0.0


@given(
    st.lists(st.integers(0, 500), min_size=2, max_size=10),
    st.lists(st.integers(1, 500), min_size=2, max_size=10),
)
@settings(deadline=None)
def test_chisquare_equals_scipy(observed: list[int], expected: list[int]) -> None:
    n = min(len(observed), len(expected))
    obs, exp = observed[:n], expected[:n]
    if sum(obs) == 0:
        return
    exp_scaled = np.asarray(exp, dtype=float) * sum(obs) / sum(exp)
    reference = scipy.stats.chisquare(obs, exp_scaled)
    found = chisquare(obs, exp)
    assert math.isclose(found.statistic, reference.statistic, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(found.p_value, reference.pvalue, rel_tol=1e-9, abs_tol=1e-12)


def test_psi_by_hand() -> None:
    e, a = np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.25, 0.25])
    assert psi([1, 1, 2], [2, 1, 1]) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))


def test_psi_floors_empty_bins_at_epsilon() -> None:
    e, a = np.array([0.5, 0.5, 1e-4]), np.array([0.5, 0.4, 0.1])
    assert psi([5, 5, 0], [5, 4, 1]) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))


@given(counts)
@settings(deadline=None)
def test_psi_and_js_are_zero_for_identical_histograms(c: list[int]) -> None:
    if sum(c):
        assert psi(c, c) == 0.0
        assert jensen_shannon_distance(c, [2 * x for x in c]) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    "call",
    [
        lambda: psi([0, 0], [1, 1]),
        lambda: ks_2samp([], [1.0]),
        lambda: wasserstein_distance([1.0], []),
        lambda: chisquare([0, 0], [1, 1]),
    ],
)
def test_empty_samples_raise(call: object) -> None:
    with pytest.raises(EmptySampleError):
        call()  # type: ignore[operator]


def test_mismatched_bins_raise() -> None:
    with pytest.raises(ValueError, match="as many bins"):
        psi([1, 2], [1, 2, 3])

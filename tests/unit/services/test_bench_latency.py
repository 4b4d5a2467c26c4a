"""Percentiles and latency summaries of ``modelstream bench``."""

from __future__ import annotations

import random

import pytest

from services.bench import percentile, summarize


def test_percentile_matches_numpy_linear_interpolation() -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(3)
    values = sorted(rng.expovariate(1 / 5) for _ in range(1_001))
    for q in (0, 1, 25, 50, 90, 95, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([4.2], 0) == percentile([4.2], 99) == 4.2


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0, 2.0], q)


def test_percentile_of_nothing_says_so() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summary_sorts_its_input_and_orders_its_percentiles() -> None:
    rng = random.Random(5)
    values = [rng.uniform(0.5, 30.0) for _ in range(5_000)]
    summary = summarize(values)
    assert summary.count == 5_000
    assert summary.p50 <= summary.p95 <= summary.p99 <= summary.max == max(values)
    assert summary.p50 == pytest.approx(15, rel=0.1)


def test_a_slow_tail_shows_in_p99_not_p50() -> None:
    values = [1.0] * 980 + [50.0] * 20  # 2 % of requests are slow
    summary = summarize(values)
    assert summary.p50 == 1.0
    assert summary.p99 == 50.0

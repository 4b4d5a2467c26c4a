"""Confidence intervals of the report's performance chart."""

from __future__ import annotations

import math

import pytest

from services.reports._stats import Z95, mean_interval, wilson


@pytest.mark.parametrize(
    ("hits", "n"), [(0, 1), (1, 1), (3, 7), (81, 100), (500, 1000), (999, 1000)]
)
def test_wilson_bounds_are_where_the_score_test_is_exactly_z(hits: int, n: int) -> None:
    """Wilson's interval is {p : |p̂ - p| <= z sqrt(p (1 - p) / n)}: each finite bound
    inside (0, 1) solves it with equality, and p̂ lies inside."""
    low, high = wilson(hits, n)
    share = hits / n
    assert 0.0 <= low <= share <= high <= 1.0
    for bound in (low, high):
        if 0.0 < bound < 1.0:
            assert abs(share - bound) == pytest.approx(Z95 * math.sqrt(bound * (1 - bound) / n))


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662 (method 3, Wilson score)
    assert [round(v, 4) for v in wilson(81, 263)] == [0.2553, 0.3662]
    # 15/148 -> 0.0624 to 0.1605
    assert [round(v, 4) for v in wilson(15, 148)] == [0.0624, 0.1605]


def test_wilson_narrows_with_more_observations() -> None:
    widths = [wilson(n // 2, n)[1] - wilson(n // 2, n)[0] for n in (10, 100, 1000)]
    assert widths == sorted(widths, reverse=True)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_mean_interval() -> None:
    low, high = mean_interval(10.0, 4.0, 64)
    assert (low, high) == pytest.approx((10.0 - Z95 * 0.5, 10.0 + Z95 * 0.5))
    assert mean_interval(3.0, 0.0, 1) == (3.0, 3.0)

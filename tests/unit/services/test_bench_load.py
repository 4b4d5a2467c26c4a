"""The open-loop pacing schedule of ``modelstream bench``."""

from __future__ import annotations

import itertools

import pytest

from services.bench import due_count


def test_the_first_request_is_due_at_once() -> None:
    assert due_count(0.0, 2_000.0, 10) == 1


def test_nothing_is_due_before_the_start() -> None:
    assert due_count(-0.001, 2_000.0, 10) == 0


@pytest.mark.parametrize("rate", [1.0, 500.0, 2_000.0, 7_777.0])
def test_one_second_of_schedule_holds_rate_requests(rate: float) -> None:
    total = 10 * int(rate)
    # due at 0, 1/rate, ..., so one second in, rate + 1 are due (the (rate+1)-th at t=1)
    assert due_count(1.0, rate, total) == int(rate) + 1
    assert due_count(1.0 - 0.5 / rate, rate, total) == int(rate)


def test_the_schedule_never_goes_past_the_total() -> None:
    assert due_count(3600.0, 2_000.0, 10_000) == 10_000


def test_the_schedule_is_monotonic_and_steps_by_one() -> None:
    rate, total = 2_000.0, 2_000
    counts = [due_count(t / 20_000, rate, total) for t in range(20_001)]
    steps = {b - a for a, b in itertools.pairwise(counts)}
    assert steps <= {0, 1}
    assert counts[-1] == total


def test_request_i_becomes_due_exactly_at_i_over_rate() -> None:
    rate = 2_000.0
    for i in (1, 7, 1_999):
        assert due_count(i / rate, rate, 10_000) == i + 1
        assert due_count(i / rate - 1e-6, rate, 10_000) == i

"""Tumbling count and event-time windows."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.monitoring import MonitorConfigError, Window, WindowClock, WindowSpec


def _run(clock: WindowClock, stamps: list[int]) -> list[Window]:
    closed = []
    for ts in stamps:
        for window in (clock.before(ts), clock.after(ts)):
            if window is not None:
                closed.append(window)
    final = clock.flush()
    return closed + ([final] if final is not None else [])


@pytest.mark.parametrize("spec", [{}, {"events": 1, "millis": 1}, {"events": 0}, {"millis": -5}])
def test_a_spec_needs_exactly_one_positive_size(spec: dict[str, int]) -> None:
    with pytest.raises(MonitorConfigError):
        WindowSpec(**spec)


@given(st.integers(1, 50), st.lists(st.integers(0, 10_000), max_size=300))
@settings(deadline=None)
def test_count_windows_partition_the_stream(size: int, stamps: list[int]) -> None:
    windows = _run(WindowClock(WindowSpec(events=size)), stamps)
    assert [w.index for w in windows] == list(range(len(windows)))
    assert sum(w.count for w in windows) == len(stamps)
    assert all(w.count == size for w in windows[:-1])
    assert all(a.end_event == b.first_event for a, b in pairwise(windows))
    for w in windows:
        chunk = stamps[w.first_event : w.end_event]
        assert (w.start_ms, w.end_ms) == (min(chunk), max(chunk) + 1)


@given(st.integers(1, 1000), st.lists(st.integers(0, 10_000), max_size=300).map(sorted))
@settings(deadline=None)
def test_time_windows_hold_the_events_of_their_span(size: int, stamps: list[int]) -> None:
    windows = _run(WindowClock(WindowSpec(millis=size)), stamps)
    assert sum(w.count for w in windows) == len(stamps)
    for w in windows:
        assert w.end_ms - w.start_ms == size and w.start_ms % size == 0
        assert all(w.start_ms <= ts < w.end_ms for ts in stamps[w.first_event : w.end_event])


def test_late_events_count_in_the_open_window() -> None:
    clock = WindowClock(WindowSpec(millis=100))
    assert _run(clock, [150, 120, 90, 160]) == [Window(0, 0, 4, 100, 200)]
    assert clock.late == 1


def test_advance_closes_an_idle_time_window_only_after_its_end() -> None:
    clock = WindowClock(WindowSpec(millis=100))
    clock.before(10)
    clock.after(10)
    assert clock.advance(99) is None
    assert clock.advance(100) == Window(0, 0, 1, 0, 100)
    assert clock.advance(500) is None and clock.flush() is None

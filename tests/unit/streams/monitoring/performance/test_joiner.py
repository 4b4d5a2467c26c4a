"""LabelJoiner: order, delay, duplicates, TTL, late labels, bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.monitoring import MonitorConfigError
from streams.monitoring.performance import Joined, LabelJoiner


def _balanced(joiner: LabelJoiner[object, object]) -> None:
    """Every prediction and label is accounted for exactly once."""
    s = joiner.stats
    waiting_predictions, waiting_labels = joiner.waiting
    assert s.predictions == (
        s.joined
        + waiting_predictions
        + s.duplicate_predictions
        + s.expired_predictions
        + s.evicted_predictions
    )
    assert s.labels == (
        s.joined
        + waiting_labels
        + s.duplicate_labels
        + s.late_labels
        + s.orphan_labels
        + s.evicted_labels
    )


def test_labels_before_and_after_predictions_join() -> None:
    joiner: LabelJoiner[str, str] = LabelJoiner(ttl_ms=100)
    assert joiner.add_label("a", "yes", ts=1) is None
    assert joiner.add_prediction("b", "no", ts=2) is None
    assert joiner.add_prediction("a", "no", ts=3) == Joined("a", "no", "yes", 3, 1)
    assert joiner.add_label("b", "no", ts=4) == Joined("b", "no", "no", 2, 4)
    assert joiner.waiting == (0, 0)
    _balanced(joiner)


def test_duplicates_first_wins_before_and_after_the_join() -> None:
    joiner: LabelJoiner[str, str] = LabelJoiner(ttl_ms=100)
    joiner.add_label("a", "first", ts=1)
    joiner.add_label("a", "second", ts=2)  # duplicate while waiting
    joined = joiner.add_prediction("a", "p", ts=3)
    assert joined is not None and joined.label == "first"
    assert joiner.add_label("a", "third", ts=4) is None  # duplicate after the join
    assert joiner.add_prediction("a", "again", ts=5) is None  # duplicate prediction
    s = joiner.stats
    assert (s.duplicate_labels, s.duplicate_predictions, s.joined) == (2, 1, 1)
    _balanced(joiner)


def test_ttl_expires_predictions_and_orphans_labels_in_event_time() -> None:
    joiner: LabelJoiner[str, str] = LabelJoiner(ttl_ms=100)
    joiner.add_prediction("never", "p", ts=0)
    joiner.add_label("orphan", "y", ts=50)
    joiner.add_prediction("fresh", "p", ts=120)  # watermark 120: "never" expires
    assert joiner.stats.expired_predictions == 1 and joiner.stats.orphan_labels == 0
    joiner.add_prediction("later", "p", ts=151)  # "orphan" waited 101 ms
    assert joiner.stats.orphan_labels == 1
    assert joiner.add_label("never", "y", ts=160) is None
    assert joiner.stats.late_labels == 1
    assert joiner.add_label("fresh", "y", ts=170) is not None
    _balanced(joiner)


def test_event_time_does_not_go_backwards() -> None:
    joiner: LabelJoiner[str, str] = LabelJoiner(ttl_ms=100)
    joiner.add_prediction("a", "p", ts=1000)
    joiner.add_prediction("old", "p", ts=0)  # late event, stamped with the watermark 1000
    joiner.add_label("x", "y", ts=1099)
    assert joiner.stats.expired_predictions == 0
    joiner.add_label("z", "y", ts=1100)
    assert joiner.stats.expired_predictions == 2


def test_wall_clock_ttl() -> None:
    now = [0]
    joiner: LabelJoiner[str, str] = LabelJoiner(ttl_ms=10, clock=lambda: now[0])
    joiner.add_prediction("a", "p", ts=10**12)
    now[0] = 11
    joiner.expire()
    assert joiner.stats.expired_predictions == 1 and joiner.waiting == (0, 0)


def test_state_is_bounded_and_evictions_are_counted() -> None:
    joiner: LabelJoiner[int, int] = LabelJoiner(ttl_ms=10**9, max_entries=3)
    for i in range(5):
        joiner.add_prediction(str(i), i, ts=i)
        joiner.add_label(f"l{i}", i, ts=i)
    assert joiner.waiting == (3, 3)
    assert joiner.stats.evicted_predictions == 2 and joiner.stats.evicted_labels == 2
    assert joiner.add_label("0", 0, ts=9) is None and joiner.stats.late_labels == 1
    _balanced(joiner)


def test_bad_config() -> None:
    with pytest.raises(MonitorConfigError):
        LabelJoiner(ttl_ms=0)


@given(st.integers(0, 10_000), st.integers(1, 400), st.integers(1, 60))
@settings(max_examples=60, deadline=None)
def test_shuffled_delayed_duplicated_streams_stay_balanced(seed: int, n: int, cap: int) -> None:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        t = rng.randrange(1000)
        events.append((t, "p", str(i)))
        for _ in range(rng.choice([0, 1, 1, 1, 2])):
            events.append((t + rng.randrange(-50, 400), "l", str(i)))
    rng.shuffle(events)
    joiner: LabelJoiner[int, int] = LabelJoiner(ttl_ms=200, max_entries=cap)
    for ts, kind, rid in events:
        if kind == "p":
            joiner.add_prediction(rid, 0, ts)
        else:
            joiner.add_label(rid, 1, ts)
        _balanced(joiner)
    assert joiner.stats.joined <= n


@pytest.mark.parametrize("max_entries", [95, 60])  # waits expire; waits are evicted
def test_a_pickled_joiner_goes_on_as_the_original(max_entries: int) -> None:
    """It pickles as columns (keys, times, values); unpickled, every wait, memory of
    joined and expired ids and counter is as it was."""
    import pickle

    def run(joiner: LabelJoiner[str, int], start: int, stop: int) -> list[object]:
        out: list[object] = []
        for i in range(start, stop):
            out.append(joiner.add_prediction(f"p{i}", f"v{i}", ts=i * 10))
            if i % 3 == 0:
                out.append(joiner.add_label(f"p{i - 7}", i, ts=i * 10))
            if i % 7 == 0:
                out.append(joiner.add_label(f"p{i - 250}", i, ts=i * 10))  # expired: late
            if i % 5 == 0:
                out.append(joiner.add_label(f"early{i}", i, ts=i * 10))
                out.append(joiner.add_prediction(f"early{i - 50}", "late", ts=i * 10))
        return out

    original: LabelJoiner[str, int] = LabelJoiner(ttl_ms=1_000, max_entries=max_entries)
    run(original, 0, 400)
    stats = original.stats
    assert stats.joined and all(original.waiting) and stats.orphan_labels
    assert stats.expired_predictions if max_entries == 95 else stats.evicted_predictions
    copy = pickle.loads(pickle.dumps(original))
    assert copy.waiting == original.waiting and copy.stats == original.stats
    assert run(copy, 400, 900) == run(original, 400, 900)
    assert copy.stats == original.stats and copy.waiting == original.waiting

"""Run sizes, throughput arithmetic, the faust reply, and the doctests of ``services.bench``."""

from __future__ import annotations

import doctest
import importlib

import pytest

from services.bench import BenchConfig
from services.bench._audit import challenger_coverage
from services.bench._faust_variants import VARIANTS
from services.bench._swap import SwapTiming, swap_timing
from services.bench._throughput import ReadBack, Throughput
from streams.kafka import Topics
from streams.scoring import ScorerConfig

MODULES = ["_audit", "_clients", "_faust_variants", "_latency", "_load", "_report", "_results",
           "_rss", "_run", "_swap", "_throughput", "faust_app"]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(f"services.bench.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_quick_run_is_small_and_default_run_is_large() -> None:
    quick, full = BenchConfig.choose(quick=True), BenchConfig.choose(quick=False)
    assert (quick.events, quick.latency_seconds) == (20_000, 5.0)
    assert (full.events, full.latency_seconds) == (200_000, 20.0)
    assert quick.faust_budget < full.faust_budget
    assert quick.faust_events * len(quick.faust_variants) <= quick.events
    assert set(quick.faust_variants) < {v.name for v in VARIANTS} == set(full.faust_variants)
    assert (quick.floor_iterations, full.floor_iterations) == (300, 1_000)
    assert (quick.swap.promote_at, quick.swap.seconds) == (2.0, 5.0)
    assert (full.swap.promote_at, full.swap.seconds) == (3.0, 10.0)


def test_events_and_rate_override() -> None:
    config = BenchConfig.choose(quick=True, events=3_000, rate=500.0)
    assert (config.events, config.rate, config.latency_values) == (3_000, 500.0, 2_500)


def test_the_passthrough_batches_like_the_scorer() -> None:
    assert BenchConfig(events=10).max_batch == ScorerConfig(Topics()).max_batch


def test_challenger_coverage_counts_failures_and_leaves_out_the_unsampled() -> None:
    outcomes = {"scored": 97, "failed:model_failed": 1, "skipped:busy": 1, "none": 1,
                "skipped:sampled_out": 50}  # fmt: skip
    coverage = challenger_coverage(outcomes)
    assert (coverage.logged, coverage.sampled_out, coverage.covered, coverage.missing) == (
        150, 50, 98, 2,
    )  # fmt: skip
    assert coverage.share == pytest.approx(0.98)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"events": 0},
        {"events": 10, "rate": 0.0},
        {"events": 10, "faust_share": 0.0},
        {"events": 10, "faust_variants": ("take", "batch")},
        {"events": 10, "latency_seconds": 1.0},
        {"events": 10, "swap_promote_at": 0.0},
        {"events": 10, "swap_promote_at": 10.0, "swap_seconds": 10.0},
    ],
)
def test_nonsense_sizes_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BenchConfig(**kwargs)  # type: ignore[arg-type]


def test_swap_timing_from_replies() -> None:
    # v1 every 20 ms, the promotion committed at 1,050, v2 from 1,400 after a stall
    replies = [(1_000 + 20 * i, 1) for i in range(4)] + [(1_400, 2), (1_410, 2), (1_420, 2)]
    timing = swap_timing(reversed(replies), committed_ms=1_050.0, new=2)  # any read order
    assert timing == SwapTiming(
        gap_ms=350.0, max_reply_gap_ms=340.0, max_gap_after_ms=10.0, one_switch=True
    )
    assert swap_timing([*replies, (1_430, 1)], committed_ms=1_050.0, new=2).one_switch is False
    missed = swap_timing(replies[:4], committed_ms=1_050.0, new=2)
    assert (missed.gap_ms, missed.one_switch, missed.max_reply_gap_ms) == (None, False, 20.0)
    assert swap_timing([], committed_ms=1_050.0, new=2).max_reply_gap_ms is None


def test_the_longest_reply_gap_is_the_one_around_the_swap() -> None:
    # a 900 ms stall before the promotion and one of 800 ms beginning more than 1 s after
    # the switch are not the swap's; the 300 ms from the last v1 to the first v2 reply is
    v2 = [(t, 2) for t in (1_300, 1_500, 1_700, 1_900, 2_100, 2_300, 2_400, 3_200)]
    replies = [(0, 1), (900, 1), (1_000, 1), *v2]
    timing = swap_timing(replies, committed_ms=1_050.0, new=2)
    assert (timing.gap_ms, timing.max_reply_gap_ms, timing.max_gap_after_ms) == (
        250.0,
        300.0,
        -50.0,
    )


def test_read_back_window_runs_from_earliest_create_time_to_last_read() -> None:
    back = ReadBack(expected=3)
    back.add(b"r1", b"v", created_ms=10_500, now=11.0)
    back.add(b"r0", b"v", created_ms=10_000, now=11.5)  # produced first, read later
    back.add(b"r1", b"v", created_ms=10_600, now=11.6)  # a duplicate counts once
    back.add(b"r2", b"v", created_ms=10_700, now=12.0)
    tp = back.throughput()
    assert (back.received, back.unique) == (4, 3)
    assert tp.seconds == pytest.approx(2.0)
    assert tp.eps == pytest.approx(1.5)
    assert tp.complete


def test_nothing_read_is_zero_not_a_crash() -> None:
    tp = ReadBack(expected=5).throughput()
    assert (tp.done, tp.eps, tp.complete) == (0, 0.0, False)


def test_throughput_eps() -> None:
    assert Throughput(100, 100, 0.5).eps == 200.0
    assert not Throughput(100, 99, 0.5).complete

"""Run sizes, throughput arithmetic, the faust reply, and the doctests of ``services.bench``."""

from __future__ import annotations

import doctest
import importlib

import pytest

from services.bench import BenchConfig
from services.bench._throughput import ReadBack, Throughput

MODULES = ["_audit", "_latency", "_load", "_report", "_rss", "_run", "_throughput", "faust_app"]


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


def test_events_and_rate_override() -> None:
    config = BenchConfig.choose(quick=True, events=3_000, rate=500.0)
    assert (config.events, config.rate, config.latency_values) == (3_000, 500.0, 2_500)


@pytest.mark.parametrize(
    "kwargs", [{"events": 0}, {"events": 10, "rate": 0.0}, {"events": 10, "latency_seconds": 1.0}]
)
def test_nonsense_sizes_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BenchConfig(**kwargs)  # type: ignore[arg-type]


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

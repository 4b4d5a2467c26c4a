"""Latency sketch error bound and ops rates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.monitoring import EmptySampleError, MonitorConfigError, WindowSpec
from streams.monitoring.ops import LatencySketch, OpsMonitor


@given(
    st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=300), st.sampled_from([0.005, 0.01, 0.05])
)
@settings(max_examples=100, deadline=None)
def test_quantiles_are_within_the_relative_accuracy(values: list[float], accuracy: float) -> None:
    sketch = LatencySketch(accuracy)
    for value in values:
        sketch.add(value)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        exact = float(np.quantile(values, q, method="lower"))
        assert abs(sketch.quantile(q) - exact) <= accuracy * exact * (1 + 1e-9)


def test_heavy_tailed_latencies(rng: np.random.Generator) -> None:
    values = rng.lognormal(1.0, 1.5, size=50_000)
    sketch = LatencySketch()
    for value in values.tolist():
        sketch.add(value)
    for q in (0.5, 0.95, 0.99):
        assert sketch.quantile(q) == pytest.approx(np.quantile(values, q, method="lower"), rel=0.01)


def test_sketch_edges() -> None:
    sketch = LatencySketch()
    with pytest.raises(EmptySampleError):
        sketch.quantile(0.5)
    for value in (0.0, 1e-9, 5e9):
        sketch.add(value)
    assert sketch.quantile(0.0) == 0.0 and sketch.quantile(1.0) == 5e9
    sketch.clear()
    assert sketch.count == 0
    with pytest.raises(MonitorConfigError):
        LatencySketch(1.5)


def test_rates_and_latency_per_role() -> None:
    ops = OpsMonitor(window=WindowSpec(millis=10_000))
    for i in range(100):
        ops.update(
            ts=i * 100,
            latency_ms=5.0,
            role_latency={"champion": 4.0, "challenger": None},
            served_by="none" if i < 5 else ("backup" if i < 15 else "champion"),
            failed=["champion"] if i < 15 else [],
        )
    for i in range(25):
        ops.update_dlq(ts=i * 10)
    (report,) = ops.update(ts=10_000, latency_ms=1.0)
    assert report.qps == 12.5
    assert (report.error_rate, report.backup_rate, report.dlq_rate) == (0.05, 0.1, 0.2)
    assert set(report.latency) == {"request", "champion"}
    points = {(p.name, p.role): p.value for p in report.to_metrics()}
    assert points[("error_rate", "champion")] == 0.15
    assert points[("latency_p99_ms", None)] == 5.0 and points[("latency_p50_ms", "champion")] == 4.0


def test_count_windows_measure_qps_over_their_span() -> None:
    ops = OpsMonitor(window=WindowSpec(events=10))
    reports = [r for i in range(10) for r in ops.update(ts=1000 + i * 100)]
    assert reports[0].qps == pytest.approx(10 / 0.901)

"""Half-Space Trees monitor: sampling, calibration, scaling, reports."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streams.monitoring import MonitorConfigError, ReferenceProfileError, WindowSpec
from streams.monitoring.anomaly import HalfSpaceTreesMonitor, ProfileScaler, RunningScaler


def _rows(n: int, seed: int, shift: float = 0.0) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [{"a": rng.gauss(shift, 1), "b": rng.gauss(shift, 1)} for _ in range(n)]


def test_only_every_kth_event_is_scored() -> None:
    monitor = HalfSpaceTreesMonitor(
        RunningScaler(["a", "b"]),
        sample_every=5,
        threshold=0.9,
        window=WindowSpec(events=5000),
        window_size=50,
        seed=1,
    )
    (report,) = [r for row in _rows(5000, 1) for r in monitor.update(row)]
    assert report.scored == 1000 - 50  # 1,000 sampled, the first 50 only learned
    assert report.threshold == 0.9


def test_calibrated_threshold_flags_about_one_percent_of_stable_inputs() -> None:
    scaler = ProfileScaler({"a": (-4.0, 4.0), "b": (-4.0, 4.0)})
    monitor = HalfSpaceTreesMonitor(
        scaler, sample_every=1, calibration=1000, window=WindowSpec(events=5000), seed=3
    )
    reports = [r for row in _rows(10_000, 2) for r in monitor.update(row)]
    assert monitor.threshold is not None
    assert reports[1].anomaly_rate < 0.03
    # the trees keep learning, so a new regime is anomalous only until they have seen it
    shifted = [r for row in _rows(250, 3, shift=4.0) for r in monitor.update(row)]
    assert shifted == [] and monitor.flush()[0].anomaly_rate > 0.5


def test_report_metrics_and_alerts() -> None:
    monitor = HalfSpaceTreesMonitor(
        RunningScaler(["a"]),
        sample_every=1,
        threshold=0.0,
        window=WindowSpec(events=300),
        window_size=10,
        seed=0,
    )
    (report,) = [r for row in _rows(300, 4) for r in monitor.update(row)]
    assert report.anomaly_rate == 1.0
    assert [p.name for p in report.to_metrics()] == ["anomaly_rate", "score_mean", "score_max"]
    assert report.alerts()[0].kind == "anomaly" and report.alerts(rate_limit=1.0) == []


def test_scalers() -> None:
    profile: dict[str, Any] = {"numeric": {"a": {"min": 0.0, "max": 10.0}, "b": {"min": None}}}
    scaler = ProfileScaler.from_profile(profile)
    assert scaler.features == ("a",)
    assert scaler.scale({"a": 15.0}) == {"a": 1.5}
    with pytest.raises(ReferenceProfileError):
        ProfileScaler.from_profile(profile, ["b"])
    running = RunningScaler(["a"])
    assert running.scale({"a": float("nan")}) == {"a": 0.5}


def test_bad_config() -> None:
    with pytest.raises(MonitorConfigError):
        HalfSpaceTreesMonitor(RunningScaler(["a"]), sample_every=0)

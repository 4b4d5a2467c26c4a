"""FeatureDriftMonitor: configuration, windows, results."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streams.monitoring import MonitorConfigError, WindowSpec
from streams.monitoring.drift import (
    DEFAULT_THRESHOLDS,
    CategoricalReference,
    DriftResult,
    FeatureDriftMonitor,
    NumericReference,
    drift_alerts,
)

_TRAIN = random.Random(1)
REFS = {
    "x": NumericReference.from_samples([_TRAIN.gauss(0, 2) for _ in range(4000)]),
    "plan": CategoricalReference(("basic", "pro", "max"), (500, 300, 200)),
}


def _feed(
    monitor: FeatureDriftMonitor, rows: list[dict[str, Any]], start: int = 0
) -> list[DriftResult]:
    return [r for i, row in enumerate(rows) for r in monitor.update(row, ts=start + i)]


def test_default_methods_and_thresholds() -> None:
    monitor = FeatureDriftMonitor(REFS)
    x = monitor.thresholds("x")
    assert list(x) == ["psi", "ks", "js", "wasserstein"]
    assert x["wasserstein"] == pytest.approx(0.25 * REFS["x"].std)  # type: ignore[union-attr]
    assert monitor.thresholds("plan") == {"psi": 0.2, "js": 0.2, "chisquare": 1e-6}
    assert DEFAULT_THRESHOLDS["psi"] == 0.2


def test_thresholds_override_globally_then_per_feature() -> None:
    monitor = FeatureDriftMonitor(
        REFS, thresholds={"psi": 0.1}, feature_thresholds={"plan": {"psi": 0.3}}
    )
    assert monitor.thresholds("x")["psi"] == 0.1
    assert monitor.thresholds("plan")["psi"] == 0.3


@pytest.mark.parametrize(
    "options",
    [
        {"numeric_methods": ["psi", "nope"]},
        {"categorical_methods": ["ks"]},
        {"categorical_methods": ["wasserstein"]},
    ],
)
def test_bad_methods_are_rejected_up_front(options: dict[str, Any]) -> None:
    with pytest.raises(MonitorConfigError, match="drift method"):
        FeatureDriftMonitor(REFS, **options)


def test_no_references_is_an_error() -> None:
    with pytest.raises(MonitorConfigError):
        FeatureDriftMonitor({})


def test_stable_window_is_not_drifted_and_shifted_one_is() -> None:
    rng = random.Random(5)
    monitor = FeatureDriftMonitor(REFS)
    stable = [
        {"x": rng.gauss(0, 2), "plan": rng.choices(["basic", "pro", "max"], [5, 3, 2])[0]}
        for _ in range(500)
    ]
    shifted = [
        {"x": rng.gauss(1.5, 2), "plan": rng.choices(["basic", "pro", "max"], [2, 3, 5])[0]}
        for _ in range(500)
    ]
    results = _feed(monitor, stable + shifted)
    assert len(results) == 2 * 7
    assert not any(r.drifted for r in results if r.window.index == 0)
    assert all(r.drifted for r in results if r.window.index == 1)
    assert {(r.window.first_event, r.window.end_event) for r in results} == {(0, 500), (500, 1000)}


def test_missing_and_absent_values_are_counted_not_measured() -> None:
    monitor = FeatureDriftMonitor(REFS, window=WindowSpec(events=200), min_count=100)
    rows = [{"x": float(i % 7), "plan": None} if i % 2 else {"x": None} for i in range(200)]
    results = _feed(monitor, rows)
    assert {r.feature for r in results} == {"x"}
    assert all(r.count == 100 and r.missing == 100 for r in results)


def test_time_windows_and_flush() -> None:
    monitor = FeatureDriftMonitor({"x": REFS["x"]}, window=WindowSpec(millis=1000), min_count=1)
    rows = [{"x": 0.1 * i} for i in range(30)]
    results = _feed(monitor, rows[:20], start=1500)  # ts 1500..1519
    assert results == []
    results = list(monitor.update({"x": 1.0}, ts=2100))
    assert {(r.window.start_ms, r.window.end_ms, r.count) for r in results} == {(1000, 2000, 20)}
    assert {r.window.count for r in monitor.flush()} == {1}
    assert not monitor.flush() and not monitor.advance(10**9)


def test_results_become_metrics_and_alerts() -> None:
    monitor = FeatureDriftMonitor({"plan": REFS["plan"]}, window=WindowSpec(events=100))
    results = _feed(monitor, [{"plan": "max"}] * 100)
    alerts = drift_alerts(results)
    assert len(alerts) == 3 and all(a.kind == "drift" and a.at_event == 100 for a in alerts)
    chisquare = next(r for r in results if r.method == "chisquare")
    assert chisquare.to_alert().value == chisquare.p_value
    point = chisquare.to_metric()
    assert point.labels["drifted"] == "true" and float(point.labels["p_value"]) < 1e-6
    assert (point.kind, point.feature, point.count) == ("drift", "plan", 100)


def test_unknown_categories_count_as_other() -> None:
    monitor = FeatureDriftMonitor(
        {"plan": REFS["plan"]}, window=WindowSpec(events=100), categorical_methods=["psi"]
    )
    (result,) = _feed(monitor, [{"plan": "basic"}] * 50 + [{"plan": "brand-new"}] * 50)
    assert result.drifted and result.value > 1


def test_from_profile(normal_profile: dict[str, Any]) -> None:
    monitor = FeatureDriftMonitor.from_profile(normal_profile, features=["f1", "f2"])
    assert monitor.features == ("f1", "f2")

"""Change detectors: detections, event indices, levels, and the monitors around them."""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import pytest
from river import drift

from streams.monitoring import MonitorConfigError, ReferenceProfileError
from streams.monitoring.change import (
    ADWINDetector,
    ConceptDriftMonitor,
    DDMDetector,
    Detection,
    FeatureChangeMonitor,
    PageHinkleyDetector,
)


def _bernoulli(seed: int, rates: list[tuple[int, float]]) -> list[float]:
    rng = random.Random(seed)
    return [float(rng.random() < p) for n, p in rates for _ in range(n)]


def test_adwin_reports_what_river_detects_with_the_event_index() -> None:
    stream = _bernoulli(1, [(3000, 0.1), (1000, 0.4)])
    river_adwin, ours = drift.ADWIN(), ADWINDetector()
    expected = []
    for i, x in enumerate(stream, start=1):
        river_adwin.update(x)
        if river_adwin.drift_detected:
            expected.append(i)
    found = [d for x in stream if (d := ours.update(x))]
    assert [d.at_event for d in found] == expected and expected
    assert ours.detections == len(expected) and ours.seen == len(stream)
    assert 3000 < found[0].at_event < 3300


def test_page_hinkley_catches_a_downward_shift_too() -> None:
    rng = random.Random(4)
    detector = PageHinkleyDetector()
    stream = [rng.gauss(0, 1) for _ in range(3000)] + [rng.gauss(-1, 1) for _ in range(500)]
    found = [d for x in stream if (d := detector.update(x))]
    assert len(found) == 1 and 3000 < found[0].at_event < 3400 and found[0].estimate < 0


def test_ddm_warns_before_it_drifts_and_warns_once_per_episode() -> None:
    detector = DDMDetector()
    stream = _bernoulli(8, [(3000, 0.1), (1000, 0.5)])
    found = [d for x in stream if (d := detector.update(x))]
    # DDM raises false drifts on stable streams now and then (see ddm.py): look after 3000
    drifts = [d for d in found if d.level == "drift" and d.at_event > 3000]
    assert drifts and drifts[0].at_event < 3500
    warnings = [d for d in found if d.level == "warning" and d.at_event > 3000]
    assert warnings and warnings[0].at_event < drifts[0].at_event
    assert all(b.at_event - a.at_event >= 100 for a, b in pairwise(warnings))


def test_detection_to_alert() -> None:
    alert = Detection("ddm", "warning", 10, 0.2, key="error").to_alert(model_version=3)
    assert (alert.severity, alert.kind, alert.model_version, alert.value) == (
        "warning",
        "concept_drift",
        3,
        0.2,
    )


def test_concept_drift_on_regression_errors() -> None:
    rng = random.Random(9)
    monitor = ConceptDriftMonitor("regression")
    found = []
    for i in range(4000):
        truth = rng.gauss(10, 3)
        noise = rng.gauss(0, 1 if i < 3000 else 3)
        found += monitor.update(truth, truth + noise)
    assert found and 3000 < found[0].at_event < 3300 and found[0].key == "error"
    assert monitor.seen == 4000


def test_concept_drift_monitor_runs_every_detector() -> None:
    monitor = ConceptDriftMonitor(detectors=(ADWINDetector, DDMDetector))
    found = [d for x in _bernoulli(2, [(3000, 0.05), (1000, 0.6)]) for d in monitor.update_error(x)]
    assert {d.detector for d in found} == {"adwin", "ddm"}


def test_concept_drift_monitor_rejects_bad_config() -> None:
    with pytest.raises(MonitorConfigError):
        ConceptDriftMonitor("ranking")  # type: ignore[arg-type]
    with pytest.raises(MonitorConfigError):
        ConceptDriftMonitor(detectors=())


def test_feature_change_monitor_counts_events_not_values() -> None:
    rng = random.Random(3)
    monitor = FeatureChangeMonitor({"x": (5.0, 2.0)})
    rows: list[dict[str, Any]] = []
    for i in range(4000):
        rows.append({"x": None} if i % 2 else {"x": rng.gauss(5 if i < 3000 else 9, 2)})
    found = [d for row in rows for d in monitor.update(row)]
    assert len(found) == 1 and found[0].key == "x" and 3000 < found[0].at_event < 3200


def test_feature_change_monitor_from_profile(normal_profile: dict[str, Any]) -> None:
    monitor = FeatureChangeMonitor.from_profile(normal_profile, features=["f0"])
    assert monitor.update({"f0": 0.1}) == ()
    with pytest.raises(ReferenceProfileError):
        FeatureChangeMonitor.from_profile({"numeric": {}}, features=["nope"])

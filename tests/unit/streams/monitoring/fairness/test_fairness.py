"""Fairness gaps equal hand-computed values and Fairlearn's definitions."""

from __future__ import annotations

import pytest

from streams.monitoring import MonitorConfigError, WindowSpec
from streams.monitoring.fairness import (
    MISSING,
    FairnessMonitor,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
)


def test_gap_functions_by_hand() -> None:
    assert demographic_parity_difference({"a": 0.2, "b": 0.6, "c": 0.4}) == pytest.approx(0.4)
    assert demographic_parity_ratio({"a": 0.2, "b": 0.6}) == pytest.approx(1 / 3)
    assert demographic_parity_ratio({"a": 0.0, "b": 0.0}) is None
    assert equal_opportunity_difference({"a": 0.5, "b": None}) is None
    assert equalized_odds_difference({"a": 0.5, "b": 0.7}, {"a": 0.1, "b": 0.4}) == pytest.approx(
        0.3
    )
    assert equalized_odds_difference({"a": 0.5, "b": None}, {"a": None, "b": 0.4}) is None


def test_each_attribute_is_reported_with_its_groups() -> None:
    monitor = FairnessMonitor(["sex", "region"], positive_label="yes", window=WindowSpec(events=3))
    events = [({"sex": "f", "region": "n"}, "yes"), ({"sex": "m"}, "no"), ({"sex": "f"}, "yes")]
    reports = [r for sensitive, pred in events for r in monitor.update(sensitive, pred)]
    by_attribute = {r.attribute: r for r in reports}
    assert set(by_attribute["region"].groups) == {"n", MISSING}
    sex = by_attribute["sex"]
    assert sex.groups["f"].selection_rate == 1.0 and sex.groups["m"].selection_rate == 0.0
    assert sex.equal_opportunity_difference is None and sex.equalized_odds_difference is None
    points = {(p.name, p.group) for p in sex.to_metrics()}
    assert ("selection_rate", "sex=f") in points and ("tpr", "sex=f") not in points
    assert ("demographic_parity_difference", None) in points


def test_alerts_follow_the_limits() -> None:
    monitor = FairnessMonitor(["g"], positive_label=1, window=WindowSpec(events=4))
    events = [("a", 1, 1), ("a", 1, 0), ("b", 1, 1), ("b", 0, 0)]
    (report,) = [r for g, p, t in events for r in monitor.update({"g": g}, p, t)]
    names = {a.message.split()[1] for a in report.alerts()}
    assert names == {
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
    }
    assert report.alerts({"equalized_odds_difference": 1.0}) == []


def test_no_attribute_is_an_error() -> None:
    with pytest.raises(MonitorConfigError):
        FairnessMonitor([], positive_label=1)

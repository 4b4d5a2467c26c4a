"""End-to-end checks against known truth, with the monitors' default settings.

(a) data drift: 10 N(0, 1) features, +1 sd on one from event 5,000;
(b) concept drift: the error rate goes from 0.1 to 0.3 at a known event;
(c) fairness: a model with a known selection-rate gap;
(d) performance: delayed, shuffled, duplicated labels give the offline metrics.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm

from streams.monitoring import WindowSpec
from streams.monitoring.change import ConceptDriftMonitor, FeatureChangeMonitor
from streams.monitoring.drift import FeatureDriftMonitor, drift_alerts
from streams.monitoring.fairness import FairnessMonitor
from streams.monitoring.performance import Joined, LabelJoiner, PerformanceMonitor, Scored

from .conftest import FEATURES

SHIFT_AT = 5000


@pytest.fixture(scope="module")
def shifted_rows() -> list[dict[str, float]]:
    data = np.random.default_rng(99).normal(size=(50_000, len(FEATURES)))
    data[SHIFT_AT:, 3] += 1.0
    return [dict(zip(FEATURES, row, strict=True)) for row in data.tolist()]


def test_a_mean_shift_alerts_on_its_feature_only(
    normal_profile: dict[str, Any], shifted_rows: list[dict[str, float]]
) -> None:
    monitor = FeatureDriftMonitor.from_profile(normal_profile)
    alerts = [
        a for i, row in enumerate(shifted_rows) for a in drift_alerts(monitor.update(row, ts=i))
    ]
    assert {a.feature for a in alerts} == {"f3"}  # no false alarm on the 9 stable features
    first = min(a.at_event for a in alerts if a.at_event is not None)
    assert SHIFT_AT < first <= SHIFT_AT + 1000  # measured: 500, the first shifted window
    assert all(a.at_event is not None and a.at_event > SHIFT_AT for a in alerts)


def test_a_streaming_detectors_see_the_shift_within_the_window(
    normal_profile: dict[str, Any], shifted_rows: list[dict[str, float]]
) -> None:
    monitor = FeatureChangeMonitor.from_profile(normal_profile)
    found = [d for row in shifted_rows for d in monitor.update(row)]
    assert [d.key for d in found] == ["f3"]
    assert SHIFT_AT < found[0].at_event <= SHIFT_AT + 200  # measured: 56


@pytest.mark.parametrize("seed", range(10))
def test_b_error_rate_rise_is_detected_within_500_events(seed: int) -> None:
    rng = random.Random(seed)
    monitor = ConceptDriftMonitor()
    found = []
    for i in range(SHIFT_AT + 1000):
        wrong = rng.random() < (0.1 if i < SHIFT_AT else 0.3)
        found += monitor.update("cat", "dog" if wrong else "cat")
    assert found, "no detection"
    assert all(d.at_event > SHIFT_AT for d in found)  # no false alarm before the change
    assert found[0].at_event - SHIFT_AT <= 500  # 200 seeds: median 120, worst 280


def test_c_fairness_equals_hand_computed_values() -> None:
    # group a: 1,000 requests, 300 approved; group b: 1,000 requests, 500 approved.
    # labels: a has 400 positives, 240 of them approved (TPR 0.6), FP 60 / 600 (FPR 0.1);
    #         b has 500 positives, 400 of them approved (TPR 0.8), FP 100 / 500 (FPR 0.2).
    events = (
        [("a", 1, 1)] * 240
        + [("a", 0, 1)] * 160
        + [("a", 1, 0)] * 60
        + [("a", 0, 0)] * 540
        + [("b", 1, 1)] * 400
        + [("b", 0, 1)] * 100
        + [("b", 1, 0)] * 100
        + [("b", 0, 0)] * 400
    )
    random.Random(1).shuffle(events)
    monitor = FairnessMonitor(["group"], positive_label=1, window=WindowSpec(events=2000))
    (report,) = [r for g, pred, true in events for r in monitor.update({"group": g}, pred, true)]
    a, b = report.groups["a"], report.groups["b"]
    assert (a.count, a.selection_rate, a.tpr, a.fpr) == (1000, 0.3, 0.6, 0.1)
    assert (b.count, b.selection_rate, b.tpr, b.fpr) == (1000, 0.5, 0.8, 0.2)
    assert report.demographic_parity_difference == pytest.approx(0.2)
    assert report.demographic_parity_ratio == pytest.approx(0.6)
    assert report.equal_opportunity_difference == pytest.approx(0.2)
    assert report.equalized_odds_difference == pytest.approx(0.2)  # max(0.2, 0.1)


def _requests(n: int, seed: int) -> list[tuple[str, int, dict[str, Scored], int | None]]:
    """(request id, ts, outcomes, label or None when never labelled)."""
    rng = random.Random(seed)
    requests = []
    for i in range(n):
        label = rng.random() < 0.4
        outcomes = {}
        for role, version, skill in (("champion", 3, 1.0), ("challenger", 4, 1.4)):
            p = 1 / (1 + np.exp(-(skill * (2 * label - 1) + rng.gauss(0, 1.2))))
            outcomes[role] = Scored(version, int(p > 0.5), {"1": p, "0": 1 - p})
        requests.append((f"r{i}", i * 10, outcomes, None if rng.random() < 0.05 else int(label)))
    return requests


def test_d_delayed_shuffled_labels_give_the_offline_metrics() -> None:
    requests = _requests(3000, seed=5)
    rng = random.Random(6)
    events: list[tuple[int, str, str, Any]] = []
    for rid, ts, outcomes, label in requests:
        events.append((ts, "prediction", rid, outcomes))
        if label is not None:
            for _ in range(2 if rng.random() < 0.1 else 1):  # 10 % delivered twice
                events.append((ts + rng.randrange(0, 20_000), "label", rid, label))
    rng.shuffle(events)
    joiner: LabelJoiner[dict[str, Scored], int] = LabelJoiner(ttl_ms=10**9)
    monitor = PerformanceMonitor(positive_label=1, window=WindowSpec(events=1000))
    joined: list[Joined[dict[str, Scored], int]] = []
    reports = []
    for ts, kind, rid, payload in events:
        add = joiner.add_prediction if kind == "prediction" else joiner.add_label
        pair = add(rid, payload, ts)
        if pair is not None:
            joined.append(pair)
            reports += monitor.update(pair.label, pair.prediction, ts)
    reports += monitor.flush()
    labelled = {rid for rid, _, _, label in requests if label is not None}
    assert {j.request_id for j in joined} == labelled and len(joined) == len(labelled)
    assert joiner.stats.duplicate_labels == sum(1 for e in events if e[1] == "label") - len(
        labelled
    )
    for index, report in enumerate(reports):
        chunk = joined[index * 1000 : (index + 1) * 1000]
        _assert_offline(report, chunk)


def _assert_offline(report: Any, chunk: list[Joined[dict[str, Scored], int]]) -> None:
    y = np.array([j.label for j in chunk])
    right = {}
    for role_metrics in report.roles:
        role = role_metrics.role
        p = np.array([j.prediction[role].probabilities["1"] for j in chunk])  # type: ignore[index]
        pred = (p > 0.5).astype(int)
        right[role] = pred == y
        expected = {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, zero_division=0.0),
            "recall": skm.recall_score(y, pred, zero_division=0.0),
            "f1": skm.f1_score(y, pred, zero_division=0.0),
            "log_loss": skm.log_loss(y, p, labels=[0, 1]),
            "roc_auc": skm.roc_auc_score(y, p),
        }
        assert role_metrics.count == len(chunk)
        assert role_metrics.metrics == pytest.approx(expected, rel=1e-9, abs=1e-12)
    (comparison,) = report.comparisons
    b = int(np.sum(right["champion"] & ~right["challenger"]))
    c = int(np.sum(~right["champion"] & right["challenger"]))
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    assert comparison.statistic == pytest.approx(statistic)
    assert comparison.delta == pytest.approx(right["challenger"].mean() - right["champion"].mean())


def test_d_labels_after_the_ttl_are_late_not_joined() -> None:
    joiner: LabelJoiner[str, int] = LabelJoiner(ttl_ms=1000)
    for i in range(100):
        joiner.add_prediction(f"r{i}", "p", ts=i * 100)
    late = [joiner.add_label(f"r{i}", 1, ts=10_000 + i) for i in range(50)]
    assert late == [None] * 50
    assert joiner.stats.late_labels == 50 and joiner.stats.expired_predictions >= 50

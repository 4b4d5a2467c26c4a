"""PerformanceMonitor: grouping by role and version, pairing, metric points."""

from __future__ import annotations

import pytest
import scipy.stats

from streams.monitoring import MonitorConfigError, WindowSpec
from streams.monitoring.performance import PerformanceMonitor, Scored


def test_versions_and_roles_are_reported_apart() -> None:
    monitor = PerformanceMonitor(positive_label="1", window=WindowSpec(events=4))
    reports = []
    for version, label, output in ((1, 1, "1"), (1, 0, "1"), (2, 1.0, "1"), (2, 0, "0")):
        reports += monitor.update(label, {"champion": Scored(version, output)})
    (report,) = reports
    by_version = {r.version: r for r in report.roles}
    assert by_version[1].metrics["accuracy"] == 0.5 and by_version[2].metrics["accuracy"] == 1.0
    assert "log_loss" not in by_version[1].metrics and "roc_auc" not in by_version[1].metrics
    assert report.comparisons == ()


def test_comparison_uses_only_requests_both_answered() -> None:
    monitor = PerformanceMonitor(window=WindowSpec(events=3))
    outcomes = [
        {"champion": Scored(1, "a"), "challenger": Scored(2, "b")},
        {"champion": Scored(1, "a"), "challenger": Scored(2, None)},  # challenger failed
        {"champion": Scored(1, "b"), "challenger": Scored(2, "a")},
    ]
    (report,) = [r for o in outcomes for r in monitor.update("a", o)]
    counts = {r.role: r.count for r in report.roles}
    assert counts == {"champion": 3, "challenger": 2}
    (c,) = report.comparisons
    assert (c.count, c.champion, c.challenger, c.p_value) == (2, 0.5, 0.5, 1.0)


def test_probabilities_give_log_loss_and_auc() -> None:
    monitor = PerformanceMonitor(positive_label=True, window=WindowSpec(events=4))
    rows = [(True, 0.9), (False, 0.4), (True, 0.3), (False, 0.2)]
    reports = [
        r
        for label, p in rows
        for r in monitor.update(
            label, {"champion": Scored(1, p > 0.5, {"true": p, "false": 1 - p})}
        )
    ]
    metrics = reports[0].roles[0].metrics
    assert metrics["roc_auc"] == 0.75
    assert metrics["recall"] == 0.5 and metrics["precision"] == 1.0
    assert metrics["log_loss"] > 0


def test_regression_comparison_is_a_paired_ttest_on_absolute_errors() -> None:
    monitor = PerformanceMonitor("regression", window=WindowSpec(events=5))
    truth = [1.0, 2.0, 3.0, 4.0, 5.0]
    champion = [1.5, 2.5, 2.0, 4.0, 6.0]
    challenger = [1.1, 2.0, 3.5, 4.2, 5.0]
    reports = [
        r
        for t, a, b in zip(truth, champion, challenger, strict=True)
        for r in monitor.update(t, {"champion": Scored(3, a), "challenger": Scored(4, b)})
    ]
    (c,) = reports[0].comparisons
    abs_a = [abs(t - a) for t, a in zip(truth, champion, strict=True)]
    abs_b = [abs(t - b) for t, b in zip(truth, challenger, strict=True)]
    expected = scipy.stats.ttest_rel(abs_b, abs_a)
    assert (c.test, c.metric) == ("paired_ttest", "mae")
    assert c.statistic == pytest.approx(expected.statistic)
    assert c.p_value == pytest.approx(expected.pvalue)
    names = {(p.name, p.role) for p in reports[0].to_metrics()}
    assert {
        ("mae", "champion"),
        ("r2", "challenger"),
        ("mae_delta", "challenger"),
        ("paired_ttest_p_value", "challenger"),
    } <= names


def test_null_labels_are_skipped_and_flush_closes() -> None:
    monitor = PerformanceMonitor(window=WindowSpec(events=10))
    assert monitor.update(None, {"champion": Scored(1, "a")}) == ()
    monitor.update("a", {"champion": Scored(1, "a")})
    (report,) = monitor.flush()
    assert report.window.count == 1 and monitor.flush() == ()


def test_bad_task() -> None:
    with pytest.raises(MonitorConfigError):
        PerformanceMonitor("ranking")  # type: ignore[arg-type]

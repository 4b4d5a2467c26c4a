"""Every closed window of the performance monitor against scikit-learn.

The data are random but seeded; requests go in one at a time, as the services feed them,
and the rows of each window are found without the monitor; scikit-learn (and SciPy's
paired t-test for the regression comparison) then runs on exactly those rows. Metrics
agree to 1e-9 (relative).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics as skm

from streams.monitoring import WindowSpec
from streams.monitoring.performance import PerformanceMonitor, PerformanceReport, Scored
from tests.unit.streams.monitoring.oracle_support import EXACT, SPECS, check_spans, timestamps

CLASSES = ["maybe", "no", "yes"]  # sorted: scikit-learn's column order for probabilities
ROLES = ("champion", "challenger")


@dataclass(frozen=True)
class Request:
    label: Any
    outcomes: dict[str, Scored]
    ts: int


def _classifications(n: int, seed: int) -> list[Request]:
    """Three classes, positive ``"yes"``; the champion moves from version 3 to 5 midway,
    the shadow challenger (version 4) fails on a tenth of the requests, and a few requests
    come with a null label."""
    rng = np.random.default_rng(seed)
    requests = []
    for i, ts in enumerate(timestamps(rng, n)):
        truth = int(rng.integers(3))
        outcomes = {}
        for role, version, skill in (
            ("champion", 3 if i < n // 2 else 5, 1.0),
            ("challenger", 4, 1.6),
        ):
            logits = rng.normal(0, 1, size=3)
            logits[truth] += skill
            p = np.exp(logits) / np.exp(logits).sum()
            output = CLASSES[int(np.argmax(p))]
            if role == "challenger" and rng.random() < 0.1:
                output, p = None, None
            probs = None if p is None else dict(zip(CLASSES, p.tolist(), strict=True))
            outcomes[role] = Scored(version, output, probs)
        label = None if rng.random() < 0.03 else CLASSES[truth]
        requests.append(Request(label, outcomes, ts))
    return requests


def _regressions(n: int, seed: int) -> list[Request]:
    rng = np.random.default_rng(seed)
    requests = []
    for ts in timestamps(rng, n):
        truth = float(rng.normal(10, 3))
        champion = Scored(1, truth + float(rng.normal(0.2, 1.0)))
        challenger = Scored(2, None if rng.random() < 0.1 else truth + float(rng.normal(0, 0.8)))
        label = None if rng.random() < 0.03 else truth
        requests.append(Request(label, {"champion": champion, "challenger": challenger}, ts))
    return requests


def _run(monitor: PerformanceMonitor, requests: list[Request]) -> list[PerformanceReport]:
    reports: list[PerformanceReport] = []
    for request in requests:
        reports += monitor.update(request.label, request.outcomes, ts=request.ts)
    return [*reports, *monitor.flush()]


def _answered(chunk: list[Request], role: str, version: int) -> list[Request]:
    return [
        r
        for r in chunk
        if r.outcomes[role].version == version and r.outcomes[role].output is not None
    ]


@pytest.mark.parametrize("spec", SPECS, ids=["events", "millis"])
def test_classification_equals_sklearn_on_every_window(spec: WindowSpec) -> None:
    everything = _classifications(2000, seed=13)
    reports = _run(PerformanceMonitor(positive_label="yes", window=spec), everything)
    requests = [r for r in everything if r.label is not None]  # null labels are skipped
    check_spans([r.window for r in reports], [r.ts for r in requests], spec)
    compared: Counter[str] = Counter()
    for report in reports:
        chunk = requests[report.window.first_event : report.window.end_event]
        for role in report.roles:
            rows = _answered(chunk, role.role, role.version)
            assert role.count == len(rows)
            assert role.metrics == pytest.approx(_sklearn_classification(rows, role.role), **EXACT)
            compared[role.role] += 1
        for comparison in report.comparisons:
            both = _answered(
                _answered(chunk, "champion", comparison.champion_version),
                "challenger",
                comparison.challenger_version,
            )
            assert comparison.count == len(both)
            for role in ROLES:
                y_true = [r.label for r in both]
                y_pred = [r.outcomes[role].output for r in both]
                accuracy = skm.accuracy_score(y_true, y_pred)
                assert getattr(comparison, role) == pytest.approx(accuracy, **EXACT)
            compared["comparison"] += 1
    # one window holds both champion versions: one more result and comparison there
    assert compared["champion"] == compared["comparison"] == len(reports) + 1
    assert compared["challenger"] == len(reports)


def _sklearn_classification(rows: list[Request], role: str) -> dict[str, float]:
    y_true = [r.label for r in rows]
    y_pred = [r.outcomes[role].output for r in rows]
    proba = np.array([[r.outcomes[role].probabilities[c] for c in CLASSES] for r in rows])  # type: ignore[index]
    t, p = [y == "yes" for y in y_true], [y == "yes" for y in y_pred]
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "log_loss": skm.log_loss(y_true, proba, labels=CLASSES),
        "precision": skm.precision_score(t, p, zero_division=0.0),
        "recall": skm.recall_score(t, p, zero_division=0.0),
        "f1": skm.f1_score(t, p, zero_division=0.0),
        "roc_auc": skm.roc_auc_score(t, proba[:, CLASSES.index("yes")]),
    }


@pytest.mark.parametrize("spec", SPECS, ids=["events", "millis"])
def test_regression_equals_sklearn_on_every_window(spec: WindowSpec) -> None:
    everything = _regressions(2000, seed=14)
    reports = _run(PerformanceMonitor("regression", window=spec), everything)
    requests = [r for r in everything if r.label is not None]  # null labels are skipped
    check_spans([r.window for r in reports], [r.ts for r in requests], spec)
    for report in reports:
        chunk = requests[report.window.first_event : report.window.end_event]
        for role in report.roles:
            rows = _answered(chunk, role.role, role.version)
            y_true = [r.label for r in rows]
            y_pred = [r.outcomes[role.role].output for r in rows]
            expected = {
                "mae": skm.mean_absolute_error(y_true, y_pred),
                "rmse": skm.root_mean_squared_error(y_true, y_pred),
                "r2": skm.r2_score(y_true, y_pred),
            }
            assert role.count == len(rows) and role.metrics == pytest.approx(expected, **EXACT)
        (comparison,) = report.comparisons
        both = [r for r in chunk if r.outcomes["challenger"].output is not None]
        errors = {
            role: np.abs([r.label - r.outcomes[role].output for r in both])  # type: ignore[operator]
            for role in ROLES
        }
        test = scipy.stats.ttest_rel(errors["challenger"], errors["champion"])
        assert (comparison.count, comparison.champion, comparison.challenger) == (
            len(both),
            pytest.approx(errors["champion"].mean(), **EXACT),
            pytest.approx(errors["challenger"].mean(), **EXACT),
        )
        assert (comparison.statistic, comparison.p_value) == pytest.approx(
            (test.statistic, test.pvalue), **EXACT
        )
    assert len(reports) > 2

"""Every query of the Grafana dashboard runs on the real warehouse (chDB) and answers.

The warehouse holds an hour of demo-like rows for two models (``churn``, the one the
dashboard shows, and ``other``, which it must not): scored requests with some errors and
backup answers, labels, dead letters, the monitor's drift, performance and fairness
metrics, alerts and registry events. Each panel's, annotation's and variable's SQL is
expanded as Grafana and the ClickHouse plugin expand it (:func:`services.grafana.expand`)
and run as is; the traffic panel's numbers are checked against the inserted rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.grafana import TimeRange, dashboard_queries, expand, load_dashboard
from services.warehouse import Warehouse
from tests.integration.fixtures_warehouse import as_insert, sample_row

pytestmark = pytest.mark.integration

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SPAN = TimeRange(START, START + timedelta(hours=1), interval_s=60)
MINUTES = 30  # of traffic, 20 requests a minute
FEATURES = ("age", "plan")


def at(minute: int, second: int = 0) -> datetime:
    return START + timedelta(minutes=minute, seconds=second)


def predictions(model: str) -> list[dict[str, Any]]:
    rows = []
    for minute in range(MINUTES):
        for i in range(20):
            failed, backup = i == 0 and minute % 3 == 0, i == 1 and minute % 5 == 0
            rows.append(sample_row(
                "predictions", request_id=f"{model}-{minute}-{i}", model=model,
                ts=at(minute, 3 * i), latency_ms=1.0 + i, champion_version="1",
                challenger_version="2", champion_output="" if failed else ("yes", "no")[i % 2],
                champion_error="boom" if failed else "", challenger_output=("yes", "no")[i % 3 % 2],
                served_by="backup" if backup else "champion", sensitive={"sex": "fm"[i % 2]},
            ))  # fmt: skip
    return rows


def feedback(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        sample_row("feedback", request_id=p["request_id"], model=p["model"],
                   ts=p["ts"] + timedelta(seconds=30), label_string="yes", label_number=None)
        for p in rows[::2]
    ]  # fmt: skip


def metric(minute: int, kind: str, name: str, value: float, **columns: Any) -> dict[str, Any]:
    window = {"window_start": at(minute - 1), "window_end": at(minute), "ts": at(minute, 1)}
    defaults = {"model": "churn", "model_version": "1", "role": "", "feature": "", "group": "",
                "count": 200, "labels": {}}  # fmt: skip
    return sample_row("metrics", kind=kind, name=name, value=value, **(defaults | window | columns))


def metrics() -> list[dict[str, Any]]:
    rows = []
    for minute in range(5, MINUTES, 5):
        drifted = minute >= 20
        for feature in FEATURES:
            labels = {"threshold": "0.2", "drifted": "true" if drifted else "false"}
            rows.append(metric(minute, "drift", "psi", 0.3 if drifted else 0.05,
                               feature=feature, labels=labels))  # fmt: skip
        rows += [
            metric(minute, "performance", "accuracy", 0.8, role="champion"),
            metric(minute, "performance", "accuracy", 0.85, role="challenger", model_version="2"),
            metric(minute, "fairness", "demographic_parity_difference", 0.12,
                   labels={"attribute": "sex"}),
            metric(minute, "fairness", "demographic_parity_ratio", 0.75,
                   labels={"attribute": "sex"}),
            metric(minute, "fairness", "equal_opportunity_difference", 0.04,
                   labels={"attribute": "sex"}),
        ]  # fmt: skip
        for group, rate in (("sex=f", 0.4), ("sex=m", 0.52)):
            rows += [metric(minute, "fairness", name, rate, group=group)
                     for name in ("selection_rate", "tpr", "fpr")]  # fmt: skip
    return rows


def events() -> dict[str, list[dict[str, Any]]]:
    return {
        "alerts": [
            sample_row("alerts", model="churn", ts=at(20, 2), window_start=at(19),
                       window_end=at(20)),
            sample_row("alerts", model="churn", ts=at(25, 2), alert_id="churn/fairness",
                       kind="fairness", name="demographic_parity_difference", feature="",
                       window_start=at(24), window_end=at(25)),
        ],
        "model_events": [
            sample_row("model_events", model="churn", ts=at(0), version="2",
                       action="set_challenger"),
            sample_row("model_events", model="churn", ts=at(28), version="2", action="promote",
                       reason="better and fair"),
        ],
        "dlq": [sample_row("dlq", model="churn", ts=at(minute, 7)) for minute in (2, 2, 9)],
    }  # fmt: skip


@pytest.fixture
def demo(warehouse: Warehouse) -> Warehouse:
    served = predictions("churn") + predictions("other")
    tables = {"predictions": served, "feedback": feedback(served), "metrics": metrics()}
    for table, rows in (tables | events()).items():
        warehouse.insert(table, *as_insert(rows))
    return warehouse


def run(warehouse: Warehouse, sql: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    columns, rows = warehouse.query(expand(sql, SPAN, {"model": "churn"}), read_only=True)
    return columns, rows


def test_every_query_of_the_dashboard_answers_on_demo_data(demo: Warehouse) -> None:
    queries = dashboard_queries(load_dashboard())
    assert len(queries) >= 15
    empty = [q.where for q in queries if not run(demo, q.sql)[1]]
    assert not empty, f"no rows for {empty}"


def test_the_traffic_panels_count_the_models_own_requests(demo: Warehouse) -> None:
    by_title = {q.where: q.sql for q in dashboard_queries(load_dashboard())}
    _, rows = run(demo, by_title["Requests per second"])
    assert [row[1] for row in rows] == [20 / 60] * MINUTES  # 20 a minute; not `other`'s
    columns, rows = run(demo, by_title["Error, backup and DLQ rates"])
    rates = {row[0]: dict(zip(columns[1:], row[1:], strict=True)) for row in rows}
    assert rates[at(3)]["champion errors"] == pytest.approx(1 / 20)
    assert rates[at(5)]["served by backup"] == pytest.approx(1 / 20)
    assert rates[at(2)]["to the DLQ"] == pytest.approx(2 / 22)
    assert rates[at(4)] == {"champion errors": 0, "served by backup": 0, "to the DLQ": 0}
    _, models = run(demo, by_title["variable model"])
    assert models == [("churn",), ("other",)]


def test_drift_and_fairness_series_are_named_for_their_legend(demo: Warehouse) -> None:
    by_title = {q.where: q.sql for q in dashboard_queries(load_dashboard())}
    _, rows = run(demo, by_title["Drift statistic per feature"])
    assert {row[1] for row in rows} == {"age (psi)", "plan (psi)"}
    _, rows = run(demo, by_title["Fairness gaps between groups"])
    assert {row[1] for row in rows} == {
        "sex: demographic_parity_difference", "sex: equal_opportunity_difference"}  # fmt: skip
    _, rows = run(demo, by_title["annotation Alerts firing"])
    assert [row[1].split(":")[0] for row in rows] == ["warning drift age", "warning fairness"]

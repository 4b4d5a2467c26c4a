"""MetricPoint and Alert records match the Avro contracts in schemas/avro."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import fastavro
import pytest

from streams.monitoring import Alert, MetricPoint

AVRO = Path(__file__).resolve().parents[4] / "schemas" / "avro"


def _schema(name: str) -> dict[str, object]:
    return fastavro.parse_schema(json.loads((AVRO / name).read_text()))


def _fields(name: str) -> set[str]:
    return {f["name"] for f in json.loads((AVRO / name).read_text())["fields"]}


def test_metric_point_has_every_schema_field_but_model_and_ts() -> None:
    fields = {f.name for f in dataclasses.fields(MetricPoint)}
    assert fields == _fields("metric.avsc") - {"model", "ts"}


def test_alert_has_every_schema_field_but_model_and_ts() -> None:
    fields = {f.name for f in dataclasses.fields(Alert)}
    assert fields == _fields("alert.avsc") - {"model", "ts"}


@pytest.mark.parametrize(
    "point",
    [
        MetricPoint("drift", "psi", 0.3, 500, 0, 1000, feature="x", labels={"p_value": "0.1"}),
        MetricPoint("performance", "accuracy", 0.9, 10, 5, 6, role="champion", model_version=3),
        MetricPoint("fairness", "selection_rate", 0.2, 7, 0, 1, group="sex=f"),
    ],
)
def test_metric_records_validate_against_the_schema(point: MetricPoint) -> None:
    record = point.to_record(model="churn", ts=123)
    assert fastavro.validation.validate(record, _schema("metric.avsc"))


@pytest.mark.parametrize("severity", ["info", "warning", "critical"])
def test_alert_records_validate_against_the_schema(severity: str) -> None:
    alert = Alert(
        "drift",
        severity,
        "psi 0.3 > 0.2",
        feature="x",
        value=0.3,  # type: ignore[arg-type]
        threshold=0.2,
        at_event=500,
        model_version=2,
    )
    assert fastavro.validation.validate(alert.to_record(model="churn", ts=1), _schema("alert.avsc"))


def test_results_are_frozen() -> None:
    point = MetricPoint("ops", "qps", 1.0, 1, 0, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.value = 2.0  # type: ignore[misc]

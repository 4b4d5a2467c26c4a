"""Labels in every form the contract accepts reach every estimator as the same class."""

from __future__ import annotations

import math
from typing import Any

import pytest

from schemas.contracts import codec_for
from streams.monitoring import WindowSpec, label_key
from streams.monitoring.change import ConceptDriftMonitor
from streams.monitoring.fairness import FairnessMonitor
from streams.monitoring.performance import PerformanceMonitor, Scored
from streams.monitoring.results import MetricPoint
from streams.monitoring.watch import ModelSpec, ModelWatch
from tests.unit.streams.monitoring.test_watch import record

# the same request labelled True in every accepted form, decoded as the monitor decodes it
TRUE_FORMS: list[Any] = [True, "True", "true", "TRUE"]


def feedback(i: int, label: Any) -> dict[str, Any]:
    value = {"request_id": f"r{i}", "model": "m", "label": label, "ts": 1_800_000_000_500 + i}
    return codec_for("feedback").decode_json(codec_for("feedback").encode_json(value))


def performance(points: list[Any]) -> dict[tuple[str | None, str], MetricPoint]:
    return {
        (p.role, p.name): p
        for p in points
        if isinstance(p, MetricPoint) and p.kind == "performance"
    }


def test_label_key_refuses_null() -> None:
    with pytest.raises(TypeError, match="got null"):
        label_key(None)


@pytest.mark.parametrize("label", TRUE_FORMS)
def test_every_form_of_true_is_right_for_a_true_prediction(label: Any) -> None:
    watch = ModelWatch(ModelSpec("m", features=("x0",)))
    for i in range(4):
        watch.on_prediction(record(i, {"x0": 0.0}, output="True"))
        watch.on_feedback(feedback(i, label))
    metrics = performance(watch.flush())
    assert metrics[("champion", "accuracy")].value == 1.0
    assert metrics[("champion", "accuracy")].count == 4
    assert metrics[("champion", "recall")].value == 1.0  # positive label "True"
    assert metrics[("champion", "log_loss")].value == pytest.approx(-math.log(0.7))


def test_one_is_not_true_and_null_is_not_counted() -> None:
    watch = ModelWatch(ModelSpec("m", features=("x0",)))
    labels = [True, 1, 1.0, None, "False"]
    for i, label in enumerate(labels):
        watch.on_prediction(record(i, {"x0": 0.0}, output="True"))
        watch.on_feedback(feedback(i, label))
    accuracy = performance(watch.flush())[("champion", "accuracy")]
    assert (accuracy.count, accuracy.value) == (4, 0.25)  # null: unlabelable, not wrong
    assert watch.joiner.stats.joined == 5


def test_numeric_classes_match_whole_number_outputs() -> None:
    watch = ModelWatch(ModelSpec("m", features=("x0",), positive_label="1"))
    outputs: list[Any] = ["1", 1.0, "1.0", "0"]
    for i, output in enumerate(outputs):
        watch.on_prediction(record(i, {"x0": 0.0}, output=output))
        watch.on_feedback(feedback(i, 1))
    accuracy = performance(watch.flush())[("champion", "accuracy")]
    assert (accuracy.count, accuracy.value) == (4, 0.75)


def test_regression_ignores_text_labels_as_sql_does() -> None:
    watch = ModelWatch(ModelSpec("m", features=("x0",), task="regression"))
    for i, label in enumerate([2.0, "True", "3.5", 4.0]):
        r = record(i, {"x0": 0.0})
        r["champion"] |= {"output": 3.0, "probabilities": None}
        watch.on_prediction(r)
        watch.on_feedback(feedback(i, label))
    mae = performance(watch.flush())[("champion", "mae")]
    assert (mae.count, mae.value) == (2, 1.0)  # only label_number-like labels: 2.0 and 4.0


def test_probabilities_are_looked_up_by_class_text() -> None:
    monitor = PerformanceMonitor(positive_label="true", window=WindowSpec(events=2))
    monitor.update(True, {"champion": Scored(1, "True", {"true": 0.8, "false": 0.2})})
    (report,) = monitor.update(
        "False", {"champion": Scored(1, "False", {"true": 0.4, "false": 0.6})}
    )
    metrics = report.roles[0].metrics
    assert metrics["roc_auc"] == 1.0 and metrics["recall"] == 1.0 and metrics["accuracy"] == 1.0
    assert metrics["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)


def test_concept_drift_compares_class_text() -> None:
    monitor = ConceptDriftMonitor()
    for _ in range(2_000):
        assert monitor.update(True, "True") == ()  # never wrong: no change to find
    assert monitor.seen == 2_000


def test_fairness_compares_class_text() -> None:
    monitor = FairnessMonitor(["g"], positive_label=True, window=WindowSpec(events=2))
    monitor.update({"g": "a"}, "True", "true")
    (report,) = monitor.update({"g": "a"}, "False", True)
    assert report.groups["a"].selection_rate == 0.5
    assert report.groups["a"].tpr == 0.5

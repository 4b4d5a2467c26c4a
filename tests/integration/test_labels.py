"""Feedback labels over real Kafka and the real ClickHouse engine: JSON booleans land in
the warehouse, the monitor computes performance on them, and the monitor and SQL count
the same labelled requests and the same right answers; a label neither can read is
refused by both, once each, and logged in one line per stage."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from itertools import product
from typing import Any

import orjson
import pytest

from schemas.contracts import codec_for, sample_record
from schemas.labels import label_class
from services.monitor import watch_factory
from services.registry import Registry, RegistryView
from services.sink import TABLES, Position, Sink, SinkConfig, decode_value
from services.sink.rows import PREDICTION_COLUMNS, prediction_row
from services.synthetic import input_schema, rows, true_label
from services.warehouse import Warehouse
from streams.kafka import KafkaConfig, Topics, TopicSpec, ensure_topics, make_admin, make_producer
from streams.monitoring.stream import MonitorConfig, MonitorLoop
from streams.scoring.adapters import adapt
from tests.integration.scoring_support import FEATURES, trained

pytestmark = pytest.mark.integration

MODEL = "loan"
LABELLED = 2_000  # two performance windows of 1,000
UNLABELABLE = 20  # label null: joined, never counted as right or wrong
BAD: tuple[Any, ...] = ({"value": True}, [True], {"label": "True"}, [], {})  # objects, arrays
BAD_AT = (100, 900, 1500, 1501, 1999)  # produced just before the label of r<i>
T0 = (int(time.time()) - 3_600) * 1_000  # an hour ago: labels are not from the future
JSON: list[tuple[str, str | bytes | None]] = [("content-type", b"application/json")]


# -- the class rule, in Python and in SQL -----------------------------------------------

LABELS: list[Any] = [True, False, "true", "TRUE", "False", 1, 0, 1.0, "1", "1.0", -3, 2.5,
                     0.25, "cat", "yes", "", None]  # fmt: skip
OUTPUTS: list[Any] = ["True", "False", "true", "1", "1.0", 1.0, -3.0, 2.5, "cat", None]


def test_sql_names_the_class_python_names(warehouse: Warehouse) -> None:
    """Every label and output form, landed by the sink's own row functions."""
    cases = list(product(range(len(LABELS)), range(len(OUTPUTS))))
    predictions, feedback = [], []
    for n, (i, j) in enumerate(cases):
        record = sample_record("prediction_log") | {"request_id": f"r{n}", "model": "c"}
        record["champion"] = record["champion"] | {"output": OUTPUTS[j]}
        pos = Position("ms.c.predictions", 0, n, None, {})
        predictions.append(prediction_row(record, pos))
        value = orjson.dumps({"request_id": f"r{n}", "model": "c", "label": LABELS[i], "ts": n})
        decoded = decode_value(value, {"content-type": b"application/json"}, "feedback")
        feedback.append(TABLES["feedback"].to_row(decoded, pos))
    warehouse.insert("predictions", predictions, list(PREDICTION_COLUMNS))
    warehouse.insert("feedback", feedback, list(TABLES["feedback"].columns))
    got = {
        int(rid[1:]): (label, output)
        for rid, label, output in warehouse.query(
            "SELECT request_id, label_class, champion_class FROM labelled_predictions"
        ).rows
    }
    expected = {
        n: (label_class(LABELS[i]), label_class(OUTPUTS[j])) for n, (i, j) in enumerate(cases)
    }
    assert got == expected


# -- the whole path: Kafka → monitor and sink → ClickHouse -------------------------------


@pytest.fixture
def loan(kafka: KafkaConfig, unique: Callable[[str], str]) -> Topics:
    topics = Topics(unique("labels"))
    admin = make_admin(kafka)
    ensure_topics(admin, topics.global_specs(1))
    kinds = (topics.predictions, topics.feedback, topics.dlq)
    ensure_topics(admin, [TopicSpec(kind(MODEL), 1) for kind in kinds])
    with Registry(kafka, topics, actor="tests") as registry:
        registry.register(MODEL, trained()[0], input_schema(), task="classification")
    return topics


def prediction_logs(n: int) -> list[dict[str, Any]]:
    """What the scorer logs for a River champion and challenger with boolean classes."""
    champion, challenger = (adapt(m, task="classification", features=FEATURES) for m in trained())
    features = list(rows(n, seed=21))
    logs = []
    for i, (row, a, b) in enumerate(
        zip(features, champion.predict(features), challenger.predict(features), strict=True)
    ):
        record = sample_record("prediction_log") | {
            "request_id": f"r{i}", "model": MODEL, "ts": T0 + i, "features": row,
            "client_id": None, "champion": a.as_log(1), "challenger": b.as_log(2),
            "served_by": "champion", "backup": None, "training_data_fingerprint": None,
            "sensitive": {},
        }  # fmt: skip
        logs.append(codec_for("prediction_log").check(record))
    return logs


def label_forms(logs: list[dict[str, Any]]) -> list[Any]:
    """Mostly JSON booleans, some strings in other cases; the last ones null."""
    rng = random.Random(5)
    labels: list[Any] = []
    for i, log in enumerate(logs[:LABELLED]):
        truth = true_label(log["features"], rng)
        labels.append({3: str(truth).lower(), 7: str(truth).upper()}.get(i % 10, truth))
    return labels + [None] * UNLABELABLE


def produce(
    kafka: KafkaConfig, topics: Topics, logs: list[dict[str, Any]], labels: list[Any]
) -> None:
    producer = make_producer(kafka)
    bad = dict(zip(BAD_AT, BAD, strict=True))
    for log in logs:
        key = log["request_id"].encode()
        producer.produce(topics.predictions(MODEL), orjson.dumps(log), key, headers=JSON)
    for i, label in enumerate(labels):
        if i in bad:
            record = {"request_id": f"bad{i}", "model": MODEL, "label": bad[i], "ts": T0 + i}
            producer.produce(topics.feedback(MODEL), orjson.dumps(record), headers=JSON)
        record = {"request_id": f"r{i}", "model": MODEL, "label": label, "ts": T0 + 5_000 + i}
        producer.produce(topics.feedback(MODEL), orjson.dumps(record), headers=JSON)
    assert producer.flush(30) == 0


def right(output: str | None, label: Any) -> bool:
    """Independent of label_class: a label names True in any letter case, or False."""
    return output is not None and label is not None and output == str(label).capitalize()


def one(warehouse: Warehouse, sql: str) -> tuple[Any, ...]:
    return warehouse.query(sql, {"m": MODEL}).rows[0]  # type: ignore[no-any-return]


MONITOR_SQL = """
SELECT role, sum(count) AS labelled, round(sum(value * count)) AS right
FROM metrics WHERE model = %(m)s AND kind = 'performance' AND name = 'accuracy'
GROUP BY role ORDER BY role
"""
LABELLED_SQL = """
SELECT countIf(champion_class IS NOT NULL), countIf(champion_class = label_class),
       countIf(challenger_class IS NOT NULL), countIf(challenger_class = label_class)
FROM labelled_predictions WHERE model = %(m)s AND label_class IS NOT NULL
"""


def wait_landed(sink: Sink, warehouse: Warehouse, n: int) -> None:
    """Step the sink until everything landed, the monitor's two windows included."""
    want = (n, n, len(BAD), LABELLED)
    deadline = time.monotonic() + 120
    got: tuple[Any, ...] = ()
    while got != want and time.monotonic() < deadline:
        end = time.monotonic() + 1
        while time.monotonic() < end:
            sink.step(0.2)
        got = one(warehouse, """
            SELECT (SELECT count() FROM predictions WHERE model = %(m)s),
                   (SELECT count() FROM feedback WHERE model = %(m)s),
                   (SELECT count() FROM dlq WHERE model = %(m)s),
                   (SELECT sum(count) FROM metrics WHERE model = %(m)s AND role = 'champion'
                    AND kind = 'performance' AND name = 'accuracy')""")  # fmt: skip
    assert got == want, "the sink or the monitor did not catch up"


def run_monitor_and_sink(kafka: KafkaConfig, topics: Topics, warehouse: Warehouse) -> Counter[str]:
    """The monitor (a thread) and the sink, until everything landed; the monitor's stats."""
    view = RegistryView(kafka, topics)
    view.sync()
    quiet = 3_600.0  # refusals are summed up once, at close
    monitor = MonitorLoop(
        kafka,
        MonitorConfig(topics, max_interval=0.2, refusal_log_interval=quiet),
        watch_factory(view),
    )
    sink = Sink(kafka, SinkConfig(topics, max_rows=500, max_age=0.2, refusal_log_interval=quiet),
                warehouse)  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=monitor.run, args=(stop,))
    thread.start()
    try:
        wait_landed(sink, warehouse, LABELLED + UNLABELABLE)
    finally:
        stop.set()
        thread.join(30)
        monitor.close()
        sink.flush_all()
        sink.close()
        view.close()
    return monitor.stats


def test_boolean_labels_are_counted_alike_by_the_monitor_and_sql(
    kafka: KafkaConfig, loan: Topics, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    logs = prediction_logs(LABELLED + UNLABELABLE)
    labels = label_forms(logs)
    produce(kafka, loan, logs, labels)
    with caplog.at_level(logging.WARNING, logger="modelstream"):
        stats = run_monitor_and_sink(kafka, loan, warehouse)

    # JSON booleans landed as the class text the scorer logs
    landed = dict(warehouse.query(
        "SELECT request_id, label_string FROM feedback WHERE model = %(m)s", {"m": MODEL}
    ).rows)  # fmt: skip
    booleans = [i for i, label in enumerate(labels) if isinstance(label, bool)]
    assert len(booleans) == 1_600
    assert all(landed[f"r{i}"] == str(labels[i]) for i in booleans)

    # the monitor computed performance on them, with True as the positive class
    names = {r[0] for r in warehouse.query(
        "SELECT DISTINCT name FROM metrics WHERE model = %(m)s AND role = 'champion' "
        "AND kind = 'performance'", {"m": MODEL}).rows}  # fmt: skip
    assert {"accuracy", "precision", "recall", "f1", "log_loss", "roc_auc"} <= names

    assert_counted_alike(warehouse, logs, labels)

    # the bad labels: refused by both, kept once (in the sink's dlq table), in = out + dlq
    sent = len(labels) + len(BAD)
    assert stats["feedback"] + stats["refused"] == sent
    assert stats["refused"] == stats["refused:wrong_type"] == len(BAD)
    dlq = warehouse.query(
        "SELECT reason, stage, message FROM dlq WHERE model = %(m)s", {"m": MODEL}
    ).rows
    assert len(dlq) == len(BAD)
    assert all(r[:2] == ("sink_decode", "sink") and "'label'" in r[2] for r in dlq)
    assert len(landed) + len(dlq) == sent

    # and each stage said so in one line, not one per record
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    print(*refused, sep="\n")
    assert len(refused) == 2, refused
    assert all(line.startswith(f"5 feedback records of {MODEL} refused") for line in refused)
    assert all(f"(first at {loan.feedback(MODEL)}[0]@100)" in line for line in refused)


def assert_counted_alike(
    warehouse: Warehouse, logs: list[dict[str, Any]], labels: list[Any]
) -> None:
    """The monitor's performance windows and SQL count the same labelled requests and the
    same right answers, per role, and both match the truth counted here."""
    expected = [
        sum(right(log[role]["output"], label) for log, label in zip(logs, labels, strict=True))
        for role in ("champion", "challenger")
    ]
    by_role = {
        role: (int(n), int(r)) for role, n, r in warehouse.query(MONITOR_SQL, {"m": MODEL}).rows
    }
    sql = one(warehouse, LABELLED_SQL)
    print(f"labelled, right: monitor {by_role}, SQL {sql}, expected {LABELLED}, {expected}")
    assert by_role["champion"] == (sql[0], sql[1]) == (LABELLED, expected[0])
    assert by_role["challenger"] == (sql[2], sql[3]) == (LABELLED, expected[1])
    view_sums = one(warehouse, """
        SELECT sum(champion_labelled), round(sum(champion_accuracy * champion_labelled))
        FROM champion_vs_challenger WHERE model = %(m)s""")  # fmt: skip
    assert (int(view_sums[0]), int(view_sums[1])) == (LABELLED, expected[0])
    null = one(warehouse, "SELECT countIf(label_class IS NULL) FROM labelled_predictions "
                          "WHERE model = %(m)s")  # fmt: skip
    assert null == (UNLABELABLE,)  # null labels join, but neither side counts them

"""The sink lands every topic in the real ClickHouse engine: counts add up, no duplicates,
through kill -9 and a ClickHouse outage."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import TopicPartition

from schemas.contracts import codec_for, sample_record
from services.sink import Sink, SinkConfig
from services.warehouse import Warehouse, WarehouseUnavailable
from streams.kafka import (
    KafkaConfig,
    Topics,
    ensure_topics,
    make_admin,
    make_consumer,
    make_producer,
)
from tests.integration.scoring_support import MODELSTREAM


def prediction(i: int, model: str = "m") -> dict[str, Any]:
    record = sample_record("prediction_log")
    return record | {"request_id": f"r{i}", "model": model, "ts": 1_795_000_000_000 + i}


def produce_all(kafka: KafkaConfig, topics: Topics, n: int, start: int = 0) -> None:
    producer = make_producer(kafka)
    json_ct = [("content-type", b"application/json")]
    for i in range(start, start + n):
        producer.produce(
            topics.predictions("m"), orjson.dumps(prediction(i)), f"r{i}".encode(), headers=json_ct
        )
        if i % 2 == 0:
            fb = sample_record("feedback") | {"request_id": f"r{i}", "model": "m", "label": "True"}
            producer.produce(topics.feedback("m"), codec_for("feedback").encode_avro(fb))
        if i % 10 == 0:
            metric = sample_record("metric") | {"model": "m", "name": f"n{i}"}
            producer.produce(topics.metrics, codec_for("metric").encode_avro(metric))
            alert = sample_record("alert") | {"model": "m", "message": f"a{i}"}
            producer.produce(topics.alerts, codec_for("alert").encode_avro(alert))
            producer.produce(
                topics.dlq("m"),
                b"\x00raw" + str(i).encode(),
                f"d{i}".encode(),
                headers=[
                    ("ms-reason", b"malformed"),
                    ("ms-model", b"m"),
                    ("ms-request-id", f"d{i}".encode()),
                ],
            )
        if i % 2000 == 0:
            producer.poll(0)
    event = sample_record("model_event") | {"model": "m"}
    producer.produce(topics.model_events, codec_for("model_event").encode_avro(event))
    assert producer.flush(30) == 0


def messages_in(kafka: KafkaConfig, topic: str) -> int:
    """Sum of end - start offsets over the topic's partitions (aborted/markers aside)."""
    consumer = make_consumer(kafka, "offsets-probe")
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    total = 0
    for p in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += high - low
    consumer.close()
    return total


EXPECTED_TABLES = {
    "predictions": lambda t: t.predictions("m"),
    "feedback": lambda t: t.feedback("m"),
    "metrics": lambda t: t.metrics,
    "alerts": lambda t: t.alerts,
    "dlq": lambda t: t.dlq("m"),
    "model_events": lambda t: t.model_events,
}


@pytest.fixture
def topics(kafka: KafkaConfig, unique: Callable[[str], str]) -> Topics:
    names = Topics(unique("sink"))
    ensure_topics(make_admin(kafka), names.global_specs(2) + names.model_specs("m", 3))
    return names


def run_until(sink: Sink, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        sink.step(0.2)
    sink.flush_all()


def counts(warehouse: Warehouse) -> dict[str, int]:
    return {t: warehouse.query(f"SELECT count() FROM {t}").rows[0][0] for t in EXPECTED_TABLES}


def test_every_topic_lands_in_its_table(
    kafka: KafkaConfig, topics: Topics, warehouse: Warehouse
) -> None:
    produce_all(kafka, topics, 3_000)
    expected = {t: messages_in(kafka, f(topics)) for t, f in EXPECTED_TABLES.items()}
    sink = Sink(kafka, SinkConfig(topics, max_rows=700, max_age=0.3), warehouse)
    run_until(sink, lambda: counts(warehouse) == expected)
    sink.close()
    assert counts(warehouse) == expected
    one = warehouse.query(
        "SELECT features['x'], champion_version, served_by FROM predictions WHERE request_id = 'r7'"
    ).rows
    assert len(one) == 1
    dlq = warehouse.query("SELECT payload, reason FROM dlq WHERE request_id = 'd10'").rows
    assert dlq == [("\x00raw10", "malformed")] or dlq[0][1] == "malformed"
    dupes = warehouse.query("SELECT count() - uniqExact(request_id) FROM predictions").rows
    assert dupes == [(0,)]


def test_a_record_that_cannot_become_a_row_goes_to_the_dlq_table_and_the_batch_goes_on(
    kafka: KafkaConfig, topics: Topics, warehouse: Warehouse
) -> None:
    """A DLQ entry carrying a null header (the original request had one) and a prediction
    whose ts ClickHouse cannot hold used to stop the sink at every restart."""
    producer = make_producer(kafka)
    json_ct = [("content-type", b"application/json")]
    far = prediction(1) | {"request_id": "far", "ts": 10**18}
    producer.produce(topics.predictions("m"), orjson.dumps(far), b"far", headers=json_ct)
    producer.produce(topics.predictions("m"), orjson.dumps(prediction(2)), b"r2", headers=json_ct)
    producer.produce(topics.dlq("m"), b"\xffraw", b"n1", headers=[
        ("ms-reason", b"malformed"), ("ms-request-id", b"n1"), ("x-null", None),
        ("ms-source-partition", b"not a number"),
    ])  # fmt: skip
    assert producer.flush(30) == 0
    sink = Sink(kafka, SinkConfig(topics, max_rows=100, max_age=0.2), warehouse)
    landed = "SELECT request_id, reason FROM dlq ORDER BY request_id"
    run_until(sink, lambda: len(warehouse.query(landed).rows) == 2)
    sink.close()
    dlq = warehouse.query(landed).rows
    assert [row[0] for row in dlq] == ["", "n1"] and dlq[1][1] == "malformed"
    assert dlq[0][1] == "sink_decode"  # the far-future prediction, with its original bytes
    far_row = warehouse.query("SELECT message, payload FROM dlq WHERE request_id = ''").rows
    assert "bad_timestamp" in far_row[0][0] or "1900-2299" in far_row[0][0], far_row
    assert orjson.loads(far_row[0][1])["request_id"] == "far"
    assert warehouse.query("SELECT request_id FROM predictions").rows == [("r2",)]


class FlakyWarehouse:
    """The real warehouse, unreachable for ``outage`` seconds once the first insert came."""

    def __init__(self, inner: Warehouse, outage: float) -> None:
        self.inner, self.outage, self.down_since = inner, outage, None
        self.refused = 0

    def insert(self, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        self.down_since = self.down_since or now
        if now - self.down_since < self.outage:
            self.refused += 1
            raise WarehouseUnavailable("connection refused (injected outage)")
        self.inner.insert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_clickhouse_outage_of_ten_seconds_loses_nothing(
    kafka: KafkaConfig, topics: Topics, warehouse: Warehouse
) -> None:
    flaky = FlakyWarehouse(warehouse, outage=10.0)
    sink = Sink(kafka, SinkConfig(topics, max_rows=500, max_age=0.2, retry_max=2.0), flaky)  # type: ignore[arg-type]
    feeder = threading.Thread(target=produce_all, args=(kafka, topics, 4_000))
    feeder.start()
    feeder.join()
    expected = {t: messages_in(kafka, f(topics)) for t, f in EXPECTED_TABLES.items()}
    run_until(sink, lambda: counts(warehouse) == expected, timeout=90)
    sink.close()
    assert flaky.refused >= 3 and sink.stats["retries"] >= 3
    assert counts(warehouse) == expected
    assert warehouse.query("SELECT count() - uniqExact(request_id) FROM predictions").rows == [(0,)]


def sink_process(
    tmp: Path, kafka: KafkaConfig, topics: Topics, chaos: str | None = None
) -> subprocess.Popen[bytes]:
    env = (
        os.environ
        | ({"MODELSTREAM_CHAOS_SINK_EXIT": chaos} if chaos else {})
        | {
            "MODELSTREAM_KAFKA": kafka.bootstrap,
            "MODELSTREAM_TOPIC_PREFIX": topics.prefix,
            "MODELSTREAM_DATA_DIR": str(tmp / "data"),
        }
    )
    log = (tmp / "sink.log").open("ab")
    return subprocess.Popen(
        [MODELSTREAM, "run", "sink", "--max-rows", "300", "--max-age-ms", "100"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def sql(tmp: Path, query: str) -> list[dict[str, Any]]:
    env = os.environ | {"MODELSTREAM_DATA_DIR": str(tmp / "data")}
    done = subprocess.run(
        [MODELSTREAM, "sql", query, "--output", "json"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return list(orjson.loads(done.stdout))


def wait_ready(log: Path, offset: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b"sink ready" in log.read_bytes()[offset:]:
            return
        time.sleep(0.05)
    raise AssertionError(f"sink not ready:\n{log.read_text()[-2000:]}")


def test_kill_minus_nine_mid_insert_loses_and_duplicates_nothing(
    kafka: KafkaConfig, topics: Topics, tmp_path: Path
) -> None:
    import random

    log = tmp_path / "sink.log"
    stop_feeding = threading.Event()

    def feed() -> None:
        k = 0
        while not stop_feeding.is_set():
            produce_all(kafka, topics, 500, start=k * 500)
            k += 1
            time.sleep(0.2)

    feeder = threading.Thread(target=feed)
    feeder.start()
    # the two dangerous moments, hit on purpose (the sink exits like kill -9 there):
    # after announcing a batch but before its insert, and after the insert but before
    # its commit; then two kill -9 at random moments
    for chaos in ("announced:3", "inserted:3", None, None):
        offset = log.stat().st_size if log.exists() else 0
        proc = sink_process(tmp_path, kafka, topics, chaos)
        wait_ready(log, offset)
        if chaos:
            proc.wait(60)
        else:
            time.sleep(random.uniform(0.3, 1.5))
            proc.kill()
            proc.wait(10)
    kills = 4
    stop_feeding.set()
    feeder.join()
    offset = log.stat().st_size
    proc = sink_process(tmp_path, kafka, topics)
    wait_ready(log, offset)
    expected = {t: messages_in(kafka, f(topics)) for t, f in EXPECTED_TABLES.items()}
    query = " UNION ALL ".join(f"SELECT '{t}' AS t, count() AS n FROM {t}" for t in EXPECTED_TABLES)
    deadline, got = time.monotonic() + 90, {}
    while time.monotonic() < deadline and got != expected:
        time.sleep(1)
        got = {r["t"]: r["n"] for r in sql(tmp_path, query)}
    dupes = sql(tmp_path, "SELECT count() - uniqExact(request_id) AS d FROM predictions")
    proc.terminate()
    proc.wait(30)
    replays = log.read_text().count("replaying the announced batch")
    print(f"sink: {kills} kills, {replays} announced batches replayed after a restart")
    assert got == expected, log.read_text()[-3000:]
    assert dupes == [{"d": 0}]
    assert replays >= 2, "the announced batches were not replayed after the chaos exits"

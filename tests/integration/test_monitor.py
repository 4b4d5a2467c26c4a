"""The monitor over real Kafka: metrics and alerts land on their topics, and a monitor
killed with -9 and restarted loses no window and counts none twice."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from schemas.contracts import codec_for
from services.registry import Registry
from services.synthetic import input_schema, rows
from streams.kafka import KafkaConfig, Topics, TopicSpec, ensure_topics, make_admin, make_producer
from streams.monitoring.results import MetricPoint
from tests.integration.scoring_support import MODELSTREAM, collect, reader, trained
from tests.unit.streams.monitoring.test_watch import record

N = 12_000


@pytest.fixture
def monitored(kafka: KafkaConfig, unique: Callable[[str], str]) -> Topics:
    topics = Topics(unique("mon"))
    admin = make_admin(kafka)
    ensure_topics(admin, topics.global_specs(1))
    # one partition per input: the order of events, hence every window, is deterministic
    ensure_topics(
        admin,
        [
            TopicSpec(topics.predictions("m"), 1),
            TopicSpec(topics.feedback("m"), 1),
            TopicSpec(topics.dlq("m"), 1),
        ],
    )
    train = pd.DataFrame(list(rows(5_000, seed=1)))
    with Registry(kafka, topics, actor="tests") as registry:
        registry.register(
            "m",
            trained()[0],
            input_schema(),
            task="classification",
            reference=train,
            sensitive=["group"],
        )
    return topics


def stream() -> list[dict[str, Any]]:
    data = list(rows(4_000, seed=11)) + list(rows(N - 4_000, seed=12, shift={"x3": 1.0}))
    out = []
    for i, row in enumerate(data):
        r = record(i, row, group=row["group"])
        r["sensitive"] = {"group": row["group"]}
        out.append(r)
    return out


def produce(kafka: KafkaConfig, topics: Topics, records: list[dict[str, Any]]) -> None:
    producer = make_producer(kafka)
    for r in records:
        producer.produce(
            topics.predictions("m"),
            orjson.dumps(r),
            r["request_id"].encode(),
            headers=[("content-type", b"application/json")],
        )
    assert producer.flush(30) == 0


def expected_drift(topics: Topics, kafka: KafkaConfig, records: list[dict[str, Any]]) -> Counter:
    from services.monitor import watch_factory
    from services.registry import RegistryView

    view = RegistryView(kafka, topics)
    view.sync()
    watch = watch_factory(view)("m")
    view.close()
    points = [p for r in records for p in watch.on_prediction(r)]
    return Counter(
        _key(p.to_record(model="m", ts=0))
        for p in points
        if isinstance(p, MetricPoint) and p.kind == "drift"
    )


def _key(metric: dict[str, Any]) -> tuple[Any, ...]:
    return (
        metric["feature"],
        metric["name"],
        metric["labels"]["window_index"],
        round(metric["value"], 9),
    )


def start(tmp: Path, kafka: KafkaConfig, topics: Topics) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": topics.prefix,
        "MODELSTREAM_DATA_DIR": str(tmp / "data"),
    }
    log = (tmp / "monitor.log").open("ab")
    return subprocess.Popen(
        [MODELSTREAM, "run", "monitor", "--interval-ms", "200"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def wait_ready(log: Path, offset: int) -> None:
    deadline = time.monotonic() + 60
    while b"monitor 0 ready" not in log.read_bytes()[offset:]:
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.05)


def test_monitor_kill_minus_nine_loses_and_doubles_no_window(
    kafka: KafkaConfig, monitored: Topics, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    records = stream()
    expected = expected_drift(monitored, kafka, records)
    metrics = reader(kafka, [monitored.metrics, monitored.alerts], unique("g"))
    log = tmp_path / "monitor.log"
    for k in range(3):  # feed a third, let it work a little, kill -9
        offset = log.stat().st_size if log.exists() else 0
        proc = start(tmp_path, kafka, monitored)
        wait_ready(log, offset)
        produce(kafka, monitored, records[k * N // 3 : (k + 1) * N // 3])
        time.sleep(1.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    offset = log.stat().st_size
    proc = start(tmp_path, kafka, monitored)
    wait_ready(log, offset)
    got = collect(metrics, sum(expected.values()), timeout=90, quiet=3)
    proc.terminate()
    proc.wait(30)
    metric_codec, alert_codec = codec_for("metric"), codec_for("alert")
    drift = Counter()
    alerts = []
    for message in got:
        if message.topic == monitored.alerts:
            alerts.append(alert_codec.decode_avro(message.value))
            continue
        metric = metric_codec.decode_avro(message.value)
        if metric["kind"] == "drift":
            drift[_key(metric)] += 1
    assert drift == expected  # every window once, with the same numbers as one uninterrupted run
    x3 = [a for a in alerts if a["kind"] == "drift" and a["feature"] == "x3"]
    assert x3, "the shifted feature raised no alert"
    assert log.read_text().count("restored monitor state of 1 model") >= 2


def test_records_of_an_unregistered_model_are_refused_and_stop_nothing(
    kafka: KafkaConfig, monitored: Topics
) -> None:
    """A prediction log of a model the registry does not know (a typo'd producer, a model
    deleted since) cannot be monitored: it is counted as refused, and the registered
    model's records around it are monitored as usual."""
    from services.monitor import watch_factory
    from services.registry import RegistryView
    from streams.monitoring.stream import MonitorConfig, MonitorLoop

    ensure_topics(make_admin(kafka), [TopicSpec(monitored.predictions("ghost"), 1)])
    records = stream()[:300]
    producer = make_producer(kafka)
    producer.produce(monitored.predictions("ghost"), orjson.dumps(records[0]), b"g-0")
    assert producer.flush(30) == 0
    produce(kafka, monitored, records)
    view = RegistryView(kafka, monitored)
    view.sync()
    loop = MonitorLoop(kafka, MonitorConfig(monitored, max_interval=0.2), watch_factory(view))
    deadline = time.monotonic() + 60
    try:
        while loop.stats["predictions"] < len(records) or not loop.stats["refused"]:
            assert time.monotonic() < deadline, f"the monitor is stuck: {dict(loop.stats)}"
            loop.step()
    finally:
        loop.close()
        view.close()
    assert loop.stats["refused"] == loop.stats["refused:unmonitorable"] == 1
    assert loop.stats["predictions"] == len(records)  # in = monitored + refused
    assert set(loop.watches) == {"m"}

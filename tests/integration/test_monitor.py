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
    # one partition per input: the order of events, hence every window, is deterministic
    return monitored_on(kafka, Topics(unique("mon")), partitions=1)


def monitored_on(kafka: KafkaConfig, topics: Topics, *, partitions: int) -> Topics:
    """Topics under ``topics.prefix`` and model ``m`` registered (sensitive: ``group``)."""
    admin = make_admin(kafka)
    ensure_topics(admin, topics.global_specs(1))
    ensure_topics(
        admin,
        [
            TopicSpec(topics.predictions("m"), partitions),
            TopicSpec(topics.feedback("m"), partitions),
            TopicSpec(topics.dlq("m"), partitions),
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


def start(
    tmp: Path, kafka: KafkaConfig, topics: Topics, instance: str = "0", log_name: str = ""
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": topics.prefix,
        "MODELSTREAM_DATA_DIR": str(tmp / "data"),
    }
    log = (tmp / (log_name or "monitor.log")).open("ab")
    return subprocess.Popen(
        [MODELSTREAM, "run", "monitor", "--interval-ms", "200", "--instance", instance],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def wait_ready(log: Path, offset: int, instance: str = "0") -> None:
    deadline = time.monotonic() + 60
    while f"monitor {instance} ready".encode() not in log.read_bytes()[offset:]:
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
    assert log.read_text().count("restored 1 of 1 task(s)") >= 2


def test_records_of_an_unregistered_model_are_refused_and_stop_nothing(
    kafka: KafkaConfig, monitored: Topics
) -> None:
    """A prediction log of a model the registry does not know (a typo'd producer, a model
    deleted since) cannot be monitored: it is counted as refused, and the registered
    model's records around it are monitored as usual."""
    from services.monitor import spec_for, watch_factory
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
    loop = MonitorLoop(
        kafka, MonitorConfig(monitored, max_interval=0.2), watch_factory(view), spec_for(view)
    )
    deadline = time.monotonic() + 60
    try:
        while loop.stats["predictions"] < len(records) or not loop.stats["refused"]:
            assert time.monotonic() < deadline, f"the monitor is stuck: {dict(loop.stats)}"
            loop.step()
        tasks = set(loop.watches)
    finally:
        loop.close()
        view.close()
    assert loop.stats["refused"] == loop.stats["refused:unmonitorable"] == 1
    assert loop.stats["predictions"] == len(records)  # in = monitored + refused
    assert tasks == {("m", 0)}  # one task: model m, partition 0
    assert not loop.watches  # closing gives the partitions back, and the tasks with them


# -- partition-parallel -------------------------------------------------------------

#: what a task computes from its partition's events alone (ops windows follow the clock)
DETERMINISTIC = ("drift", "fairness", "anomaly")


def _metric_key(metric: dict[str, Any]) -> tuple[Any, ...]:
    labels = tuple(sorted(metric["labels"].items()))
    return (
        metric["kind"], metric["name"], metric["feature"], metric["group"], metric["role"],
        metric["window_start"], metric["window_end"], metric["count"],
        round(metric["value"], 9), labels,
    )  # fmt: skip


def _expected_per_partition(kafka: KafkaConfig, topics: Topics) -> Counter:
    """Each partition's records, in offset order, through a fresh watch of its own."""
    from confluent_kafka import TopicPartition

    from services.monitor import watch_factory
    from services.registry import RegistryView
    from streams.kafka import make_consumer

    view = RegistryView(kafka, topics)
    view.sync()
    new_watch = watch_factory(view)
    consumer = make_consumer(kafka, f"{topics.prefix}.expect")
    topic = topics.predictions("m")
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    expected: Counter = Counter()
    for p in partitions:
        end = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        consumer.assign([TopicPartition(topic, p, 0)])
        watch, seen = new_watch("m"), 0
        while seen < end:
            for m in consumer.consume(1000, 1.0):
                assert m.error() is None, m.error()
                seen += 1
                for point in watch.on_prediction(orjson.loads(m.value() or b"")):
                    if isinstance(point, MetricPoint) and point.kind in DETERMINISTIC:
                        record = point.to_record(model="m", ts=0)
                        record["labels"]["partition"] = str(p)
                        expected[_metric_key(record)] += 1
    consumer.close()
    view.close()
    return expected


def _monitored_metrics(
    kafka: KafkaConfig, topics: Topics, group: str, expected: int, timeout: float = 120
) -> Counter:
    metrics = reader(kafka, [topics.metrics], group)
    codec = codec_for("metric")
    got: Counter = Counter()
    deadline = time.monotonic() + timeout
    quiet_until = None
    while time.monotonic() < (quiet_until or deadline):
        for message in collect(metrics, 0, timeout=0, quiet=0.5):
            metric = codec.decode_avro(message.value)
            if metric["kind"] in DETERMINISTIC:
                got[_metric_key(metric)] += 1
        if quiet_until is None and sum(got.values()) >= expected:
            quiet_until = time.monotonic() + 3  # then a little longer, for duplicates
    metrics.close()
    return got


def test_one_and_three_instances_with_a_kill_and_rebalances_compute_the_same(
    kafka: KafkaConfig, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    """The same input on 3 partitions, monitored by one instance, and by three of which
    one is killed with -9 mid-stream (its tasks move to the others when its session ends)
    and started again (they move back): every task's windows come out once, with the
    numbers the partition's events give through a watch of their own."""
    records = stream()
    runs = {}
    for instances in (1, 3):
        topics = monitored_on(kafka, Topics(unique(f"par{instances}")), partitions=3)
        procs, logs = {}, {}
        for i in range(instances):
            logs[i] = tmp_path / f"{topics.prefix}-{i}.log"
            procs[i] = start(tmp_path, kafka, topics, str(i), logs[i].name)
        for i in range(instances):
            wait_ready(logs[i], 0, str(i))
        produce(kafka, topics, records[: N // 2])
        if instances == 3:
            time.sleep(2)
            procs[1].send_signal(signal.SIGKILL)
            procs[1].wait(10)
        produce(kafka, topics, records[N // 2 :])
        expected = _expected_per_partition(kafka, topics)
        if instances == 3:  # its partitions moved to the others after its session ended
            deadline = time.monotonic() + 60
            while not any("revoked" in logs[i].read_text() for i in (0, 2)):
                assert time.monotonic() < deadline, logs[0].read_text()[-3000:]
                time.sleep(0.2)
            procs[1] = start(tmp_path, kafka, topics, "1", logs[1].name)  # and back
        runs[instances] = _monitored_metrics(kafka, topics, unique("g"), sum(expected.values()))
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(30)
        assert {dict(key[-1])["partition"] for key in expected} == {"0", "1", "2"}
        assert runs[instances] == expected, (instances, len(runs[instances]), len(expected))
    assert runs[1] == runs[3]
    restored = sum(log.read_text().count("restored ") for log in tmp_path.glob("par3*.log"))
    assert restored >= 3  # the tasks were restored where they moved


class _Broken:
    """A watch that fails on every record, as a bug in one model's estimators would."""

    reference_version = None
    clamped = 0

    def on_prediction(self, record: dict[str, Any], now_ms: int | None = None) -> list[Any]:
        raise ZeroDivisionError("float division by zero")

    def tick(self, now_ms: int) -> list[Any]:
        return []


def test_a_watch_that_raises_becomes_an_alert_and_the_other_models_go_on(
    kafka: KafkaConfig, monitored: Topics, unique: Callable[[str], str]
) -> None:
    from services.monitor import watch_factory
    from services.registry import RegistryView
    from streams.monitoring.stream import MonitorConfig, MonitorLoop

    ensure_topics(make_admin(kafka), [TopicSpec(monitored.predictions("bad"), 1)])
    records = stream()[:600]
    producer = make_producer(kafka)
    for r in records[:50]:
        producer.produce(monitored.predictions("bad"), orjson.dumps(r), r["request_id"].encode())
    assert producer.flush(30) == 0
    produce(kafka, monitored, records)
    alerts = reader(kafka, [monitored.alerts], unique("a"))
    view = RegistryView(kafka, monitored)
    view.sync()
    real = watch_factory(view)

    def new_watch(model: str) -> Any:
        return _Broken() if model == "bad" else real(model)

    loop = MonitorLoop(kafka, MonitorConfig(monitored, max_interval=0.2), new_watch)
    deadline = time.monotonic() + 60
    try:
        while loop.stats["predictions"] < len(records) or loop.stats["refused"] < 50:
            assert time.monotonic() < deadline, f"the monitor is stuck: {dict(loop.stats)}"
            loop.step()
    finally:
        loop.close()
        view.close()
    assert loop.stats["refused:watch_failed"] == 50  # in = monitored + refused
    assert loop.stats["predictions"] == len(records)
    codec = codec_for("alert")
    raised = [codec.decode_avro(m.value) for m in collect(alerts, 1, timeout=20)]
    monitor = [a for a in raised if a["kind"] == "monitor"]
    assert [(a["model"], a["severity"]) for a in monitor] == [("bad", "critical")]  # once
    assert "ZeroDivisionError" in monitor[0]["message"]


# -- clocks and snapshots --------------------------------------------------------------


def test_a_far_future_label_is_clamped_and_snapshots_restore_only_when_signed(
    kafka: KafkaConfig, monitored: Topics
) -> None:
    """A label a year ahead is clamped (counted) and expires no waiting prediction; the
    snapshot restores under the deployment's key, and a forged one is never unpickled."""
    from services.monitor import spec_for, watch_factory
    from services.registry import RegistryView
    from streams.monitoring.snapshots import seal
    from streams.monitoring.stream import MonitorConfig, MonitorLoop

    records = stream()[:300]
    produce(kafka, monitored, records)
    view = RegistryView(kafka, monitored)
    view.sync()
    config = MonitorConfig(monitored, max_interval=0.2, snapshot_key=b"k" * 32)
    loop = MonitorLoop(kafka, config, watch_factory(view), spec_for(view))
    producer = make_producer(kafka)
    year = 365 * 86_400_000
    try:
        _step_until(loop, lambda: loop.stats["predictions"] == len(records))
        for i, r in enumerate(records[:10]):  # r0's label comes from a clock a year ahead
            label = {"request_id": r["request_id"], "model": "m", "label": "True",
                     "ts": r["ts"] + 1_000 + (year if i == 0 else 0)}  # fmt: skip
            producer.produce(monitored.feedback("m"), orjson.dumps(label),
                             headers=[("content-type", b"application/json")])  # fmt: skip
        assert producer.flush(30) == 0
        _step_until(loop, lambda: loop.stats["feedback"] == 10)
        joins = loop.watches[("m", 0)].joiner.stats  # type: ignore[attr-defined]
        assert (joins.joined, joins.expired_predictions) == (10, 0)
        assert loop.stats["clamped"] == loop.stats["clamped:feedback"] == 1
    finally:
        loop.close()
        view.close()
    view = RegistryView(kafka, monitored)
    again = MonitorLoop(kafka, config, watch_factory(view))
    try:
        again.restore({("m", 0)})
        restored = again.watches[("m", 0)].joiner.stats  # type: ignore[attr-defined]
        assert restored.joined == 10
        # whoever can write to the state topic forges a snapshot (another key, as an
        # attacker has no other): it is refused and the task starts afresh
        forged = seal({"not": "a watch"}, b"attacker-key-0123456789")
        producer.produce(config.state_topic, forged, b"m@0/0")
        producer.produce(config.state_topic, b"1", b"m@0")
        assert producer.flush(30) == 0
        again.watches.clear()
        again.restore({("m", 0)})
        assert ("m", 0) not in again.watches
        assert again.stats["snapshots_refused"] == 1
    finally:
        again.close()
        view.close()


def _step_until(loop: Any, done: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"the monitor is stuck: {dict(loop.stats)}"
        loop.step()

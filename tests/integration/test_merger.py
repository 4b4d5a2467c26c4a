"""The merger over real Kafka: the monitor's per-partition summaries of a window, merged
on faust-streaming, give the drift the estimators measure on the whole window; its alerts
come once per window and rule, and a merger killed with -9 changes nothing."""

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
import pytest

from schemas.contracts import codec_for
from services.synthetic import rows
from streams.kafka import KafkaConfig, Topics, make_producer
from streams.monitoring.drift.categories import CategoryWindow
from streams.monitoring.drift.histogram import HistogramWindow
from streams.monitoring.drift.methods import measure
from streams.monitoring.drift.reference import NumericReference
from tests.integration.scoring_support import MODELSTREAM, collect, reader
from tests.integration.test_monitor import monitored_on, produce, start, wait_ready
from tests.unit.streams.monitoring.test_watch import record

T0 = 1_800_000_000_000
W = 60_000
N = 6_000
STEP_MS = 50  # N events over 300 s: windows 0-4


def events() -> list[dict[str, Any]]:
    data = list(rows(N // 2, seed=21)) + list(rows(N - N // 2, seed=22, shift={"x3": 1.0}))
    out = []
    for i, row in enumerate(data):
        r = record(i, row, group=row["group"])
        r["ts"] = T0 + i * STEP_MS
        r["sensitive"] = {"group": row["group"]}
        out.append(r)
    return out


def closers(last: int) -> list[tuple[int, dict[str, Any]]]:
    """One event per partition far past the data: it closes every partition's window."""
    row = next(iter(rows(1, seed=99)))
    out = []
    for p in range(3):
        r = record(last + 1 + p, row, group=row["group"])
        r["ts"] = T0 + 20 * W
        out.append((p, r))
    return out


def start_merger(tmp: Path, kafka: KafkaConfig, topics: Topics) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": topics.prefix,
        "MODELSTREAM_DATA_DIR": str(tmp / "data"),
        "MODELSTREAM_TOPIC_PARTITIONS": "3",
    }
    log = (tmp / "merger.log").open("ab")
    return subprocess.Popen([MODELSTREAM, "run", "merger"], stdout=log,
                            stderr=subprocess.STDOUT, env=env)  # fmt: skip


def wait_for(log: Path, text: str, offset: int = 0, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while text.encode() not in log.read_bytes()[offset:]:
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


def expected_drift(kafka: KafkaConfig, topics: Topics, records: list[dict[str, Any]]) -> dict:
    """Per closed window, feature and method: the estimators on the whole window."""
    from services.monitor import watch_factory
    from services.registry import RegistryView

    with RegistryView(kafka, topics) as view:
        view.sync()
        drift = watch_factory(view)("m").drift
    assert drift is not None
    out = {}
    for k in range(5):
        rows_in = [r["features"] for r in records if T0 + k * W <= r["ts"] < T0 + (k + 1) * W]
        for name, ref in drift.references.items():
            window = (
                HistogramWindow(ref) if isinstance(ref, NumericReference) else CategoryWindow(ref)
            )
            for row in rows_in:
                window.add(row.get(name))
            sample = window.snapshot()
            for method in drift.thresholds(name):
                out[(T0 + k * W, name, method)] = measure(method, ref, sample).value
    return out


def test_merged_drift_is_the_whole_window_and_a_killed_merger_changes_nothing(
    kafka: KafkaConfig, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    topics = monitored_on(kafka, Topics(unique("mrg")), partitions=3)
    records = events()
    expected = expected_drift(kafka, topics, records)
    merged_reader = reader(kafka, [topics.metrics, topics.alerts], unique("g"))
    monitor_log = tmp_path / "monitor.log"
    monitor = start(tmp_path, kafka, topics)
    merger = start_merger(tmp_path, kafka, topics)
    try:
        wait_ready(monitor_log, 0)
        wait_for(tmp_path / "merger.log", "merger ready")
        produce(kafka, topics, records[: N // 2])
        time.sleep(3)
        merger.send_signal(signal.SIGKILL)  # mid-stream: its open transaction aborts
        merger.wait(10)
        produce(kafka, topics, records[N // 2 :])
        producer = make_producer(kafka)
        for p, r in closers(N):
            producer.produce(topics.predictions("m"), orjson.dumps(r), b"closer", partition=p)
        assert producer.flush(30) == 0
        offset = (tmp_path / "merger.log").stat().st_size
        merger = start_merger(tmp_path, kafka, topics)
        wait_for(tmp_path / "merger.log", "merger ready", offset)
        got, latest = [], {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # until every window is merged from 3 partitions
            got += collect(merged_reader, 0, timeout=0, quiet=0.5)
            latest = _latest(got, topics)
            if all(latest.get(key, (0,))[0] == 3 for key in expected):
                break
        got += collect(merged_reader, 0, timeout=0, quiet=2)  # and anything doubled
    finally:
        for proc in (monitor, merger):
            proc.terminate()
        for proc in (monitor, merger):
            proc.wait(30)
    latest = _latest(got, topics)
    alert_codec = codec_for("alert")
    alerts = [alert_codec.decode_avro(m.value) for m in got if m.topic == topics.alerts]
    assert set(latest) == set(expected), sorted(set(expected) - set(latest))[:5]
    for key, value in expected.items():
        assert latest[key][0] == 3, key  # every partition's summary in the last figure
        assert latest[key][1] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    # drift alerts of the merger: once per window, feature and method, though partitions
    # reported one by one and a merger died mid-stream; every finally drifted one raised
    raised = Counter(
        (int(a["message"].split("window [")[1].split(",")[0]), a["feature"],
         a["message"].split("(", 1)[1].split(",")[0])
        for a in alerts if a["kind"] == "drift" and "all partitions" in a["message"]
    )  # fmt: skip
    drifted = {key for key, (_, _, verdict) in latest.items() if verdict == "true"}
    assert drifted and set(raised.values()) == {1}
    assert drifted <= set(raised)
    assert {feature for _, feature, _ in drifted} == {"x3"}  # and the stable ones stayed quiet
    assert all(start >= T0 + 2 * W for start, _, _ in drifted)  # the shift is at 150 s


def _latest(got: list[Any], topics: Topics) -> dict[tuple[Any, ...], tuple[int, float, str]]:
    """The merged drift figure of every window, feature and method that counted the most
    partitions: ``(partitions, value, drifted)``."""
    codec = codec_for("metric")
    latest: dict[tuple[Any, ...], tuple[int, float, str]] = {}
    for m in got:
        if m.topic != topics.metrics:
            continue
        metric = codec.decode_avro(m.value)
        if metric["labels"].get("scope") != "model" or metric["kind"] != "drift":
            continue
        key = (metric["window_start"], metric["feature"], metric["name"])
        partitions = int(metric["labels"]["partitions"])
        if key not in latest or partitions >= latest[key][0]:
            latest[key] = (partitions, metric["value"], metric["labels"]["drifted"])
    return latest

"""``modelstream demo``: the main job end to end on the local stack.

Starts (or reuses) the local broker, migrates the embedded warehouse, registers a River
champion and a different challenger for the ``churn`` model (one sensitive attribute,
``group``), runs a real scorer process, lands everything in ClickHouse with the sink,
streams requests (a few malformed ones among them) with a progress bar, sends delayed
labels, calls the same model through the HTTP gateway (``services.demo_gateway``), closes
the lifecycle loop on a concept change (``services.demo_loop``: drift → retrain → shadow
→ gated promotion, no one at the keyboard), and prints what happened
(:mod:`services.demo_summary`: the injected drift against the alerts read back, the
loop's steps and accuracies) and the SQL to look further.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaException
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from schemas.codec import Codec
from schemas.contracts import codec_for
from services.demo_gateway import run_gateway_leg
from services.demo_loop import run_loop_leg
from services.demo_model import MODEL, check_warehouse_free, keep_churn, register_churn
from services.demo_summary import DRIFT_FEATURE, DRIFT_SD, DemoResult, report, summarise
from services.private import private_dir
from services.runtime import kafka_config, local_broker
from services.settings import Settings
from services.sink import Sink, SinkConfig
from services.synthetic import (
    input_schema,
    true_label,
)
from services.synthetic import rows as feature_rows
from services.warehouse import Warehouse, connect
from streams.kafka import (
    KafkaConfig,
    Topics,
    ensure_topics,
    make_admin,
    make_consumer,
    make_producer,
)

__all__ = ["DemoResult", "run_demo"]

#: partitions of the demo's model topics: one monitor task sees every scored request in
#: order, so an alert's ``at_event`` maps to a request (see :mod:`services.demo_summary`)
MODEL_PARTITIONS = 1


def run_demo(
    settings: Settings,
    *,
    events: int,
    console: Console,
    rate: float = 1_000.0,
    json_path: Path | None = None,
    keep: bool = True,
) -> DemoResult:
    """Run the demo under a prefix of its own, then delete that run's topics (its rows
    stay in the warehouse) and stop the processes it started.

    ``keep``: leave the local broker running and ``churn`` registered under the
    deployment's own prefix, and print the commands that call it; else stop the broker
    too, if the demo started it.
    """
    check_warehouse_free(settings)
    broker = None
    if settings.kafka is None:
        broker = local_broker(settings)
        was_running = broker.status().running
        console.print(
            f"[bold]kafka[/]  {broker.start()}  ({'reused' if was_running else 'started'})"
        )
        broker = None if was_running or keep else broker
    try:
        result = _run(settings, events, rate, console, json_path or settings.data_dir / "demo.json")
        if keep:
            keep_churn(settings, console)
        return result
    finally:
        if broker is not None:
            broker.stop()
            console.print("[bold]kafka[/]  stopped")


def _run(
    settings: Settings, events: int, rate: float, console: Console, json_path: Path | None
) -> DemoResult:
    kafka = kafka_config(settings, client_id="demo")
    run = uuid.uuid4().hex[:8]
    # each demo run has its own topics, so its monitor counts events from 0
    names = Topics(f"{settings.topic_prefix}-demo-{run}", settings.topic_replication)
    ensure_topics(
        make_admin(kafka),
        names.global_specs(settings.topic_partitions) + names.model_specs(MODEL, MODEL_PARTITIONS),
    )
    with connect(settings.clickhouse_dsn) as warehouse:
        applied = warehouse.migrate(ttl_days=settings.clickhouse_ttl_days)
        console.print(
            f"[bold]warehouse[/]  {settings.clickhouse_dsn} ({len(applied)} migrations applied)"
        )
        register_churn(kafka, names, console)
        started_ms = int(time.time() * 1e3) - 1_000
        sink_stop = threading.Event()
        sink = Sink(kafka, SinkConfig(names, max_rows=5_000, max_age=0.5), warehouse)
        sink_thread = threading.Thread(target=sink.run, args=(sink_stop,), daemon=True)
        sink_thread.start()
        scorer = _start(
            settings,
            kafka,
            names,
            ["run", "scorer", "--model", MODEL, "--instance", "demo"],
            "scorer",
        )
        monitor = _start(
            settings, kafka, names, ["run", "monitor", "--instance", "demo"], "monitor"
        )
        try:
            result = _stream(kafka, names, run, events, rate, console)
            result.labels_sent = _send_labels(kafka, names, result)
            _wait_monitored(warehouse, result, started_ms, console)
            leg = run_gateway_leg(settings, kafka, names, MODEL, run, _http_rows(), console)
            result.gateway = leg.as_json()
            _wait_landed(warehouse, f"gw-{run}-%", leg.served)
            summarise(warehouse, result, started_ms)  # the main leg, before the loop's rows
            result.loop = run_loop_leg(settings, kafka, names, warehouse, run, console).as_json()
            _write_report(warehouse, result, started_ms, settings.data_dir / "demo-report.html")
        finally:
            for proc in (scorer, monitor):
                proc.terminate()
                proc.wait(30)
        sink_stop.set()
        sink_thread.join(30)
        sink.close()
    _drop_topics(kafka, names)
    report(result, console)
    if json_path is not None:
        json_path.write_text(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2).decode())
        console.print(f"summary written to {json_path}")
    return result


def _write_report(warehouse: Warehouse, result: DemoResult, since_ms: int, path: Path) -> None:
    """The run's monitoring report (``modelstream report``), from its first request on."""
    from datetime import UTC, datetime

    from services.reports import render_report
    from services.reports.cli import write_atomically

    start = datetime.fromtimestamp(since_ms / 1e3, UTC)
    report = render_report(warehouse, MODEL, start=start, end=datetime.now(UTC))
    result.report = str(write_atomically(path, report.html))
    result.attention = list(report.attention)


def _drop_topics(kafka: KafkaConfig, names: Topics) -> None:
    """Delete this run's topics: its rows are in the warehouse, and runs would pile up."""
    admin = make_admin(kafka)
    mine = [t for t in admin.list_topics(timeout=30).topics if t.startswith(f"{names.prefix}.")]
    for future in admin.delete_topics(mine, operation_timeout=30).values():
        with contextlib.suppress(KafkaException):  # best effort: a leftover topic is harmless
            future.result()


def demo_rows(events: int) -> list[dict[str, Any]]:
    """The demo's requests: the second half has x3 shifted by +1 sd (the injected drift);
    group ``b`` has lower x0, so the model selects it less often (a fairness gap)."""
    half = events // 2
    return list(feature_rows(half, seed=99, group_effect=0.7)) + list(
        feature_rows(events - half, seed=100, shift={DRIFT_FEATURE: DRIFT_SD}, group_effect=0.7)
    )


def _start(
    settings: Settings, kafka: KafkaConfig, names: Topics, args: list[str], name: str
) -> subprocess.Popen[bytes]:
    """A real modelstream process for this run; returns once it says it is ready."""
    log = settings.data_dir / f"{name}.log"
    private_dir(log.parent)
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": names.prefix,
    }
    exe = str(Path(sys.executable).with_name("modelstream"))
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, *args], stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 90
    while b" ready" not in log.read_bytes()[offset:]:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the {name} did not start; see {log}")
        time.sleep(0.1)
    return proc


def _stream(
    kafka: KafkaConfig, names: Topics, run: str, events: int, rate: float, console: Console
) -> DemoResult:
    result = DemoResult(events=events, run=run)
    replies = make_consumer(kafka, f"demo-{run}")
    replies.subscribe([names.replies(MODEL), names.dlq(MODEL)])
    codec = Codec(input_schema())
    producer = make_producer(kafka)
    rng = random.Random(5)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    started = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("requests answered", total=events)
        for i, row in enumerate(demo_rows(events)):
            rid = f"{run}-{i}"
            value = codec.encode_avro(row) if rng.random() > 0.005 else b"\x00not-a-request"
            due = started + i / rate  # paced, open loop: latency is not queueing time
            while (now := time.monotonic()) < due:
                _read(
                    replies, run, sent_at, latencies, result, progress, task, min(due - now, 0.05)
                )
            producer.produce(names.requests(MODEL), value, rid.encode())
            sent_at[rid] = time.monotonic()
            if i % 100 == 0:
                producer.poll(0)
                _read(replies, run, sent_at, latencies, result, progress, task)
        producer.flush(30)
        deadline = time.monotonic() + 60
        while result.replies + result.dlq < events and time.monotonic() < deadline:
            _read(replies, run, sent_at, latencies, result, progress, task)
    result.elapsed_s = time.monotonic() - started
    replies.close()
    latencies.sort()
    if latencies:
        result.latency_ms = {f"p{q}": _percentile(latencies, q) for q in (50, 95, 99)}
    return result


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list.

    >>> _percentile([1.0, 2.0, 3.0, 4.0], 50)
    3.0
    """
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 2)


def _read(
    consumer: Any,
    run: str,
    sent_at: dict[str, float],
    latencies: list[float],
    result: DemoResult,
    progress: Progress,
    task: Any,
    wait: float = 0.05,
) -> None:
    for message in consumer.consume(1000, wait):
        now = time.monotonic()
        key = (message.key() or b"").decode()
        if message.error() is not None or not key.startswith(run):
            continue
        if message.topic().endswith(".dlq"):
            result.dlq += 1
        else:
            result.replies += 1
            latencies.append((now - sent_at.get(key, now)) * 1e3)
        progress.advance(task)


def _send_labels(kafka: KafkaConfig, names: Topics, result: DemoResult) -> int:
    """Labels arrive later, for most (not all) requests: the ground truth of each row."""
    producer = make_producer(kafka)
    codec = codec_for("feedback")
    rng = random.Random(17)
    sent = 0
    run_rows = demo_rows(result.events)
    now = int(time.time() * 1e3)
    for i, row in enumerate(run_rows):
        if rng.random() < 0.8:
            label = str(true_label(row, rng))  # the form the scorer answers in: "True"/"False"
            rid = f"{result.run}-{i}"
            record = {
                "request_id": rid,
                "model": MODEL,
                "label": label,
                "ts": now,
                "source": "demo",
            }
            producer.produce(names.feedback(MODEL), codec.encode_avro(record), rid.encode())
            sent += 1
    producer.flush(30)
    return sent


def _wait_monitored(warehouse: Warehouse, result: DemoResult, since: int, console: Console) -> None:
    """Until every reply landed and the monitor's performance windows stopped growing."""
    deadline, last = time.monotonic() + 90, -1
    with console.status("monitor and sink catching up ..."):
        while time.monotonic() < deadline:
            time.sleep(2.0)
            landed = warehouse.query(
                "SELECT count() FROM predictions WHERE model = %(m)s AND request_id LIKE %(r)s",
                {"m": MODEL, "r": f"{result.run}-%"},
            ).rows[0][0]
            windows = warehouse.query(
                "SELECT count() FROM metrics WHERE model = %(m)s AND kind = 'performance' "
                "AND ts >= fromUnixTimestamp64Milli(%(t)s)",
                {"m": MODEL, "t": since},
            ).rows[0][0]
            if landed >= result.replies and windows and windows == last:
                return
            last = windows


def _http_rows() -> list[dict[str, Any]]:
    return list(feature_rows(510, seed=7, group_effect=0.7))


def _wait_landed(warehouse: Warehouse, ids: str, count: int, timeout: float = 30.0) -> None:
    """Until ``count`` predictions with request ids LIKE ``ids`` are in the warehouse."""
    deadline = time.monotonic() + timeout
    sql = "SELECT count() FROM predictions WHERE model = %(m)s AND request_id LIKE %(r)s"
    while time.monotonic() < deadline:
        if warehouse.query(sql, {"m": MODEL, "r": ids}).rows[0][0] >= count:
            return
        time.sleep(0.5)

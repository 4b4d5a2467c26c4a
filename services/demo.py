"""``modelstream demo``: the main job end to end on the local stack.

Starts (or reuses) the local broker, migrates the embedded warehouse, registers a River
champion and a different challenger for the ``churn`` model (one sensitive attribute,
``group``), runs a real scorer process, lands everything in ClickHouse with the sink,
streams requests (a few malformed ones among them) with a progress bar, sends delayed
labels, and prints what happened and the SQL to look further.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from schemas.codec import Codec
from schemas.contracts import codec_for
from services.registry import Registry
from services.runtime import kafka_config, local_broker, topics
from services.settings import Settings
from services.sink import Sink, SinkConfig
from services.synthetic import (
    input_schema,
    labelled_rows,
    river_challenger,
    river_champion,
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

MODEL = "churn"
LOOK_FURTHER = (
    f"SELECT served_by, count(), avg(latency_ms) FROM predictions WHERE model='{MODEL}' "
    "GROUP BY served_by",
    f"SELECT reason, count() FROM dlq WHERE model='{MODEL}' GROUP BY reason",
    "SELECT ts, model, version, action, actor FROM model_events ORDER BY ts DESC LIMIT 10",
)


@dataclass
class DemoResult:
    """What the demo measured (also the ``--json`` summary)."""

    events: int
    run: str = ""
    replies: int = 0
    dlq: int = 0
    elapsed_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    served_by: dict[str, int] = field(default_factory=dict)
    challenger_agreement: float | None = None
    labels_sent: int = 0
    warehouse: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "replies": self.replies,
            "dlq": self.dlq,
            "replies_per_s": round(self.replies / self.elapsed_s, 1) if self.elapsed_s else 0,
            "latency_ms": self.latency_ms,
            "served_by": self.served_by,
            "challenger_agreement": self.challenger_agreement,
            "labels_sent": self.labels_sent,
            "warehouse_rows": self.warehouse,
        }


def run_demo(
    settings: Settings,
    *,
    events: int,
    console: Console,
    rate: float = 2_000.0,
    json_path: Path | None = None,
) -> DemoResult:
    """Run the demo; leaves no process behind (the broker only if it was already up)."""
    broker = None
    if settings.kafka is None:
        broker = local_broker(settings)
        was_running = broker.status().running
        console.print(
            f"[bold]kafka[/]  {broker.start()}  ({'reused' if was_running else 'started'})"
        )
        broker = None if was_running else broker
    try:
        return _run(settings, events, rate, console, json_path)
    finally:
        if broker is not None:
            broker.stop()
            console.print("[bold]kafka[/]  stopped")


def _run(
    settings: Settings, events: int, rate: float, console: Console, json_path: Path | None
) -> DemoResult:
    kafka = kafka_config(settings, client_id="demo")
    names = topics(settings)
    ensure_topics(
        make_admin(kafka),
        names.global_specs(settings.topic_partitions)
        + names.model_specs(MODEL, settings.topic_partitions),
    )
    with connect(settings.clickhouse_dsn) as warehouse:
        applied = warehouse.migrate(ttl_days=settings.clickhouse_ttl_days)
        console.print(
            f"[bold]warehouse[/]  {settings.clickhouse_dsn} ({len(applied)} migrations applied)"
        )
        versions = _register(kafka, names, console)
        sink_stop = threading.Event()
        sink = Sink(kafka, SinkConfig(names, max_rows=5_000, max_age=0.5), warehouse)
        sink_thread = threading.Thread(target=sink.run, args=(sink_stop,), daemon=True)
        sink_thread.start()
        scorer = _start_scorer(settings, kafka, names)
        try:
            result = _stream(kafka, names, events, rate, console)
        finally:
            scorer.terminate()
            scorer.wait(30)
        result.labels_sent = _send_labels(kafka, names, result)
        _wait_landed(warehouse, result, console)
        sink_stop.set()
        sink_thread.join(30)
        sink.close()
        _summarise(warehouse, result, versions)
    _report(result, console)
    if json_path is not None:
        json_path.write_text(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2).decode())
        console.print(f"summary written to {json_path}")
    return result


def _register(kafka: KafkaConfig, names: Topics, console: Console) -> tuple[int, int]:
    train = labelled_rows(3_000, seed=21)
    reference = pd.DataFrame([row for row, _ in train])
    schema = input_schema()
    with Registry(kafka, names, actor="demo") as registry:
        champion = registry.register(
            MODEL,
            river_champion(train),
            schema,
            task="classification",
            reference=reference,
            sensitive=["group"],
            role="champion",
            description="churn risk, logistic regression",
        )
        challenger = registry.register(
            MODEL,
            river_challenger(train),
            schema,
            task="classification",
            reference=reference,
            sensitive=["group"],
            role="challenger",
            description="churn risk, SGD lr=0.1 + L2",
        )
    console.print(
        f"[bold]registry[/]  {MODEL}: champion v{champion.version}, "
        f"challenger v{challenger.version}"
    )
    return champion.version, challenger.version


def _start_scorer(settings: Settings, kafka: KafkaConfig, names: Topics) -> subprocess.Popen[bytes]:
    log = settings.data_dir / "scorer.log"
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": names.prefix,
    }
    exe = str(Path(sys.executable).with_name("modelstream"))
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [exe, "run", "scorer", "--model", MODEL, "--instance", "demo"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 90
    while b" ready: " not in log.read_bytes()[offset:]:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the scorer did not start; see {log}")
        time.sleep(0.1)
    return proc


def _stream(
    kafka: KafkaConfig, names: Topics, events: int, rate: float, console: Console
) -> DemoResult:
    run = uuid.uuid4().hex[:8]
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
        for i, row in enumerate(feature_rows(events, seed=99)):
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
    run_rows = list(feature_rows(result.events, seed=99))
    now = int(time.time() * 1e3)
    for i, row in enumerate(run_rows):
        if rng.random() < 0.8:
            label = str(true_label(row, rng))  # the form the scorer answers in: "True"/"False"
            record = {
                "request_id": f"{result.run}-{i}",
                "model": MODEL,
                "label": label,
                "ts": now,
                "source": "demo",
            }
            producer.produce(names.feedback(MODEL), codec.encode_avro(record))
            sent += 1
    producer.flush(30)
    return sent


def _wait_landed(warehouse: Warehouse, result: DemoResult, console: Console) -> None:
    deadline = time.monotonic() + 30
    with console.status("landing in ClickHouse ..."):
        while time.monotonic() < deadline:
            time.sleep(0.5)
            landed = warehouse.query(
                f"SELECT count() FROM predictions WHERE model = '{MODEL}'"
            ).rows[0][0]
            if landed >= result.replies:
                return


def _summarise(warehouse: Warehouse, result: DemoResult, versions: tuple[int, int]) -> None:
    q = warehouse.query
    this_run = {"m": MODEL, "run": f"{result.run}-%"}
    result.served_by = dict(
        q(
            "SELECT served_by, count() FROM predictions WHERE model = %(m)s "
            "AND request_id LIKE %(run)s GROUP BY served_by",
            this_run,
        ).rows
    )
    agree = q(
        "SELECT avg(champion_output = challenger_output) FROM predictions "
        "WHERE model = %(m)s AND request_id LIKE %(run)s AND challenger_output IS NOT NULL",
        this_run,
    ).rows
    result.challenger_agreement = (
        round(float(agree[0][0]), 4) if agree and agree[0][0] is not None else None
    )
    for table in ("predictions", "feedback", "dlq", "model_events"):
        result.warehouse[table] = q(f"SELECT count() FROM {table}").rows[0][0]


def _report(result: DemoResult, console: Console) -> None:
    table = Table(title="modelstream demo", show_header=False)
    summary = result.as_json()
    for key in (
        "events",
        "replies",
        "dlq",
        "replies_per_s",
        "latency_ms",
        "served_by",
        "challenger_agreement",
        "labels_sent",
        "warehouse_rows",
    ):
        table.add_row(key, str(summary[key]))
    console.print(table)
    console.print("Look further with SQL, e.g.:")
    for sql in LOOK_FURTHER:
        console.print(f'  [cyan]modelstream sql "{sql}"[/]')

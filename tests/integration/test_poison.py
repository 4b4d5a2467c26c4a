"""The poison suite (issue 12): every stage takes thousands of hostile records of every
kind (``tests/integration/poison_support.py``) mixed with good ones, in random order, and

- stays up;
- serves (answers, monitors, lands) every good record exactly once;
- refuses every bad one with a reason: the scorer to its DLQ topic, the sink to the
  ``dlq`` table, the monitor into its ``refused:<reason>`` counters (by design it writes
  no DLQ entry: the sink keeps the same record in ``dlq``);
- accounts for every input: in = out + refused, from the stage's own counters and from
  what is on its output topics / tables.

On a failure the assertion message carries the table per kind (in / served / refused /
missing / doubled / reasons), which is what the stage owners need.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Message

from services.registry import Registry
from services.sink import Sink, SinkConfig
from services.warehouse import Warehouse
from streams.kafka import KafkaConfig, Topics, TopicSpec, ensure_topics, make_admin, make_producer
from tests.integration.poison_support import (
    GHOST,
    KINDS,
    LOG_KINDS,
    Record,
    dlq_entries,
    feedback_poison,
    good_feedback,
    good_predictions,
    good_requests,
    good_summaries,
    prediction_poison,
    request_poison,
    shuffled,
    summary_poison,
)
from tests.integration.scoring_support import (
    MODELSTREAM,
    ScorerProcess,
    Stack,
    reader,
    take,
    trained,
)
from tests.integration.test_monitor import monitored_on

N = 2_000  # records per kind (oversize: poison_support.OVERSIZE_COUNT)
N_LOG = 1_000  # per kind and topic for the monitor and the sink (two topics each)
N_SUMMARIES = 200  # per kind for the merger and the sink (faust merges ~100 windows/s)
TIMEOUT = 60.0
Position = tuple[str, int, int]
Ident = tuple[str, bytes]


# -- producing and reading ------------------------------------------------------------


def produce(kafka: KafkaConfig, records: list[Record], topic_of: Callable[[Record], str]
            ) -> dict[Position, Record]:  # fmt: skip
    """Produce ``records`` in order; returns each one's position ``(topic, partition,
    offset)``. Fails if the broker refused any (the suite would prove nothing)."""
    producer = make_producer(kafka, message_max_bytes=8_000_000, linger_ms=20)
    placed: dict[Position, Record] = {}
    refused: list[tuple[str, str]] = []

    def delivered(record: Record) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                refused.append((record.kind, str(error)))
                return
            placed[(message.topic() or "", message.partition() or 0, message.offset() or 0)] = (
                record
            )

        return report

    for i, record in enumerate(records):
        while True:
            try:
                producer.produce(
                    topic_of(record), record.value, record.kafka_key or record.key,
                    headers=record.headers,
                    timestamp=record.timestamp, on_delivery=delivered(record),
                )  # fmt: skip
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    own = sorted({r for r in refused if "_INVALID_DIFFERENT_RECORD" not in r[1]})
    assert not refused, f"the broker refused {len(refused)} records: {own[:10]}"
    return placed


def drain(consumer: Consumer, until: Callable[[list[Any]], bool], timeout: float = TIMEOUT
          ) -> list[Any]:  # fmt: skip
    """Read until ``until(got)`` holds (or ``timeout``), then on to the end of every assigned
    partition, so a duplicate written after the last expected record is read too."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(got):
        got += take(consumer, 0.2)
    got += read_to_end(consumer)
    return got


def read_to_end(consumer: Consumer, timeout: float = 15.0) -> list[Any]:
    """What is left up to each assigned partition's end (its last stable offset)."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assigned = consumer.assignment()
        behind = False
        for tp in consumer.position(assigned) if assigned else []:
            _low, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            behind |= tp.offset < high and high > 0
        if assigned and not behind:
            return got
        got += take(consumer, 0.2)
    return got


# -- the per-kind report ----------------------------------------------------------------


class Tally:
    """Per kind: in, served, refused (by reason), and what went wrong, record by record."""

    def __init__(self, records: Iterator[Record] | list[Record]) -> None:
        self.records = {r.ident: r for r in records}
        self.served: Counter[Ident] = Counter()
        self.refused: Counter[Ident] = Counter()
        self.reasons: dict[str, Counter[str]] = defaultdict(Counter)
        self.problems: dict[str, list[str]] = defaultdict(list)

    def serve(self, key: Ident) -> None:
        self.served[key] += 1

    def refuse(self, key: Ident, reason: str | None) -> None:
        self.refused[key] += 1
        record = self.records.get(key)
        kind = record.kind if record else "?"
        self.reasons[kind][reason or "<no reason>"] += 1
        if not reason:
            self.problems[kind].append(f"{key!r}: refused without a reason")

    def note(self, key: Ident, problem: str) -> None:
        record = self.records.get(key)
        self.problems[record.kind if record else "?"].append(f"{key!r}: {problem}")

    def table(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for record in self.records.values():
            row = out.setdefault(record.kind, Counter())
            served, refused = self.served[record.ident], self.refused[record.ident]
            row["in"] += 1
            row["served"] += served
            row["refused"] += refused
            wanted = (0, 1) if record.bad else (1, 0)
            if (served, refused) == (0, 0):
                row["missing"] += 1
            elif (served, refused) != wanted:
                row["wrong"] += 1  # served when it should be refused, doubled, or both
        strays = set(self.served) | set(self.refused)
        strays -= set(self.records)
        return {
            kind: dict(row)
            | {"reasons": dict(self.reasons.get(kind, {}))}
            | ({"problems": self.problems[kind][:3]} if self.problems.get(kind) else {})
            for kind, row in sorted(out.items())
        } | ({"?": {"strays": len(strays)}} if strays else {})

    def failures(self) -> dict[str, dict[str, Any]]:
        bad = ("missing", "wrong", "problems", "strays")
        return {k: v for k, v in self.table().items() if any(v.get(b) for b in bad)}


def report(stage: str, tally: Tally) -> str:
    lines = [f"{stage}, per kind:"]
    lines += [f"  {kind}: {row}" for kind, row in tally.table().items()]
    return "\n".join(lines)


# -- the scorer -------------------------------------------------------------------------


def _scorer_stats(log: str) -> dict[str, int]:
    found = re.findall(r"scorer \S+ stopped: (\{.*\})", log)
    assert found, f"the scorer did not report its counts at stop:\n{log[-3000:]}"
    return dict(ast.literal_eval(found[-1]))


def test_scorer_refuses_every_poison_and_answers_every_good_request_once(
    kafka: KafkaConfig, unique: Callable[[str], str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # the suite's models are registered unsigned (model signing is not what this tests)
    monkeypatch.setenv("MODELSTREAM_ALLOW_UNSIGNED", "true")
    topics = Topics(unique("psc"))
    admin = make_admin(kafka)
    ensure_topics(admin, topics.global_specs(1) + topics.model_specs(GHOST, 3))
    registry = Registry(kafka, topics, actor="tests")
    stack = Stack(kafka, topics, registry, tmp_path)
    stack.add_model("m", trained()[0])
    forbidden = [topics.requests("m"), topics.routing, f"{topics.prefix}.missing.replies"]
    records = shuffled(
        good_requests(N, 1, "m")
        + [r for k in KINDS for r in request_poison(k, N, 7, "m", forbidden)],
        seed=3,
    )
    expected_keys = {r.key for r in records}
    assert len(expected_keys) == len(records)
    out = reader(kafka, [topics.replies("m"), topics.replies(GHOST), topics.dlq("m"),
                         topics.dlq(GHOST)], unique("g"))  # fmt: skip
    started = time.monotonic()
    with ScorerProcess(stack) as scorer:
        produce(kafka, records, lambda r: topics.requests(r.model))
        produced = time.monotonic() - started
        got = drain(out, lambda got: {m.key for m in got} >= expected_keys)
        assert scorer.proc is not None
        alive = scorer.proc.poll() is None
        log = scorer.stop()
    elapsed = time.monotonic() - started
    registry.close()
    tally = Tally(records)
    for message in got:
        ident = ("requests", message.key)
        if message.topic.endswith(".dlq"):
            tally.refuse(ident, (message.headers.get("ms-reason") or b"").decode())
            record = tally.records.get(ident)
            if record is not None and message.value != record.value[: len(message.value)]:
                tally.note(ident, "the DLQ entry is not the original bytes")
            if not message.headers.get("ms-error"):
                tally.note(ident, "DLQ entry without ms-error")
        else:
            tally.serve(ident)
    table = report(f"scorer ({len(records)} records, produced in {produced:.1f} s, all out "
                   f"{elapsed:.1f} s after the start)", tally)  # fmt: skip
    print(table)
    assert alive, f"the scorer died\n{table}\n{log[-3000:]}"
    assert not tally.failures(), table
    stats = _scorer_stats(log)
    answered = stats.get("replies", 0) + stats.get("errors", 0)
    assert answered + stats.get("dlq", 0) == len(records), (stats, table)  # in = out + dlq
    assert stats.get("in", len(records)) == len(records), (stats, table)  # where it counts in
    assert len(got) == len(records), table  # the topics say the same


# -- the monitor -------------------------------------------------------------------------


def _position(text: str) -> Position:
    topic, partition, offset = re.fullmatch(r"(.+)\[(\d+)\]@(\d+)", text).groups()  # type: ignore[union-attr]
    return topic, int(partition), int(offset)


def log_records(seed: int) -> tuple[list[Record], list[Record]]:
    """(predictions, feedback): good ones and every kind of poison, each shuffled."""
    predictions = good_predictions(N_LOG, seed) + [
        r for k in LOG_KINDS for r in prediction_poison(k, N_LOG, seed)
    ]
    feedback = good_feedback(N_LOG) + [
        r for k in LOG_KINDS for r in feedback_poison(k, N_LOG, seed)
    ]
    return shuffled(predictions, seed), shuffled(feedback, seed + 1)


def test_monitor_refuses_every_poison_and_monitors_every_good_record_once(
    kafka: KafkaConfig, unique: Callable[[str], str]
) -> None:
    from services.monitor import spec_for, watch_factory
    from services.registry import RegistryView
    from streams.monitoring.stream import MonitorConfig, MonitorLoop

    topics = monitored_on(kafka, Topics(unique("pmo")), partitions=1)
    ensure_topics(make_admin(kafka), [TopicSpec(topics.model_topic(GHOST, kind), 1)
                                      for kind in ("predictions", "feedback", "dlq")])  # fmt: skip
    predictions, feedback = log_records(seed=5)
    placed = produce(kafka, predictions, lambda r: topics.predictions(r.model))
    placed |= produce(kafka, feedback, lambda r: topics.feedback(r.model))
    total = len(placed)
    view = RegistryView(kafka, topics)
    view.sync()
    refused: list[tuple[str, str]] = []  # (position, reason) of every refused record
    loop = MonitorLoop(kafka, MonitorConfig(topics, max_interval=0.5), watch_factory(view),
                       spec_for(view), on_refused=lambda _k, _m, at, why: refused.append(
                           (at, why)))  # fmt: skip
    started = time.monotonic()
    crashed: BaseException | None = None
    try:
        deadline = time.monotonic() + TIMEOUT
        while _taken(loop.stats) < total and time.monotonic() < deadline:
            loop.step()
    except Exception as exc:  # noqa: BLE001 - the finding is that it raised
        crashed = exc
    finally:
        loop.close()
        view.close()
    elapsed = time.monotonic() - started
    tally = Tally(predictions + feedback)
    refused_at = {_position(position): reason for position, reason in refused}
    for position, record in placed.items():
        # the monitor does not name what it monitored; what it did not refuse it took in
        if position in refused_at:
            tally.refuse(record.ident, refused_at[position])
        elif not crashed:
            tally.serve(record.ident)
    # an unregistered model's records are refused too (unmonitorable): "bad" for the monitor
    for ident, record in tally.records.items():
        if record.kind == "unknown_model":
            tally.records[ident] = dataclasses.replace(record, bad=True)
    table = report(f"monitor ({total} records, {elapsed:.1f} s, stats {dict(loop.stats)})", tally)
    print(table)
    assert crashed is None, f"the monitor loop raised {crashed!r}\n{table}"
    assert _taken(loop.stats) == total, table  # in = monitored + refused, its own counters
    assert not tally.failures(), table
    bad = sum(r.bad for r in tally.records.values())
    assert loop.stats["refused"] == bad, table
    # a refusal names a stable reason (missing_field), not an exception a check let through
    untold = sorted({why for _, why in refused if not re.fullmatch(r"[a-z_]+", why)})
    assert not untold, f"refused without a contract reason: {untold}\n{table}"


def _taken(stats: Counter[str]) -> int:
    return stats["predictions"] + stats["feedback"] + stats["refused"]


# -- the sink ----------------------------------------------------------------------------


def test_sink_lands_every_good_record_once_and_every_poison_in_dlq(
    kafka: KafkaConfig, unique: Callable[[str], str], warehouse: Warehouse
) -> None:
    topics = Topics(unique("psk"))
    ensure_topics(make_admin(kafka), topics.global_specs(1) + topics.model_specs("m", 3)
                  + topics.model_specs(GHOST, 1))  # fmt: skip
    predictions, feedback = log_records(seed=9)
    entries = list(dlq_entries(N_LOG, seed=9))
    summaries = summary_records(seed=9)
    placed = produce(kafka, predictions, lambda r: topics.predictions(r.model))
    placed |= produce(kafka, feedback, lambda r: topics.feedback(r.model))
    placed |= produce(kafka, entries, lambda r: topics.dlq(r.model))
    placed |= produce(kafka, summaries, lambda r: topics.summaries)
    sink = Sink(kafka, SinkConfig(topics, max_rows=5_000, max_age=0.3), warehouse)
    started = time.monotonic()
    crashed: BaseException | None = None
    try:
        deadline = time.monotonic() + TIMEOUT
        while _landed(warehouse) < len(placed) and time.monotonic() < deadline:
            sink.step(0.2)
        sink.flush_all()
    except Exception as exc:  # noqa: BLE001 - the finding is that it raised
        crashed = exc
    finally:
        sink.close()
    elapsed = time.monotonic() - started
    tally = Tally(predictions + feedback + entries + summaries)
    for table in ("predictions", "feedback"):
        for (request_id,) in warehouse.query(f"SELECT request_id FROM {table}").rows:
            tally.serve((table, request_id.encode()))
    for position in warehouse.query(
        "SELECT source_topic, source_partition, source_offset FROM window_summaries FINAL"
    ).rows:
        tally.serve(placed[tuple(position)].ident)  # type: ignore[index]
    dlq = warehouse.query(
        "SELECT reason, stage, message, source_topic, source_partition, source_offset, payload,"
        " request_id FROM dlq",
        column_formats={"payload": "bytes"},
    ).rows
    for reason, stage, message, topic, partition, offset, payload, request_id in dlq:
        if stage == "sink":  # a record the sink could not land, found by its position
            record = placed[(topic, partition, offset)]
            tally.refuse(record.ident, reason if message else "")
            if payload != record.value:
                tally.note(record.ident, "the dlq row is not the original bytes")
        else:  # a DLQ entry from upstream, landed as it is (its ms-request-id: d<i>)
            tally.serve(("dlq", request_id.encode()))
    entry_rows = sum(stage != "sink" for _, stage, *_rest in dlq)
    table = report(f"sink ({len(placed)} records, {elapsed:.1f} s, stats {dict(sink.stats)})",
                   tally)  # fmt: skip
    print(table)
    assert crashed is None, f"the sink raised {crashed!r}\n{table}"
    assert entry_rows == len(entries), table  # every upstream DLQ entry landed once
    assert not tally.failures(), table
    # in = out + dlq, from its own counters and from the tables
    landed = sum(sink.stats[t] for t in ("predictions", "feedback", "dlq", "window_summaries"))
    assert landed == len(placed), (dict(sink.stats), table)
    assert _landed(warehouse) == len(placed), table


def _landed(warehouse: Warehouse) -> int:
    return int(warehouse.query(
        "SELECT (SELECT count() FROM predictions) + (SELECT count() FROM feedback)"
        " + (SELECT count() FROM dlq) + (SELECT count() FROM window_summaries FINAL)"
    ).rows[0][0])  # fmt: skip


def summary_records(seed: int) -> list[Record]:
    """Good summaries and every kind of poison, shuffled; one window per good one."""
    records = good_summaries(N_SUMMARIES)
    for i, kind in enumerate(LOG_KINDS):
        records += summary_poison(kind, N_SUMMARIES, seed, first=(i + 1) * N_SUMMARIES)
    return shuffled(records, seed)


# -- the merger --------------------------------------------------------------------------


def test_merger_refuses_every_poison_and_merges_every_good_window_once(
    kafka: KafkaConfig, unique: Callable[[str], str], tmp_path: Path
) -> None:
    from schemas.contracts import codec_for

    topics = Topics(unique("pmg"))
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    records = summary_records(seed=11)
    # produced after every other record, on the same (single) partition: once its window
    # is merged, the merger has taken every record before it
    fence = dataclasses.replace(good_summaries(1, first=FENCE_WINDOW)[0], key=b"fence")
    windows = {orjson_window(r): r for r in [*records, fence] if not r.bad}
    metrics = reader(kafka, [topics.metrics], unique("g"))
    log = tmp_path / "merger.log"
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap, "MODELSTREAM_TOPIC_PREFIX": topics.prefix,
        "MODELSTREAM_DATA_DIR": str(tmp_path / "data"),
    }  # fmt: skip
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen([MODELSTREAM, "run", "merger"], stdout=out,
                                stderr=subprocess.STDOUT, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while b"merger ready" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        placed = produce(kafka, records, lambda r: topics.summaries)
        produce(kafka, [fence], lambda r: topics.summaries)
        codec = codec_for("metric")
        merged: Counter[int] = Counter()

        def done(got: list[Any]) -> bool:
            for message in got[done.seen :]:  # type: ignore[attr-defined]
                metric = codec.decode_avro(message.value)
                if metric["name"] == "requests" and metric["labels"].get("scope") == "model":
                    merged[metric["window_start"]] += 1
            done.seen = len(got)  # type: ignore[attr-defined]
            if proc.poll() is not None:
                return True  # it died: nothing more will come
            return set(merged) >= set(windows)

        done.seen = 0  # type: ignore[attr-defined]
        drain(metrics, done)
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
    elapsed = time.monotonic() - started
    tally = Tally([*records, fence])
    bad = sum(r.bad for r in records)
    for start, count in merged.items():
        record = windows.get(start) or next(
            (r for r in records if r.bad and orjson_window(r) == start), None
        )
        for _ in range(count):
            if record is None:
                tally.note(("summaries", b"?"), f"a window nobody sent was merged: {start}")
            else:
                tally.serve(record.ident)
    for record in records:  # the merger names no record it refuses: refused = not merged
        if alive and record.bad and not tally.served[record.ident]:
            tally.refused[record.ident] += 1
    stats = _merger_stats(log)
    table = report(f"merger ({len(placed) + 1} records, {elapsed:.1f} s, stats {stats})", tally)
    print(table)
    tail = _merger_log_tail(log)
    assert alive, f"the merger died\n{table}\n{tail}"
    assert not tally.failures(), f"{table}\n{tail}"
    # in = merged + refused, from its own counters
    assert stats.get("in") == len(records) + 1, f"{table}\n{tail}"
    assert stats.get("refused") == bad, f"{table}\n{tail}"
    assert stats.get("summaries") == len(windows), f"{table}\n{tail}"
    # every refusal has a contract reason (none failed inside the merge) and a summary line
    reasons = {k for k in stats if k.startswith("refused:")}
    assert reasons and all(re.fullmatch(r"refused:[a-z_]+", k) for k in reasons), table
    assert "refused:merge_failed" not in reasons, f"{table}\n{tail}"
    lines = re.findall(rb"(\d+) summary records? of \S+ refused in the last", log.read_bytes())
    assert sum(int(n) for n in lines) == bad, f"{lines}\n{table}"


FENCE_WINDOW = 100_000  # after every window summary_records names


def orjson_window(record: Record) -> int | None:
    """The window start a summary names (None when it cannot be read)."""
    try:
        return int(orjson.loads(record.value)["window_start"])
    except Exception:  # noqa: BLE001 - any poison
        return None


def _merger_stats(log: Path) -> dict[str, int]:
    """The counters the merger reported at stop (empty if it did not stop cleanly)."""
    found = re.findall(r"merger \S+ stopped: (\{.*\})", log.read_text(errors="replace"))
    return dict(ast.literal_eval(found[-1])) if found else {}


def _merger_log_tail(log: Path) -> str:
    """The merger's log from its first error, and its last 30 lines."""
    lines = log.read_text(errors="replace").splitlines()
    failed = next((i for i, line in enumerate(lines) if "[ERROR]" in line or "[CRITICAL]" in line
                   or "Traceback" in line), len(lines))  # fmt: skip
    first = lines[max(0, failed - 5) : failed + 40]
    return ("the merger's log, its first error:\n" + "\n".join(first)
            + "\n...\nlast 30 lines:\n" + "\n".join(lines[-30:]))  # fmt: skip


@pytest.fixture(autouse=True)
def _budget(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test says how long it took (the file's budget is 90 s)."""
    started = time.monotonic()
    yield
    print(f"{request.node.name}: {time.monotonic() - started:.1f} s")

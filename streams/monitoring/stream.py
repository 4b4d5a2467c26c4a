"""The monitor's Kafka loop: predictions, feedback and DLQ entries in; metric points and
alerts out — exactly once, state included.

Per transaction (about once a second, or every ``max_batch`` events, or as soon as the
input is read to its end)::

    consume → each model's Watch updates its windows, detectors and label joins
    begin_transaction
      produce metrics and alerts (Avro, schemas/avro/metric|alert.avsc)
      produce a snapshot of every touched Watch to the compacted <prefix>._monitor_state
      send_offsets_to_transaction(...)
    commit_transaction

State is kept per **task**: a model and an input partition number. Partition ``p`` of a
model's predictions, feedback and dlq topics is one task (they are co-partitioned: the
scorer logs predictions keyed by request id, labels are keyed by request id, and the
``range`` assignor gives the same partition of topics with equal partition counts to one
instance). Any number of instances (``--instance ID``) share the tasks: an instance
restores exactly the tasks of the partitions it is assigned, from their last committed
snapshots, and drops those it loses (with the records of the current batch read from
them; the next owner reads them again from the committed offsets). Metric points carry
their task's partition in ``labels["partition"]``, alerts at the end of their message
(``[partition 2]``: an alert's ``at_event`` counts the events of its task).

The state snapshots and the input offsets commit atomically with the outputs, so a
monitor killed at any point restarts from snapshots that match its offsets exactly: no
window is lost or counted twice, and a zombie instance's commit is fenced by the group
generation (KIP-447). Snapshots are zlib-compressed pickles signed with HMAC-SHA256
(:mod:`streams.monitoring.snapshots`; ``MonitorConfig.snapshot_key``), split into 512 KiB
chunk records ``<model>@<p>/<n>`` after a manifest record ``<model>@<p>`` naming the chunk
count. A snapshot whose signature does not verify is never unpickled: its task starts
afresh, counted in ``stats["snapshots_refused"]`` and logged. (The producer compresses
nothing: every reader of the monitor's outputs, the merger's aiokafka among them, reads
them without a codec library.)

A watch that raises on a record (a bug, an input it cannot handle) stops neither the
process nor any other model: the record is refused as ``watch_failed`` and a critical
alert of kind ``monitor`` says so (at most once a minute per model).

A record whose ``ts`` is more than five minutes ahead of the monitor's clock is clamped
for the label join (see :data:`~streams.monitoring.watch.FEEDBACK_SKEW_MS`) and counted in
``stats["clamped"]`` and ``stats["clamped:<kind>"]``.

A record the monitor cannot read (the codec refuses it, e.g. a feedback label that is an
object; a prediction log without the fields the watch reads, or of other types,
:func:`~streams.monitoring.inputs.check_prediction`; a ``ts`` outside 1900-2299,
``bad_timestamp``, as the sink refuses it) is skipped and counted -- ``stats["refused"]``
and ``stats["refused:<reason>"]`` beside ``stats[<kind>]`` for the records taken in --
and summed up in one WARNING line per model and kind per ``refusal_log_interval``
(:mod:`streams.refusals`). It writes no DLQ entry: the sink refuses the same record with
the same codec and keeps its bytes and reason in the ``dlq`` table, once.

Why not faust tables: faust-streaming's changelog tables restore per key, but its
exactly-once mode rides on aiokafka transactions per partition and it processed fewer
events per second than this loop in our benchmark (see docs/DESIGN.md); the monitor needs
correct numbers first.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.codec import DecodeError
from schemas.contracts import codec_for, decode_value
from streams.kafka import KafkaConfig, Topics, consumer_config, producer_config
from streams.monitoring.errors import SnapshotRefused
from streams.monitoring.inputs import check_prediction, check_ts
from streams.monitoring.results import Alert
from streams.monitoring.snapshots import open_snapshot, seal
from streams.monitoring.summaries import Summary
from streams.refusals import RefusalLog, reason_of

__all__ = ["MonitorConfig", "MonitorLoop", "OnRefused", "Watch"]

log = logging.getLogger("modelstream.monitor")
CHUNK = 512 * 1024
JSON_HEADERS: list[tuple[str, str | bytes | None]] = [("content-type", b"application/json")]
Output = tuple[str, bytes, bytes | None]  # topic, value, key
#: signs snapshots when the config names no key: they restore within this process (a
#: rebalance, an aborted transaction) but not in another, which then starts afresh
PROCESS_KEY = secrets.token_bytes(32)


class Emitted(Protocol):
    def to_record(self, *, model: str, ts: int) -> dict[str, Any]: ...


class Watch(Protocol):
    """Everything the monitor computes for one model (pure; pickled as its state).
    ``clamped`` counts the records whose ``ts`` was clamped to the monitor's clock."""

    clamped: int

    def on_prediction(self, record: dict[str, Any], now_ms: int | None = None) -> list[Any]: ...
    def on_feedback(self, record: dict[str, Any], now_ms: int | None = None) -> list[Any]: ...
    def on_dlq(self, reason: str, ts_ms: int) -> list[Any]: ...
    def tick(self, now_ms: int) -> list[Any]: ...
    def rebase(self, spec: Any) -> list[Any]: ...

    @property
    def reference_version(self) -> int | None:
        """The champion version whose reference profile the watch measures against."""
        ...


#: one unit of monitor state: a model and an input partition number (of its predictions,
#: feedback and dlq topics, which are co-partitioned by request id)
Task = tuple[str, int]

#: ``(model, served champion version) -> spec`` when that version is the model's champion
#: now (the watch then rebases on it), else None
SpecFor = Callable[[str, int], Any | None]


@dataclass(frozen=True)
class MonitorConfig:
    """``name`` names the monitor's consumer group (``<prefix>.<name>``), the base of its
    transactional ids and its state topic: the product's ``monitor`` uses
    ``topics.monitor_state``, another name ``<prefix>._<name>_state`` (created by whoever
    picks the name, compacted as ``Topics.global_specs`` creates the monitor's), so a
    second monitor over the same topics starts from their beginning with its own state.

    >>> default, other = MonitorConfig(Topics("ms")), MonitorConfig(Topics("ms"), name="m3")
    >>> default.group_id, default.state_topic, other.group_id, other.state_topic
    ('ms.monitor', 'ms._monitor_state', 'ms.m3', 'ms._m3_state')
    """

    topics: Topics
    instance_id: str = "0"
    max_batch: int = 20_000
    max_interval: float = 1.0
    refusal_log_interval: float = 60.0
    name: str = "monitor"
    #: signs and verifies the state snapshots; every instance of a deployment needs the
    #: same (None: :data:`PROCESS_KEY`, good for one process only)
    snapshot_key: bytes | None = field(default=None, repr=False)

    @property
    def group_id(self) -> str:
        return f"{self.topics.prefix}.{self.name}"

    @property
    def state_topic(self) -> str:
        if self.name == "monitor":
            return self.topics.monitor_state
        return f"{self.topics.prefix}._{self.name}_state"


def _kind(prefix: str, topic: str) -> tuple[str, str] | None:
    """``(model, kind)`` of a model topic, else None."""
    if not topic.startswith(prefix + "."):
        return None
    parts = topic[len(prefix) + 1 :].rsplit(".", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else None


#: told of every refused record: ``(kind, model, "topic[partition]@offset", reason)``
OnRefused = Callable[[str, str, str, str], None]


class MonitorLoop:
    """One monitor process. ``on_refused`` (optional) is told of every record it refuses,
    where the stats only count them per reason (an audit, a test)."""

    def __init__(
        self,
        kafka: KafkaConfig,
        config: MonitorConfig,
        new_watch: Callable[[str], Watch],
        spec_for: SpecFor | None = None,
        on_refused: OnRefused | None = None,
    ) -> None:
        self.config = config
        self._on_refused = on_refused
        self._key = config.snapshot_key or PROCESS_KEY
        self.new_watch = new_watch
        self.spec_for = spec_for
        self._not_champion: dict[tuple[str, int], float] = {}  # asked at, monotonic
        self._failed_alerted: dict[str, float] = {}
        self.watches: dict[Task, Watch] = {}
        self.stats: Counter[str] = Counter()
        self._refusals = RefusalLog(
            log, interval=config.refusal_log_interval, outcome="not monitored"
        )
        self._metric = codec_for("metric")
        self._alert = codec_for("alert")
        self._kafka = kafka
        self._batch: list[Message] = []
        self._kinds: dict[str, tuple[str, str] | None] = {}  # topic -> (model, kind)
        self._assigned: set[tuple[str, int]] = set()
        prefix = re.escape(config.topics.prefix)
        self._consumer = Consumer(consumer_config(
            kafka, config.group_id, group_instance_id=f"{config.group_id}.{config.instance_id}",
            topic_metadata_refresh_interval_ms=2_000,
            # the same partition of a model's predictions, feedback and dlq to one instance
            partition_assignment_strategy="range",
        ))  # fmt: skip
        self._producer = Producer(producer_config(
            kafka, transactional_id=f"{config.group_id}.{config.instance_id}",
            message_max_bytes=CHUNK + 65_536,
        ))  # fmt: skip
        self._producer.init_transactions(30)
        self._consumer.subscribe(
            [f"^{prefix}\\.[A-Za-z0-9_-]+\\.(predictions|feedback|dlq)$"],
            on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke,
        )  # fmt: skip

    # -- state ----------------------------------------------------------------------

    def _task(self, topic: str, partition: int) -> Task | None:
        found = _kind(self.config.topics.prefix, topic)
        return None if found is None else (found[0], partition)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        tasks = {t for tp in partitions if (t := self._task(tp.topic, tp.partition))}
        self.restore(tasks - set(self.watches))
        log.info("assigned %d partition(s): %d task(s) %s", len(partitions), len(self.watches),
                 sorted(f"{m}[{p}]" for m, p in self.watches))  # fmt: skip

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Forget what this instance no longer owns: its tasks and the records of the
        current batch read from those partitions (their next owner reads them again
        from the committed offsets)."""
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned -= gone
        self._batch = [m for m in self._batch if (m.topic(), m.partition()) not in gone]
        kept = {t for tp in self._assigned if (t := self._task(*tp))}
        for task in set(self.watches) - kept:
            del self.watches[task]
        log.info("revoked %d partition(s); %d task(s) kept", len(partitions), len(self.watches))

    def restore(self, tasks: set[Task] | None = None, timeout: float = 30.0) -> None:
        """Rebuild the watches of ``tasks`` (default: every assigned one) from their last
        committed snapshots; a task with none starts afresh at its first record."""
        if tasks is None:
            tasks = {t for tp in self._assigned if (t := self._task(*tp))}
        if not tasks:
            return
        wanted = {_state_key(task) for task in tasks}
        records = self._read_state(wanted, timeout)
        for task in tasks:
            key = _state_key(task)
            manifest = records.get(key)
            if not manifest:
                continue
            chunks = int(manifest.decode())
            blob = b"".join(records.get(f"{key}/{i}", b"") for i in range(chunks))
            try:
                self.watches[task] = open_snapshot(blob, self._key)
            except SnapshotRefused as exc:
                self.stats["snapshots_refused"] += 1
                log.warning("%s: the snapshot of %s[%d] is not restored, its state starts "
                            "afresh: %s. Every monitor instance needs the same "
                            "MODELSTREAM_MONITOR_SNAPSHOT_KEY", self.config.state_topic,
                            task[0], task[1], exc)  # fmt: skip
        log.info("restored %d of %d task(s) from %s", sum(t in self.watches for t in tasks),
                 len(tasks), self.config.state_topic)  # fmt: skip

    def _read_state(self, wanted: set[str], timeout: float) -> dict[str, bytes]:
        """The last committed value of every state record of the ``wanted`` tasks."""
        reader = Consumer(consumer_config(self._kafka, f"{self.config.group_id}.restore"))
        state = self.config.state_topic
        try:
            meta = reader.list_topics(state, timeout=timeout).topics.get(state)
            if meta is None or meta.error is not None:
                return {}
            parts = [TopicPartition(state, p, 0) for p in meta.partitions]
            # read_committed: the end is the last stable offset, before any transaction
            # a killed instance left open
            ends = {p.partition: reader.get_watermark_offsets(p, timeout=timeout)[1] for p in parts}
            reader.assign([TopicPartition(state, p, -2) for p in ends])  # -2: beginning
            records: dict[str, bytes] = {}
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for m in reader.consume(1000, 0.2):
                    if m.error() is None:
                        key = (m.key() or b"").decode()
                        if key.partition("/")[0] in wanted:
                            records[key] = m.value() or b""
                positions = reader.position([TopicPartition(state, p) for p in ends])
                if all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0
                       for tp in positions):  # fmt: skip
                    return records
            raise TimeoutError(f"could not read {state} to its end in {timeout:.0f}s")
        finally:
            reader.close()

    def _snapshot(self, task: Task) -> list[tuple[str, bytes]]:
        blob = seal(self.watches[task], self._key)
        chunks = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        key = _state_key(task)
        return [(f"{key}/{i}", c) for i, c in enumerate(chunks)] + [
            (key, str(len(chunks)).encode())
        ]

    # -- loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            self.step()

    def step(self) -> int:
        """One transaction's worth of events; returns how many were read. A transaction
        holds up to ``max_batch`` events or ``max_interval`` seconds of them, and closes
        early once the input is read to its end (200 ms without a record): what was read
        is committed then, not a second later."""
        self._batch = []
        deadline = time.monotonic() + self.config.max_interval
        while (
            len(self._batch) < self.config.max_batch and (left := deadline - time.monotonic()) > 0
        ):
            got = self._consumer.consume(5_000, min(left, 0.2))  # may revoke: trims _batch
            if not got and self._batch and left > 0.2:
                break  # caught up
            self._batch += [m for m in got if m.error() is None]
        batch, self._batch = self._batch, []
        outputs: list[Output] = []
        touched: set[Task] = set()
        now = int(time.time() * 1e3)  # the batch's clock: feedback clamp, outputs' ts
        for message in batch:
            self._handle(message, outputs, touched, now)
        now = int(time.time() * 1e3)
        for task, watch in self.watches.items():
            try:
                emitted = watch.tick(now)
            except Exception as exc:  # noqa: BLE001 - one model's failure stops no other
                self._failed(task, "tick", f"{task[0]}[{task[1]}] tick", exc, outputs)
                continue
            if emitted:
                touched.add(task)
                self._encode(task, emitted, now, outputs)
        if batch or outputs:
            self._transact(batch, outputs, touched)
        self._refusals.tick()
        return len(batch)

    def _handle(
        self, message: Message, outputs: list[Output], touched: set[Task], now: int
    ) -> None:
        topic = message.topic() or ""
        found = self._kinds.get(topic, _UNSEEN)
        if found is _UNSEEN:
            found = self._kinds[topic] = _kind(self.config.topics.prefix, topic)
        if found is None:
            return
        model, kind = found
        task = (model, message.partition() or 0)
        watch = self.watches.get(task)
        if watch is None:
            try:  # asked again at the model's next record: it may be registered by then
                watch = self.watches[task] = self.new_watch(model)
            except Exception as exc:  # noqa: BLE001 - one model we cannot watch stops no other
                self._refuse(kind, model, _where(message), "unmonitorable", str(exc))
                return
        touched.add(task)  # even a refused record may have moved the watch
        try:
            emitted = self._feed(model, watch, kind, message, now)
        except (DecodeError, KeyError, TypeError, ValueError) as exc:
            self._refuse(kind, model, _where(message), reason_of(exc), str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - one model's failure stops no other
            self._failed(task, kind, _where(message), exc, outputs)
            return
        self.stats[kind] += 1
        if emitted:
            self._encode(task, emitted, now, outputs)

    def _failed(
        self, task: Task, kind: str, where: str, exc: Exception, outputs: list[Output]
    ) -> None:
        """The watch raised: the record is refused (``watch_failed``), and a critical
        ``monitor`` alert says so, at most once a minute per model."""
        model = task[0]
        if kind != "tick":
            self._refuse(kind, model, where, "watch_failed", f"{type(exc).__name__}: {exc}")
        else:
            self.stats["failed:tick"] += 1
        last = self._failed_alerted.get(model)
        if last is not None and time.monotonic() - last < 60:
            return
        self._failed_alerted[model] = time.monotonic()
        log.exception("monitoring %s failed on %s (the other models go on)", model, where)
        alert = Alert(
            kind="monitor", severity="critical", at_event=self.stats[kind],
            message=f"the monitor could not process {where}: {type(exc).__name__}: {exc}; "
                    "its statistics miss this record (see the monitor's log)",
        )  # fmt: skip
        self._encode(task, [alert], int(time.time() * 1e3), outputs)

    def _refuse(self, kind: str, model: str, where: str, reason: str, detail: str) -> None:
        self._refusals.add(kind, model, where, reason, detail)
        if self._on_refused is not None:
            self._on_refused(kind, model, where, reason)
        self.stats["refused"] += 1
        self.stats[f"refused:{reason}"] += 1

    def _feed(self, model: str, watch: Watch, kind: str, message: Message, now: int) -> list[Any]:
        clamped = getattr(watch, "clamped", 0)
        out = self._feed_watch(model, watch, kind, message, now)
        if (more := getattr(watch, "clamped", 0) - clamped) > 0:
            self.stats["clamped"] += more
            self.stats[f"clamped:{kind}"] += more
        return out

    def _feed_watch(
        self, model: str, watch: Watch, kind: str, message: Message, now: int
    ) -> list[Any]:
        value = message.value() or b""
        headers = dict(message.headers() or [])
        if kind == "dlq":
            reason = headers.get("ms-reason") or b"unknown"
            text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else reason
            return watch.on_dlq(text, message.timestamp()[1])
        if kind == "feedback":  # checked by its codec; its time is the sink's to refuse too
            label = decode_value(value, headers, "feedback")
            check_ts(label["ts"])
            return watch.on_feedback(label, now)
        # as the sink decodes: by content-type, sniffed when absent
        record = decode_value(value, headers, "prediction_log")
        check_prediction(record)  # JSON is not checked by the codec: what the watch reads
        out: list[Any] = []
        served = record["champion"]["version"]
        if served != watch.reference_version and self.spec_for is not None:
            out += self._rebase(model, watch, served)
        return out + watch.on_prediction(record, now)

    def _rebase(self, model: str, watch: Watch, served: int) -> list[Any]:
        """Rebase ``watch`` on ``served`` if the registry says it is the champion now
        (a straggler of the previous champion is not; asked again after a second)."""
        assert self.spec_for is not None
        asked = self._not_champion.get((model, served))
        if asked is not None and time.monotonic() - asked < 1.0:
            return []
        spec = self.spec_for(model, served)
        if spec is None:
            self._not_champion[(model, served)] = time.monotonic()
            return []
        self._not_champion.pop((model, served), None)
        self.stats["rebased"] += 1
        log.info("%s: champion v%s; drift now against its reference profile", model, served)
        return watch.rebase(spec)

    def _encode(self, task: Task, emitted: list[Any], ts: int, outputs: list[Output]) -> None:
        topics = self.config.topics
        model, partition = task
        for item in emitted:
            if isinstance(item, Summary):
                record = item.to_record(model=model, partition=partition)
                outputs.append((topics.summaries, orjson.dumps(record), model.encode()))
                self.stats["summaries"] += 1
                continue
            record = item.to_record(model=model, ts=ts)
            if "severity" in record:  # an alert: its at_event counts the task's events
                record["message"] = f"{record['message']} [partition {partition}]"
                outputs.append((topics.alerts, self._alert.encode_avro(record), None))
                self.stats["alerts"] += 1
            else:  # which input partition's window it measured
                record["labels"]["partition"] = str(partition)
                outputs.append((topics.metrics, self._metric.encode_avro(record), None))
                self.stats["metrics"] += 1

    def _transact(self, batch: list[Message], outputs: list[Output], touched: set[Task]) -> None:
        producer = self._producer
        try:
            producer.begin_transaction()
            for topic, value, key in outputs:
                if key is None:
                    producer.produce(topic, value)
                else:
                    producer.produce(topic, value, key, headers=JSON_HEADERS)
            for task in touched:
                if task in self.watches:
                    for name, chunk in self._snapshot(task):
                        producer.produce(self.config.state_topic, chunk, name.encode())
            if batch:
                producer.send_offsets_to_transaction(
                    _next_offsets(batch), self._consumer.consumer_group_metadata(), 30
                )
            producer.commit_transaction(30)
            self.stats["transactions"] += 1
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.fatal() or not error.txn_requires_abort():
                raise
            # the in-memory state has moved past what is committed: rebuild both from Kafka
            producer.abort_transaction(30)
            self.watches.clear()
            self.restore()
            self._rewind(batch)
            self.stats["aborts"] += 1

    def _rewind(self, batch: list[Message]) -> None:
        first: dict[tuple[str, int], int] = {}
        for m in batch:
            key = (m.topic() or "", m.partition() or 0)
            first[key] = min(first.get(key, m.offset() or 0), m.offset() or 0)
        for (topic, partition), offset in first.items():
            self._consumer.seek(TopicPartition(topic, partition, offset))

    def close(self) -> None:
        self._refusals.flush()
        self._consumer.close()


_UNSEEN: Any = object()


def _where(message: Message) -> str:
    """``topic[partition]@offset`` of ``message`` (for refusal logs)."""
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


def _state_key(task: Task) -> str:
    """``<model>@<partition>``: the task's manifest key; its chunks are ``<key>/<n>``."""
    return f"{task[0]}@{task[1]}"


def _next_offsets(batch: list[Message]) -> list[TopicPartition]:
    """The offset after the last record of each partition in ``batch`` (a partition's
    records come in offset order: its last is its first from the end).

    >>> from types import SimpleNamespace as M
    >>> batch = [M(topic=lambda: "t", partition=lambda p=p: p, offset=lambda o=o: o)
    ...          for p, o in ((0, 5), (1, 7), (0, 6))]
    >>> sorted((tp.partition, tp.offset) for tp in _next_offsets(batch))
    [(0, 7), (1, 8)]
    """
    last: dict[tuple[str, int], int] = {}
    for m in reversed(batch):
        key = (m.topic() or "", m.partition() or 0)
        if key not in last:
            last[key] = m.offset() or 0
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]

"""The monitor's Kafka loop: predictions, feedback and DLQ entries in; metric points and
alerts out — exactly once, state included.

Per transaction (about once a second, or every ``max_batch`` events)::

    consume → each model's Watch updates its windows, detectors and label joins
    begin_transaction
      produce metrics and alerts (Avro, schemas/avro/metric|alert.avsc)
      produce a snapshot of every touched Watch to the compacted <prefix>._monitor_state
      send_offsets_to_transaction(...)
    commit_transaction

The state snapshot and the input offsets commit atomically with the outputs, so a monitor
killed at any point restarts from a snapshot that matches its offsets exactly: no window
is lost or counted twice. Snapshots are zlib-compressed pickles, split into 512 KiB chunk
records ``<model>/<n>`` after a manifest record ``<model>`` naming the chunk count.

A record the monitor cannot read (the codec refuses it, e.g. a feedback label that is an
object) is skipped and counted -- ``stats["refused"]`` and ``stats["refused:<reason>"]``
beside ``stats[<kind>]`` for the records taken in -- and summed up in one WARNING line
per model and kind per ``refusal_log_interval`` (:mod:`streams.refusals`). It writes no
DLQ entry: the sink refuses the same record with the same codec and keeps its bytes and
reason in the ``dlq`` table, once.

Why not faust tables: faust-streaming's changelog tables restore per key, but its
exactly-once mode rides on aiokafka transactions per partition and it processed fewer
events per second than this loop in our benchmark (see docs/DESIGN.md); the monitor needs
correct numbers first.
"""

from __future__ import annotations

import logging
import pickle
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.codec import DecodeError
from schemas.contracts import codec_for
from streams.kafka import KafkaConfig, Topics, consumer_config, producer_config
from streams.refusals import RefusalLog, reason_of

__all__ = ["MonitorConfig", "MonitorLoop", "Watch"]

log = logging.getLogger("modelstream.monitor")
CHUNK = 512 * 1024


class Emitted(Protocol):
    def to_record(self, *, model: str, ts: int) -> dict[str, Any]: ...


class Watch(Protocol):
    """Everything the monitor computes for one model (pure; pickled as its state)."""

    def on_prediction(self, record: dict[str, Any]) -> list[Any]: ...
    def on_feedback(self, record: dict[str, Any]) -> list[Any]: ...
    def on_dlq(self, reason: str, ts_ms: int) -> list[Any]: ...
    def tick(self, now_ms: int) -> list[Any]: ...


@dataclass(frozen=True)
class MonitorConfig:
    topics: Topics
    instance_id: str = "0"
    max_batch: int = 20_000
    max_interval: float = 1.0
    refusal_log_interval: float = 60.0

    @property
    def group_id(self) -> str:
        return f"{self.topics.prefix}.monitor"

    @property
    def state_topic(self) -> str:
        return self.topics.monitor_state


def _kind(prefix: str, topic: str) -> tuple[str, str] | None:
    """``(model, kind)`` of a model topic, else None."""
    if not topic.startswith(prefix + "."):
        return None
    parts = topic[len(prefix) + 1 :].rsplit(".", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else None


class MonitorLoop:
    """One monitor process."""

    def __init__(
        self, kafka: KafkaConfig, config: MonitorConfig, new_watch: Callable[[str], Watch]
    ) -> None:
        self.config = config
        self.new_watch = new_watch
        self.watches: dict[str, Watch] = {}
        self.stats: Counter[str] = Counter()
        self._refusals = RefusalLog(
            log, interval=config.refusal_log_interval, outcome="not monitored"
        )
        self._metric = codec_for("metric")
        self._alert = codec_for("alert")
        self._kafka = kafka
        prefix = re.escape(config.topics.prefix)
        self._consumer = Consumer(consumer_config(
            kafka, config.group_id, group_instance_id=f"{config.group_id}.{config.instance_id}",
            topic_metadata_refresh_interval_ms=2_000,
        ))  # fmt: skip
        self._producer = Producer(producer_config(
            kafka, transactional_id=f"{config.group_id}.{config.instance_id}",
            message_max_bytes=CHUNK + 65_536,
        ))  # fmt: skip
        self._producer.init_transactions(30)
        self.restore()
        self._consumer.subscribe([f"^{prefix}\\.[A-Za-z0-9_-]+\\.(predictions|feedback|dlq)$"])

    # -- state ----------------------------------------------------------------------

    def restore(self, timeout: float = 30.0) -> None:
        """Rebuild every Watch from the last committed snapshots."""
        reader = Consumer(consumer_config(self._kafka, f"{self.config.group_id}.restore"))
        state = self.config.state_topic
        meta = reader.list_topics(state, timeout=timeout).topics.get(state)
        if meta is None or meta.error is not None:
            reader.close()
            return
        parts = [TopicPartition(state, p, 0) for p in meta.partitions]
        ends = {p.partition: reader.get_watermark_offsets(p, timeout=timeout)[1] for p in parts}
        reader.assign([TopicPartition(state, p, -2) for p in ends])  # -2: beginning
        records: dict[str, bytes] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in reader.consume(1000, 0.2):
                if m.error() is None:
                    records[(m.key() or b"").decode()] = m.value() or b""
            positions = reader.position([TopicPartition(state, p) for p in ends])
            if all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0 for tp in positions):
                break
        else:
            raise TimeoutError(f"could not read {state} to its end in {timeout:.0f}s")
        reader.close()
        for key, manifest in records.items():
            if "/" in key or not manifest:
                continue
            chunks = int(manifest.decode())
            blob = b"".join(records.get(f"{key}/{i}", b"") for i in range(chunks))
            self.watches[key] = pickle.loads(zlib.decompress(blob))  # noqa: S301 - our own state
        log.info("restored monitor state of %d model(s)", len(self.watches))

    def _snapshot(self, model: str) -> list[tuple[str, bytes]]:
        blob = zlib.compress(pickle.dumps(self.watches[model], protocol=5), 1)
        chunks = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        return [(f"{model}/{i}", c) for i, c in enumerate(chunks)] + [
            (model, str(len(chunks)).encode())
        ]

    # -- loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            self.step()

    def step(self) -> int:
        """One transaction's worth of events; returns how many were read."""
        batch: list[Message] = []
        deadline = time.monotonic() + self.config.max_interval
        while len(batch) < self.config.max_batch and (left := deadline - time.monotonic()) > 0:
            batch += [m for m in self._consumer.consume(5_000, min(left, 0.2)) if m.error() is None]
        outputs: list[tuple[str, bytes]] = []
        touched: set[str] = set()
        for message in batch:
            self._handle(message, outputs, touched)
        now = int(time.time() * 1e3)
        for model, watch in self.watches.items():
            emitted = watch.tick(now)
            if emitted:
                touched.add(model)
                self._encode(model, emitted, now, outputs)
        if batch or outputs:
            self._transact(batch, outputs, touched)
        self._refusals.tick()
        return len(batch)

    def _handle(
        self, message: Message, outputs: list[tuple[str, bytes]], touched: set[str]
    ) -> None:
        topic = message.topic() or ""
        found = _kind(self.config.topics.prefix, topic)
        if found is None:
            return
        model, kind = found
        where = f"{topic}[{message.partition()}]@{message.offset()}"
        watch = self.watches.get(model)
        if watch is None:
            try:  # asked again at the model's next record: it may be registered by then
                watch = self.watches[model] = self.new_watch(model)
            except Exception as exc:  # noqa: BLE001 - one model we cannot watch stops no other
                self._refuse(kind, model, where, "unmonitorable", str(exc))
                return
        try:
            emitted = self._feed(watch, kind, message)
        except (DecodeError, KeyError, TypeError, ValueError) as exc:
            self._refuse(kind, model, where, reason_of(exc), str(exc))
            return
        touched.add(model)
        self.stats[kind] += 1
        if emitted:
            self._encode(model, emitted, int(time.time() * 1e3), outputs)

    def _refuse(self, kind: str, model: str, where: str, reason: str, detail: str) -> None:
        self._refusals.add(kind, model, where, reason, detail)
        self.stats["refused"] += 1
        self.stats[f"refused:{reason}"] += 1

    def _feed(self, watch: Watch, kind: str, message: Message) -> list[Any]:
        value = message.value() or b""
        headers = dict(message.headers() or [])
        if kind == "dlq":
            reason = headers.get("ms-reason", b"unknown")
            return watch.on_dlq(reason.decode() if isinstance(reason, bytes) else str(reason),
                                message.timestamp()[1])  # fmt: skip
        contract = "prediction_log" if kind == "predictions" else "feedback"
        # as the sink decodes: by content-type, sniffed when absent
        record = codec_for(contract).decode(value, headers.get("content-type") or None)
        return watch.on_prediction(record) if kind == "predictions" else watch.on_feedback(record)

    def _encode(
        self, model: str, emitted: list[Any], ts: int, outputs: list[tuple[str, bytes]]
    ) -> None:
        topics = self.config.topics
        for item in emitted:
            record = item.to_record(model=model, ts=ts)
            if "severity" in record:
                outputs.append((topics.alerts, self._alert.encode_avro(record)))
                self.stats["alerts"] += 1
            else:
                outputs.append((topics.metrics, self._metric.encode_avro(record)))
                self.stats["metrics"] += 1

    def _transact(
        self, batch: list[Message], outputs: list[tuple[str, bytes]], touched: set[str]
    ) -> None:
        producer = self._producer
        try:
            producer.begin_transaction()
            for topic, value in outputs:
                producer.produce(topic, value)
            for model in touched:
                for key, chunk in self._snapshot(model):
                    producer.produce(self.config.state_topic, chunk, key.encode())
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


def _next_offsets(batch: list[Message]) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for m in batch:
        key = (m.topic() or "", m.partition() or 0)
        last[key] = max(last.get(key, -1), m.offset() or 0)
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]

"""The sink: Kafka topics → ClickHouse tables, batched, idempotent, commit after insert.

Batches are per topic-partition and land with the deterministic
``insert_deduplication_token`` ``<topic>-<partition>-<first>-<last>``. To make a replay
after a crash form the *same* batch (so ClickHouse drops the repeat), the sink announces a
batch before inserting it: it commits the batch's first offset again with the metadata
``pending:<last>``. A sink that takes the partition over reads that marker and flushes
exactly at ``<last>``. Sequence per batch::

    commit(first, "pending:<last>") → insert(rows, token) → commit(last + 1)

ClickHouse unavailable → the batch is retried with exponential backoff while the consumer
keeps polling (paused) so it stays in its group; memory stays bounded because nothing new
is fetched meanwhile. Records that cannot be decoded land in the ``dlq`` table with reason
``sink_decode`` instead of blocking the partition, summed up in one WARNING line per
topic kind and model per ``refusal_log_interval`` (:mod:`streams.refusals`). A record may
also be no row (an artifact chunk of ``_models``) or several (a model version's reference
profile, one row per feature): its offset is committed with its batch either way.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from services.sink.landing import Row
from services.sink.rows import TABLES, Landing, Position, dlq_row, table_for_topic
from services.warehouse import Warehouse, WarehouseUnavailable
from streams.kafka import KafkaConfig, Topics, consumer_config
from streams.kafka_logs import ConsumerErrors
from streams.refusals import RefusalLog, reason_of

__all__ = ["Sink", "SinkConfig"]

log = logging.getLogger("modelstream.sink")
PENDING = "pending:"


@dataclass(frozen=True)
class SinkConfig:
    topics: Topics
    max_rows: int = 10_000
    max_age: float = 1.0
    retry_initial: float = 0.5
    retry_max: float = 10.0
    refusal_log_interval: float = 60.0

    @property
    def group_id(self) -> str:
        return f"{self.topics.prefix}.sink"

    def subscription(self) -> list[str]:
        p = re.escape(self.topics.prefix)
        return [
            f"^{p}\\.[A-Za-z0-9_-]+\\.(predictions|feedback|dlq)$",
            self.topics.metrics,
            self.topics.alerts,
            self.topics.summaries,
            self.topics.model_events,
            self.topics.models,  # reference profiles; the artifact chunks are skipped
        ]


@dataclass
class Batch:
    """Rows read from one topic-partition since its last commit."""

    topic: str
    partition: int
    first: int
    last: int = -1
    until: int | None = None  # replay: flush exactly at this offset
    started: float = field(default_factory=time.monotonic)
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def token(self, table: str) -> str:
        return f"{self.topic}-{self.partition}-{self.first}-{self.last}:{table}"

    @property
    def size(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


class Sink:
    """One sink process's consume → batch → insert → commit loop."""

    def __init__(
        self,
        kafka: KafkaConfig,
        config: SinkConfig,
        warehouse: Warehouse,
        chaos: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        # fault injection for chaos tests: called with "announced" and "inserted"
        self._chaos = chaos or (lambda _point: None)
        self.warehouse = warehouse
        self.stats: Counter[str] = Counter()
        self._refusals = RefusalLog(
            log, interval=config.refusal_log_interval, outcome="they are in the dlq table"
        )
        self._batches: dict[tuple[str, int], Batch] = {}
        self._replay: dict[tuple[str, int], int] = {}
        self._held: list[Message] = []  # read while backing off; added after the flush
        self._consumer_error = ConsumerErrors(log, "landing it once it is created")
        conf = consumer_config(kafka, config.group_id, topic_metadata_refresh_interval_ms=2_000)
        self._consumer = Consumer(conf)
        self._consumer.subscribe(
            config.subscription(), on_assign=self._on_assign, on_revoke=self._on_revoke
        )

    # -- group membership -----------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in consumer.committed(partitions, timeout=30):
            meta = getattr(tp, "metadata", None) or ""
            if meta.startswith(PENDING) and tp.offset >= 0:
                self._replay[(tp.topic, tp.partition)] = int(meta[len(PENDING) :])
                log.info("%s[%d]: replaying the announced batch %d..%s", tp.topic, tp.partition,
                         tp.offset, meta[len(PENDING) :])  # fmt: skip

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:  # uncommitted: the next owner reads them again
            self._batches.pop((tp.topic, tp.partition), None)
            self._replay.pop((tp.topic, tp.partition), None)

    # -- loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            self.step(0.2)
        self.flush_all()

    def step(self, timeout: float) -> None:
        """Read what is there, then flush the batches that are full, old or replayed."""
        for message in self._consumer.consume(5_000, timeout):
            error = message.error()
            if error is not None:
                self._consumer_error(error)
                continue
            self._add(message)
        held, self._held = self._held, []
        for message in held:
            self._add(message)
        now = time.monotonic()
        for key, batch in list(self._batches.items()):
            if self._due(batch, now):
                self._flush(key, batch)
        self._refusals.tick()

    def _due(self, batch: Batch, now: float) -> bool:
        if batch.until is not None:
            return batch.last >= batch.until
        return batch.size >= self.config.max_rows or now - batch.started >= self.config.max_age

    def _add(self, message: Message) -> None:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        key = (topic, partition)
        batch = self._batches.get(key)
        if batch is not None and batch.until is not None and offset > batch.until:
            self._flush(key, batch)  # a replayed batch ends exactly where it was announced
            batch = None
        if batch is None:
            batch = self._batches[key] = Batch(topic, partition, offset)
            batch.until = self._replay.pop(key, None)
        batch.last = offset
        landing = table_for_topic(self.config.topics.prefix, topic)
        headers = cast(list[tuple[str, bytes]], message.headers() or [])
        pos = Position(topic, partition, offset, message.key(), dict(headers))
        table, rows = self._rows(landing, message.value() or b"", pos)
        if rows:
            batch.rows.setdefault(table, []).extend(rows)

    def _rows(self, landing: Landing | None, value: bytes, pos: Position) -> tuple[str, list[Row]]:
        if landing is None:
            return self._undecodable(value, pos, "no_table", "no table for this topic")
        try:
            return landing.table, landing.rows(value, pos)
        except Exception as exc:  # noqa: BLE001 - one record that cannot land stops nothing
            why = f"{type(exc).__name__}: {exc}"[:2_000]
            return self._undecodable(value, pos, reason_of(exc), why, detail=str(exc)[:500])

    def _undecodable(
        self, value: bytes, pos: Position, reason: str, why: str, detail: str | None = None
    ) -> tuple[str, list[Row]]:
        """The dlq row of a record that cannot land (``why`` in its ``ms-error``)."""
        kind = pos.topic.removeprefix(self.config.topics.prefix + ".").rpartition(".")[2]
        model = self._model_of(pos)
        self._refusals.add(kind, model, str(pos), reason, detail or why)
        self.stats["refused"] += 1
        headers = dict(pos.headers) | {
            "ms-reason": b"sink_decode", "ms-stage": b"sink", "ms-error": why.encode(),
            "ms-source-topic": pos.topic.encode(), "ms-model": model.encode(),
            "ms-source-partition": str(pos.partition).encode(),
            "ms-source-offset": str(pos.offset).encode(),
        }  # fmt: skip
        return "dlq", [dlq_row(value, Position(pos.topic, pos.partition, pos.offset, pos.key,
                                               headers))]  # fmt: skip

    def _model_of(self, pos: Position) -> str:
        """The model a refused record is about: ``<prefix>.<model>.<kind>`` names it; a
        global topic's records are keyed by it (``<model>`` or ``<model>/<version>...``)."""
        model, _, _ = pos.topic.removeprefix(self.config.topics.prefix + ".").rpartition(".")
        if model:
            return model
        return (pos.key or b"").decode("utf-8", "replace").split("/", 1)[0]

    # -- flushing -------------------------------------------------------------------

    def flush_all(self) -> None:
        for key, batch in list(self._batches.items()):
            self._flush(key, batch)

    def _flush(self, key: tuple[str, int], batch: Batch) -> None:
        tp = TopicPartition(batch.topic, batch.partition, batch.first, f"{PENDING}{batch.last}")
        self._commit([tp])
        self._chaos("announced")
        for table, rows in batch.rows.items():
            landing = next(t for t in TABLES.values() if t.table == table)
            self._insert(landing, rows, batch.token(table))
            self.stats[table] += len(rows)
        self._chaos("inserted")
        self._commit([TopicPartition(batch.topic, batch.partition, batch.last + 1, "")])
        del self._batches[key]
        self.stats["batches"] += 1

    def _insert(self, landing: Landing, rows: list[tuple[Any, ...]], token: str) -> None:
        delay = self.config.retry_initial
        while True:
            try:
                self.warehouse.insert(landing.table, rows, list(landing.columns), dedup_token=token)
                return
            except WarehouseUnavailable as exc:
                log.warning("ClickHouse unavailable (%s); retrying %s in %.1fs", exc, token, delay)
                self.stats["retries"] += 1
                self._wait(delay)
                delay = min(delay * 2, self.config.retry_max)

    def _wait(self, seconds: float) -> None:
        """Back off while staying in the group: paused, polling, nothing new fetched."""
        assignment = self._consumer.assignment()
        self._consumer.pause(assignment)
        try:
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                # never a negative timeout: librdkafka reads it as "wait forever"
                for message in self._consumer.consume(100, min(0.2, max(left, 0.001))):
                    if message.error() is None:
                        self._held.append(message)  # fetched before the pause: kept
        finally:
            self._consumer.resume(assignment)

    def _commit(self, offsets: list[TopicPartition]) -> None:
        for attempt in range(10):
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable() or attempt == 9:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def close(self) -> None:
        self._refusals.flush()
        self._consumer.close()

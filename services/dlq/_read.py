"""Reading DLQ topics and the re-drive records back, from a start offset to the end.

The DLQ topics are the source of truth (the sink's ``dlq`` table holds the same entries
once landed, but needs the sink). A reader is an assign-only ``read_committed`` consumer
that never commits: each partition is read from its offset for ``--since`` (the broker's
time index) or its first offset, up to its end offset as it was when the read started.
Entries written meanwhile are left for the next run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from services.dlq._entry import DlqEntry, Headers, Position
from services.dlq._errors import DlqError, EntryNotFoundError, SelectionError
from services.dlq._records import RedriveRecord, records_topic
from streams.kafka import KafkaConfig, Topics, consumer_config

__all__ = ["DlqReader"]

_Span = tuple[TopicPartition, int]  # where to start, and the end offset to read up to


class DlqReader:
    """Reads DLQ entries and re-drive records of one deployment (``topics.prefix``)."""

    def __init__(self, kafka: KafkaConfig, topics: Topics, *, timeout: float = 30.0) -> None:
        self.topics = topics
        self.timeout = timeout
        conf = consumer_config(kafka, f"{topics.prefix}._dlq-reader", fetch_max_bytes=16 << 20)
        self._consumer = Consumer(conf)

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> DlqReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- which topics --------------------------------------------------------------

    def dlq_topics(self, model: str | None) -> list[str]:
        """The DLQ topic of ``model`` (it must exist), or of every model when None."""
        existing = self._existing()
        if model is not None:
            name = self.topics.dlq(model)
            if name not in existing:
                raise SelectionError(
                    f"there is no DLQ topic {name}: is {model!r} the model's name? "
                    "`modelstream dlq list --all` lists every model's entries"
                )
            return [name]
        pattern = re.compile(rf"^{re.escape(self.topics.prefix)}\.[A-Za-z0-9_-]+\.dlq$")
        return sorted(name for name in existing if pattern.match(name))

    def exists(self, topic: str) -> bool:
        return topic in self._existing()

    def _existing(self) -> set[str]:
        try:
            return set(self._consumer.list_topics(timeout=self.timeout).topics)
        except KafkaException as exc:
            raise DlqError(f"could not list the topics: {exc.args[0].str()}") from exc

    # -- entries -------------------------------------------------------------------

    def entries(
        self, topics: Iterable[str], since_ms: int | None = None, *, values: bool = True
    ) -> Iterator[DlqEntry]:
        """Every entry of ``topics`` from ``since_ms`` (or the start) to the end; without
        ``values`` only their sizes are kept (listings of large DLQs)."""
        spans = self._spans(list(topics), since_ms)
        for message in self._read(spans):
            value = message.value() or b""
            yield DlqEntry(
                Position(message.topic() or "", message.partition() or 0, message.offset() or 0),
                message.timestamp()[1],
                message.key(),
                value if values else None,
                len(value),
                _headers(message),
            )

    def at(self, position: Position) -> DlqEntry:
        """The entry at ``position`` of a DLQ topic of this deployment;
        :class:`EntryNotFoundError` if there is none."""
        if position.topic not in self.dlq_topics(None):
            raise SelectionError(
                f"{position.topic} is not a DLQ topic of this deployment: give a position "
                f"on {self.topics.prefix}.<model>.dlq, as `modelstream dlq list` prints them"
            )
        tp = TopicPartition(position.topic, position.partition)
        low, high = self._watermarks(tp)
        if not low <= position.offset < high:
            raise EntryNotFoundError(
                f"{position} is not in the topic (its offsets run {low}..{high - 1}): "
                "`modelstream dlq list` shows the positions"
            )
        tp.offset = position.offset
        for message in self._read([(tp, position.offset + 1)]):
            if message.offset() == position.offset:
                value = message.value() or b""
                return DlqEntry(position, message.timestamp()[1], message.key(), value,
                                len(value), _headers(message))  # fmt: skip
        raise EntryNotFoundError(
            f"{position} holds no committed entry (a transaction marker or an aborted write)"
        )

    # -- re-drive records ------------------------------------------------------------

    def redrives(self) -> dict[Position, RedriveRecord]:
        """The latest re-drive record of every entry re-driven so far."""
        name = records_topic(self.topics)
        if not self.exists(name):
            return {}
        found: dict[Position, RedriveRecord] = {}
        for message in self._read(self._spans([name], None)):
            record = RedriveRecord.from_bytes(message.value())
            if record is not None:
                found[record.entry] = record
        return found

    # -- reading -------------------------------------------------------------------

    def _spans(self, topics: list[str], since_ms: int | None) -> list[_Span]:
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in sorted(self._partitions(topic))
        ]
        if since_ms is not None and partitions:
            wanted = [TopicPartition(tp.topic, tp.partition, since_ms) for tp in partitions]
            starts = self._call(self._consumer.offsets_for_times, wanted, timeout=self.timeout)
        else:
            starts = [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
        spans: list[_Span] = []
        for start in starts:
            if start.offset == OFFSET_END:
                continue  # nothing at or after --since on this partition
            low, high = self._watermarks(start)
            begin = low if start.offset == OFFSET_BEGINNING else max(start.offset, low)
            if begin < high:
                spans.append((TopicPartition(start.topic, start.partition, begin), high))
        return spans

    def _partitions(self, topic: str) -> list[int]:
        meta = self._call(self._consumer.list_topics, topic, timeout=self.timeout)
        found = meta.topics.get(topic)
        if found is None or found.error is not None:
            raise SelectionError(f"topic {topic} does not exist")
        return list(found.partitions)

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        low, high = self._call(
            self._consumer.get_watermark_offsets,
            TopicPartition(tp.topic, tp.partition),
            timeout=self.timeout,
        )
        return int(low), int(high)

    def _read(self, spans: list[_Span]) -> Iterator[Message]:
        """The committed messages of each span, in offset order per partition."""
        if not spans:
            return
        ends = {(tp.topic, tp.partition): high for tp, high in spans}
        self._consumer.assign([tp for tp, _ in spans])
        deadline = time.monotonic() + self.timeout
        try:
            while ends:
                batch = self._consumer.consume(1000, 0.2)
                for message in batch:
                    key = (message.topic() or "", message.partition() or 0)
                    if message.error() is not None or key not in ends:
                        continue
                    if (message.offset() or 0) < ends[key]:
                        yield message
                    deadline = time.monotonic() + self.timeout
                if not batch:
                    self._drop_finished(ends)
                    if ends and time.monotonic() > deadline:
                        raise DlqError(_stalled(ends))
                else:
                    self._drop_finished(ends)
        finally:
            self._consumer.unassign()

    def _drop_finished(self, ends: dict[tuple[str, int], int]) -> None:
        """Forget the partitions whose position reached their end offset (the position
        moves past transaction markers and aborted writes too)."""
        wanted = [TopicPartition(t, p) for t, p in ends]
        for tp in self._consumer.position(wanted):
            if tp.offset >= ends[(tp.topic, tp.partition)]:
                del ends[(tp.topic, tp.partition)]

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except KafkaException as exc:
            raise DlqError(f"the broker did not answer: {exc.args[0].str()}") from exc


def _headers(message: Message) -> Headers:
    """A message's headers, values as bytes (or None)."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in pairs]


def _stalled(ends: dict[tuple[str, int], int]) -> str:
    where = ", ".join(f"{t}[{p}] (end {high})" for (t, p), high in ends.items())
    return (
        f"reading stalled before the end of {where}: a transaction still open there? "
        "Run the command again in a minute"
    )

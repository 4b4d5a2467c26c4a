"""Throughput seen from outside: replies read back by a ``read_committed`` consumer.

A reply's Kafka timestamp is set by the process under test when it produces the reply
(CreateTime, wall clock, ms), so the window of one run is::

    earliest reply CreateTime  ──►  the N-th reply read back here (wall clock)

It starts when the first batch was scored (within a batch's time of the first request
being consumed) and ends when the last reply is *visible* to a read_committed reader,
i.e. its transaction committed. Start-up and group joining are outside the window: the
requests were waiting before the process started.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams.kafka import KafkaConfig, reply_reader_config

__all__ = ["ReadBack", "Throughput", "assigned_reader", "read_back"]


@dataclass(frozen=True)
class Throughput:
    """``done`` of ``expected`` events handled in ``seconds``."""

    expected: int
    done: int
    seconds: float

    @property
    def eps(self) -> float:
        """Events per second (0 when nothing was measured).

        >>> Throughput(10_000, 10_000, 0.5).eps
        20000.0
        """
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.done >= self.expected


@dataclass
class ReadBack:
    """Replies read back from one topic."""

    expected: int
    keys: set[bytes] = field(default_factory=set)
    values: list[bytes] = field(default_factory=list)
    received: int = 0
    first_created_ms: int | None = None
    last_received: float | None = None  # wall clock, seconds

    def add(self, key: bytes | None, value: bytes | None, created_ms: int, now: float) -> None:
        self.received += 1
        self.keys.add(key or b"")
        self.values.append(value or b"")
        if created_ms > 0 and (self.first_created_ms is None or created_ms < self.first_created_ms):
            self.first_created_ms = created_ms
        self.last_received = now

    @property
    def unique(self) -> int:
        return len(self.keys)

    def throughput(self) -> Throughput:
        """Events per second over the earliest CreateTime → the last reply read back."""
        if self.first_created_ms is None or self.last_received is None:
            return Throughput(self.expected, 0, 0.0)
        seconds = max(self.last_received - self.first_created_ms / 1e3, 1e-3)
        return Throughput(self.expected, min(self.unique, self.expected), seconds)


def assigned_reader(kafka: KafkaConfig, topic: str, group: str) -> Consumer:
    """A reply reader (:func:`streams.kafka.reply_reader_config`: read_committed, 10 ms
    fetch wait, as a client waiting on exactly-once replies should be) on every partition
    of ``topic`` from the beginning.

    Assigned, not subscribed: no group join, so it reads from the first moment. It fetches
    in the background for as long as it is open: close it when its phase is over.
    """
    consumer = Consumer(reply_reader_config(kafka, group))
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
    return consumer


def read_back(
    consumer: Consumer, expected: int, timeout: float, *,
    on_progress: Callable[[int], None] | None = None,
    alive: Callable[[], None] | None = None,
) -> ReadBack:  # fmt: skip
    """Read until ``expected`` distinct keys arrived or ``timeout`` seconds passed.

    ``alive`` is called about once a second (it raises if the process under test died).
    """
    result = ReadBack(expected)
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + 1.0
    while result.unique < expected and time.monotonic() < deadline:
        first = consumer.poll(0.1)
        if first is not None:
            batch = [first, *consumer.consume(10_000, 0)]
            now = time.time()
            before = result.received
            for message in batch:
                if message.error() is None:
                    result.add(message.key(), message.value(), message.timestamp()[1], now)
            if on_progress is not None:
                on_progress(result.received - before)
        if alive is not None and time.monotonic() >= next_check:
            alive()
            next_check = time.monotonic() + 1.0
    return result

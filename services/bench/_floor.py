"""The exactly-once floor: what one transaction round trip costs on this broker, measured
in the same run as the scorer and while nothing else loads it.

One transaction at a time with one record in it, committed the way the scorer commits a
micro-batch: its producer settings (:func:`~services.bench._clients.scorer_producer_config`),
a consumer group's metadata (a consumer that joined the group), then read back by a
reply reader with the latency phase's settings::

    begin → produce one record → send_offsets_to_transaction → commit_transaction
          → the record read (read_committed, fetch.wait.max.ms 10)

``total`` is begin → record read: no exactly-once reply can come back faster than this.
The detail splits it: the ``send_offsets_to_transaction`` and ``commit_transaction``
calls, and commit returned → record read (the reader's fetch wait is in there). The
iterations are 2-6 ms apart (seeded random gaps: no lock-step with the reader's fetch
cycle); the first :data:`WARMUP` are left out (connections, the first AddPartitionsToTxn).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Producer, TopicPartition

from services.bench._clients import scorer_producer_config
from services.bench._errors import BenchError
from services.bench._latency import LatencySummary, summarize
from services.bench._throughput import assigned_reader
from streams.kafka import KafkaConfig, make_consumer

__all__ = ["WARMUP", "FloorResult", "measure_floor"]

WARMUP = 10  # first iterations left out
GAP_MS = (2.0, 6.0)  # pause between iterations, uniform
READ_TIMEOUT = 10.0  # seconds to wait for one record before counting it lost


@dataclass(frozen=True)
class FloorResult:
    """Percentiles in ms over the measured iterations (``count``)."""

    total: LatencySummary  # begin → record read
    send_offsets: LatencySummary
    commit: LatencySummary  # commit_transaction() alone
    commit_to_read: LatencySummary
    count: int
    lost: int  # records not read within READ_TIMEOUT
    seconds: float


@dataclass
class _Times:
    """The measured iterations' times, ms, one list per part."""

    total: list[float] = field(default_factory=list)
    send_offsets: list[float] = field(default_factory=list)
    commit: list[float] = field(default_factory=list)
    commit_to_read: list[float] = field(default_factory=list)

    def add(self, sample: tuple[float, float, float, float]) -> None:
        for series, value in zip(
            (self.total, self.send_offsets, self.commit, self.commit_to_read), sample, strict=True
        ):
            series.append(value)


def measure_floor(
    kafka: KafkaConfig, topic: str, source: str, *, iterations: int, group: str,
    on_progress: Callable[[int], None] | None = None,
) -> FloorResult:  # fmt: skip
    """``iterations`` single-record transactions to ``topic`` (partition 0), each with an
    offset of ``source`` (the group's only partition) and read back before the next."""
    if iterations <= WARMUP:
        raise ValueError(f"the floor needs more than {WARMUP} iterations, got {iterations}")
    producer = Producer(scorer_producer_config(kafka, f"{group}.txn"))
    member = _joined(kafka, source, f"{group}.member")
    reader = assigned_reader(kafka, topic, f"{group}.reader")
    times, lost = _Times(), 0
    started = time.perf_counter()
    try:
        producer.init_transactions(30)
        metadata = member.consumer_group_metadata()
        gaps = random.Random(7)
        for i in range(iterations):
            sample = _one(producer, reader, topic, TopicPartition(source, 0, i + 1), metadata, i)
            if sample is None:
                lost += 1
            elif i >= WARMUP:
                times.add(sample)
            if on_progress is not None:
                on_progress(1)
            time.sleep(gaps.uniform(*GAP_MS) / 1e3)
    finally:
        reader.close()
        member.close()
        producer.flush(10)
    if not times.total:
        raise BenchError(f"the floor read none of its {iterations} records back")
    return FloorResult(
        total=summarize(times.total), send_offsets=summarize(times.send_offsets),
        commit=summarize(times.commit), commit_to_read=summarize(times.commit_to_read),
        count=len(times.total), lost=lost, seconds=time.perf_counter() - started,
    )  # fmt: skip


def _one(
    producer: Producer, reader: Consumer, topic: str, offset: TopicPartition, metadata: object,
    index: int,
) -> tuple[float, float, float, float] | None:  # fmt: skip
    """One round trip: (total, send_offsets, commit, commit → read) in ms; None if lost."""
    key = str(index).encode()
    clock = time.perf_counter
    begun = clock()
    producer.begin_transaction()
    producer.produce(topic, b"floor", key, partition=0)
    offsets_called = clock()
    producer.send_offsets_to_transaction([offset], metadata, 30)
    commit_called = clock()
    producer.commit_transaction(30)
    committed = clock()
    deadline = committed + READ_TIMEOUT
    while clock() < deadline:
        message = reader.poll(0.1)
        if message is not None and message.error() is None and message.key() == key:
            read = clock()
            return ((read - begun) * 1e3, (commit_called - offsets_called) * 1e3,
                    (committed - commit_called) * 1e3, (read - committed) * 1e3)  # fmt: skip
    return None


def _joined(kafka: KafkaConfig, source: str, group: str, timeout: float = 30.0) -> Consumer:
    """A consumer that has joined ``group`` (subscribed to ``source``): its
    ``consumer_group_metadata()`` carries a real member id and generation, as the scorer's."""
    assigned = threading.Event()
    consumer = make_consumer(kafka, group)
    consumer.subscribe([source], on_assign=lambda _c, _p: assigned.set())
    deadline = time.monotonic() + timeout
    while not assigned.is_set():
        if time.monotonic() > deadline:
            consumer.close()
            raise BenchError(f"the floor's consumer did not join {group} within {timeout:.0f}s")
        consumer.poll(0.1)
    return consumer

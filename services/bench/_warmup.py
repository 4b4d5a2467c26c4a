"""Warm the broker's transaction paths before anything is timed.

A freshly started broker JVM runs its transaction code interpreted: on this machine (2
cores, 2026-12) the same scorer answered at p50 383, 168, 91 and 79 ms in four
consecutive 6-second periods at 2,000 req/s on a new broker, against 40-50 ms on one
that had served transactions for an hour. A user's broker has been up for days; the
bench measures that steady state, for every system alike, by first running small
transactions back to back for a while (the same calls the scorer makes: AddPartitions,
AddOffsets, TxnOffsetCommit, EndTxn, and a read_committed reader behind them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from services.bench._clients import scorer_producer_config
from services.bench._floor import _joined
from streams.kafka import KafkaConfig, reply_reader_config

__all__ = ["Warmup", "warm_broker"]

RECORDS_PER_TRANSACTION = 30


@dataclass(frozen=True)
class Warmup:
    transactions: int
    seconds: float


def warm_broker(
    kafka: KafkaConfig, topic: str, source: str, partitions: int, *, seconds: float,
    group: str, on_progress: Callable[[int], None] | None = None,
) -> Warmup:  # fmt: skip
    """Small transactions to every partition of ``topic`` for ``seconds``, read back."""
    producer = Producer(scorer_producer_config(kafka, f"{group}.txn"))
    member = _joined(kafka, source, f"{group}.member")
    reader = Consumer(reply_reader_config(kafka, f"{group}.reader"))
    reader.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    started, done = time.monotonic(), 0
    try:
        producer.init_transactions(30)
        offsets = [TopicPartition(source, 0, 0)]
        while time.monotonic() - started < seconds:
            producer.begin_transaction()
            for i in range(RECORDS_PER_TRANSACTION):
                producer.produce(topic, b"w" * 100, partition=i % partitions)
            producer.send_offsets_to_transaction(offsets, member.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            reader.consume(1000, 0)
            done += 1
            if on_progress is not None:
                on_progress(1)
    finally:
        reader.close()
        member.close()
        producer.flush(10)
    return Warmup(done, time.monotonic() - started)

"""The monitor's input once more, revealed at one instant: what the three-instance monitor
reads.

A group of monitor instances cannot join without reading: each reads as soon as it holds
partitions, and a member hears of the next join only at its next heartbeat, so the first
to join takes a batch of every partition alone. Instead their group starts at the end of
the input (:func:`start_at_end`, before any of them joins), and once all of them have
joined, :func:`replay` appends every committed record of the input again, to the same
partition (key, value, headers, timestamp kept), in one transaction: a ``read_committed``
reader sees none of it before the commit and all of it after.
"""

from __future__ import annotations

import re
import time

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from services.bench._stack import BenchStack
from streams.kafka import make_admin, make_consumer, make_producer

__all__ = ["Offsets", "input_offsets", "replay", "start_at_end"]

Offsets = dict[tuple[str, int], tuple[int, int]]  # (topic, partition) -> (low, high)


def input_offsets(stack: BenchStack) -> Offsets:
    """Watermarks of every partition the monitor subscribes to (each model's predictions,
    feedback and dlq, as ``MonitorLoop``'s pattern)."""
    prefix = re.escape(stack.names.prefix)
    pattern = re.compile(f"^{prefix}\\.[A-Za-z0-9_-]+\\.(predictions|feedback|dlq)$")
    consumer = make_consumer(stack.kafka, f"{stack.names.prefix}.bench.replay")
    try:
        topics = consumer.list_topics(timeout=10).topics
        return {
            (topic, p): consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for topic, meta in topics.items() if pattern.match(topic) for p in meta.partitions
        }  # fmt: skip
    finally:
        consumer.close()


def start_at_end(stack: BenchStack, group: str, offsets: Offsets) -> None:
    """Commit the high watermarks for ``group``, which has no member yet."""
    ends = [TopicPartition(t, p, high) for (t, p), (_, high) in offsets.items()]
    admin = make_admin(stack.kafka)  # held: its futures die with it
    request = [ConsumerGroupTopicPartitions(group, ends)]
    admin.alter_consumer_group_offsets(request, request_timeout=30)[group].result()


def replay(stack: BenchStack, offsets: Offsets) -> int:
    """Append the committed records below ``offsets``' high watermarks again, in one
    transaction; returns how many."""
    reader = make_consumer(stack.kafka, f"{stack.names.prefix}.bench.replay",
                           enable_partition_eof=True)  # fmt: skip
    writer = make_producer(stack.kafka, transactional_id=f"{stack.names.prefix}.bench.replay",
                           transaction_timeout_ms=300_000)  # fmt: skip
    writer.init_transactions(30)
    writer.begin_transaction()
    copied = 0
    try:
        left = {key for key, (low, high) in offsets.items() if high > low}
        reader.assign([TopicPartition(t, p, offsets[(t, p)][0]) for t, p in left])
        deadline = time.monotonic() + 240
        while left:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(left)} partition(s) not read to their end in 240 s")
            for message in reader.consume(10_000, 1.0):
                key, error = (message.topic() or "", message.partition() or 0), message.error()
                if error is None:
                    _append(writer, key, message)
                    copied += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    left.discard(key)
        writer.commit_transaction(120)
    except BaseException:
        writer.abort_transaction(30)  # else the partitions stay unreadable until it times out
        raise
    finally:
        reader.close()
    return copied


def _append(writer: Producer, to: tuple[str, int], message: Message) -> None:
    while True:
        try:
            writer.produce(to[0], message.value(), message.key(), partition=to[1],
                           headers=message.headers(), timestamp=message.timestamp()[1])  # fmt: skip
            return
        except BufferError:  # the local queue is full: let it drain
            writer.poll(0.05)

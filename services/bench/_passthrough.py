"""The passthrough baseline: what the same Kafka clients do when there is no work at all.

Bytes in, the same bytes out (key, value and headers unchanged): no decode, no model, no
encode. The loop has the scorer's shape — ``poll`` for the first message, drain what is
queued up to ``max_batch``, produce the batch, then acknowledge it:

- plain: wait for the batch's deliveries (``flush``), then commit the offsets
  (at-least-once; offsets are committed only after the write succeeded);
- transactional: one transaction per batch with its offsets, overlapped as the scorer
  overlaps them: one committer thread runs ``send_offsets_to_transaction`` +
  ``commit_transaction`` of batch N while this thread consumes batch N+1; N+1's
  transaction is begun and its outputs produced only once N's commit returned (one
  producer has one open transaction).

Timed in-process: from the first message consumed to the last output acknowledged
(delivered, or its transaction committed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from services.bench._clients import scorer_producer_config
from services.bench._throughput import Throughput
from streams.kafka import KafkaConfig, make_consumer, producer_config

__all__ = ["run_passthrough"]


def run_passthrough(
    kafka: KafkaConfig, source: str, sink: str, *, group: str, events: int,
    transactional: bool = False, max_batch: int = 500, max_wait: float = 0.05,
    timeout: float = 300.0, on_progress: Callable[[int], None] | None = None,
) -> Throughput:  # fmt: skip
    """Forward ``events`` messages from ``source`` to ``sink`` and time it."""
    failed: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(err)

    consumer = make_consumer(kafka, group)
    if transactional:  # the scorer's exactly-once producer
        conf = scorer_producer_config(kafka, f"{group}.txn", delivery_report_only_error=True)
    else:
        conf = producer_config(kafka, delivery_report_only_error=True)
    producer = Producer(conf | {"on_delivery": delivered})
    try:
        if transactional:
            producer.init_transactions(30)
        consumer.subscribe([source])
        return _forward(consumer, producer, sink, events, transactional, max_batch, max_wait,
                        timeout, failed, on_progress)  # fmt: skip
    finally:
        consumer.close()
        producer.flush(10)


def _forward(
    consumer: Consumer, producer: Producer, sink: str, events: int, transactional: bool,
    max_batch: int, max_wait: float, timeout: float, failed: list[KafkaError],
    on_progress: Callable[[int], None] | None,
) -> Throughput:  # fmt: skip
    done, first = 0, None
    deadline = time.monotonic() + timeout
    committer = _Committer(producer)
    try:
        while done < events and time.monotonic() < deadline:
            batch = _next_batch(consumer, max_batch, max_wait)
            if not batch:
                committer.settle()  # idle: finish the last commit now, as the scorer does
                continue
            if first is None:
                first = time.perf_counter()
            if transactional:
                committer.settle()  # N committed before N+1's transaction begins
                producer.begin_transaction()
                _produce_all(producer, sink, batch)
                committer.submit(_next_offsets(batch), consumer.consumer_group_metadata())
            else:
                _produce_all(producer, sink, batch)
                producer.flush(30)
                consumer.commit(offsets=_next_offsets(batch), asynchronous=True)
            done += len(batch)
            if on_progress is not None:
                on_progress(len(batch))
        committer.settle()
    finally:
        committer.close()
    seconds = time.perf_counter() - first if first is not None else 0.0
    return Throughput(events, max(0, min(done, events) - len(failed)), seconds)


class _Committer:
    """One thread that puts a batch's offsets into its transaction and commits it."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="passthrough-commit")
        self._inflight: Future[None] | None = None

    def submit(self, offsets: list[TopicPartition], metadata: Any) -> None:
        self._inflight = self._pool.submit(self._finish, offsets, metadata)

    def _finish(self, offsets: list[TopicPartition], metadata: Any) -> None:
        self._producer.send_offsets_to_transaction(offsets, metadata, 30)
        self._producer.commit_transaction(30)

    def settle(self) -> None:
        """Wait for the commit in flight (it raises if the commit failed)."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _next_batch(consumer: Consumer, max_batch: int, max_wait: float) -> list[Message]:
    first = consumer.poll(max_wait)
    if first is None:
        return []
    batch = [first, *consumer.consume(max_batch - 1, 0)]
    return [message for message in batch if message.error() is None]


def _produce_all(producer: Producer, sink: str, batch: list[Message]) -> None:
    for message in batch:
        while True:
            try:
                producer.produce(sink, message.value(), message.key(), headers=message.headers())
                break
            except BufferError:
                producer.poll(0.05)


def _next_offsets(batch: list[Message]) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for message in batch:
        key = (message.topic() or "", message.partition() or 0)
        last[key] = max(last.get(key, -1), message.offset() or 0)
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]

"""The local broker really works: produce/consume, and exactly-once transactions."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, Message

from streams.kafka import KafkaConfig, make_consumer, make_producer


def drain(consumer: Consumer, expected: int, timeout: float = 20.0) -> list[Message]:
    """Poll until ``expected`` messages arrived or ``timeout``; then a short quiet period
    to catch anything extra."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < expected:
        got += [m for m in consumer.consume(500, 0.2) if m.error() is None]
    quiet = time.monotonic() + 1.0
    while time.monotonic() < quiet:
        got += [m for m in consumer.consume(500, 0.2) if m.error() is None]
    return got


def test_produce_consume_round_trip(kafka: KafkaConfig, make_topic: Callable[..., str]) -> None:
    topic = make_topic("roundtrip")
    producer = make_producer(kafka)
    for i in range(100):
        producer.produce(topic, key=str(i).encode(), value=f"v{i}".encode())
    assert producer.flush(10) == 0
    consumer = make_consumer(kafka, f"g-{topic}")
    consumer.subscribe([topic])
    got = drain(consumer, 100)
    consumer.close()
    assert sorted(m.value() for m in got) == sorted(f"v{i}".encode() for i in range(100))


def test_committed_transaction_visible_aborted_not(
    kafka: KafkaConfig, make_topic: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic = make_topic("txn")
    producer = make_producer(kafka, transactional_id=unique("txn"))
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, value=f"committed-{i}".encode())
    producer.commit_transaction(30)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, value=f"aborted-{i}".encode())
    producer.flush(10)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"after-abort")
    producer.commit_transaction(30)

    committed = make_consumer(kafka, unique("rc"))
    committed.subscribe([topic])
    values = sorted(m.value() for m in drain(committed, 11))
    committed.close()
    assert values == sorted([f"committed-{i}".encode() for i in range(10)] + [b"after-abort"])

    uncommitted = make_consumer(kafka, unique("ru"), read_committed=False)
    uncommitted.subscribe([topic])
    everything = [m.value() for m in drain(uncommitted, 21)]
    uncommitted.close()
    assert sum(v.startswith(b"aborted-") for v in everything) == 10

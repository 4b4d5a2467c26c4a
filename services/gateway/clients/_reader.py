"""Reading the clients topic: a group-less consumer from the beginning, and its end."""

from __future__ import annotations

import logging
import time
from typing import Final

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from services.gateway.clients._errors import ClientStoreUnavailableError, InvalidClientError
from services.gateway.clients._index import ClientIndex, decode
from streams.kafka import KafkaConfig, Topics, consumer_config

__all__ = ["TopicReader", "apply_message", "end_offsets", "new_consumer", "reached"]

log = logging.getLogger(__name__)
_BATCH: Final = 256  # client records are small
_UNKNOWN_TOPIC_GRACE: Final = 5.0  # seconds a just-created topic may take to be known
# the broker's "no such topic", and librdkafka's before its metadata knows the topic
_MISSING: Final = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC}
)
_TRANSIENT: Final = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


def new_consumer(kafka: KafkaConfig, topics: Topics, role: str) -> Consumer:
    # a group id is required by the client, but assign() never joins or commits
    group = f"{topics.prefix}._clients-{role}"
    return Consumer(consumer_config(kafka, group, read_committed=True))


class TopicReader:
    """Reads partition 0 of the clients topic from its first record into an index.

    One thread uses a reader (the consumer is not shared)."""

    def __init__(self, kafka: KafkaConfig, topics: Topics, role: str) -> None:
        self.kafka, self.topic = kafka, topics.clients
        self._partition = TopicPartition(self.topic, 0)
        self._consumer = new_consumer(kafka, topics, role)
        self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])

    def read(self, index: ClientIndex, timeout: float) -> int:
        """Apply what arrives within ``timeout``; returns the next offset to read."""
        for msg in self._consumer.consume(_BATCH, timeout):
            apply_message(index, msg)
        return self.position()

    def position(self) -> int:
        """The next offset to read (negative before the first record)."""
        offset: int = self._consumer.position([self._partition])[0].offset
        return offset

    def end(self, timeout: float) -> tuple[int, int]:
        return end_offsets(self._consumer, self.kafka, self.topic, timeout)

    def catch_up(self, index: ClientIndex, timeout: float) -> None:
        """Read up to the end of the topic as it is now."""
        deadline = time.monotonic() + timeout
        target = self.end(timeout)
        position = self.position()
        while not reached(target, position):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise behind(self.topic, timeout, position, target)
            position = self.read(index, min(remaining, 0.2))

    def close(self) -> None:
        self._consumer.close()


def reached(target: tuple[int, int], position: int) -> bool:
    """Whether a reader at ``position`` has read everything below ``target``'s end.

    >>> reached((0, 0), -1001), reached((0, 3), 2), reached((0, 3), 3)
    (True, False, True)
    """
    low, end = target
    return end <= low or position >= end


def behind(
    topic: str, timeout: float, position: int, target: tuple[int, int]
) -> ClientStoreUnavailableError:
    return ClientStoreUnavailableError(
        f"could not read {topic} to its end within {timeout:g}s (at offset {position}, "
        f"end {target[1]}): a slow or unreachable broker; retry, or raise the timeout"
    )


def end_offsets(
    consumer: Consumer, kafka: KafkaConfig, topic: str, timeout: float
) -> tuple[int, int]:
    """``(low, end)`` of partition 0 of ``topic``, retrying while the cluster settles (a
    leader moving, a topic just created); a topic still unknown after a few seconds
    does not exist."""
    deadline = time.monotonic() + timeout
    unknown_until = min(deadline, time.monotonic() + _UNKNOWN_TOPIC_GRACE)
    partition = TopicPartition(topic, 0)
    while True:
        try:
            offsets = consumer.get_watermark_offsets(
                partition, max(deadline - time.monotonic(), 0.1), cached=False
            )
        except KafkaException as exc:
            error = exc.args[0]
            missing = error.code() in _MISSING
            transient = missing or error.retriable() or error.code() in _TRANSIENT
            if not transient or time.monotonic() >= (unknown_until if missing else deadline):
                raise unreachable(kafka, topic, exc, missing=missing) from exc
        else:
            if offsets is not None:
                return int(offsets[0]), int(offsets[1])
            if time.monotonic() >= deadline:
                raise unreachable(kafka, topic, KafkaException("no answer in time"))
        time.sleep(0.1)


def unreachable(
    kafka: KafkaConfig, topic: str, exc: KafkaException, *, missing: bool = False
) -> ClientStoreUnavailableError:
    if missing:
        return ClientStoreUnavailableError(
            f"the clients topic {topic} does not exist on {kafka.bootstrap}: create it with "
            "`modelstream topics create`, or create the first client with "
            "`modelstream clients create`"
        )
    return ClientStoreUnavailableError(
        f"cannot read the clients topic {topic} from {kafka.bootstrap}: {exc.args[0]}. "
        "Is Kafka up (`modelstream kafka status`)?"
    )


def apply_message(index: ClientIndex, msg: Message) -> None:
    """Apply one consumed message; an unreadable one is logged with its position and
    skipped, so one bad record cannot stop the gateway from following the rest."""
    where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
    error = msg.error()
    if error is not None:
        # the topic appears with the first client; until then, nothing to read
        missing = error.code() in _MISSING
        log.log(logging.DEBUG if missing else logging.WARNING, "read error at %s: %s", where, error)
        return
    try:
        name, record = decode(msg.key(), msg.value())
    except InvalidClientError as exc:
        log.warning("skipping a client record that cannot be read at %s: %s", where, exc)
        return
    if record is None:
        index.remove(name)
    else:
        index.put(record)

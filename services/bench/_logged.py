"""Did every answer land in the prediction log? ``logged_ratio`` of the direct gateway.

A gateway scoring in-process answers first and writes each answer to the model's
prediction log (``<prefix>.<model>.predictions``) itself. The bench takes the log's end
offsets before the direct gateway's first call, then counts what the bench's client
(``client_id``) wrote after them, read back ``read_committed`` once the phase is over::

    logged_ratio = log records of the bench's client / answers the bench got (2xx, OK)

Log records may land shortly after their answers, so the count is read until it stops
growing: :data:`QUIET` seconds without a new record once it reached the answers, a
longer wait (:data:`PATIENCE`) while it is short of them, never past the timeout. A
ratio above 1 is a logged call whose answer the bench did not get (its own timeout); below
1, an answer the log does not hold.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.kafka import KafkaConfig, reply_reader_config

__all__ = ["Logged", "Settling", "client_of", "count_logged", "end_offsets"]

QUIET = 2.0
PATIENCE = 10.0
TIMEOUT = 30.0


@dataclass(frozen=True)
class Logged:
    """Answers the bench got from a phase, and the log records written for them."""

    answered: int
    logged: int  # records of the bench's client after the phase's start offsets
    other_clients: int  # records of any other client in the same range
    waited_s: float  # after the phase, until the count settled
    settled: bool  # False: the timeout came first

    @property
    def ratio(self) -> float | None:
        """``logged / answered`` (None without answers).

        >>> Logged(1_000, 1_000, 0, 2.1, True).ratio, Logged(0, 0, 0, 0.0, True).ratio
        (1.0, None)
        >>> Logged(4_000, 3_998, 0, 10.3, True).ratio
        0.9995
        """
        return self.logged / self.answered if self.answered else None

    def to_dict(self) -> dict[str, float | int | bool | None]:
        return {"answered": self.answered, "logged": self.logged,
                "other_clients": self.other_clients, "waited_s": self.waited_s,
                "settled": self.settled, "ratio": self.ratio}  # fmt: skip


@dataclass
class Settling:
    """When to stop reading: the count has not grown for :attr:`quiet` seconds and has
    reached ``expected``, or has not grown for :attr:`patience` seconds.

    >>> s = Settling(expected=10, quiet=2.0, patience=10.0, since=0.0)
    >>> s.seen(10, 1.0), s.seen(10, 2.5), s.seen(10, 3.0)
    (False, False, True)
    >>> short = Settling(expected=10, quiet=2.0, patience=10.0, since=0.0)
    >>> short.seen(9, 0.5), short.seen(9, 9.0), short.seen(9, 10.5)
    (False, False, True)
    """

    expected: int
    quiet: float
    patience: float
    since: float  # when the count last grew
    count: int = 0

    def seen(self, count: int, now: float) -> bool:
        """Whether reading can stop, ``count`` records read at ``now``."""
        if count != self.count:
            self.count, self.since = count, now
        still = now - self.since
        return still >= self.quiet if count >= self.expected else still >= self.patience


def client_of(value: bytes | None) -> str | None:
    """The ``client_id`` of a prediction-log record (None if it has none or is no JSON).

    >>> client_of(b'{"request_id": "r1", "client_id": "bench"}'), client_of(b"\\x00")
    ('bench', None)
    """
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        client = json.loads(value or b"").get("client_id")
        return str(client) if client is not None else None
    return None


def end_offsets(kafka: KafkaConfig, topic: str) -> dict[int, int]:
    """Each partition's end offset (high watermark) now."""
    consumer = Consumer(reply_reader_config(kafka, f"{topic}.bench-offsets"))
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in metadata.partitions}  # fmt: skip
    finally:
        consumer.close()


def count_logged(
    kafka: KafkaConfig, topic: str, start: Mapping[int, int], client: str, *, answered: int,
    quiet: float = QUIET, patience: float = PATIENCE, timeout: float = TIMEOUT,
) -> Logged:  # fmt: skip
    """Count ``client``'s records on ``topic`` after ``start`` until the count settles."""
    consumer = Consumer(reply_reader_config(kafka, f"{topic}.bench-logged"))
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in start.items()])
    began = time.monotonic()
    settling = Settling(answered, quiet, patience, since=began)
    ours = others = 0
    try:
        while not (done := settling.seen(ours, time.monotonic())):
            if time.monotonic() - began > timeout:
                break
            for message in consumer.consume(10_000, 0.2):
                if message.error() is None:
                    mine = client_of(message.value()) == client
                    ours, others = ours + mine, others + (not mine)
    finally:
        consumer.close()
    return Logged(answered, ours, others, round(time.monotonic() - began, 3), done)

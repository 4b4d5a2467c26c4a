"""How large a message each destination topic accepts, checked before it is produced.

Inside a transaction, a message the broker refuses aborts the whole transaction, and the
replay makes the same message again: an output over its topic's limit must be refused by
the scorer before it is sent (:mod:`streams.scoring.scorer` turns it into a DLQ entry).

A topic's limit is its ``max.message.bytes`` (the broker default when the topic sets
none), described once through the admin client and cached, and forgotten when a produce
to it fails with MSG_SIZE_TOO_LARGE (the topic was reconfigured); capped by the
producer's own ``message.max.bytes``. A record is measured as the broker measures it: a
record batch (v2) holding it alone, its varints counted at their widest.

>>> limits = TopicLimits(lambda topic: {"small": 256}.get(topic), producer_max=1_000)
>>> limits.limit("small"), limits.limit("other")
(256, 1000)
>>> limits.fits("small", b"k", b"v" * 80, [("content-type", b"application/json")])
True
>>> limits.fits("small", b"k", b"v" * 200, [])
False
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AdminClient,
    ConfigResource,
    ResourceType,
)

__all__ = ["BATCH_OVERHEAD", "TopicLimits", "describe_max_message_bytes", "record_size"]

log = logging.getLogger(__name__)
BATCH_OVERHEAD = 61  # a v2 record batch's header
RECORD_OVERHEAD = 5 + 1 + 10 + 5 + 5 + 5 + 5  # length, attributes, deltas, lengths, count
HEADER_OVERHEAD = 5 + 5  # a header's two length varints

Headers = Sequence[tuple[str, bytes | None]]


def record_size(key: bytes | None, value: bytes, headers: Headers) -> int:
    """An upper bound of the bytes a record takes on the broker, alone in its batch.

    >>> record_size(None, b"", [])
    97
    >>> record_size(b"key", b"x" * 100, [("h", b"12")])
    213
    """
    size = BATCH_OVERHEAD + RECORD_OVERHEAD + len(value) + (len(key) if key else 0)
    for name, raw in headers:
        size += HEADER_OVERHEAD + len(name.encode()) + (len(raw) if raw else 0)
    return size


class TopicLimits:
    """Per topic: the largest record the broker and this producer accept."""

    def __init__(self, describe: Callable[[str], int | None], producer_max: int) -> None:
        self._describe = describe
        self.producer_max = producer_max
        self._limits: dict[str, int] = {}

    def limit(self, topic: str) -> int:
        found = self._limits.get(topic)
        if found is None:
            described = self._describe(topic)
            found = self.producer_max if described is None else min(described, self.producer_max)
            self._limits[topic] = found
        return found

    def fits(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> bool:
        return record_size(key, value, headers) <= self.limit(topic)

    def forget(self, topic: str) -> None:
        """Describe ``topic`` again at its next message (a produce to it was refused)."""
        self._limits.pop(topic, None)


def describe_max_message_bytes(admin: AdminClient, topic: str, timeout: float = 5.0) -> int | None:
    """``topic``'s effective ``max.message.bytes``; None when it cannot be described
    (missing, not authorized: DESCRIBE_CONFIGS on the topic, or the broker is away)."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        entries = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    except KafkaException as exc:
        # not an outage of the scorer: what slips through is isolated after two aborts
        log.info("cannot read %s's max.message.bytes (%s): its messages are checked against "
                 "the producer's limit only; DESCRIBE_CONFIGS on the topic allows more",
                 topic, exc.args[0].name())  # fmt: skip
        return None
    entry = entries.get("max.message.bytes")
    if entry is None or entry.value is None:
        return None
    return int(entry.value)

"""The record of each re-drive, on the compacted topic ``<prefix>._redrives``.

One record per re-driven entry, keyed by the entry's position (``topic[partition]@offset``),
written in the same Kafka transaction as the request it re-publishes: a crash leaves both
or neither, so an entry is never re-driven twice by accident nor recorded unsent. The
value is JSON: when, by whom, where the request went, and how many times so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.dlq._entry import Position, parse_position
from streams.kafka import Topics, TopicSpec

__all__ = ["RedriveRecord", "records_spec", "records_topic"]


def records_topic(topics: Topics) -> str:
    """
    >>> records_topic(Topics("ms"))
    'ms._redrives'
    """
    return f"{topics.prefix}._redrives"


def records_spec(topics: Topics) -> TopicSpec:
    """Compacted, one partition: small, and read whole by every ``dlq`` command."""
    config = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
    return TopicSpec(records_topic(topics), 1, config, replication=topics.replication)


@dataclass(frozen=True)
class RedriveRecord:
    """One re-drive of one entry.

    >>> record = RedriveRecord(Position("ms.m.dlq", 0, 4), "r-1", "ms.m.requests[2]@9",
    ...                        "2026-12-07T10:00:00+00:00", "ana", 1)
    >>> RedriveRecord.from_bytes(record.to_bytes()) == record
    True
    >>> RedriveRecord.from_bytes(b"not json") is None
    True
    """

    entry: Position
    request_id: str
    target: str
    at: str
    actor: str
    times: int

    @property
    def key(self) -> bytes:
        return str(self.entry).encode()

    def to_bytes(self) -> bytes:
        return orjson.dumps({
            "entry": str(self.entry), "request_id": self.request_id, "target": self.target,
            "at": self.at, "actor": self.actor, "times": self.times,
        })  # fmt: skip

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> RedriveRecord | None:
        """A record, or None for anything else (a tombstone, a foreign write)."""
        try:
            data: Any = orjson.loads(raw or b"")
            entry = parse_position(str(data["entry"]))
            if entry is None:
                return None
            return cls(entry, str(data["request_id"]), str(data["target"]), str(data["at"]),
                       str(data["actor"]), int(data["times"]))  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    @property
    def when(self) -> datetime:
        return datetime.fromisoformat(self.at)

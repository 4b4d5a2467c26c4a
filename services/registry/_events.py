"""The audit trail as the registry topic holds it: a model's latest events.

``<prefix>._model_events`` has one partition, keyed by model; ``models show`` reads it
``read_committed`` from the start to its end (no group, nothing committed) and keeps the
last ``limit`` events of one model. The same events are in ClickHouse (``model_events``),
where history is better queried.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from schemas.codec import ContractError
from services.registry import _wire
from streams.kafka import KafkaConfig, Topics, consumer_config

__all__ = ["ModelEvent", "recent_events"]


@dataclass(frozen=True)
class ModelEvent:
    """One registry event: who did what to which version, when, why, and the numbers."""

    at: datetime
    version: int
    action: str
    actor: str
    reason: str
    details: dict[str, Any]


def recent_events(kafka: KafkaConfig, topics: Topics, model: str, *, limit: int = 10,
                  timeout: float = 20.0) -> list[ModelEvent]:  # fmt: skip
    """The last ``limit`` events of ``model``, oldest first."""
    # the view's group: assigned, never joined or committed; its ACLs already cover it
    consumer = Consumer(consumer_config(kafka, f"{topics.prefix}._registry-view"))
    kept: deque[ModelEvent] = deque(maxlen=limit)
    key = model.encode()
    try:
        tp = TopicPartition(topics.model_events, 0)
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
        if high <= low:
            return []
        consumer.assign([TopicPartition(topics.model_events, 0, low)])
        codec, deadline = _wire.codec("model_event"), time.monotonic() + timeout
        idle = 0
        while time.monotonic() < deadline and idle < 3:  # an open transaction stops reads
            messages = consumer.consume(1000, 0.5)
            idle = 0 if messages else idle + 1
            for msg in messages:
                value = msg.value()
                if msg.error() is None and msg.key() == key and value:
                    event = _event(codec, value)
                    if event is not None:
                        kept.append(event)
            if consumer.position([tp])[0].offset >= high:
                break
    finally:
        consumer.close()
    return list(kept)


def _event(codec: Any, value: bytes) -> ModelEvent | None:
    try:
        record = codec.decode_avro(value)
        details = orjson.loads(record["details"] or "{}")
    except (ContractError, ValueError):
        return None
    return ModelEvent(
        at=_wire.from_millis(record["ts"]), version=record["version"], action=record["action"],
        actor=record["actor"], reason=record["reason"],
        details=details if isinstance(details, dict) else {},
    )  # fmt: skip

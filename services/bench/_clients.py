"""What the bench's in-process variants take from the scorer, so that they compare with it:
its micro-batch size and its exactly-once producer settings.

Both are read from :class:`streams.scoring.ScorerConfig`'s defaults, not copied, except
``retry.backoff.max.ms`` 5: the scorer sets it in its own producer factory (a private
method), so it is repeated here — keep the two in step.
"""

from __future__ import annotations

from typing import Any

from streams.kafka import KafkaConfig, Topics, producer_config
from streams.scoring import ScorerConfig

__all__ = ["scorer_max_batch", "scorer_producer_config"]

RETRY_BACKOFF_MAX_MS = 5  # the scorer's, see the module docstring


def _defaults() -> ScorerConfig:
    return ScorerConfig(Topics())


def scorer_max_batch() -> int:
    """The scorer's default micro-batch (requests per transaction)."""
    return _defaults().max_batch


def scorer_producer_config(
    kafka: KafkaConfig, transactional_id: str, **overrides: Any
) -> dict[str, Any]:
    """A transactional producer configured as the scorer's exactly-once producer.

    >>> conf = scorer_producer_config(KafkaConfig("127.0.0.1:9092"), "bench.floor")
    >>> conf["transactional.id"], conf["retry.backoff.max.ms"]
    ('bench.floor', 5)
    """
    timeout = _defaults().transaction_timeout_ms
    return producer_config(
        kafka, transactional_id=transactional_id, transaction_timeout_ms=timeout,
        message_timeout_ms=min(30_000, timeout - 1_000),
        retry_backoff_max_ms=RETRY_BACKOFF_MAX_MS, **overrides,
    )  # fmt: skip

"""What each long-running part needs before it serves, and creating it at start.

Every ``modelstream run`` part starts on an empty deployment (a fresh broker, no model
registered yet): it creates the global topics it reads or writes, with this
deployment's partition count and the compaction settings of :meth:`Topics.global_specs`,
and leaves the rest alone. The sink only reads: it subscribes to the topics it lands
and picks each up when it appears. A model's own topic set is created when the model is
registered (``modelstream models register``, ``modelstream topics create --model``).
On a secured cluster a part may create exactly what it needs here; the ACLs of each
role (:mod:`services.security.acls`) are derived from :data:`NEEDS`.

>>> [spec.name for spec in global_needs("scorer", Topics("ms"), 3)]
['ms._models', 'ms._routing']
"""

from __future__ import annotations

from typing import Final

from streams.kafka import KafkaConfig, KafkaSetupError, Topics, TopicSpec, ensure_topics, make_admin

__all__ = ["NEEDS", "global_needs", "prepare"]

NEEDS: Final[dict[str, tuple[str, ...]]] = {
    "scorer": ("models", "routing"),  # follows the registry
    "monitor": ("models", "routing", "monitor_state", "metrics", "alerts", "summaries"),
    "gateway": ("models", "routing", "clients"),  # follows the registry and the clients
    "merger": ("models", "routing", "summaries", "metrics", "alerts"),
    "lifecycle": ("models", "routing", "model_events"),  # a registry writer
}


def global_needs(part: str, topics: Topics, partitions: int) -> list[TopicSpec]:
    """The global topics ``part`` reads or writes, as they are created."""
    specs = {spec.name: spec for spec in topics.global_specs(partitions)}
    return [specs[getattr(topics, attr)] for attr in NEEDS[part]]


def prepare(part: str, kafka: KafkaConfig, topics: Topics, partitions: int) -> list[str]:
    """Create the global topics ``part`` needs and that do not exist yet; their names."""
    try:
        return ensure_topics(make_admin(kafka), global_needs(part, topics, partitions))
    except KafkaSetupError as exc:
        raise KafkaSetupError(
            f"the {part} cannot start: {exc}. On a secured cluster, an admin can create the "
            "topics once with `modelstream topics create`."
        ) from exc

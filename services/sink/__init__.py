"""The sink: every event topic lands in ClickHouse, batched, idempotent, commit after insert.

``<prefix>.<model>.predictions|feedback|dlq``, ``<prefix>.metrics``, ``<prefix>.alerts``,
``<prefix>.summaries`` (``window_summaries``) and ``<prefix>._model_events`` → the tables of
``schemas/clickhouse``; the reference profiles of the versions on ``<prefix>._models`` →
``reference_profiles`` (one row per feature, as the monitor reads them). In embedded mode
(chDB) the sink owns the warehouse directory and answers read-only SQL for
``modelstream sql`` over a loopback HTTP endpoint (:mod:`services.sink.sqlserver`).
"""

from services.sink.rows import TABLES, Landing, Position, decode_value, table_for_topic
from services.sink.sink import Sink, SinkConfig

__all__ = [
    "TABLES",
    "Landing",
    "Position",
    "Sink",
    "SinkConfig",
    "decode_value",
    "table_for_topic",
]

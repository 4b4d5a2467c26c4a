"""Kafka records → ClickHouse rows, one pure function per table.

Values arrive Avro single-object encoded or as JSON (``content-type`` header); both are
decoded with the same contract. Feedback JSON is checked against its contract exactly as
the monitor reads it (a boolean label is the string ``"True"`` / ``"False"``; an object
label is refused, :mod:`schemas.labels`), so both count the same labels and refuse the
same records. The monitor's window summaries and the registry's reference profiles have
modules of their own (:mod:`services.sink.summaries`, :mod:`services.sink.references`).
Columns follow ``schemas/clickhouse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.contracts import decode_value
from services.sink.landing import Landing, Position, Row
from services.sink.landing import from_millis as _ts
from services.sink.references import REFERENCE_COLUMNS, reference_rows
from services.sink.summaries import SUMMARY_COLUMNS, summary_row

__all__ = ["TABLES", "Landing", "Position", "decode_value", "table_for_topic"]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return (
        orjson.dumps(value).decode()
        if isinstance(value, dict | list)
        else repr(value)
        if isinstance(value, float)
        else str(value)
    )


def _version(value: Any) -> str | None:
    return None if value is None else str(value)


def _error(outcome: Mapping[str, Any] | None) -> str:
    error = (outcome or {}).get("error")
    return f"{error['code']}: {error['message']}" if error else ""


def prediction_row(rec: dict[str, Any], pos: Position) -> Row:
    champion, challenger, backup = rec["champion"], rec.get("challenger"), rec.get("backup")
    ch = challenger or {}
    bk = backup or {}
    return (
        rec["request_id"], rec["model"], _ts(rec["ts"]), rec.get("client_id") or "",
        rec["source_topic"], rec["source_partition"], rec["source_offset"],
        {k: _text(v) for k, v in rec["features"].items()},
        str(champion["version"]), _text(champion.get("output")),
        champion.get("probabilities") or {}, champion.get("latency_ms") or 0.0, _error(champion),
        _version(ch.get("version")), None if ch.get("output") is None else _text(ch["output"]),
        ch.get("probabilities") or {}, ch.get("latency_ms"), _error(ch),
        bool(ch.get("skipped")),
        rec["served_by"], _version(bk.get("version")),
        None if bk.get("output") is None else _text(bk["output"]),
        bk.get("probabilities") or {}, bk.get("latency_ms"), _error(bk),
        rec.get("sensitive") or {}, rec["schema_fingerprint"],
        rec.get("training_data_fingerprint") or "", rec["latency_ms"],
        rec.get("source") or "stream",
    )  # fmt: skip


PREDICTION_COLUMNS = (
    "request_id", "model", "ts", "client_id", "source_topic", "source_partition",
    "source_offset", "features", "champion_version", "champion_output",
    "champion_probabilities", "champion_latency_ms", "champion_error", "challenger_version",
    "challenger_output", "challenger_probabilities", "challenger_latency_ms",
    "challenger_error", "challenger_skipped", "served_by", "backup_version", "backup_output",
    "backup_probabilities", "backup_latency_ms", "backup_error", "sensitive",
    "schema_fingerprint", "training_data_fingerprint", "latency_ms", "source",
)  # fmt: skip


def feedback_row(rec: dict[str, Any], pos: Position) -> Row:
    """A checked feedback record: its label is null, a string (a JSON boolean already read
    as ``"True"`` / ``"False"``) or a double."""
    label = rec.get("label")
    text = label if isinstance(label, str) else None
    number = None if label is None or text is not None else float(label)
    return (rec["request_id"], rec["model"], _ts(rec["ts"]), text, number, rec.get("source") or "")


def metric_row(rec: dict[str, Any], pos: Position) -> Row:
    return (
        _ts(rec["ts"]), rec["model"], _version(rec.get("model_version")) or "",
        rec.get("role") or "", rec["kind"], rec["name"], rec.get("feature") or "",
        rec.get("group") or "", _ts(rec["window_start"]), _ts(rec["window_end"]),
        float(rec["value"]), int(rec["count"]), dict(rec.get("labels") or {}),
    )  # fmt: skip


def alert_row(rec: dict[str, Any], pos: Position) -> Row:
    labels = {"at_event": str(rec["at_event"])} if rec.get("at_event") is not None else {}
    ts = _ts(rec["ts"])
    return (
        ts, f"{pos.topic}-{pos.partition}-{pos.offset}", rec["model"],
        _version(rec.get("model_version")) or "", "", rec["kind"], rec["kind"],
        rec.get("feature") or "", "", rec["severity"], "firing",
        float(rec.get("value") or 0.0), float(rec.get("threshold") or 0.0), ts, ts,
        rec["message"], labels,
    )  # fmt: skip


def model_event_row(rec: dict[str, Any], pos: Position) -> Row:
    return (_ts(rec["ts"]), rec["model"], str(rec["version"]), rec["action"], rec["actor"],
            rec.get("reason") or "", rec.get("details") or "")  # fmt: skip


def dlq_row(value: bytes, pos: Position) -> Row:
    """DLQ messages keep the original bytes as value; the reason travels in headers. Any
    header may be null, binary or nonsense (the original request's headers travel
    along): this never raises.

    >>> row = dlq_row(b"x", Position("ms.m.dlq", 0, 1, None, {"a": None,
    ...               "ms-source-partition": b"two", "ms-reason": bytes([255])}))
    >>> row[3] == chr(0xFFFD), row[7], row[9]["a"]
    (True, -1, '')
    """
    h = pos.headers

    def text(name: str) -> str:
        return _header_text(h.get(name))

    return (
        text("ms-request-id"), text("ms-model"), datetime.now(tz=UTC), text("ms-reason"),
        text("ms-error"), text("ms-stage"), text("ms-source-topic"),
        _int_or(text("ms-source-partition"), -1), _int_or(text("ms-source-offset"), -1),
        {str(k): _header_text(v) for k, v in h.items()}, value,
    )  # fmt: skip


def _header_text(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8", "replace")
    return str(raw)


def _int_or(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


TABLES: dict[str, Landing] = {
    "predictions": Landing("predictions", "prediction_log", PREDICTION_COLUMNS, prediction_row),
    "feedback": Landing(
        "feedback",
        "feedback",
        ("request_id", "model", "ts", "label_string", "label_number", "source"),
        feedback_row,
    ),
    "metrics": Landing(
        "metrics",
        "metric",
        (
            "ts",
            "model",
            "model_version",
            "role",
            "kind",
            "name",
            "feature",
            "group",
            "window_start",
            "window_end",
            "value",
            "count",
            "labels",
        ),
        metric_row,
    ),
    "alerts": Landing(
        "alerts",
        "alert",
        (
            "ts",
            "alert_id",
            "model",
            "model_version",
            "role",
            "kind",
            "name",
            "feature",
            "group",
            "severity",
            "status",
            "value",
            "threshold",
            "window_start",
            "window_end",
            "message",
            "labels",
        ),
        alert_row,
    ),
    "_model_events": Landing(
        "model_events",
        "model_event",
        ("ts", "model", "version", "action", "actor", "reason", "details"),
        model_event_row,
    ),
    "dlq": Landing(
        "dlq",
        None,
        (
            "request_id",
            "model",
            "ts",
            "reason",
            "message",
            "stage",
            "source_topic",
            "source_partition",
            "source_offset",
            "headers",
            "payload",
        ),
        dlq_row,
    ),
    "summaries": Landing("window_summaries", None, SUMMARY_COLUMNS, summary_row),
    "_models": Landing("reference_profiles", None, REFERENCE_COLUMNS, to_rows=reference_rows),
}


def table_for_topic(prefix: str, topic: str) -> Landing | None:
    """Which landing a topic feeds: ``<prefix>.<model>.predictions`` → predictions, ...

    >>> table_for_topic("ms", "ms.iris.predictions").table
    'predictions'
    >>> table_for_topic("ms", "ms.metrics").table, table_for_topic("ms", "ms.iris.requests")
    ('metrics', None)
    """
    if not topic.startswith(prefix + "."):
        return None
    return TABLES.get(topic.rsplit(".", 1)[-1])

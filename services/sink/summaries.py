"""``<prefix>.summaries`` → ``window_summaries``: the monitor's additive window summaries.

A record is the JSON of :meth:`streams.monitoring.summaries.Summary.to_record`. It has no
Avro contract, so it is checked here field by field with the codec's errors: a record
that cannot be a row lands in ``dlq`` with the reason ``wrong_type``, ``missing_field``,
``not_finite``, ``malformed`` or ``unsupported_content_type``. Fields added later are
ignored. Absent texts (a latency summary's feature) are ``''``, versions are strings.

Examples
--------
>>> import orjson
>>> from services.sink.landing import Position
>>> record = {"model": "churn", "partition": 2, "window_start": 60_000,
...           "window_end": 120_000, "kind": "categorical", "model_version": 3,
...           "role": None, "feature": "plan", "group": None, "counts": [4, 1, 0],
...           "stats": {"missing": 2}}
>>> row = summary_row(orjson.dumps(record), Position("ms.summaries", 0, 9, b"churn", {}))
>>> dict(zip(SUMMARY_COLUMNS, row))["model_version"], row[-5:-3]
('3', ([4.0, 1.0, 0.0], {'missing': 2.0}))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import orjson

from schemas.codec import (
    MalformedError,
    MissingFieldError,
    NotFiniteError,
    OversizeError,
    UnsupportedContentTypeError,
    WrongTypeError,
)
from services.sink.landing import Position, Row, from_millis
from streams.monitoring.inputs import MAX_SUMMARY_BYTES

__all__ = ["KINDS", "SUMMARY_COLUMNS", "summary_row"]

#: the kinds of streams.monitoring.summaries
KINDS: Final = frozenset(
    {"numeric", "categorical", "classification", "regression", "fairness", "latency"}
)
SUMMARY_COLUMNS: Final = (
    "model", "partition", "window_start", "window_end", "kind", "model_version", "role",
    "feature", "group", "counts", "stats", "source_topic", "source_partition", "source_offset",
)  # fmt: skip


def summary_row(value: bytes, pos: Position) -> Row:
    """The ``window_summaries`` row of one summary record."""
    if len(value) > MAX_SUMMARY_BYTES:  # the merger refuses it too
        raise OversizeError(f"expected at most {MAX_SUMMARY_BYTES} bytes, got {len(value)}")
    record = _json(value, pos.headers)
    kind = _text(record, "kind", required=True)
    if kind not in KINDS:
        raise WrongTypeError(f"expected one of {sorted(KINDS)}, got {kind!r}", field="kind")
    return (
        _text(record, "model", required=True), _whole(record, "partition"),
        from_millis(_whole(record, "window_start")), from_millis(_whole(record, "window_end")),
        kind, _version(record.get("model_version")), _text(record, "role"),
        _text(record, "feature"), _text(record, "group"), _counts(record.get("counts")),
        _stats(record.get("stats")), pos.topic, pos.partition, pos.offset,
    )  # fmt: skip


def _json(value: bytes, headers: Mapping[str, bytes | None]) -> dict[str, Any]:
    ctype = (headers.get("content-type") or b"").split(b";")[0].strip()  # a null header: none
    if ctype not in (b"", b"application/json"):
        shown = ctype.decode("utf-8", "replace")
        raise UnsupportedContentTypeError(f"expected application/json, got {shown!r}")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise MalformedError(f"expected a JSON object, got bytes that are not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise WrongTypeError(f"expected a JSON object, got {type(record).__name__}")
    return record


def _text(record: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = record.get(name)
    if value is None and not required:
        return ""
    if value is None:
        raise MissingFieldError("expected a string, got none", field=name)
    if not isinstance(value, str):
        raise WrongTypeError(f"expected a string, got {type(value).__name__}", field=name)
    return value


def _whole(record: Mapping[str, Any], name: str) -> int:
    value = record.get(name)
    if value is None:
        raise MissingFieldError("expected a whole number, got none", field=name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise WrongTypeError(f"expected a whole number, got {type(value).__name__}", field=name)
    return value


def _version(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WrongTypeError(
            f"expected a version number, got {type(value).__name__}", field="model_version"
        )
    return str(value)


def _number(value: Any, field: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise WrongTypeError(f"expected a number, got {type(value).__name__}", field=field)
    number = float(value)
    if not math.isfinite(number):
        raise NotFiniteError(f"expected a finite number, got {number}", field=field)
    return number


def _counts(value: Any) -> list[float]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WrongTypeError(f"expected a list, got {type(value).__name__}", field="counts")
    return [_number(v, f"counts[{i}]") for i, v in enumerate(value)]


def _stats(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WrongTypeError(f"expected an object, got {type(value).__name__}", field="stats")
    return {str(k): _number(v, f"stats[{k}]") for k, v in value.items()}

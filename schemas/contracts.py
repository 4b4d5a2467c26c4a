"""The built-in record contracts: the Avro schemas under ``schemas/avro``, by file stem.

>>> "reply" in schema_names()
True
>>> load_schema("reply")["name"]
'io.modelstream.Reply'
>>> codec = codec_for("feedback")
>>> codec.decode_json(codec.encode_json(sample_record("feedback"))) == sample_record("feedback")
True
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson

from schemas.codec import MAGIC, Codec, MalformedError, Record, SchemaError, WrongTypeError
from schemas.labels import coerce_feedback

__all__ = [
    "AVRO_DIR",
    "CHECKED_JSON",
    "codec_for",
    "decode_value",
    "load_schema",
    "sample_record",
    "schema_names",
]

# Feedback comes from any producer, so its JSON is checked. The prediction log, written by
# the scorer, is only parsed: a check costs ~25 µs a record where orjson alone takes ~4 µs.
CHECKED_JSON: Final = frozenset({"feedback"})

AVRO_DIR: Final = Path(__file__).parent / "avro"
_SAMPLE_TIME_MS: Final = 1_700_000_000_000  # 2023-11-14T22:13:20Z
_MAX_SAMPLE_DEPTH: Final = 4  # below it a recursive type takes its null / empty branch
_COERCE: Final = {"feedback": coerce_feedback}  # each contract's JSON conveniences


def schema_names() -> list[str]:
    """Names of the built-in schemas (``reply``, ``prediction_log``, ...), sorted."""
    return sorted(path.stem for path in AVRO_DIR.glob("*.avsc"))


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name``, parsed by fastavro (a copy: callers may change it freely)."""
    return copy.deepcopy(codec_for(name).schema)


@functools.cache
def codec_for(name: str) -> Codec:
    """The shared :class:`Codec`, with default settings, of the built-in schema ``name``,
    and its JSON conveniences (feedback: a boolean label, :mod:`schemas.labels`).

    >>> codec_for("feedback").decode_json(
    ...     b'{"request_id": "r1", "model": "loan", "label": true, "ts": 0}')["label"]
    'True'
    """
    path = AVRO_DIR / f"{name}.avsc"
    if not path.is_file():
        raise SchemaError(f"expected one of the schemas {schema_names()}, got {name!r}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SchemaError(f"expected JSON in {path.name}, got {exc}") from exc
    return Codec(raw, coerce=_COERCE.get(name))


def decode_value(
    value: bytes, headers: Mapping[str, bytes | str | None], contract: str
) -> dict[str, Any]:
    """The record in ``value``, JSON or Avro by its ``content-type`` header (sniffed when
    absent), as the sink and the monitor read the topics the product writes.

    >>> decode_value(b'{"request_id": "r1"}', {}, "prediction_log")
    {'request_id': 'r1'}
    """
    ctype = headers.get("content-type") or b""
    if isinstance(ctype, str):
        ctype = ctype.encode()
    if contract in CHECKED_JSON:
        return codec_for(contract).decode(value, ctype or None)
    if ctype == b"application/json" or (not ctype and value[:2] != MAGIC):
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise MalformedError(f"not JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise WrongTypeError(f"expected a JSON object, got {type(record).__name__}")
        return record
    return codec_for(contract).decode_avro(value)


def sample_record(name: str) -> Record:
    """A valid, deterministic example record of the built-in schema ``name``.

    Unions take their first non-null branch, arrays and maps hold one entry, timestamps are
    a fixed instant, so every field's type is exercised.
    """
    parsed = codec_for(name).schema
    sample: Record = _Sampler(parsed.get("__named_schemas") or {}).value(parsed, depth=0)
    return sample


class _Sampler:
    """Builds example values by walking a parsed schema."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named

    def value(self, node: Any, depth: int) -> Any:
        if isinstance(node, list):
            return self.union(node, depth)
        if isinstance(node, str):
            if node in self.named:
                return self.value(self.named[node], depth)
            return _PRIMITIVE_SAMPLES[node]
        kind = node["type"]
        if kind == "record":
            return {field["name"]: self.value(field["type"], depth + 1) for field in node["fields"]}
        if kind == "enum":
            return node["symbols"][0]
        if kind == "fixed":
            return bytes(range(node["size"]))
        if kind in ("array", "map") and depth >= _MAX_SAMPLE_DEPTH:
            return [] if kind == "array" else {}
        if kind == "array":
            return [self.value(node["items"], depth + 1)]
        if kind == "map":
            return {"key": self.value(node["values"], depth + 1)}
        if node.get("logicalType", "").startswith("timestamp"):
            return _SAMPLE_TIME_MS
        return self.value(kind, depth)

    def union(self, branches: list[Any], depth: int) -> Any:
        non_null = [branch for branch in branches if branch != "null"]
        if non_null and (depth < _MAX_SAMPLE_DEPTH or len(non_null) == len(branches)):
            return self.value(non_null[0], depth)
        return None


_PRIMITIVE_SAMPLES: Final[dict[str, Any]] = {
    "null": None,
    "boolean": True,
    "int": 7,
    "long": 42,
    "float": 0.5,
    "double": 0.25,
    "bytes": b"\x00\xff",
    "string": "example",
}

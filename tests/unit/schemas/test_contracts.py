"""Every built-in schema: parses, is documented, round-trips, and interoperates with fastavro."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import Codec, SchemaError
from schemas.contracts import AVRO_DIR, codec_for, load_schema, sample_record, schema_names
from tests.unit.schemas.avro_strategies import records, without_logical_types

NAMES = schema_names()
MINE = ["alert", "dlq_record", "feedback", "metric", "prediction_log", "reply"]


def _raw(name: str) -> dict[str, Any]:
    return json.loads((AVRO_DIR / f"{name}.avsc").read_text())  # type: ignore[no-any-return]  # JSON


def _fastavro_schema(name: str) -> Any:
    return fastavro.parse_schema(without_logical_types(_raw(name)))


def _fastavro_write(name: str, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _fastavro_schema(name), record)
    return out.getvalue()


def _fastavro_read(name: str, body: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(body), _fastavro_schema(name))


def _undocumented(node: Any, path: str) -> list[str]:
    """Paths of records, enums and fields that lack a non-empty ``doc``."""
    if isinstance(node, list):
        return [gap for branch in node for gap in _undocumented(branch, path)]
    if not isinstance(node, dict) or node.get("type") not in ("record", "enum", "array", "map"):
        return []
    gaps = [] if node.get("doc") or node["type"] in ("array", "map") else [path]
    for field in node.get("fields", []):
        where = f"{path}.{field['name']}"
        gaps += [] if field.get("doc") else [where]
        gaps += _undocumented(field["type"], where)
    gaps += _undocumented(node.get("items"), f"{path}[]")
    gaps += _undocumented(node.get("values"), f"{path}{{}}")
    return gaps


def test_my_schemas_are_all_present() -> None:
    assert set(MINE) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_schema_parses_in_the_io_modelstream_namespace(name: str) -> None:
    parsed: dict[str, Any] = fastavro.parse_schema(_raw(name))  # type: ignore[assignment]  # typed as a union
    assert parsed["type"] == "record"
    assert parsed["name"].startswith("io.modelstream.")


@pytest.mark.parametrize("name", NAMES)
def test_record_and_every_field_have_a_doc(name: str) -> None:
    assert _undocumented(_raw(name), name) == []


@pytest.mark.parametrize("name", NAMES)
def test_sample_round_trips_avro_and_json(name: str) -> None:
    codec, sample = codec_for(name), sample_record(name)
    assert codec.decode_avro(codec.encode_avro(sample)) == sample
    assert codec.decode_json(codec.encode_json(sample)) == sample


@pytest.mark.parametrize("name", NAMES)
def test_sample_body_is_what_fastavro_writes(name: str) -> None:
    codec, sample = codec_for(name), sample_record(name)
    body = codec.encode_avro(sample)[10:]
    assert body == _fastavro_write(name, sample)
    assert _fastavro_read(name, body) == sample


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_records_round_trip_and_interoperate(name: str, data: st.DataObject) -> None:
    codec = codec_for(name)
    record = data.draw(records(codec.schema))
    encoded = codec.encode_avro(record)
    assert codec.decode_avro(encoded) == record
    assert codec.decode_json(codec.encode_json(record)) == record
    assert _fastavro_read(name, encoded[10:]) == record
    assert codec.decode_avro(encoded[:10] + _fastavro_write(name, record)) == record


def test_load_schema_returns_a_private_copy() -> None:
    first = load_schema("reply")
    first["fields"].clear()
    assert load_schema("reply")["fields"]


def test_unknown_schema_name_lists_the_known_ones() -> None:
    with pytest.raises(
        SchemaError, match=r"expected one of the schemas \[.*'reply'.*\], got 'nope'"
    ):
        load_schema("nope")


def test_codec_for_is_shared_and_matches_the_file() -> None:
    assert codec_for("metric") is codec_for("metric")
    assert codec_for("metric").fingerprint == Codec(_raw("metric")).fingerprint


# Realistic records of the schemas this package owns: they document intended use and
# fail loudly if a schema change breaks a producer that follows them.
REALISTIC: dict[str, dict[str, Any]] = {
    "reply": {
        "request_id": "r-1", "model": "churn", "model_version": 3, "task": "classification",
        "prediction": "yes", "probabilities": {"yes": 0.8, "no": 0.2},
        "served_by": "champion", "latency_ms": 1.7, "created_at": 1_700_000_000_000,
    },
    "prediction_log": {
        "request_id": "r-1", "model": "churn", "ts": 1_700_000_000_000, "client_id": "web",
        "source_topic": "modelstream.churn.requests", "source_partition": 0,
        "source_offset": 41, "features": {"age": 31, "income": 5.2e4, "plan": "pro"},
        "champion": {"version": 3, "output": "yes", "latency_ms": 1.2},
        "challenger": {"version": 4, "skipped": "sampled_out"},
        "served_by": "champion", "schema_fingerprint": "3e8d7c177246c527",
        "sensitive": {"gender": "f"}, "latency_ms": 1.9,
    },
    "feedback": {"request_id": "r-1", "model": "churn", "label": "no", "ts": 1_700_000_360_000},
    "metric": {
        "ts": 1_700_000_060_000, "model": "churn", "model_version": 3, "role": "champion",
        "kind": "drift", "name": "psi", "feature": "income",
        "window_start": 1_700_000_000_000, "window_end": 1_700_000_060_000,
        "value": 0.31, "count": 1200,
    },
    "alert": {
        "ts": 1_700_000_060_000, "model": "churn", "kind": "drift", "severity": "critical",
        "feature": "income", "message": "psi 0.31 > 0.25", "value": 0.31, "threshold": 0.25,
    },
    "dlq_record": {
        "model": "churn", "reason": "wrong_type", "stage": "decode",
        "message": "field 'age': expected long, got string 'x'",
        "source_topic": "modelstream.churn.requests", "source_partition": 0,
        "source_offset": 42, "headers": {"content-type": b"application/json"},
        "payload": b'{"age": "x"}', "ts": 1_700_000_000_000,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_realistic_record_round_trips_with_defaults_filled(name: str) -> None:
    codec = codec_for(name)
    record = REALISTIC[name]
    decoded = codec.decode_json(json.dumps(record, default=lambda b: b.decode("latin-1")))
    assert decoded.keys() == {field["name"] for field in codec.schema["fields"]}
    assert codec.decode_avro(codec.encode_avro(decoded)) == decoded
    assert _subset(record, decoded)


def _subset(given: Any, decoded: Any) -> bool:
    """``given`` is ``decoded`` without the fields that took their defaults."""
    if isinstance(given, dict) and isinstance(decoded, dict):
        return all(key in decoded and _subset(given[key], decoded[key]) for key in given)
    return bool(given == decoded)


def test_prediction_log_challenger_skipped_keeps_nulls() -> None:
    log = codec_for("prediction_log").check(REALISTIC["prediction_log"])
    assert log["challenger"]["skipped"] == "sampled_out"
    assert log["challenger"]["output"] is None and log["backup"] is None
    assert log["features"]["age"] == 31 and isinstance(log["features"]["age"], int)

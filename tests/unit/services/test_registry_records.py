"""Record layout: keys, Avro round trips of every record, and the in-memory state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest

from schemas.codec import Codec
from schemas.contracts import load_schema
from services.registry import (
    IntegrityError,
    ModelVersion,
    Routing,
    RoutingChanged,
    UnknownModelError,
    UnknownVersionError,
    VersionAdded,
)
from services.registry._state import RegistryState
from services.registry._wire import (
    ChunkKey,
    VersionKey,
    chunk_key,
    chunk_record,
    codec,
    earlier_schemas,
    event_record,
    parse_key,
    routing_from_record,
    routing_to_record,
    version_from_record,
    version_to_record,
)

AT = datetime(2025, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
SCHEMA = {"type": "record", "name": "In", "fields": [{"name": "x", "type": "double"}]}


def version(number: int = 1, **fields: object) -> ModelVersion:
    base: dict[str, object] = {
        "name": "churn", "version": number, "task": "classification", "input_schema": SCHEMA,
        "features": ("x",), "author": "ana", "created_at": AT, "artifact_format": "joblib",
        "artifact_sha256": "ab" * 32, "artifact_size": 1234, "chunk_count": 2,
    }  # fmt: skip
    return ModelVersion(**{**base, **fields})  # type: ignore[arg-type]


def test_keys() -> None:
    assert chunk_key("churn", 2, 7) == "churn/2/chunk/7"
    assert parse_key("churn/2/chunk/7") == ChunkKey("churn", 2, 7)
    assert parse_key("my-model_2/10") == VersionKey("my-model_2", 10)
    for junk in ("churn", "churn/x", "churn/1/blob/0", "churn/1/chunk/x", "a/b/c/d/e"):
        assert parse_key(junk) is None


def test_full_metadata_round_trips_through_avro() -> None:
    mv = version(
        description="retrained", sensitive_attributes=("x",), training_data_fingerprint="sha256:00",
        hyperparameters={"C": "1.0"}, training_metrics={"auc": 0.91}, code_version="abc123",
        reference_profile={"format": 1, "rows": 3, "numeric": {}, "categorical": {}},
        classes=("no", "yes"), positive_label="yes", environment={"python": "3.11.9"},
    )  # fmt: skip
    meta = codec("model_metadata")
    assert version_from_record(meta.decode_avro(meta.encode_avro(version_to_record(mv)))) == mv


def test_minimal_metadata_round_trips() -> None:
    mv = version()
    meta = codec("model_metadata")
    assert version_from_record(meta.decode_avro(meta.encode_avro(version_to_record(mv)))) == mv


def test_metadata_written_before_positive_label_still_decodes() -> None:
    meta = codec("model_metadata")
    record = version_to_record(version(classes=("0", "1")))
    released, _ = earlier_schemas(load_schema("model_metadata"), ("positive_label", "lineage"))
    old = Codec(released)
    assert old.fingerprint_hex == "6f4c6ea15a7b9370"  # ModelMetadata as first released
    del record["positive_label"], record["lineage"]
    decoded = version_from_record(meta.decode_avro(old.encode_avro(record)))
    assert decoded == version(classes=("0", "1")) and decoded.positive_label is None


def test_metadata_written_before_lineage_decodes_with_an_empty_one() -> None:
    meta = codec("model_metadata")
    _, before = earlier_schemas(load_schema("model_metadata"), ("positive_label", "lineage"))
    record = version_to_record(version(classes=("0", "1")))
    del record["lineage"]
    decoded = version_from_record(meta.decode_avro(Codec(before).encode_avro(record)))
    assert decoded == version(classes=("0", "1")) and decoded.lineage == {}


def test_lineage_round_trips_as_json() -> None:
    meta = codec("model_metadata")
    lineage = {"rows": 1200, "sql": "SELECT 1", "parent_version": 2, "trigger": {"alert": "a1"}}
    mv = replace(version(classes=("0", "1")), lineage=lineage)
    assert version_from_record(meta.decode_avro(meta.encode_avro(version_to_record(mv)))) == mv


def test_routing_round_trips() -> None:
    routing = Routing(
        "churn", 3, challenger=4, backup=2, shadow_fraction=0.25,
        previous_champions=(2, 1), updated_at=AT, updated_by="ana", reason="why",
    )  # fmt: skip
    avro = codec("routing")
    assert (
        routing_from_record(avro.decode_avro(avro.encode_avro(routing_to_record(routing))))
        == routing
    )


def test_chunk_and_event_records_encode() -> None:
    chunk = codec("chunk")
    record = chunk_record("churn", 1, 0, 1, b"\x00" * 600_000)
    assert chunk.decode_avro(chunk.encode_avro(record)) == record
    event = event_record("churn", 2, "promote", actor="ana", reason="", details={"previous": 1})
    decoded = codec("model_event").decode_avro(codec("model_event").encode_avro(event))
    assert orjson.loads(decoded["details"]) == {"previous": 1} and decoded["action"] == "promote"


def test_state_collects_versions_and_chunks() -> None:
    state = RegistryState()
    state.add_chunk("churn", 1, 0, offset=10)
    state.add_chunk("churn", 1, 1, offset=11)
    assert state.add_version(version(1)) == VersionAdded(version(1))
    state.add_chunk("churn", 1, 0, offset=30)  # a later record of the same key wins
    assert state.chunk_offsets("churn", 1) == [30, 11]
    assert state.next_version("churn") == 2 and state.next_version("other") == 1
    assert state.models() == ["churn"] and [v.version for v in state.versions("churn")] == [1]


def test_missing_chunks_are_an_integrity_error() -> None:
    state = RegistryState()
    state.add_version(version(1))
    state.add_chunk("churn", 1, 0, offset=5)
    state.add_chunk("churn", 1, 1, offset=None)  # tombstone
    with pytest.raises(IntegrityError, match=r"chunks \[1\] of 2 are missing"):
        state.chunk_offsets("churn", 1)


def test_unknown_model_and_version() -> None:
    state = RegistryState()
    state.add_version(version(1))
    with pytest.raises(UnknownModelError, match=r"fraud is not registered \(known: churn"):
        state.versions("fraud")
    with pytest.raises(UnknownVersionError, match=r"churn has no version 5 \(versions: 1\)"):
        state.version("churn", 5)


def test_routing_changes_and_tombstones() -> None:
    state = RegistryState()
    routing = Routing("churn", 1)
    assert state.set_routing("churn", routing) == RoutingChanged("churn", routing)
    assert state.routing("churn") == routing
    state.set_routing("churn", None)
    assert state.routing("churn") is None


def test_versions_are_sorted_and_can_be_removed() -> None:
    state = RegistryState()
    for number in (3, 1, 2):
        state.add_version(version(number))
    assert [v.version for v in state.versions("churn")] == [1, 2, 3]
    state.remove_version("churn", 3)
    assert [v.version for v in state.versions("churn")] == [1, 2]
    assert state.next_version("churn") == 4  # a number is never reused

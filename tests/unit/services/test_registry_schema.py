"""Input schema validation: supported field types, nullable unions, sensitive attributes."""

from __future__ import annotations

from typing import Any

import pytest

from services.registry import InvalidSchemaError
from services.registry._input_schema import (
    check_sensitive,
    feature_kinds,
    validate_input_schema,
)


def record(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Input", "fields": list(fields)}


SUPPORTED = [
    "double",
    "float",
    "int",
    "long",
    "string",
    "boolean",
    {"type": "enum", "name": "Plan", "symbols": ["basic", "pro"]},
    ["null", "double"],
    ["string", "null"],
    ["null", {"type": "enum", "name": "Tier", "symbols": ["a"]}],
    {"type": "long", "logicalType": "timestamp-millis"},
]


@pytest.mark.parametrize("kind", SUPPORTED, ids=str)
def test_supported_field_types(kind: Any) -> None:
    assert validate_input_schema(record({"name": "f", "type": kind})) == ("f",)


UNSUPPORTED = [
    ("bytes", "has type bytes"),
    ({"type": "array", "items": "double"}, "has type array"),
    ({"type": "map", "values": "double"}, "has type map"),
    ({"type": "record", "name": "Inner", "fields": []}, "has type record"),
    (["null", "double", "string"], "only a union of null with one type"),
    (["double", "string"], "only a union of null with one type"),
    (["null", ["null", "int"]], "only a union of null with one type"),
    ("null", "has type null"),
]


@pytest.mark.parametrize(("kind", "message"), UNSUPPORTED, ids=str)
def test_unsupported_field_types(kind: Any, message: str) -> None:
    with pytest.raises(InvalidSchemaError, match=message):
        validate_input_schema(record({"name": "f", "type": kind}))


def test_features_keep_schema_order_and_kinds() -> None:
    schema = record(
        {"name": "z", "type": "string"},
        {"name": "a", "type": ["null", "int"], "default": None},
        {"name": "m", "type": "boolean"},
    )
    assert validate_input_schema(schema) == ("z", "a", "m")
    assert feature_kinds(schema) == {"z": "categorical", "a": "numeric", "m": "categorical"}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "enum", "name": "E", "symbols": ["a"]}, "must be an Avro record"),
        (["null", "double"], "must be an Avro record"),
        (record(), "at least one field"),
        (record({"name": "a", "type": "int"}, {"name": "a", "type": "int"}), "declared twice"),
        (record({"type": "int"}), "needs a name"),
        (record({"name": "e", "type": {"type": "enum", "name": "E"}}), "not valid Avro"),
        (record({"name": "x", "type": "double", "default": "zero"}), "not valid Avro"),
    ],
    ids=str,
)
def test_invalid_schemas(schema: Any, message: str) -> None:
    with pytest.raises(InvalidSchemaError, match=message):
        validate_input_schema(schema)


def test_sensitive_attributes_must_be_fields() -> None:
    assert check_sensitive(["sex", "age", "sex"], ("age", "sex")) == ("sex", "age")
    with pytest.raises(InvalidSchemaError, match="'race' is not a field"):
        check_sensitive(["race"], ("age", "sex"))

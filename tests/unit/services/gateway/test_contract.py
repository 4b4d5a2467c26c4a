"""The gateway's view of an input contract: all field errors at once, JSON Schema, examples."""

from __future__ import annotations

import pytest

from services.gateway.contract import InputContract, InvalidInputError
from services.synthetic import input_schema

SCHEMA = {
    "type": "record", "name": "Churn", "doc": "a customer",
    "fields": [
        {"name": "age", "type": "int", "doc": "years"},
        {"name": "spend", "type": ["null", "double"], "default": None},
        {"name": "plan", "type": {"type": "enum", "name": "Plan", "symbols": ["basic", "pro"]}},
        {"name": "active", "type": "boolean"},
    ],
}  # fmt: skip


def problems(record: object) -> set[tuple[str | None, str]]:
    with pytest.raises(InvalidInputError) as caught:
        InputContract(SCHEMA).check(record)
    return {(f.field, f.code) for f in caught.value.fields}


def test_a_good_record_passes_with_defaults_filled() -> None:
    checked = InputContract(SCHEMA).check({"age": 3, "plan": "pro", "active": True})
    assert checked == {"age": 3, "spend": None, "plan": "pro", "active": True}


def test_every_field_problem_is_reported() -> None:
    assert problems({"age": 1.5, "plan": "gold", "colour": "red"}) == {
        ("age", "wrong_type"), ("plan", "wrong_type"), ("active", "missing_field"),
        ("colour", "unknown_field"),
    }  # fmt: skip


@pytest.mark.parametrize("record", [[1, 2], "text", 3, None])
def test_a_non_object_is_malformed(record: object) -> None:
    assert problems(record) == {(None, "malformed")}


def test_non_finite_numbers_are_refused() -> None:
    assert problems({"age": 1, "spend": float("nan"), "plan": "pro", "active": True}) == {
        ("spend", "not_finite")
    }


def test_json_schema_mirrors_the_avro_contract() -> None:
    schema = InputContract(SCHEMA).json_schema()
    assert schema["required"] == ["age", "plan", "active"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["spend"] == {"type": ["number", "null"], "default": None}
    assert schema["properties"]["plan"] == {"type": "string", "enum": ["basic", "pro"]}
    assert schema["properties"]["age"]["description"] == "years"


@pytest.mark.parametrize("schema", [SCHEMA, input_schema()])
def test_the_example_passes_its_own_contract(schema: dict) -> None:
    contract = InputContract(schema)
    checked = contract.check(contract.example())
    assert list(checked) == list(contract.fields)

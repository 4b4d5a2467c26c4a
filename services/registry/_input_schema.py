"""The input schema of a model version: the contract a request is checked against.

A model's input is one flat Avro record. Its fields may be ``double``, ``float``,
``int``, ``long``, ``string``, ``boolean``, an inline ``enum``, or a nullable union of
one of those with ``null``; nested records, arrays, maps and bytes are refused, because
every feature must be one column of the prediction log and one series to monitor.

Examples
--------
>>> schema = {"type": "record", "name": "Churn", "fields": [
...     {"name": "age", "type": "int"},
...     {"name": "plan", "type": {"type": "enum", "name": "Plan", "symbols": ["a", "b"]}},
...     {"name": "spend", "type": ["null", "double"], "default": None}]}
>>> validate_input_schema(schema)
('age', 'plan', 'spend')
>>> feature_kinds(schema)
{'age': 'numeric', 'plan': 'categorical', 'spend': 'numeric'}
>>> validate_input_schema({"type": "record", "name": "R",
...                        "fields": [{"name": "tags", "type": {"type": "array", "items": "string"}}]})
Traceback (most recent call last):
services.registry._errors.InvalidSchemaError: input field 'tags' has type array; supported: double, float, int, long, string, boolean, enum, or a union of one of them with null
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from schemas.codec import Codec, ContractError
from services.registry._errors import InvalidSchemaError

__all__ = ["FeatureKind", "check_sensitive", "feature_kinds", "validate_input_schema"]

FeatureKind = Literal["numeric", "categorical"]
_NUMERIC: Final = frozenset({"double", "float", "int", "long"})
_CATEGORICAL: Final = frozenset({"string", "boolean", "enum"})
_SUPPORTED: Final = (
    "double, float, int, long, string, boolean, enum, or a union of one of them with null"
)


def validate_input_schema(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """Check ``schema`` is a flat record of supported fields; return the feature names."""
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        got = schema.get("type") if isinstance(schema, Mapping) else type(schema).__name__
        raise InvalidSchemaError(f"the input schema must be an Avro record, got type {got!r}")
    fields = schema.get("fields")
    if not isinstance(fields, list) or not fields:
        raise InvalidSchemaError("the input schema must declare at least one field")
    kinds = feature_kinds(schema)
    try:
        Codec(schema)
    except ContractError as exc:
        raise InvalidSchemaError(f"the input schema is not valid Avro: {exc}") from exc
    return tuple(kinds)


def feature_kinds(schema: Mapping[str, Any]) -> dict[str, FeatureKind]:
    """Each field's name and whether it is profiled as numeric or categorical."""
    kinds: dict[str, FeatureKind] = {}
    for field in schema["fields"]:
        if not isinstance(field, Mapping) or not isinstance(field.get("name"), str):
            raise InvalidSchemaError(f"every input field needs a name, got {field!r}")
        name = field["name"]
        if name in kinds:
            raise InvalidSchemaError(f"input field {name!r} is declared twice")
        kinds[name] = _kind(name, field.get("type"))
    return kinds


def _kind(name: str, node: Any) -> FeatureKind:
    if isinstance(node, list):
        rest = [branch for branch in node if branch != "null"]
        if len(node) == 2 and len(rest) == 1 and not isinstance(rest[0], list):
            return _kind(name, rest[0])
        raise InvalidSchemaError(
            f"input field {name!r} has union type {node!r}; only a union of null with one "
            f"type is supported ({_SUPPORTED})"
        )
    base = node.get("type") if isinstance(node, Mapping) else node
    if base in _NUMERIC:
        return "numeric"
    if base in _CATEGORICAL:
        return "categorical"
    raise InvalidSchemaError(f"input field {name!r} has type {base}; supported: {_SUPPORTED}")


def check_sensitive(sensitive: Iterable[str], features: tuple[str, ...]) -> tuple[str, ...]:
    """The sensitive attributes, each a field of the input schema.

    >>> check_sensitive(["sex"], ("age", "sex"))
    ('sex',)
    >>> check_sensitive(["race"], ("age", "sex"))
    Traceback (most recent call last):
    services.registry._errors.InvalidSchemaError: sensitive attribute 'race' is not a field of the input schema (fields: age, sex)
    """  # noqa: E501
    chosen = tuple(dict.fromkeys(sensitive))
    for name in chosen:
        if name not in features:
            raise InvalidSchemaError(
                f"sensitive attribute {name!r} is not a field of the input schema "
                f"(fields: {', '.join(features)})"
            )
    return chosen

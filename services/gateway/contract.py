"""A model's input contract as the gateway uses it: every field's error at once, and the
same contract as JSON Schema (for OpenAPI, the catalogue and the portal).

The scorer checks each request again at its door; the gateway checks first so an HTTP
client gets all of its mistakes in one 422 instead of one DLQ reason per retry.

Examples
--------
>>> contract = InputContract({"type": "record", "name": "R", "fields": [
...     {"name": "age", "type": "int"}, {"name": "plan", "type": "string"}]})
>>> contract.check({"age": 3, "plan": "a"})
{'age': 3, 'plan': 'a'}
>>> try:
...     contract.check({"age": "x", "extra": 1})
... except InvalidInputError as exc:
...     [(f.field, f.code) for f in exc.fields]
[('age', 'wrong_type'), ('plan', 'missing_field'), ('extra', 'unknown_field')]
>>> contract.json_schema()["properties"]["age"]
{'type': 'integer'}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.codec import Codec, DecodeError, EncodeError

__all__ = ["FieldError", "InputContract", "InvalidInputError"]

_JSON_TYPES: Final = {
    "double": "number", "float": "number", "int": "integer", "long": "integer",
    "string": "string", "boolean": "boolean",
}  # fmt: skip


@dataclass(frozen=True)
class FieldError:
    """One field's problem: which field, a stable code, and what was expected."""

    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "code": self.code, "message": self.message}


class InvalidInputError(ValueError):
    """The record does not fit the model's input schema; ``fields`` lists every problem."""

    def __init__(self, fields: list[FieldError]) -> None:
        super().__init__("; ".join(f"{f.field or 'record'}: {f.message}" for f in fields))
        self.fields = fields

    @property
    def reason(self) -> str:
        """The first problem's code (the DLQ reason)."""
        return self.fields[0].code


class InputContract:
    """One model version's input schema (a flat Avro record, see the registry)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = dict(schema)
        self.codec = Codec(self.schema)
        self.fields: tuple[str, ...] = tuple(f["name"] for f in self.schema["fields"])
        self._per_field = {
            field["name"]: Codec({"type": "record", "name": "Field", "fields": [field]})
            for field in self.schema["fields"]
        }

    def check(self, record: Any) -> dict[str, Any]:
        """``record`` checked (defaults filled, ints widened), else :class:`InvalidInputError`."""
        if not isinstance(record, Mapping):
            raise InvalidInputError(self.problems(record))
        try:
            return self.codec.check(record)
        except EncodeError:
            raise InvalidInputError(self.problems(record)) from None

    def problems(self, record: Any) -> list[FieldError]:
        """Every problem of ``record``, one per field (the slow path, only on failure)."""
        if not isinstance(record, Mapping):
            kind = "an array" if isinstance(record, list) else type(record).__name__
            return [FieldError(None, "malformed", f"expected a JSON object, got {kind}")]
        found = []
        for name, codec in self._per_field.items():
            part = {name: record[name]} if name in record else {}
            try:
                codec.check(part)
            except EncodeError as exc:
                found.append(FieldError(name, _reason(exc), exc.detail))
        for name in record:
            if name not in self._per_field:
                found.append(FieldError(str(name), "unknown_field", "not a field of the schema"))
        return found or [FieldError(None, "malformed", "does not fit the input schema")]

    def json_schema(self) -> dict[str, Any]:
        """The contract as a JSON Schema object (what a JSON body must look like)."""
        properties = {f["name"]: _json_type(f) for f in self.schema["fields"]}
        required = [f["name"] for f in self.schema["fields"] if "default" not in f]
        schema: dict[str, Any] = {
            "type": "object", "title": self.schema["name"], "properties": properties,
            "required": required, "additionalProperties": False,
        }  # fmt: skip
        if self.schema.get("doc"):
            schema["description"] = self.schema["doc"]
        return schema

    def example(self) -> dict[str, Any]:
        """A record that passes :meth:`check`: defaults, first symbols, zeros."""
        return {f["name"]: _example(f) for f in self.schema["fields"]}


def _reason(exc: EncodeError) -> str:
    """The decode reason behind a check failure (``wrong_type``, ``missing_field`` ...)."""
    cause = exc.__cause__
    return cause.reason if isinstance(cause, DecodeError) else "malformed"


def _base(node: Any) -> tuple[Any, bool]:
    """The non-null branch of a field type and whether null is allowed."""
    if isinstance(node, list):
        rest = [branch for branch in node if branch != "null"]
        return (rest[0] if rest else "null"), len(rest) < len(node)
    return node, False


def _json_type(field: Mapping[str, Any]) -> dict[str, Any]:
    node, nullable = _base(field["type"])
    if isinstance(node, Mapping) and node.get("type") == "enum":
        out: dict[str, Any] = {"type": "string", "enum": list(node["symbols"])}
    else:
        name = node.get("type") if isinstance(node, Mapping) else node
        out = {"type": _JSON_TYPES.get(str(name), "string")}
    if nullable:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if field.get("doc"):
        out["description"] = field["doc"]
    if "default" in field:
        out["default"] = field["default"]
    return out


def _example(field: Mapping[str, Any]) -> Any:
    if "default" in field:
        return field["default"]
    node, _ = _base(field["type"])
    if isinstance(node, Mapping) and node.get("type") == "enum":
        return node["symbols"][0]
    name = node.get("type") if isinstance(node, Mapping) else node
    return {"double": 0.0, "float": 0.0, "int": 0, "long": 0, "boolean": False}.get(str(name), "a")

"""The schema itself: parsing, its fingerprint, and resolving type references to kinds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from fastavro import parse_schema
from fastavro.schema import fingerprint as _crc64_hex
from fastavro.schema import to_parsing_canonical_form

from schemas.codec.errors import SchemaError

Record = dict[str, Any]

_PRIMITIVES: Final = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
_COMPLEX: Final = frozenset({"record", "enum", "fixed", "array", "map"})
_NAMED: Final = frozenset({"record", "enum", "fixed"})
_FLOATS: Final = frozenset({"float", "double"})
# The Python type of a checked value, per Avro kind (unions dispatch on it).
_PY_TYPES: Final[dict[str, type]] = {
    "null": type(None), "boolean": bool, "int": int, "long": int, "float": float,
    "double": float, "string": str, "enum": str, "bytes": bytes, "fixed": bytes,
    "record": dict, "map": dict, "array": list,
}  # fmt: skip

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX: Final = 3.4028234663852886e38


def _parse(schema: Mapping[str, Any]) -> dict[str, Any]:
    try:
        parsed = cast(dict[str, Any], parse_schema(dict(schema)))
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise SchemaError(f"expected a valid Avro schema: {exc}") from exc
    if parsed.get("type") != "record":
        raise SchemaError(f"expected a record schema, got type {parsed.get('type')!r}")
    return parsed


def _fingerprint(parsed: dict[str, Any]) -> bytes:
    """CRC-64-AVRO (Rabin) of the Parsing Canonical Form, in wire (little-endian) order."""
    return bytes.fromhex(_crc64_hex(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


class _Types:
    """Resolves type references of one fastavro-parsed schema to ``(kind, definition)``."""

    def __init__(self, parsed: Mapping[str, Any]) -> None:
        self._named: Mapping[str, Any] = parsed.get("__named_schemas") or {}

    def resolve(self, node: Any) -> tuple[str, Any]:
        if isinstance(node, list):
            return "union", node
        if isinstance(node, dict):
            kind = node["type"]
            if isinstance(kind, str) and (kind in _PRIMITIVES or kind in _COMPLEX):
                return kind, node
            return self.resolve(kind)
        if node in _PRIMITIVES:
            return node, node
        if node not in self._named:
            raise SchemaError(f"unknown type name {node!r}")
        return self.resolve(self._named[node])

    def kind(self, node: Any) -> str:
        return self.resolve(node)[0]

    def label(self, node: Any) -> str:
        """A short human name of a type: ``double``, ``record Point``, ``null | string``."""
        kind, spec = self.resolve(node)
        if kind in _NAMED:
            return f"{kind} {spec['name'].rpartition('.')[2]}"
        if kind in ("array", "map"):
            return f"{kind}<{self.label(spec['items' if kind == 'array' else 'values'])}>"
        if kind == "union":
            return " | ".join(self.label(branch) for branch in spec)
        return kind

    def min_size(self, node: Any, visiting: frozenset[str] = frozenset()) -> int:
        """Fewest bytes a binary value of this type takes (bounds block counts on decode)."""
        kind, spec = self.resolve(node)
        if kind == "fixed":
            return int(spec["size"])
        if kind == "record":
            if spec["name"] in visiting:
                return 0
            inner = visiting | {spec["name"]}
            return sum(self.min_size(field["type"], inner) for field in spec["fields"])
        return {"null": 0, "float": 4, "double": 8}.get(kind, 1)

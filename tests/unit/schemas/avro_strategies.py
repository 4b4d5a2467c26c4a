"""Hypothesis strategies for records of an Avro schema, in the form the codec returns them."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "double": st.floats(allow_nan=False, allow_infinity=False),
    "bytes": st.binary(max_size=12),
    "string": st.text(max_size=12),
}


_EXACT_INTS = st.integers(-(2**53), 2**53)


def _first(union: list[Any], names: tuple[str, ...]) -> int:
    return min((union.index(name) for name in names if name in union), default=len(union))


def records(parsed: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid records of a fastavro-parsed record schema."""
    return _Builder(parsed.get("__named_schemas") or {}).of(parsed)


def without_logical_types(schema: Any) -> Any:
    """A copy of a raw schema without ``logicalType`` (fastavro then keeps plain ints)."""
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [without_logical_types(item) for item in schema]
    return copy.copy(schema)


class _Builder:
    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.cache: dict[str, st.SearchStrategy[Any]] = {}

    def of(self, node: Any) -> st.SearchStrategy[Any]:
        if isinstance(node, list):
            # fastavro writes an int into the first branch that accepts it, and a `double`
            # branch does: where double comes first, only ints a double holds exactly
            # survive any writer, so those are the ints such a union is given
            inexact = "double" in node and node.index("double") < _first(node, ("long", "int"))
            return st.one_of([
                _EXACT_INTS if inexact and branch == "long" else self.of(branch) for branch in node
            ])  # fmt: skip
        if isinstance(node, str):
            return _PRIMITIVES[node] if node in _PRIMITIVES else self.named_type(node)
        kind = node["type"]
        if kind in ("record", "enum", "fixed"):
            return self.named_type(node["name"])
        if kind == "array":
            return st.lists(self.of(node["items"]), max_size=3)
        if kind == "map":
            return st.dictionaries(st.text(max_size=6), self.of(node["values"]), max_size=3)
        return self.of(kind)

    def named_type(self, name: str) -> st.SearchStrategy[Any]:
        if name not in self.cache:  # deferred: a recursive type may refer to itself
            self.cache[name] = st.deferred(lambda: self.define(self.named[name]))
        return self.cache[name]

    def define(self, spec: dict[str, Any]) -> st.SearchStrategy[Any]:
        if spec["type"] == "enum":
            return st.sampled_from(spec["symbols"])
        if spec["type"] == "fixed":
            return st.binary(min_size=spec["size"], max_size=spec["size"])
        fields = {field["name"]: self.of(field["type"]) for field in spec["fields"]}
        return st.fixed_dictionaries(fields)

"""Avro binary writing of values already normalized by the checker."""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from schemas.codec._check import _Checker
from schemas.codec._compile import _Compiler
from schemas.codec._types import _PY_TYPES, Record, _Types

Write = Callable[[Any, bytearray], None]
_pack_double = struct.Struct("<d").pack
_pack_float = struct.Struct("<f").pack


def _write_long(value: int, out: bytearray) -> None:
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def _long_bytes(value: int) -> bytes:
    out = bytearray()
    _write_long(value, out)
    return bytes(out)


def _write_null(value: None, out: bytearray) -> None:
    pass


def _write_boolean(value: bool, out: bytearray) -> None:
    out.append(value)


def _write_float(value: float, out: bytearray) -> None:
    out += _pack_float(value)


def _write_double(value: float, out: bytearray) -> None:
    out += _pack_double(value)


def _write_bytes(value: bytes, out: bytearray) -> None:
    _write_long(len(value), out)
    out += value


def _write_string(value: str, out: bytearray) -> None:
    _write_bytes(value.encode(), out)


def _write_fixed(value: bytes, out: bytearray) -> None:
    out += value


class _Writer(_Compiler[Write]):
    """Compiles binary writers of values already normalized by a :class:`_Checker`."""

    primitives = {
        "null": _write_null, "boolean": _write_boolean, "int": _write_long,
        "long": _write_long, "float": _write_float, "double": _write_double,
        "string": _write_string, "bytes": _write_bytes,
    }  # fmt: skip
    lenient = primitives

    def __init__(self, types: _Types, checker: _Checker) -> None:
        super().__init__(types)
        self.checker = checker  # tells apart union branches of the same Python type

    def _fixed(self, spec: Any, allow: bool) -> Write:
        return _write_fixed

    def _enum(self, spec: Any, allow: bool) -> Write:
        indices = {symbol: index for index, symbol in enumerate(spec["symbols"])}
        return lambda value, out: _write_long(indices[value], out)

    def _array(self, spec: Any, allow: bool) -> Write:
        write_item = self.build(spec["items"], allow)

        def write_array(value: list[Any], out: bytearray) -> None:
            if value:
                _write_long(len(value), out)
                for item in value:
                    write_item(item, out)
            out.append(0)

        return write_array

    def _map(self, spec: Any, allow: bool) -> Write:
        write_value = self.build(spec["values"], allow)

        def write_map(value: dict[str, Any], out: bytearray) -> None:
            if value:
                _write_long(len(value), out)
                for key, item in value.items():
                    _write_string(key, out)
                    write_value(item, out)
            out.append(0)

        return write_map

    def _union(self, spec: Any, allow: bool) -> Write:
        writers = [self.build(branch, allow) for branch in spec]
        py_types = [_PY_TYPES[self.types.kind(branch)] for branch in spec]
        if len(set(py_types)) < len(py_types):  # e.g. two records: only a check tells
            select = self.checker.selector(spec, allow)

            def write_by_check(value: Any, out: bytearray) -> None:
                index = select(value)[0]
                _write_long(index, out)
                writers[index](value, out)

            return write_by_check
        by_type = {
            kind: (_long_bytes(index), writers[index]) for index, kind in enumerate(py_types)
        }

        def write_union(value: Any, out: bytearray) -> None:
            prefix, write = by_type[type(value)]
            out += prefix
            write(value, out)

        return write_union

    def _record(self, spec: Any, allow: bool) -> Write:
        steps: list[Write] = []
        for group in self.stretches(spec["fields"], allow):
            if len(group) > 1:
                steps.append(_double_run_writer([field["name"] for field in group]))
            else:
                steps.append(_field_writer(group[0]["name"], self.build_field(group[0], allow)))

        def write_record(value: Record, out: bytearray) -> None:
            for step in steps:
                step(value, out)

        return write_record


def _field_writer(name: str, write: Write) -> Write:
    return lambda record, out: write(record[name], out)


def _double_run_writer(names: list[str]) -> Write:
    pack, get = struct.Struct(f"<{len(names)}d").pack, itemgetter(*names)

    def write_run(record: Record, out: bytearray) -> None:
        out += pack(*get(record))

    return write_run

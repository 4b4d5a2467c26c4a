"""Avro binary reading: compiled readers ``(buf, pos) -> (value, new_pos)``.

Readers check as they go (varint length, int range, UTF-8, finite floats) and bound block
counts by the bytes left, so arbitrary input raises only ``DecodeError`` subclasses.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from schemas.codec._compile import _Compiler
from schemas.codec._types import _INT_MAX, _INT_MIN, Record, _Types
from schemas.codec.errors import ContractError, MalformedError, NotFiniteError, TruncatedError

Read = Callable[[bytes, int], tuple[Any, int]]
_unpack_double = struct.Struct("<d").unpack_from
_unpack_float = struct.Struct("<f").unpack_from


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    byte = buf[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    value, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 63:
            raise MalformedError("expected a varint of at most 10 bytes, got more")
    if value >> 64:
        raise MalformedError("expected a 64-bit varint, got more bits")
    return (value >> 1) ^ -(value & 1), pos + 1


def _read_size(buf: bytes, pos: int) -> tuple[int, int]:
    size, pos = _read_long(buf, pos)
    if size < 0:
        raise MalformedError(f"expected a length, got {size}")
    if size > len(buf) - pos:
        raise TruncatedError(f"length {size} runs past the end ({len(buf) - pos} bytes left)")
    return size, pos


def _read_index(buf: bytes, pos: int, count: int, label: str) -> tuple[int, int]:
    """An enum symbol's or union branch's index: one byte below 64 choices."""
    byte = buf[pos]
    index, pos = (byte >> 1, pos + 1) if byte < 0x80 and not byte & 1 else _read_long(buf, pos)
    if not 0 <= index < count:
        raise MalformedError(f"expected index 0..{count - 1} of {label}, got {index}")
    return index, pos


def _read_null(buf: bytes, pos: int) -> tuple[None, int]:
    return None, pos


def _read_boolean(buf: bytes, pos: int) -> tuple[bool, int]:
    byte = buf[pos]
    if byte > 1:
        raise MalformedError(f"expected boolean byte 0 or 1, got {byte}")
    return byte == 1, pos + 1


def _read_int(buf: bytes, pos: int) -> tuple[int, int]:
    value, pos = _read_long(buf, pos)
    if not _INT_MIN <= value <= _INT_MAX:
        raise MalformedError(f"expected int (32-bit), got {value}")
    return value, pos


def _read_string(buf: bytes, pos: int) -> tuple[str, int]:
    size = buf[pos]
    if size < 0x80 and not size & 1 and pos + 1 + (size >> 1) <= len(buf):  # < 64 bytes
        pos, end = pos + 1, pos + 1 + (size >> 1)
        return buf[pos:end].decode(), end
    size, pos = _read_size(buf, pos)
    return buf[pos : pos + size].decode(), pos + size


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = _read_size(buf, pos)
    return buf[pos : pos + size], pos + size


def _read_double(buf: bytes, pos: int) -> tuple[float, int]:
    (value,) = _unpack_double(buf, pos)
    if value - value != 0.0:  # inf - inf and nan - nan are nan
        raise NotFiniteError(f"expected finite double, got {value}")
    return value, pos + 8


def _read_float(buf: bytes, pos: int) -> tuple[float, int]:
    (value,) = _unpack_float(buf, pos)
    if value - value != 0.0:
        raise NotFiniteError(f"expected finite float, got {value}")
    return value, pos + 4


def _read_any_double(buf: bytes, pos: int) -> tuple[float, int]:
    return _unpack_double(buf, pos)[0], pos + 8


def _read_any_float(buf: bytes, pos: int) -> tuple[float, int]:
    return _unpack_float(buf, pos)[0], pos + 4


def _double_run_reader(names: list[str], allow: bool) -> Read:
    """Read consecutive double fields with one ``struct`` call, as ``(names, values)``."""
    layout = struct.Struct(f"<{len(names)}d")
    unpack, size = layout.unpack_from, layout.size

    def read_run(buf: bytes, pos: int) -> tuple[Any, int]:
        try:
            values = unpack(buf, pos)
        except struct.error:
            raise TruncatedError("input ends inside the record", field=names[0]) from None
        if not allow and not math.isfinite(sum(values)):  # one sum catches any NaN or inf
            for name, value in zip(names, values, strict=False):
                if not math.isfinite(value):
                    raise NotFiniteError(f"expected finite double, got {value}", field=name)
        return values, pos + size

    return read_run


class _Reader(_Compiler[Read]):
    """Compiles binary readers ``(buf, pos) -> (value, new_pos)``."""

    primitives = {
        "null": _read_null, "boolean": _read_boolean, "int": _read_int, "long": _read_long,
        "float": _read_float, "double": _read_double, "string": _read_string,
        "bytes": _read_bytes,
    }  # fmt: skip
    lenient = {"float": _read_any_float, "double": _read_any_double}

    def __init__(self, types: _Types, max_items: int) -> None:
        super().__init__(types)
        self.max_items = max_items  # bound on zero-size items (null, empty record) per array

    def _fixed(self, spec: Any, allow: bool) -> Read:
        size = int(spec["size"])

        def read_fixed(buf: bytes, pos: int) -> tuple[bytes, int]:
            if pos + size > len(buf):
                raise TruncatedError(f"expected {size} bytes of fixed, {len(buf) - pos} left")
            return buf[pos : pos + size], pos + size

        return read_fixed

    def _enum(self, spec: Any, allow: bool) -> Read:
        symbols, label = tuple(spec["symbols"]), self.types.label(spec)

        def read_enum(buf: bytes, pos: int) -> tuple[str, int]:
            index, pos = _read_index(buf, pos, len(symbols), label)
            return symbols[index], pos

        return read_enum

    def _union(self, spec: Any, allow: bool) -> Read:
        branches = tuple(self.build(branch, allow) for branch in spec)
        label = self.types.label(spec)

        def read_union(buf: bytes, pos: int) -> tuple[Any, int]:
            index, pos = _read_index(buf, pos, len(branches), label)
            return branches[index](buf, pos)

        return read_union

    def _array(self, spec: Any, allow: bool) -> Read:
        read_item = self.build(spec["items"], allow)
        block = self._block_reader(self.types.min_size(spec["items"]))

        def read_array(buf: bytes, pos: int) -> tuple[list[Any], int]:
            items: list[Any] = []
            count, pos = block(buf, pos, 0)
            while count:
                for _ in range(count):
                    item, pos = read_item(buf, pos)
                    items.append(item)
                count, pos = block(buf, pos, len(items))
            return items, pos

        return read_array

    def _map(self, spec: Any, allow: bool) -> Read:
        read_value = self.build(spec["values"], allow)
        block = self._block_reader(1 + self.types.min_size(spec["values"]))

        def read_map(buf: bytes, pos: int) -> tuple[dict[str, Any], int]:
            entries: dict[str, Any] = {}
            count, pos = block(buf, pos, 0)
            while count:
                for _ in range(count):
                    key, pos = _read_string(buf, pos)
                    entries[key], pos = read_value(buf, pos)
                count, pos = block(buf, pos, len(entries))
            return entries, pos

        return read_map

    def _block_reader(self, item_size: int) -> Callable[[bytes, int, int], tuple[int, int]]:
        """Read a block's item count; refuse counts the remaining bytes cannot hold."""
        max_items = self.max_items

        def read_block(buf: bytes, pos: int, seen: int) -> tuple[int, int]:
            count, pos = _read_long(buf, pos)
            if count < 0:  # a negative count is followed by the block's size in bytes
                count = -count
                pos = _read_long(buf, pos)[1]
            left = len(buf) - pos
            if item_size and count * item_size > left:
                needed = count * item_size
                raise TruncatedError(f"block of {count} items needs {needed}+ bytes, {left} left")
            if not item_size and seen + count > max_items:
                raise MalformedError(f"expected at most {max_items} empty items, got {count}")
            return count, pos

        return read_block

    def _record(self, spec: Any, allow: bool) -> Read:
        steps: list[tuple[str, bool, Read]] = []
        for group in self.stretches(spec["fields"], allow):
            if len(group) > 1:  # the run labels its own errors
                names = [field["name"] for field in group]
                read = _double_run_reader(names, self.field_allows(group[0], allow))
                steps.append(("", True, read))
            else:
                steps.append((group[0]["name"], False, self.build_field(group[0], allow)))
        return _record_reader([field["name"] for field in spec["fields"]], steps)


def _record_reader(names: list[str], steps: list[tuple[str, bool, Read]]) -> Read:
    """Run the field readers in order (``many``: a run of doubles), then name the values."""

    def read_record(buf: bytes, pos: int) -> tuple[Record, int]:
        values: list[Any] = []
        label = ""
        try:
            for label, many, read in steps:  # noqa: B007  # the handlers below use label
                value, pos = read(buf, pos)
                if many:
                    values.extend(value)
                else:
                    values.append(value)
        except ContractError as exc:
            raise (exc._within(label) if label else exc) from None
        except (IndexError, struct.error):
            raise TruncatedError("input ends inside the record", field=label) from None
        except UnicodeDecodeError as exc:
            raise MalformedError(f"expected UTF-8 text, got {exc.reason}", field=label) from None
        return dict(zip(names, values, strict=False)), pos

    return read_record

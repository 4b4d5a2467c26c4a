"""Encode and decode records of one Avro record schema: binary, or JSON checked against it.

A :class:`Codec` speaks two wire formats for the same schema:

* ``application/avro`` -- Avro single-object encoding: ``C3 01``, the 8-byte CRC-64-AVRO
  fingerprint of the schema's Parsing Canonical Form (little-endian), the binary body.
* ``application/json`` -- one JSON object, checked against the schema: required fields
  present, no unknown fields, exact types (an integer is accepted for a double), enums,
  nullable unions; a missing field that has a default gets it. Bytes travel as strings of
  code points 0-255 (Avro's JSON convention); a non-finite double, where a field allows it
  (``"allow_non_finite": true`` on the field, or ``Codec(allow_non_finite=True)``), as
  ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.

Logical types travel as their underlying type: ``timestamp-millis`` is an ``int`` of epoch
milliseconds in both formats, so both decoders return the same record.

Decoding arbitrary bytes raises only :class:`DecodeError` subclasses, checks the size limit
before parsing, never allocates more than the input can justify, and rejects trailing
bytes. Every error has a stable ``reason`` (the DLQ reason code) and, when one field is at
fault, its path in ``field`` (``champion.error.code``, ``tags[3]``, ``labels[env]``)::

    ContractError                         reason
    ├── SchemaError                       bad_schema                the schema is unusable
    ├── EncodeError                       encode                    a record does not fit
    └── DecodeError                       decode                    one message is bad
        ├── OversizeError                 oversize
        ├── UnsupportedContentTypeError   unsupported_content_type
        ├── TruncatedError                truncated
        ├── MalformedError                malformed
        │   └── BadMagicError             malformed                 not single-object Avro
        ├── UnknownFingerprintError       unknown_fingerprint
        ├── WrongTypeError                wrong_type
        ├── MissingFieldError             missing_field
        ├── UnknownFieldError             unknown_field
        └── NotFiniteError                not_finite

Examples
--------
>>> codec = Codec({"type": "record", "name": "Point", "fields": [
...     {"name": "x", "type": "double"},
...     {"name": "tag", "type": ["null", "string"], "default": None}]})
>>> data = codec.encode_avro({"x": 2.5, "tag": "a"})
>>> data[:2].hex(), data[2:10] == codec.fingerprint, len(data)
('c301', True, 21)
>>> codec.decode(data, "application/avro")
{'x': 2.5, 'tag': 'a'}
>>> codec.decode(b'{"x": 1}', "application/json")
{'x': 1.0, 'tag': None}
>>> codec.decode_json(b'{"x": "abc"}')
Traceback (most recent call last):
schemas.codec.WrongTypeError: field 'x': expected double, got string 'abc'
>>> codec.decode_avro(data[:-1])
Traceback (most recent call last):
schemas.codec.TruncatedError: field 'tag': length 1 runs past the end (0 bytes left)
>>> codec.decode_json(b'{"x": 1, "y": 2}')
Traceback (most recent call last):
schemas.codec.UnknownFieldError: field 'y': not a field of record Point; expected fields: x, tag
"""

from __future__ import annotations

import copy
import math
import numbers
import struct
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any, ClassVar, Final, Generic, TypeVar, cast

import orjson
from fastavro import parse_schema
from fastavro.schema import fingerprint as _crc64_hex
from fastavro.schema import to_parsing_canonical_form

__all__ = [
    "AVRO",
    "JSON",
    "BadMagicError",
    "Codec",
    "ContractError",
    "DecodeError",
    "EncodeError",
    "MalformedError",
    "MissingFieldError",
    "NotFiniteError",
    "OversizeError",
    "Record",
    "SchemaError",
    "TruncatedError",
    "UnknownFieldError",
    "UnknownFingerprintError",
    "UnsupportedContentTypeError",
    "WrongTypeError",
]

Record = dict[str, Any]
AVRO: Final = "application/avro"
JSON: Final = "application/json"
MAGIC: Final = b"\xc3\x01"
HEADER_SIZE: Final = 10


# --------------------------------------------------------------------------- errors


class ContractError(Exception):
    """Root of every error of the ``schemas`` package."""

    reason: ClassVar[str] = "contract"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def __str__(self) -> str:
        return f"field '{self.field}': {self.detail}" if self.field else self.detail

    def _within(self, segment: str) -> ContractError:
        """Prefix the field path with the enclosing field name or ``[index]``."""
        if not self.field:
            self.field = segment
        elif self.field.startswith("["):
            self.field = segment + self.field
        else:
            self.field = f"{segment}.{self.field}"
        return self


class SchemaError(ContractError):
    """The schema cannot be parsed or compiled (raised when building a codec)."""

    reason = "bad_schema"


class EncodeError(ContractError):
    """A record does not fit its schema; ``__cause__`` is the precise check failure."""

    reason = "encode"


class DecodeError(ContractError):
    """One message could not be decoded; its ``reason`` is the DLQ reason code."""

    reason = "decode"


class OversizeError(DecodeError):
    reason = "oversize"


class UnsupportedContentTypeError(DecodeError):
    reason = "unsupported_content_type"


class TruncatedError(DecodeError):
    reason = "truncated"


class MalformedError(DecodeError):
    reason = "malformed"


class BadMagicError(MalformedError):
    """Declared Avro, but the bytes do not start with the single-object marker ``C3 01``."""


class UnknownFingerprintError(DecodeError):
    reason = "unknown_fingerprint"
    fingerprint: str = ""  # the message's fingerprint, hex in wire order


class WrongTypeError(DecodeError):
    reason = "wrong_type"


class MissingFieldError(DecodeError):
    reason = "missing_field"


class UnknownFieldError(DecodeError):
    reason = "unknown_field"


class NotFiniteError(DecodeError):
    reason = "not_finite"


def _describe(value: Any) -> str:
    """Name a value for an error message: ``string 'abc'``, ``integer 5``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        text = repr(value)
        return f"string {text if len(text) <= 40 else text[:36] + '...' + text[0]}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'number'} {str(value)[:40]}"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{len(value)} bytes"
    if isinstance(value, list | tuple):
        return f"array of {len(value)}"
    return "object" if isinstance(value, dict) else type(value).__name__


# --------------------------------------------------------------------------- schema types

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


F = TypeVar("F", bound=Callable[..., Any])


class _Compiler(Generic[F]):
    """Turns a schema into one function per type node; each named type compiles once.

    Subclasses list their primitive functions in ``primitives`` (float/double rejecting
    non-finite values) and ``lenient`` (float/double letting them through), and implement
    ``_record``, ``_enum``, ``_fixed``, ``_array``, ``_map`` and ``_union``.
    """

    primitives: ClassVar[Mapping[str, Callable[..., Any]]]
    lenient: ClassVar[Mapping[str, Callable[..., Any]]]

    def __init__(self, types: _Types) -> None:
        self.types = types
        self.allows_non_finite = False  # set once a float/double lets NaN/inf through
        self._named: dict[tuple[str, bool], F] = {}

    def build(self, node: Any, allow: bool) -> F:
        """Compile ``node``; ``allow`` says whether non-finite floats pass below it."""
        kind, spec = self.types.resolve(node)
        if kind in _PRIMITIVES:
            self.allows_non_finite |= allow and kind in _FLOATS
            return cast(F, (self.lenient if allow and kind in _FLOATS else self.primitives)[kind])
        method = cast(Callable[[Any, bool], F], getattr(self, f"_{kind}"))
        if kind not in _NAMED:
            return method(spec, allow)
        key = (spec["name"], allow)
        if key not in self._named:
            cell: list[F] = []  # a recursive type refers to itself before it is built
            self._named[key] = cast(F, lambda *args: cell[0](*args))
            cell.append(method(spec, allow))
            self._named[key] = cell[0]
        return self._named[key]

    def build_field(self, field: Mapping[str, Any], allow: bool) -> F:
        return self.build(field["type"], self.field_allows(field, allow))

    @staticmethod
    def field_allows(field: Mapping[str, Any], allow: bool) -> bool:
        return bool(field.get("allow_non_finite", allow))

    def stretches(self, fields: list[dict[str, Any]], allow: bool) -> list[list[dict[str, Any]]]:
        """Fields in groups: runs of consecutive double fields that agree on non-finite
        values (one ``struct`` call reads or writes a run), else single fields."""
        groups: list[list[dict[str, Any]]] = []
        for field in fields:
            if groups and self._doubles_alike(groups[-1][-1], field, allow):
                groups[-1].append(field)
            else:
                groups.append([field])
        return groups

    def _doubles_alike(self, one: Mapping[str, Any], other: Mapping[str, Any], allow: bool) -> bool:
        kinds = {self.types.kind(one["type"]), self.types.kind(other["type"])}
        same_allow = self.field_allows(one, allow) == self.field_allows(other, allow)
        return kinds == {"double"} and same_allow


# --------------------------------------------------------------------------- binary reading

Read = Callable[[bytes, int], tuple[Any, int]]
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX: Final = 3.4028234663852886e38
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


# --------------------------------------------------------------------------- checking values

Check = Callable[[Any], Any]
Select = Callable[[Any], tuple[int, Any]]
_MISSING: Final = object()
_NON_FINITE_NAMES: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _check_null(value: Any) -> None:
    if value is not None:
        raise WrongTypeError(f"expected null, got {_describe(value)}")


def _check_boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise WrongTypeError(f"expected boolean, got {_describe(value)}")
    return value


def _integer(value: Any, low: int, high: int, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise WrongTypeError(f"expected {label}, got {_describe(value)}")
    number = int(value)
    if not low <= number <= high:
        raise WrongTypeError(f"expected {label}, got integer {number} out of range")
    return number


def _check_int(value: Any) -> int:
    if type(value) is int and _INT_MIN <= value <= _INT_MAX:
        return value
    return _integer(value, _INT_MIN, _INT_MAX, "int (32-bit)")


def _check_long(value: Any) -> int:
    if type(value) is int and _LONG_MIN <= value <= _LONG_MAX:
        return value
    return _integer(value, _LONG_MIN, _LONG_MAX, "long (64-bit)")


def _real(value: Any, allow: bool, label: str, limit: float) -> float:
    """Slow path of float/double checks: ints, numpy scalars, named non-finite values."""
    if isinstance(value, str) and value in _NON_FINITE_NAMES:
        number = _NON_FINITE_NAMES[value]
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WrongTypeError(f"expected {label}, got {_describe(value)}")
    else:
        try:
            number = float(value)
        except OverflowError:
            raise WrongTypeError(f"expected {label}, got {_describe(value)} out of range") from None
    if not math.isfinite(number):
        if allow:
            return number
        raise NotFiniteError(f"expected finite {label}, got {_describe(value)}")
    if abs(number) > limit:
        raise WrongTypeError(f"expected {label}, got {_describe(value)} out of range")
    return number


def _check_double(value: Any) -> float:
    if type(value) is float and value - value == 0.0:
        return value
    return _real(value, False, "double", math.inf)


def _check_any_double(value: Any) -> float:
    return value if type(value) is float else _real(value, True, "double", math.inf)


def _check_float(value: Any) -> float:
    if type(value) is float and -_FLOAT_MAX <= value <= _FLOAT_MAX:
        return value
    return _real(value, False, "float", _FLOAT_MAX)


def _check_any_float(value: Any) -> float:
    if type(value) is float and (value - value != 0.0 or -_FLOAT_MAX <= value <= _FLOAT_MAX):
        return value  # non-finite, or finite within float32's range
    return _real(value, True, "float", _FLOAT_MAX)


def _check_string(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise WrongTypeError(f"expected string, got {_describe(value)}")


def _check_bytes(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise WrongTypeError("expected bytes as code points 0-255, got wider text") from None
    raise WrongTypeError(f"expected bytes, got {_describe(value)}")


def _first_match(candidates: list[tuple[int, Check]], value: Any, label: str) -> tuple[int, Any]:
    first: DecodeError | None = None
    for index, check in candidates:
        try:
            return index, check(value)
        except DecodeError as exc:
            first = first or exc
    raise WrongTypeError(f"expected {label}, got {_describe(value)}") from first


def _unknown_fields(value: Mapping[Any, Any], known: list[str], record: str) -> UnknownFieldError:
    extra = [str(key) for key in value if key not in known]
    others = f" (also unknown: {', '.join(extra[1:4])})" if len(extra) > 1 else ""
    names = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    detail = f"not a field of record {record}{others}; expected fields: {names}"
    return UnknownFieldError(detail, field=extra[0])


class _Checker(_Compiler[Check]):
    """Compiles checks ``value -> normalized value`` for JSON and Python records.

    A value that needs no change comes back as the same object, so a valid record is not
    copied. ``drop_unknown`` ignores unknown record fields instead of rejecting them (to
    resolve a record written with another version of the schema).
    """

    primitives = {
        "null": _check_null, "boolean": _check_boolean, "int": _check_int,
        "long": _check_long, "float": _check_float, "double": _check_double,
        "string": _check_string, "bytes": _check_bytes,
    }  # fmt: skip
    lenient = {"float": _check_any_float, "double": _check_any_double}

    def __init__(self, types: _Types, *, drop_unknown: bool = False) -> None:
        super().__init__(types)
        self.drop_unknown = drop_unknown

    def _fixed(self, spec: Any, allow: bool) -> Check:
        size, label = int(spec["size"]), self.types.label(spec)

        def check_fixed(value: Any) -> bytes:
            data = _check_bytes(value)
            if len(data) != size:
                raise WrongTypeError(f"expected {label} of {size} bytes, got {len(data)} bytes")
            return data

        return check_fixed

    def _enum(self, spec: Any, allow: bool) -> Check:
        symbols = frozenset(spec["symbols"])
        expected = f"one of {', '.join(spec['symbols'])} ({self.types.label(spec)})"

        def check_enum(value: Any) -> str:
            if type(value) is str and value in symbols:
                return value
            raise WrongTypeError(f"expected {expected}, got {_describe(value)}")

        return check_enum

    def _array(self, spec: Any, allow: bool) -> Check:
        check_item = self.build(spec["items"], allow)

        def check_array(value: Any) -> list[Any]:
            if not isinstance(value, list | tuple):
                raise WrongTypeError(f"expected array, got {_describe(value)}")
            items, same = [], type(value) is list
            for index, item in enumerate(value):
                try:
                    checked = check_item(item)
                except ContractError as exc:
                    raise exc._within(f"[{index}]") from None
                items.append(checked)
                same = same and checked is item
            return value if same else items  # type: ignore[return-value]  # same: a list

        return check_array

    def _map(self, spec: Any, allow: bool) -> Check:
        check_value = self.build(spec["values"], allow)

        def check_map(value: Any) -> dict[str, Any]:
            if not isinstance(value, Mapping):
                raise WrongTypeError(f"expected object (map), got {_describe(value)}")
            entries, same = {}, type(value) is dict
            for key, item in value.items():
                if type(key) is not str:
                    raise WrongTypeError(f"expected string map keys, got {_describe(key)}")
                try:
                    entries[key] = checked = check_value(item)
                except ContractError as exc:
                    raise exc._within(f"[{key}]") from None
                same = same and checked is item
            return value if same else entries  # type: ignore[return-value]  # same: a dict

        return check_map

    def _union(self, spec: Any, allow: bool) -> Check:
        select = self.selector(spec, allow)
        return lambda value: select(value)[1]

    def selector(self, spec: list[Any], allow: bool) -> Select:
        """Pick a union branch by the value's Python type (an int may widen to float or
        double, a string to bytes); when several branches fit, the first that checks wins."""
        branches = [(index, self.build(branch, allow)) for index, branch in enumerate(spec)]
        kinds = [self.types.kind(branch) for branch in spec]
        widen = {"float": int, "double": int, "bytes": str, "fixed": str}
        by_type: dict[type, list[tuple[int, Check]]] = {}
        for branch, kind in zip(branches, kinds, strict=True):
            by_type.setdefault(_PY_TYPES[kind], []).append(branch)
        for branch, kind in zip(branches, kinds, strict=True):
            if kind in widen:
                by_type.setdefault(widen[kind], []).append(branch)
        label = self.types.label(spec)

        def select(value: Any) -> tuple[int, Any]:
            candidates = by_type.get(type(value), branches)
            if len(candidates) == 1:
                index, check = candidates[0]
                return index, check(value)
            return _first_match(candidates, value, label)

        return select

    def _record(self, spec: Any, allow: bool) -> Check:
        fields = [self._field(field, allow) for field in spec["fields"]]
        probes = self._probes(spec["fields"], allow)
        normalize = _record_normalizer(fields, spec["name"], self.drop_unknown)
        count = len(fields)

        def check_record(value: Any) -> Record:
            if type(value) is dict and len(value) == count:
                try:
                    for probe in probes:
                        if not probe(value):
                            break
                    else:
                        return cast(Record, value)
                except ContractError:
                    pass  # normalize raises it again, with the field's path
            return normalize(value)  # type: ignore[no-any-return]  # normalize: a dict

        return check_record

    def _field(self, field: Mapping[str, Any], allow: bool) -> tuple[str, Check, Callable[[], Any]]:
        """``(name, check, default factory)``; the factory raises when there is no default."""
        name, check = field["name"], self.build_field(field, allow)
        if "default" not in field:
            expected = self.types.label(field["type"])

            def no_default() -> Any:
                detail = f"expected {expected}, got nothing (no default)"
                raise MissingFieldError(detail, field=name)

            return name, check, no_default
        try:
            default = check(field["default"])
        except ContractError as exc:
            raise SchemaError(f"default of field {name!r} does not fit its type: {exc}") from None
        if isinstance(default, dict | list):
            return name, check, lambda: copy.deepcopy(default)
        return name, check, lambda: default

    def _probes(self, fields: list[dict[str, Any]], allow: bool) -> list[Callable[[Record], bool]]:
        """Fast yes/no checks that a dict's fields are present and need no change."""
        probes = []
        for group in self.stretches(fields, allow):
            if len(group) > 1 and not self.field_allows(group[0], allow):
                probes.append(_doubles_probe([field["name"] for field in group]))
            else:
                probes += [
                    _field_probe(field["name"], self.build_field(field, allow)) for field in group
                ]
        return probes


def _field_probe(name: str, check: Check) -> Callable[[Record], bool]:
    def probe(record: Record) -> bool:
        item = record.get(name, _MISSING)
        return item is not _MISSING and check(item) is item

    return probe


def _doubles_probe(names: list[str]) -> Callable[[Record], bool]:
    get = itemgetter(*names)

    def probe(record: Record) -> bool:
        try:
            values = get(record)
        except KeyError:
            return False
        for value in values:
            if type(value) is not float:
                return False
        return math.isfinite(sum(values))

    return probe


def _record_normalizer(
    fields: list[tuple[str, Check, Callable[[], Any]]], full_name: str, drop_unknown: bool
) -> Check:
    """Check every field into a new dict: defaults filled, values widened, paths on errors."""
    known, record = [name for name, _, _ in fields], full_name.rpartition(".")[2]

    def normalize(value: Any) -> Record:
        if not isinstance(value, Mapping):
            raise WrongTypeError(f"expected object (record {record}), got {_describe(value)}")
        out: Record = {}
        seen = 0
        for name, check, default in fields:
            item = value.get(name, _MISSING)
            if item is _MISSING:
                out[name] = default()
                continue
            seen += 1
            try:
                out[name] = check(item)
            except ContractError as exc:
                raise exc._within(name) from None
        if seen != len(value) and not drop_unknown:
            raise _unknown_fields(value, known, record)
        return out

    return normalize


# --------------------------------------------------------------------------- binary writing

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


# --------------------------------------------------------------------------- the codec

_CONTENT_KINDS: Final[dict[str | bytes, str]] = {
    form: canonical
    for canonical, aliases in {
        AVRO: (AVRO, "avro/binary", "application/vnd.apache.avro+binary"),
        JSON: (JSON,),
    }.items()
    for alias in aliases
    for form in (alias, alias.encode())
}


def _content_kind(content_type: str | bytes) -> str:
    """The canonical content type, ignoring parameters and case (``; charset=utf-8``)."""
    text = content_type.decode("latin-1") if isinstance(content_type, bytes) else content_type
    kind = _CONTENT_KINDS.get(text.partition(";")[0].strip().lower())
    if kind is None:
        raise UnsupportedContentTypeError(f"expected content-type {AVRO} or {JSON}, got {text!r}")
    return kind


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


class Codec:
    """Encoder and decoder of one record schema (see the module docstring).

    ``max_bytes`` bounds an encoded message; ``allow_non_finite`` lets NaN and infinities
    through every float/double (a field's ``"allow_non_finite"`` attribute overrides it);
    ``writer_schemas`` are other versions of the schema whose Avro messages are decoded and
    resolved to this one: fields it lacks take their defaults, fields it does not know are
    dropped, ints widen to floats.
    """

    def __init__(
        self,
        schema: Mapping[str, Any],
        *,
        max_bytes: int = 1_048_576,
        allow_non_finite: bool = False,
        writer_schemas: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self.schema = _parse(schema)
        self.name: str = self.schema["name"]
        self.fingerprint = _fingerprint(self.schema)
        self.fingerprint_hex = self.fingerprint.hex()
        self.max_bytes = max_bytes
        self.allow_non_finite = allow_non_finite
        self._header = MAGIC + self.fingerprint
        types = _Types(self.schema)
        self._read = _Reader(types, max_bytes).build(self.schema, allow_non_finite)
        checker = _Checker(types)
        self._check = checker.build(self.schema, allow_non_finite)
        self._names_non_finite = checker.allows_non_finite
        self._write = _Writer(types, checker).build(self.schema, allow_non_finite)
        self._readers: dict[bytes, Read] = {self.fingerprint: self._read}
        for writer_schema in writer_schemas:
            self._add_writer(_parse(writer_schema))

    def __repr__(self) -> str:
        return f"Codec({self.name}, fingerprint={self.fingerprint_hex})"

    def _add_writer(self, writer: dict[str, Any]) -> None:
        """Read messages of ``writer`` with its own reader, then resolve them by value."""
        fingerprint = _fingerprint(writer)
        if fingerprint in self._readers:
            return
        read = _Reader(_Types(writer), self.max_bytes).build(writer, self.allow_non_finite)
        resolver = _Checker(_Types(self.schema), drop_unknown=True)
        resolve = resolver.build(self.schema, self.allow_non_finite)

        def read_resolved(buf: bytes, pos: int) -> tuple[Any, int]:
            record, end = read(buf, pos)
            return resolve(record), end

        self._readers[fingerprint] = read_resolved

    # -- decoding

    def decode(self, data: bytes, content_type: str | bytes | None = None) -> Record:
        """Decode by content type; without one, Avro if ``data`` starts ``C3 01``, else JSON.

        >>> Codec({"type": "record", "name": "R", "fields": []}).decode(b"{}", "text/csv")
        Traceback (most recent call last):
        schemas.codec.UnsupportedContentTypeError: expected content-type application/avro or application/json, got 'text/csv'
        """  # noqa: E501
        if content_type is None:
            kind = AVRO if data[:2] == MAGIC else JSON
        else:
            kind = _CONTENT_KINDS.get(content_type) or _content_kind(content_type)
        return self.decode_avro(data) if kind is AVRO else self.decode_json(data)

    def decode_avro(self, data: bytes) -> Record:
        """Decode one single-object Avro message (its size is checked first)."""
        size = len(data)
        if size > self.max_bytes:
            raise OversizeError(f"expected at most {self.max_bytes} bytes, got {size}")
        if type(data) is not bytes:
            data = bytes(data)
        read = self._read if data.startswith(self._header) else self._other_reader(data)
        try:
            record, end = read(data, HEADER_SIZE)
        except RecursionError:
            raise MalformedError("expected bounded nesting, got too deep") from None
        if end != size:
            raise MalformedError(f"expected the record to end at byte {end}, got {size - end} more")
        return record  # type: ignore[no-any-return]  # a record reader returns a dict

    def _other_reader(self, data: bytes) -> Read:
        """The reader of another known writer schema, or the error the header shows."""
        read = self._readers.get(data[2:HEADER_SIZE]) if data[:2] == MAGIC else None
        if read is None:
            raise self._header_error(data)
        return read

    def _header_error(self, data: bytes) -> DecodeError:
        if not data.startswith(MAGIC) and not MAGIC.startswith(data):
            hint = " (looks like JSON)" if data.lstrip()[:1] == b"{" else ""
            got = data[:2].hex(" ")
            return BadMagicError(f"expected Avro single-object marker c3 01, got {got}{hint}")
        if len(data) < HEADER_SIZE:
            return TruncatedError(f"expected a {HEADER_SIZE}-byte header, got {len(data)} bytes")
        got = data[2:HEADER_SIZE].hex()
        error = UnknownFingerprintError(
            f"expected schema fingerprint {self.fingerprint_hex} ({self.name}), got {got}"
        )
        error.fingerprint = got
        return error

    def decode_json(self, data: bytes | str) -> Record:
        """Decode one JSON object and check it against the schema (its size is checked first)."""
        if len(data) > self.max_bytes:
            raise OversizeError(f"expected at most {self.max_bytes} bytes, got {len(data)}")
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise MalformedError(f"expected a JSON object, got invalid JSON ({exc})") from None
        try:
            return self._check(value)  # type: ignore[no-any-return]  # record check: a dict
        except RecursionError:
            raise MalformedError("expected bounded nesting, got too deep") from None

    # -- encoding

    def check(self, record: Mapping[str, Any]) -> Record:
        """``record`` checked against the schema (defaults filled, ints widened where a
        double is declared; the record itself when nothing changes), else EncodeError."""
        try:
            return self._check(record)  # type: ignore[no-any-return]  # record check: a dict
        except DecodeError as exc:
            raise EncodeError(exc.detail, field=exc.field) from exc
        except RecursionError:
            raise EncodeError("expected bounded nesting, got too deep") from None

    def encode_avro(self, record: Mapping[str, Any]) -> bytes:
        """Check ``record`` and encode it as a single-object Avro message."""
        checked = self.check(record)
        out = bytearray(self._header)
        try:
            self._write(checked, out)
        except UnicodeEncodeError as exc:
            raise EncodeError(f"expected UTF-8 encodable text, got {exc.reason}") from exc
        return bytes(out)

    def encode_json(self, record: Mapping[str, Any]) -> bytes:
        """Check ``record`` and encode it as compact UTF-8 JSON that :meth:`decode_json` reads."""
        checked: Any = self.check(record)
        if self._names_non_finite:
            checked = _name_non_finite(checked)
        try:
            return orjson.dumps(checked, default=_bytes_as_latin1)
        except orjson.JSONEncodeError as exc:
            raise EncodeError(f"expected JSON-encodable values, got {exc}") from exc


def _bytes_as_latin1(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(f"expected a JSON value, got {type(value).__name__}")


def _name_non_finite(value: Any) -> Any:
    """Replace NaN and infinities, which JSON lacks, by their names (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _name_non_finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_name_non_finite(item) for item in value]
    return value

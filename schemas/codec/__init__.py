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
fault, its path in ``field``; the hierarchy is drawn in :mod:`schemas.codec.errors`.

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

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import orjson

from schemas.codec import errors
from schemas.codec._check import _Checker
from schemas.codec._read import Read, _Reader
from schemas.codec._types import Record, _fingerprint, _parse, _Types
from schemas.codec._write import _Writer
from schemas.codec.errors import (
    BadMagicError,
    ContractError,
    DecodeError,
    EncodeError,
    MalformedError,
    MissingFieldError,
    NotFiniteError,
    OversizeError,
    SchemaError,
    TruncatedError,
    UnknownFieldError,
    UnknownFingerprintError,
    UnsupportedContentTypeError,
    WrongTypeError,
)

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

AVRO: Final = "application/avro"
JSON: Final = "application/json"
MAGIC: Final = b"\xc3\x01"
HEADER_SIZE: Final = 10

# The errors are defined in schemas.codec.errors but named by this front door, as before the
# split: tracebacks, reprs, pickles and the doctests say ``schemas.codec.WrongTypeError``.
for _name in errors.__all__:
    getattr(errors, _name).__module__ = __name__
del _name

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


class Codec:
    """Encoder and decoder of one record schema (see the module docstring).

    ``max_bytes`` bounds an encoded message; ``allow_non_finite`` lets NaN and infinities
    through every float/double (a field's ``"allow_non_finite"`` attribute overrides it);
    ``writer_schemas`` are other versions of the schema whose Avro messages are decoded and
    resolved to this one: fields it lacks take their defaults, fields it does not know are
    dropped, ints widen to floats. ``coerce`` is the contract's JSON convenience: applied
    to a parsed JSON value (and to a record to encode) before the schema check, it returns
    the value to check -- a new object when it changes something (feedback reads a boolean
    label as ``"True"``, :mod:`schemas.labels`).
    """

    def __init__(
        self,
        schema: Mapping[str, Any],
        *,
        max_bytes: int = 1_048_576,
        allow_non_finite: bool = False,
        writer_schemas: Iterable[Mapping[str, Any]] = (),
        coerce: Callable[[Any], Any] | None = None,
    ) -> None:
        self.schema = _parse(schema)
        self._coerce = coerce
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
        if self._coerce is not None:
            value = self._coerce(value)
        try:
            return self._check(value)  # type: ignore[no-any-return]  # record check: a dict
        except RecursionError:
            raise MalformedError("expected bounded nesting, got too deep") from None

    # -- encoding

    def check(self, record: Mapping[str, Any]) -> Record:
        """``record`` checked against the schema (defaults filled, ints widened where a
        double is declared; the record itself when nothing changes), else EncodeError."""
        if self._coerce is not None:
            record = self._coerce(record)
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

    def encode_avro_trusted(self, record: Mapping[str, Any]) -> bytes:
        """Encode a record this process built itself, skipping the validation pass.

        For hot paths that construct their own records (the scorer's replies): about
        half the cost of :meth:`encode_avro`. A record that does not fit the schema still
        raises :class:`EncodeError` (from the writer), but with a less precise message.
        """
        out = bytearray(self._header)
        try:
            self._write(record, out)
        except (UnicodeEncodeError, TypeError, ValueError, KeyError, AttributeError) as exc:
            raise EncodeError(f"record does not fit {self.name}: {exc}") from exc
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

"""Errors of the codec: one root, :class:`ContractError`, and a few precise subclasses.

Every error has a stable ``reason`` (the DLQ reason code) and, when one field is at fault,
its path in ``field`` (``champion.error.code``, ``tags[3]``, ``labels[env]``)::

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

Import them from :mod:`schemas.codec`, which names them (``schemas.codec.WrongTypeError``).

Examples
--------
>>> error = WrongTypeError("expected double, got string 'abc'", field="x")
>>> error.reason, str(error), isinstance(error, DecodeError)
('wrong_type', "field 'x': expected double, got string 'abc'", True)
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadMagicError",
    "ContractError",
    "DecodeError",
    "EncodeError",
    "MalformedError",
    "MissingFieldError",
    "NotFiniteError",
    "OversizeError",
    "SchemaError",
    "TruncatedError",
    "UnknownFieldError",
    "UnknownFingerprintError",
    "UnsupportedContentTypeError",
    "WrongTypeError",
]


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

"""Data contracts of modelstream: Avro schemas, the codec, and the ClickHouse DDL.

Nothing here does network I/O. ``schemas.codec`` turns bytes into validated records and
back (Avro single-object encoding or JSON checked against the same schema), raising a
``schemas.codec.DecodeError`` subclass that says what was expected and what came.
``schemas.labels`` is the label contract: which feedback labels are accepted and the class
text a label and a prediction are compared by (``label_class``), in Python and in SQL.
"""

from schemas.codec import (
    AVRO,
    JSON,
    BadMagicError,
    Codec,
    ContractError,
    DecodeError,
    EncodeError,
    MalformedError,
    MissingFieldError,
    NotFiniteError,
    OversizeError,
    Record,
    SchemaError,
    TruncatedError,
    UnknownFieldError,
    UnknownFingerprintError,
    UnsupportedContentTypeError,
    WrongTypeError,
)
from schemas.contracts import codec_for, load_schema, sample_record, schema_names
from schemas.labels import label_class

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
    "codec_for",
    "label_class",
    "load_schema",
    "sample_record",
    "schema_names",
]

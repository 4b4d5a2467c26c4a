"""schemas.codec: wire format, fingerprint, every error class, and fuzzing."""

from __future__ import annotations

import contextlib
import io
import math
import struct
from typing import Any, TypeVar

import fastavro
import orjson
import pytest
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st

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
    SchemaError,
    TruncatedError,
    UnknownFieldError,
    UnknownFingerprintError,
    UnsupportedContentTypeError,
    WrongTypeError,
)
from schemas.contracts import codec_for, sample_record

FEATURES = [f"x{i}" for i in range(10)]
TEN_DOUBLES: dict[str, Any] = {
    "type": "record",
    "name": "Features",
    "namespace": "test",
    "fields": [{"name": "id", "type": "string"}]
    + [{"name": name, "type": "double"} for name in FEATURES],
}
POINT: dict[str, Any] = {
    "type": "record",
    "name": "Point",
    "namespace": "test",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "x", "type": "double"},
        {"name": "n", "type": "int"},
        {"name": "tag", "type": ["null", "string"], "default": None},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b"]},
         "default": "a"},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
        {"name": "raw", "type": "bytes", "default": ""},
    ],
}  # fmt: skip
POINT_RECORD = {
    "id": "p1",
    "x": 1.5,
    "n": 3,
    "tag": None,
    "kind": "b",
    "tags": ["u"],
    "raw": b"\x00",
}


@pytest.fixture(scope="module")
def point() -> Codec:
    return Codec(POINT)


ID_X = b"\x02p" + b"\0" * 8  # Point's id "p" and x 0.0, in Avro binary


def body(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """The Avro body fastavro writes (an independent encoder, and one that writes NaN)."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


E = TypeVar("E", bound=ContractError)


def raises(exc_type: type[E], call: Any, *args: Any) -> E:
    with pytest.raises(exc_type) as info:
        call(*args)
    assert type(info.value) is exc_type
    return info.value


# --------------------------------------------------------------------------- fingerprint

EMPTY64 = 0xC15D213AA4D7A795


def rabin(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification's reference code computes it."""
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY64 & -(fp & 1))
        table.append(fp)
    fp = EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


# Published with Avro's conformance data (share/test/data/schema-tests.txt) as signed longs.
SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ('{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
     7843277075252814651),
    ('{"name":"PigValue","type":"record","fields":[{"name":"value","type":'
     '["null","int","long","PigValue"]}]}', -1759257747318642341),
]  # fmt: skip


@pytest.mark.parametrize(("canonical", "signed"), SPEC_VECTORS)
def test_rabin_reproduces_the_spec_vectors(canonical: str, signed: int) -> None:
    assert rabin(canonical.encode()) == signed % 2**64


@pytest.mark.parametrize(("canonical", "signed"), [v for v in SPEC_VECTORS if "record" in v[0]])
def test_codec_fingerprint_is_the_spec_value_little_endian(canonical: str, signed: int) -> None:
    codec = Codec(orjson.loads(canonical))
    assert codec.fingerprint == (signed % 2**64).to_bytes(8, "little")
    assert codec.fingerprint_hex == codec.fingerprint.hex()


def test_fingerprint_is_rabin_of_parsing_canonical_form_and_heads_each_message() -> None:
    codec = Codec(POINT)
    expected = rabin(to_parsing_canonical_form(codec.schema).encode()).to_bytes(8, "little")
    assert codec.fingerprint == expected
    assert codec.encode_avro(POINT_RECORD)[:10] == b"\xc3\x01" + expected


def test_fingerprint_ignores_docs_defaults_and_custom_attributes() -> None:
    fields = [{**field, "doc": "f", "allow_non_finite": True} for field in TEN_DOUBLES["fields"]]
    documented = {**TEN_DOUBLES, "doc": "d", "fields": fields}
    assert Codec(documented).fingerprint == Codec(TEN_DOUBLES).fingerprint


# --------------------------------------------------------------------------- round trips


def test_avro_body_is_plain_avro_binary(point: Codec) -> None:
    assert point.encode_avro(POINT_RECORD)[10:] == body(POINT, POINT_RECORD)
    assert point.decode_avro(point.encode_avro(POINT_RECORD)) == POINT_RECORD


def test_json_fills_defaults_and_widens_ints(point: Codec) -> None:
    decoded = point.decode_json(b'{"id": "p", "x": 2, "n": 1}')
    assert decoded == {
        "id": "p",
        "x": 2.0,
        "n": 1,
        "tag": None,
        "kind": "a",
        "tags": [],
        "raw": b"",
    }
    assert isinstance(decoded["x"], float)


def test_mutable_defaults_are_not_shared(point: Codec) -> None:
    first = point.decode_json(b'{"id": "p", "x": 2, "n": 1}')
    first["tags"].append("changed")
    assert point.decode_json(b'{"id": "p", "x": 2, "n": 1}')["tags"] == []


def test_bytes_travel_in_json_as_latin1_text(point: Codec) -> None:
    record = {**POINT_RECORD, "raw": bytes(range(256))}
    assert point.decode_json(point.encode_json(record)) == record


def test_check_returns_a_valid_record_itself_and_never_mutates(point: Codec) -> None:
    assert point.check(POINT_RECORD) is POINT_RECORD
    given_record = {"id": "p", "x": 2, "n": 1}
    checked = point.check(given_record)
    assert given_record == {"id": "p", "x": 2, "n": 1} and checked["x"] == 2.0


def test_numpy_scalars_are_accepted_on_encode() -> None:
    np = pytest.importorskip("numpy")
    codec = Codec(TEN_DOUBLES)
    record = {"id": "a", **{name: np.float32(1.5) for name in FEATURES}}
    record["x0"] = np.int64(2)
    assert codec.decode_avro(codec.encode_avro(record)) == {
        "id": "a",
        **dict.fromkeys(FEATURES, 1.5),
        "x0": 2.0,
    }


def test_union_picks_branch_by_value_type() -> None:
    reply = codec_for("reply")
    base = {"request_id": "r", "model": "m", "task": "regression", "served_by": "champion",
            "latency_ms": 1.0, "created_at": 0}  # fmt: skip
    for prediction, expected in [("yes", "yes"), (2.5, 2.5), (3, 3.0), (None, None)]:
        decoded = reply.decode_avro(reply.encode_avro({**base, "prediction": prediction}))
        assert decoded["prediction"] == expected and type(decoded["prediction"]) is type(expected)
    error = raises(EncodeError, reply.encode_avro, {**base, "prediction": True})
    assert str(error) == "field 'prediction': expected null | string | double, got boolean true"


def test_decode_dispatches_on_content_type(point: Codec) -> None:
    avro, json = point.encode_avro(POINT_RECORD), point.encode_json(POINT_RECORD)
    assert point.decode(avro, AVRO) == point.decode(avro, b"avro/binary") == POINT_RECORD
    assert (
        point.decode(json, JSON)
        == point.decode(json, "Application/JSON; charset=utf-8")
        == POINT_RECORD
    )
    assert point.decode(avro) == point.decode(json) == POINT_RECORD  # sniffed without one
    error = raises(UnsupportedContentTypeError, point.decode, json, b"text/csv")
    assert error.reason == "unsupported_content_type" and "got 'text/csv'" in str(error)


def test_older_writer_schema_resolves_to_the_reader() -> None:
    old = {"type": "record", "name": "Point", "namespace": "test", "fields": [
        {"name": "id", "type": "string"}, {"name": "x", "type": "float"},
        {"name": "n", "type": "int"}, {"name": "gone", "type": "string"}]}  # fmt: skip
    message = Codec(old).encode_avro({"id": "p", "x": 0.5, "n": 1, "gone": "?"})
    raises(UnknownFingerprintError, Codec(POINT).decode_avro, message)
    resolved = Codec(POINT, writer_schemas=[old]).decode_avro(message)
    assert resolved == {
        "id": "p",
        "x": 0.5,
        "n": 1,
        "tag": None,
        "kind": "a",
        "tags": [],
        "raw": b"",
    }


def test_recursive_schema_round_trips() -> None:
    codec = Codec(orjson.loads(SPEC_VECTORS[-1][0]))
    record = {"value": {"value": {"value": 7}}}
    assert codec.decode_avro(codec.encode_avro(record)) == record
    assert codec.decode_json(codec.encode_json(record)) == record


# --------------------------------------------------------------------------- non-finite


def test_nan_in_avro_is_rejected_with_its_field() -> None:
    codec = Codec(TEN_DOUBLES)
    record = {"id": "a", **dict.fromkeys(FEATURES, 0.0), "x3": math.nan}
    message = b"\xc3\x01" + codec.fingerprint + body(TEN_DOUBLES, record)
    error = raises(NotFiniteError, codec.decode_avro, message)
    assert str(error) == "field 'x3': expected finite double, got nan"
    assert error.reason == "not_finite"


def test_infinity_in_json_is_rejected_unless_allowed() -> None:
    message = b'{"id": "a", "x": "-Infinity", "n": 1}'
    error = raises(NotFiniteError, Codec(POINT).decode_json, message)
    assert error.field == "x"
    assert Codec(POINT, allow_non_finite=True).decode_json(message)["x"] == -math.inf
    raises(EncodeError, Codec(POINT).encode_avro, {**POINT_RECORD, "x": math.inf})


def test_field_attribute_allows_non_finite_for_that_field_only() -> None:
    fields = [
        {**field, "allow_non_finite": field["name"] == "x1"} for field in TEN_DOUBLES["fields"]
    ]
    codec = Codec({**TEN_DOUBLES, "fields": fields})
    record = {"id": "a", **dict.fromkeys(FEATURES, 1.0), "x1": math.nan}
    assert math.isnan(codec.decode_avro(codec.encode_avro(record))["x1"])
    assert math.isnan(codec.decode_json(codec.encode_json(record))["x1"])
    assert b'"x1":"NaN"' in codec.encode_json(record)
    assert raises(EncodeError, codec.encode_avro, {**record, "x2": math.inf}).field == "x2"


def test_json_number_beyond_double_range_is_malformed() -> None:
    assert raises(MalformedError, Codec(POINT).decode_json, b'{"id":"a","x":1e400,"n":1}')


# --------------------------------------------------------------------------- each error class


def test_oversize_is_checked_before_parsing() -> None:
    small = Codec(POINT, max_bytes=16)
    assert raises(OversizeError, small.decode_avro, b"\x00" * 17).reason == "oversize"
    assert (
        str(raises(OversizeError, small.decode_json, b"[" * 17))
        == "expected at most 16 bytes, got 17"
    )


def test_every_prefix_of_a_message_is_truncated(point: Codec) -> None:
    message = point.encode_avro(POINT_RECORD)
    for end in range(len(message)):
        assert raises(TruncatedError, point.decode_avro, message[:end]).reason == "truncated"


def test_truncation_names_the_field(point: Codec) -> None:
    message = point.encode_avro({**POINT_RECORD, "tags": ["long enough"]})
    error = raises(TruncatedError, point.decode_avro, message[:-4])
    assert str(error) == "field 'tags': length 11 runs past the end (10 bytes left)"


def test_bad_magic_says_what_came(point: Codec) -> None:
    error = raises(BadMagicError, point.decode_avro, b'{"id": "p"}')
    assert error.reason == "malformed" and isinstance(error, MalformedError)
    assert str(error) == "expected Avro single-object marker c3 01, got 7b 22 (looks like JSON)"


def test_unknown_fingerprint_names_both(point: Codec) -> None:
    other = Codec(TEN_DOUBLES).encode_avro({"id": "a", **dict.fromkeys(FEATURES, 0.0)})
    error = raises(UnknownFingerprintError, point.decode_avro, other)
    assert error.fingerprint == other[2:10].hex()
    expected = f"expected schema fingerprint {point.fingerprint_hex} (test.Point)"
    assert str(error) == f"{expected}, got {other[2:10].hex()}"


@pytest.mark.parametrize(
    ("body_bytes", "message"),
    [
        (ID_X + b"\x02\x00\x02\x00\x00!", "expected the record to end at byte 25, got 1 more"),
        (ID_X + b"\x02\x04", "field 'tag': expected index 0..1 of null | string, got 2"),
        (ID_X + b"\x02\x00\x06", "field 'kind': expected index 0..1 of enum Kind, got 3"),
        (b"\x02\xff" + b"\0" * 8, "field 'id': expected UTF-8 text, got invalid start byte"),
        (b"\x01", "field 'id': expected a length, got -1"),
        (ID_X + b"\xff" * 11, "field 'n': expected a varint of at most 10 bytes, got more"),
        (ID_X + b"\x80\x80\x80\x80\x10", "field 'n': expected int (32-bit), got 2147483648"),
    ],
)  # fmt: skip
def test_malformed_avro_says_what_was_expected(
    point: Codec, body_bytes: bytes, message: str
) -> None:
    error = raises(MalformedError, point.decode_avro, b"\xc3\x01" + point.fingerprint + body_bytes)
    assert str(error) == message and error.reason == "malformed"


def test_invalid_json_is_malformed(point: Codec) -> None:
    assert str(raises(MalformedError, point.decode_json, b'{"id":')).startswith(
        "expected a JSON object, got invalid JSON"
    )


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (b'{"id": "p", "x": "abc", "n": 1}', "field 'x': expected double, got string 'abc'"),
        (b'{"id": "p", "x": 1, "n": true}', "field 'n': expected int (32-bit), got boolean true"),
        (b'{"id": "p", "x": 1, "n": 2147483648}',
         "field 'n': expected int (32-bit), got integer 2147483648 out of range"),
        (b'{"id": "p", "x": 1, "n": 1.5}', "field 'n': expected int (32-bit), got number 1.5"),
        (b'{"id": "p", "x": 1, "n": 1, "tags": ["a", 5]}',
         "field 'tags[1]': expected string, got integer 5"),
        (b'{"id": "p", "x": 1, "n": 1, "kind": "c"}',
         "field 'kind': expected one of a, b (enum Kind), got string 'c'"),
        (b'{"id": "p", "x": 1, "n": 1, "tag": 3}',
         "field 'tag': expected null | string, got integer 3"),
        (b'{"id": "p", "x": 1, "n": 1, "raw": "\\u0100"}',
         "field 'raw': expected bytes as code points 0-255, got wider text"),
        (b'{"id": null, "x": 1, "n": 1}', "field 'id': expected string, got null"),
        (b"[1, 2]", "expected object (record Point), got array of 2"),
    ],
)  # fmt: skip
def test_wrong_type_says_expected_and_got(point: Codec, message: bytes, text: str) -> None:
    error = raises(WrongTypeError, point.decode_json, message)
    assert str(error) == text and error.reason == "wrong_type"


def test_wrong_type_deep_in_a_built_in_schema_has_the_full_path() -> None:
    log = codec_for("prediction_log")
    record = {
        **log.check(_minimal_log()),
        "challenger": {"version": 1, "error": {"code": 5, "message": "m", "stage": "score"}},
    }
    error = raises(WrongTypeError, log.decode_json, orjson.dumps(record))
    assert str(error) == "field 'challenger.error.code': expected string, got integer 5"


def _minimal_log() -> dict[str, Any]:
    return {"request_id": "r", "model": "m", "ts": 0, "source_topic": "t", "source_partition": 0,
            "source_offset": 0, "features": {}, "champion": {"version": 1}, "served_by": "champion",
            "schema_fingerprint": "00", "latency_ms": 0.0}  # fmt: skip


def test_missing_field_names_it(point: Codec) -> None:
    error = raises(MissingFieldError, point.decode_json, b'{"x": 1, "n": 1}')
    assert str(error) == "field 'id': expected string, got nothing (no default)"
    assert error.reason == "missing_field" and error.field == "id"


def test_unknown_field_names_it_and_the_expected_ones(point: Codec) -> None:
    error = raises(
        UnknownFieldError, point.decode_json, b'{"id": "p", "x": 1, "n": 1, "y": 2, "z": 3}'
    )
    assert error.field == "y" and error.reason == "unknown_field"
    assert str(error) == ("field 'y': not a field of record Point (also unknown: z); "
                          "expected fields: id, x, n, tag, kind, tags, raw")  # fmt: skip


def test_encode_error_keeps_the_precise_cause(point: Codec) -> None:
    error = raises(EncodeError, point.encode_json, {**POINT_RECORD, "n": "3"})
    assert error.reason == "encode" and error.field == "n"
    assert isinstance(error.__cause__, WrongTypeError)
    assert (
        raises(EncodeError, point.encode_avro, {**POINT_RECORD, "id": "\ud800"}).reason == "encode"
    )


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": "int"},
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "nope"}]},
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": "x"}]},
    ],
)
def test_unusable_schema_is_a_schema_error(schema: dict[str, Any]) -> None:
    assert raises(SchemaError, Codec, schema).reason == "bad_schema"


def test_every_decode_error_is_a_contract_error_with_a_distinct_reason() -> None:
    classes = [OversizeError, UnsupportedContentTypeError, TruncatedError, MalformedError,
               UnknownFingerprintError, WrongTypeError, MissingFieldError, UnknownFieldError,
               NotFiniteError]  # fmt: skip
    assert all(issubclass(cls, DecodeError) and issubclass(cls, ContractError) for cls in classes)
    assert len({cls.reason for cls in classes}) == len(classes)
    assert not issubclass(EncodeError, DecodeError)


# --------------------------------------------------------------------------- memory guards


def test_huge_array_count_is_refused_before_allocating(point: Codec) -> None:
    header = b"\xc3\x01" + point.fingerprint + b"\x02p" + b"\0" * 8 + b"\x02\x00\x02"
    huge = b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f"  # zigzag varint of 2**62 - 1
    error = raises(TruncatedError, point.decode_avro, header + huge + b"\x02a")
    assert error.field == "tags"
    negative = b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x02"  # count -2**62 then a block size
    raises(TruncatedError, point.decode_avro, header + negative + b"\x02a")


def test_huge_count_of_zero_size_items_is_bounded() -> None:
    nulls = Codec({"type": "record", "name": "N", "fields": [
        {"name": "a", "type": {"type": "array", "items": "null"}}]}, max_bytes=1000)  # fmt: skip
    assert nulls.decode_avro(nulls.encode_avro({"a": [None] * 500})) == {"a": [None] * 500}
    message = b"\xc3\x01" + nulls.fingerprint + b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f\x00"
    assert "empty items" in str(raises(MalformedError, nulls.decode_avro, message))


def test_huge_string_length_is_truncated_not_allocated(point: Codec) -> None:
    message = b"\xc3\x01" + point.fingerprint + b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7fxyz"
    assert raises(TruncatedError, point.decode_avro, message).field == "id"


# --------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip
point_like = st.dictionaries(
    st.sampled_from([f["name"] for f in POINT["fields"]] + ["y"]), json_values
)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_random_bytes_only_raise_decode_errors(point: Codec, data: bytes) -> None:
    for decode in (point.decode_avro, point.decode_json, point.decode):
        with contextlib.suppress(DecodeError):
            decode(data)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["prediction_log", "dlq_record", "reply", "metric"]),
    tail=st.binary(max_size=200),
)
def test_random_bodies_behind_a_valid_header_only_raise_decode_errors(
    name: str, tail: bytes
) -> None:
    codec = codec_for(name)
    with contextlib.suppress(DecodeError):
        codec.decode_avro(b"\xc3\x01" + codec.fingerprint + tail)


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(10, 400), st.integers(0, 255)), min_size=1, max_size=4))
def test_corrupted_messages_only_raise_decode_errors(flips: list[tuple[int, int]]) -> None:
    codec = codec_for("prediction_log")
    message = bytearray(codec.encode_avro(sample_record("prediction_log")))
    for position, value in flips:
        message[position % len(message)] = value
    with contextlib.suppress(DecodeError):
        codec.decode_avro(bytes(message))


@settings(max_examples=300, deadline=None)
@given(value=json_values | point_like)
def test_random_json_only_raises_decode_errors(point: Codec, value: Any) -> None:
    try:
        decoded = point.decode_json(orjson.dumps(value))
    except DecodeError:
        return
    assert point.decode_avro(point.encode_avro(decoded)) == decoded


ten_doubles = st.fixed_dictionaries(
    {
        "id": st.text(max_size=40),
        **{name: st.floats(allow_nan=False, allow_infinity=False) for name in FEATURES},
    }
)


@settings(max_examples=300, deadline=None)
@given(record=ten_doubles)
def test_ten_doubles_round_trip_in_both_formats(record: dict[str, Any]) -> None:
    codec = Codec(TEN_DOUBLES)
    encoded = codec.encode_avro(record)
    assert encoded[10:] == body(TEN_DOUBLES, record)
    assert codec.decode_avro(encoded) == record
    assert codec.decode_json(codec.encode_json(record)) == record
    assert struct.unpack_from("<10d", encoded, len(encoded) - 80) == tuple(
        record[n] for n in FEATURES
    )


def test_trusted_encoding_matches_checked_encoding_for_every_contract() -> None:
    from schemas.contracts import codec_for, sample_record, schema_names

    for name in schema_names():
        codec = codec_for(name)
        record = sample_record(name)
        assert codec.encode_avro_trusted(record) == codec.encode_avro(record), name


def test_trusted_encoding_still_refuses_a_record_that_does_not_fit() -> None:
    from schemas.contracts import codec_for

    with pytest.raises(EncodeError):
        codec_for("reply").encode_avro_trusted({"request_id": 5})

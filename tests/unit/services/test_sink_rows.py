"""services.sink.rows: feedback is decoded with the monitor's contract before it lands."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from schemas.codec import DecodeError, UnsupportedContentTypeError, WrongTypeError
from schemas.contracts import codec_for
from services.sink.rows import TABLES, Position, decode_value

JSON = {"content-type": b"application/json"}
FEEDBACK = TABLES["feedback"]


def land(value: bytes, headers: dict[str, bytes]) -> dict[str, Any]:
    pos = Position("ms.loan.feedback", 0, 7, None, headers)
    row = FEEDBACK.to_row(decode_value(value, headers, "feedback"), pos)
    return dict(zip(FEEDBACK.columns, row, strict=True))


def feedback(label: Any, **extra: Any) -> bytes:
    return orjson.dumps({"request_id": "r1", "model": "loan", "label": label, "ts": 5} | extra)


@pytest.mark.parametrize(
    ("label", "text", "number"),
    [
        (True, "True", None),
        (False, "False", None),
        ("true", "true", None),  # kept as sent; SQL's label_class reads it as 'True'
        (1, None, 1.0),
        (2.5, None, 2.5),
        (None, None, None),
    ],
)
def test_labels_land_as_the_monitor_reads_them(label: Any, text: Any, number: Any) -> None:
    for headers in (JSON, {}):  # by header, or sniffed
        row = land(feedback(label), headers)
        assert (row["label_string"], row["label_number"]) == (text, number)


def test_avro_feedback_lands_alike() -> None:
    record = {"request_id": "r1", "model": "loan", "label": True, "ts": 5}
    row = land(codec_for("feedback").encode_avro(record), {"content-type": b"application/avro"})
    assert row["label_string"] == "True"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (feedback({"yes": True}), WrongTypeError),
        (feedback([True]), WrongTypeError),
        (
            feedback(True, label_type="bool"),
            DecodeError,
        ),  # unknown field: the monitor refuses it too
        (b"[1, 2]", DecodeError),
    ],
)
def test_what_the_monitor_refuses_the_sink_refuses(value: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_value(value, JSON, "feedback")
    with pytest.raises(error):
        codec_for("feedback").decode(value)  # the monitor's decoding


def test_content_type_parameters_and_unknown_types() -> None:
    assert land(feedback(True), {"content-type": b"application/json; charset=utf-8"})
    with pytest.raises(UnsupportedContentTypeError):
        decode_value(feedback(True), {"content-type": b"text/csv"}, "feedback")


@pytest.mark.parametrize("ts", [10**18, -(10**15), "soon", True, float("nan")])
def test_a_timestamp_clickhouse_cannot_hold_is_unlandable_not_a_crash(ts: Any) -> None:
    from schemas.contracts import sample_record
    from services.sink.landing import UnlandableError

    record = sample_record("prediction_log") | {"ts": ts}
    pos = Position("ms.m.predictions", 0, 1, None, JSON)
    with pytest.raises(UnlandableError) as refused:
        TABLES["predictions"].to_row(record, pos)
    assert refused.value.reason == "bad_timestamp"

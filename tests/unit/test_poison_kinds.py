"""The poison suite's records are what they claim (no network): deterministic per seed, and
each record the suite calls bad is refused by the codec (or routing) that the stage uses,
each one it calls good is accepted. If a generator drifted, the integration suite would
test nothing while passing."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from schemas.codec import Codec, DecodeError
from schemas.contracts import decode_value
from tests.integration.poison_support import (
    GHOST,
    KINDS,
    LOG_KINDS,
    REQUEST_SCHEMA,
    feedback_poison,
    good_feedback,
    good_predictions,
    good_requests,
    good_summaries,
    prediction_poison,
    request_poison,
    summary_poison,
)

FORBIDDEN = ["p.m.requests", "p._routing", "p.missing.replies"]


def _headers(record: object) -> dict[str, bytes | None]:
    return dict(record.headers)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", KINDS)
def test_request_poison_is_deterministic_and_keyed_uniquely(kind: str) -> None:
    first = request_poison(kind, 50, 7, "m", FORBIDDEN)
    again = request_poison(kind, 50, 7, "m", FORBIDDEN)
    if kind == "huge_ts":  # minutes ahead of the clock: the only part that is not the seed's
        first, again = ([dataclasses.replace(r, timestamp=0) for r in rs] for rs in (first, again))
    assert first == again
    assert len({r.key for r in first}) == len(first)
    assert {r.kind for r in first} == {kind}


@pytest.mark.parametrize("kind", KINDS)
def test_bad_requests_are_refused_by_the_scorers_codec_good_ones_decode(kind: str) -> None:
    codec = Codec(REQUEST_SCHEMA)
    for record in request_poison(kind, 40, 7, "m", FORBIDDEN):
        content_type = _headers(record).get("content-type")
        if kind in ("unknown_model", "bad_reply_to"):  # the value is fine: routing refuses it
            codec.decode(record.value, content_type)
            assert record.bad and (record.model == GHOST or _headers(record).get("reply-to"))
            continue
        if record.bad:
            with pytest.raises(DecodeError):
                codec.decode(record.value, content_type)
        else:
            assert set(codec.decode(record.value, content_type)) >= {"x0", "group"}


def test_good_requests_decode() -> None:
    codec = Codec(REQUEST_SCHEMA)
    for record in good_requests(30, 1, "m"):
        assert codec.decode(record.value, _headers(record)["content-type"])["x0"] is not None


@pytest.mark.parametrize("kind", LOG_KINDS)
def test_bad_feedback_is_refused_by_the_contract(kind: str) -> None:
    for record in feedback_poison(kind, 30, 5):
        if record.bad and kind not in ("huge_ts", "negative_ts"):
            with pytest.raises(DecodeError):
                decode_value(record.value, _headers(record), "feedback")
        elif not record.bad:
            assert decode_value(record.value, _headers(record), "feedback")["request_id"]


@pytest.mark.parametrize("kind", ["huge_ts", "negative_ts"])
def test_out_of_range_timestamps_are_outside_1900_to_2299(kind: str) -> None:
    for record in prediction_poison(kind, 30, 5) + feedback_poison(kind, 30, 5):
        ts = decode_value(record.value, _headers(record), "feedback" if record.stream ==
                          "feedback" else "prediction_log")["ts"]  # fmt: skip
        ts = ts if isinstance(ts, int) else int(ts.timestamp() * 1e3)
        assert not -2_208_988_800_000 <= ts < 10_413_792_000_000, (kind, ts)


def test_well_formed_log_records_decode_and_name_their_record() -> None:
    kinds = ("null_headers", "binary_headers", "unknown_model")
    records = good_predictions(20, 5) + [r for k in kinds for r in prediction_poison(k, 20, 5)]
    for record in records:
        decoded = decode_value(record.value, _headers(record), "prediction_log")
        assert decoded["request_id"].encode() == record.key  # a landed row names its record
        assert decoded["model"] == record.model
    for record in good_feedback(20):
        assert decode_value(record.value, _headers(record), "feedback")["request_id"]


def test_every_good_summary_has_a_window_of_its_own() -> None:
    records = good_summaries(10) + [
        r for i, k in enumerate(LOG_KINDS) for r in summary_poison(k, 10, 3, first=(i + 1) * 10)
    ]
    starts = [orjson.loads(r.value)["window_start"] for r in records if not r.bad]
    assert len(starts) == len(set(starts)) == 10 + 10 * 3  # good, null and binary headers, ghost


@pytest.mark.parametrize("kind", LOG_KINDS)
def test_the_monitor_refuses_exactly_the_bad_prediction_logs(kind: str) -> None:
    """What the monitor reads of a prediction log: decoded, then checked; every bad one is
    refused with a contract reason, every good one passes (an oversized log is good)."""
    from streams.monitoring.inputs import check_prediction, check_ts

    for record in prediction_poison(kind, 40, 5) + feedback_poison(kind, 40, 5):
        contract = "feedback" if record.stream == "feedback" else "prediction_log"
        try:
            decoded = decode_value(record.value, _headers(record), contract)
            if contract == "prediction_log":
                check_prediction(decoded)
            check_ts(decoded["ts"])
        except DecodeError as exc:
            assert record.bad, (kind, record.key, exc)
        else:
            assert not record.bad, (kind, record.key)


@pytest.mark.parametrize("kind", LOG_KINDS)
def test_the_merger_refuses_exactly_the_bad_summaries(kind: str) -> None:
    from streams.monitoring.inputs import read_summary

    for record in summary_poison(kind, 40, 3, first=1_000) + good_summaries(5):
        try:
            read_summary(record.value)
        except DecodeError as exc:
            assert record.bad, (kind, record.key, exc)
            if kind in ("huge_ts", "negative_ts", "oversize"):
                assert exc.reason == ("oversize" if kind == "oversize" else "bad_timestamp")
        else:
            assert not record.bad, (kind, record.key)

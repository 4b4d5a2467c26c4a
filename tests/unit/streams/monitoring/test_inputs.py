"""The checks the monitor and the merger make before a record moves any state
(:mod:`streams.monitoring.inputs`): each refusal carries the codec's reason and names the
field, and a good record costs a few microseconds."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from schemas.codec import DecodeError
from streams.monitoring.inputs import (
    MAX_MILLIS,
    MAX_SUMMARY_BYTES,
    MIN_MILLIS,
    check_prediction,
    check_ts,
    read_summary,
)
from tests.integration.poison_support import prediction, summary

GOOD = prediction(3, {"x0": 1.5, "group": "a"})


@pytest.mark.parametrize("ts", [MIN_MILLIS, 0, 1_780_000_000_000, MAX_MILLIS])
def test_a_time_clickhouse_stores_passes(ts: int) -> None:
    check_ts(ts)


@pytest.mark.parametrize(
    ("ts", "reason"),
    [(MIN_MILLIS - 1, "bad_timestamp"), (MAX_MILLIS + 1, "bad_timestamp"),
     (-(2**62), "bad_timestamp"), (1.5, "wrong_type"), (True, "wrong_type"),
     ("1", "wrong_type"), (None, "wrong_type")],
)  # fmt: skip
def test_a_time_outside_1900_2299_or_no_whole_number_is_refused(ts: Any, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        check_ts(ts, "window_start")
    assert caught.value.reason == reason and caught.value.field == "window_start"


def test_the_scorers_prediction_log_passes() -> None:
    check_prediction(GOOD)
    check_prediction(GOOD | {"challenger": {"version": 2, "output": None}, "sensitive": None})


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"request_id": None}, "wrong_type", "request_id"),
        ({"ts": 2**62}, "bad_timestamp", "ts"),
        ({"ts": "2026-01-01"}, "wrong_type", "ts"),
        ({"features": [1, 2]}, "wrong_type", "features"),
        ({"champion": "v1"}, "wrong_type", "champion"),
        ({"champion": {"output": "x"}}, "missing_field", "champion.version"),
        ({"champion": {"version": True}}, "wrong_type", "champion.version"),
        ({"challenger": {"version": "2"}}, "wrong_type", "challenger.version"),
        ({"sensitive": ["a"]}, "wrong_type", "sensitive"),
        ({"sensitive": {"group": {"a": 1}}}, "wrong_type", "sensitive[group]"),
    ],
)
def test_a_prediction_log_of_the_wrong_shape_is_refused_with_its_field(
    change: dict[str, Any], reason: str, field: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        check_prediction(GOOD | change)
    assert (caught.value.reason, caught.value.field) == (reason, field)


@pytest.mark.parametrize("missing", ["request_id", "ts", "features", "champion"])
def test_a_prediction_log_without_a_field_the_watch_reads_is_missing_field(missing: str) -> None:
    with pytest.raises(DecodeError) as caught:
        check_prediction({k: v for k, v in GOOD.items() if k != missing})
    assert (caught.value.reason, caught.value.field) == ("missing_field", missing)


def test_checking_a_prediction_log_costs_microseconds() -> None:
    """The check runs on every prediction the monitor reads: ~1 µs on the dev box, a
    bound with room for a loaded CI machine."""
    started = time.perf_counter()
    for _ in range(20_000):
        check_prediction(GOOD)
    per_record = (time.perf_counter() - started) / 20_000
    assert per_record < 10e-6, f"{per_record * 1e6:.1f} µs per record"


def test_the_monitors_summary_passes() -> None:
    record = summary(4)
    assert read_summary(orjson.dumps(record)) == record


@pytest.mark.parametrize(
    ("value", "reason", "field"),
    [
        (b"not json", "malformed", None),
        (b"[1, 2]", "wrong_type", None),
        (orjson.dumps({"a": {"a": 1}}), "missing_field", "model"),
        (orjson.dumps(summary(1) | {"model": "no such/name"}), "wrong_type", "model"),
        (orjson.dumps(summary(1) | {"kind": "other"}), "wrong_type", "kind"),
        (orjson.dumps(summary(1) | {"partition": "0"}), "wrong_type", "partition"),
        (orjson.dumps(summary(1) | {"window_end": 2**62}), "bad_timestamp", "window_end"),
        (orjson.dumps(summary(1) | {"feature": "f" * 2_000}), "wrong_type", "feature"),
        (orjson.dumps(summary(1) | {"last": "yes"}), "wrong_type", "last"),
        (orjson.dumps(summary(1) | {"counts": [1, "2"]}), "wrong_type", "counts[1]"),
        (orjson.dumps(summary(1) | {"stats": {"sum": None}}), "wrong_type", "stats[sum]"),
        (orjson.dumps(summary(1) | {"stats": [1]}), "wrong_type", "stats"),
        (orjson.dumps(summary(1) | {"counts": [1.0] * (MAX_SUMMARY_BYTES // 4)}), "oversize", None),
    ],
)
def test_a_summary_the_merger_cannot_take_is_refused_with_its_reason(
    value: bytes, reason: str, field: str | None
) -> None:
    with pytest.raises(DecodeError) as caught:
        read_summary(value)
    assert (caught.value.reason, caught.value.field) == (reason, field)

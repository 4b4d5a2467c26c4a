"""services.sink: window summaries and reference profiles become rows, or typed refusals."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest

from schemas.codec import (
    ContractError,
    MalformedError,
    MissingFieldError,
    UnsupportedContentTypeError,
    WrongTypeError,
)
from schemas.contracts import sample_record
from services.registry import reference_profile
from services.registry._wire import codec
from services.sink.landing import Landing, Position, UnlandableError
from services.sink.references import REFERENCE_COLUMNS, reference_rows
from services.sink.rows import TABLES
from services.sink.summaries import SUMMARY_COLUMNS, summary_row
from streams.monitoring.drift.methods import threshold_scale
from streams.monitoring.drift.reference import NumericReference, references_from_profile
from streams.monitoring.summaries import Summary

JSON = {"content-type": b"application/json"}
AT = Position("ms.summaries", 2, 41, b"churn", JSON)


def record(**changes: Any) -> dict[str, Any]:
    summary = Summary("numeric", 60_000, 120_000, (1, 2, 0), {"missing": 1, "above_sum": 9.5},
                      feature="age", model_version=4)  # fmt: skip
    return summary.to_record(model="churn", partition=3) | changes


def row(value: dict[str, Any] | bytes, pos: Position = AT) -> dict[str, Any]:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return dict(zip(SUMMARY_COLUMNS, summary_row(raw, pos), strict=True))


def test_a_summary_is_one_row_with_versions_as_text_and_absent_texts_empty() -> None:
    got = row(record(extra_field_added_later=1))
    assert (got["model"], got["partition"], got["kind"], got["model_version"]) == (
        "churn", 3, "numeric", "4")  # fmt: skip
    assert (got["role"], got["group"], got["feature"]) == ("", "", "age")
    assert (got["counts"], got["stats"]) == ([1.0, 2.0, 0.0], {"missing": 1.0, "above_sum": 9.5})
    assert got["window_start"].timestamp() == 60 and got["window_end"].timestamp() == 120
    assert (got["source_topic"], got["source_partition"], got["source_offset"]) == (
        "ms.summaries", 2, 41)  # fmt: skip
    assert row(record(model_version=None))["model_version"] == ""
    sniffed = Position("ms.summaries", 0, 1, None, {})
    assert row(record(), sniffed)["model"] == "churn"


@pytest.mark.parametrize(
    ("value", "error", "field"),
    [
        (record(kind="histogram"), WrongTypeError, "kind"),
        ({k: v for k, v in record().items() if k != "model"}, MissingFieldError, "model"),
        (record(window_start=1.5), WrongTypeError, "window_start"),
        (record(partition=True), WrongTypeError, "partition"),
        (record(counts=[1, "2"]), WrongTypeError, "counts[1]"),
        (record(counts={"a": 1}), WrongTypeError, "counts"),
        (record(stats={"missing": None}), WrongTypeError, "stats[missing]"),
        (record(model_version=[4]), WrongTypeError, "model_version"),
        (record(role=7), WrongTypeError, "role"),
        (b"[1, 2]", WrongTypeError, None),
        (b"{not json", MalformedError, None),
    ],
)
def test_what_cannot_be_a_row_is_refused_with_the_codecs_reasons(
    value: dict[str, Any] | bytes, error: type[Exception], field: str | None
) -> None:
    with pytest.raises(error) as info:
        row(value)
    assert isinstance(info.value, ContractError) and info.value.field == field


def test_only_json_summaries() -> None:
    avro = Position("ms.summaries", 0, 1, None, {"content-type": b"application/avro"})
    with pytest.raises(UnsupportedContentTypeError):
        row(record(), avro)


# -- reference profiles -------------------------------------------------------------------

FRAME = pd.DataFrame(
    {
        "age": [float(a) for a in range(18, 78)],
        "tenure": [i % 3 for i in range(60)],
        "plan": ["basic", "pro", "max"] * 20,
        "mobile": [i % 4 == 0 for i in range(60)],
    }
)
PROFILE = reference_profile(FRAME)


def metadata(version: int = 2, profile: Any = PROFILE, **changes: Any) -> bytes:
    text = profile if profile is None or isinstance(profile, str) else orjson.dumps(profile)
    value = sample_record("model_metadata") | {
        "name": "churn", "version": version, "created_at": 1_700_000_000_000,
        "reference_profile": text if not isinstance(text, bytes) else text.decode(),
    }  # fmt: skip
    return codec("model_metadata").encode_avro(value | changes)


def land(key: str, value: bytes) -> list[dict[str, Any]]:
    rows = reference_rows(value, Position("ms._models", 0, 8, key.encode(), {}))
    return [dict(zip(REFERENCE_COLUMNS, r, strict=True)) for r in rows]


def test_a_version_is_one_row_per_feature_as_the_monitor_reads_its_profile() -> None:
    rows = {r["feature"]: r for r in land("churn/2", metadata())}
    references = references_from_profile(PROFILE)
    assert rows.keys() == references.keys()
    for feature, ref in references.items():
        got = rows[feature]
        assert (got["model"], got["version"], got["source_offset"]) == ("churn", "2", 8)
        assert got["wasserstein_scale"] == threshold_scale("wasserstein", ref)
        if isinstance(ref, NumericReference):
            assert got["kind"] == "numeric"
            assert (got["edges"], got["ref_counts"], got["points"], got["cdf"]) == (
                list(ref.edges), list(ref.counts), list(ref.points), list(ref.cdf))  # fmt: skip
            assert got["starts"] == list(ref.starts) and len(got["ref_fine"]) == len(ref.cdf) - 1
            assert sum(got["ref_fine"]) == pytest.approx(1.0)
        else:
            assert got["kind"] == "categorical" and got["categories"][-1] == "other"
            assert got["ref_counts"] == list(ref.counts_with_other)
    assert rows["mobile"]["categories"] == ["false", "true", "other"]


def test_chunks_tombstones_and_versions_without_a_profile_are_no_rows() -> None:
    assert land("churn/2/chunk/0", b"\x00" * 32) == []
    signature = codec("signature").encode_avro(
        {"model": "churn", "version": 2, "key_id": "0123456789abcdef", "signature": b"s" * 64}
    )
    assert land("churn/2/signature", signature) == []  # not a version: no row, no refusal
    assert land("churn/2", b"") == []
    assert land("churn/2", metadata(profile=None)) == []


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("junk", metadata(), "unexpected_key"),
        ("churn/3", metadata(version=2), "unexpected_key"),
        ("churn/2", metadata(profile="{not json"), "bad_reference_profile"),
        ("churn/2", metadata(profile={"numeric": {"x": {"histogram": {"edges": [1.0],
                                                                      "counts": [2]}}}}),
         "bad_reference_profile"),
    ],
)  # fmt: skip
def test_what_cannot_be_a_reference_is_refused(key: str, value: bytes, reason: str) -> None:
    with pytest.raises(UnlandableError) as info:
        land(key, value)
    assert info.value.reason == reason


def test_the_sink_lands_both_topics() -> None:
    assert TABLES["summaries"].table == "window_summaries"
    assert TABLES["_models"].table == "reference_profiles"
    with pytest.raises(TypeError, match="one of to_row and to_rows"):
        Landing("t", None, ())

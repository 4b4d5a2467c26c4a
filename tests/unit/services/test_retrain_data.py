"""Training data: the query and its provenance, features typed back from the log's text
(as the sink wrote them), and the time-ordered split."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from services.lifecycle._errors import RetrainError
from services.lifecycle._training_data import (
    TrainingQuery,
    labelled_query,
    time_split,
    typed_features,
)
from services.sink.rows import _text as sink_text  # how the sink writes a feature as text

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Everything",
    "fields": [
        {"name": "d", "type": "double"},
        {"name": "f", "type": "float"},
        {"name": "i", "type": "int"},
        {"name": "n", "type": "long"},
        {"name": "b", "type": "boolean"},
        {"name": "s", "type": "string"},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["lo", "hi"]}},
        {"name": "od", "type": ["null", "double"], "default": None},
        {"name": "on", "type": ["null", "long"], "default": None},
        {"name": "ob", "type": ["null", "boolean"], "default": None},
        {"name": "os", "type": ["null", "string"], "default": None},
    ],
}
RECORDS: list[dict[str, Any]] = [
    {"d": 0.1, "f": 1e-7, "i": -3, "n": 2**53 + 1, "b": True, "s": "a b", "e": "lo",
     "od": 1e300, "on": 7, "ob": False, "os": "x"},
    {"d": -2.5, "f": 3.0, "i": 0, "n": -(2**62), "b": False, "s": "", "e": "hi",
     "od": None, "on": None, "ob": None, "os": None},
]  # fmt: skip


def logged(record: dict[str, Any]) -> dict[str, str]:
    """The features map of the prediction log, as the sink lands it."""
    return {name: sink_text(value) for name, value in record.items()}


def test_features_come_back_as_the_values_the_scorer_decoded() -> None:
    frame = typed_features([logged(r) for r in RECORDS], SCHEMA)
    assert list(frame.columns) == [f["name"] for f in SCHEMA["fields"]]
    dtypes = frame.dtypes.astype(str).to_dict()
    assert dtypes == {"d": "float64", "f": "float64", "i": "int64", "n": "int64", "b": "bool",
                      "s": "object", "e": "object", "od": "float64", "on": "Int64",
                      "ob": "boolean", "os": "object"}  # fmt: skip
    first = frame.iloc[0].to_dict()
    assert first["d"] == 0.1 and first["f"] == 1e-7 and first["od"] == 1e300
    assert first["n"] == 2**53 + 1  # exact: longs are not read through a float
    assert (first["i"], first["b"], first["s"], first["e"]) == (-3, True, "a b", "lo")
    assert (first["on"], first["ob"], first["os"]) == (7, False, "x")
    second = frame.iloc[1]
    assert second["n"] == -(2**62)
    assert second["s"] == ""  # a non-nullable string may be empty
    assert math.isnan(second["od"]) and second["on"] is pd.NA and second["ob"] is pd.NA
    assert second["os"] is None


def test_a_field_the_log_lacks_or_cannot_read_is_missing() -> None:
    schema = {"type": "record", "name": "R", "fields": [
        {"name": "x", "type": ["null", "double"]}, {"name": "y", "type": "double"}]}  # fmt: skip
    frame = typed_features([{"y": "not a number"}, {"x": "1.5", "y": "nan"}], schema)
    assert frame["x"].isna().tolist() == [True, False]
    assert frame["y"].isna().tolist() == [True, True]


def test_a_long_with_fractions_in_the_log_says_the_schema_changed() -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "age", "type": "long"}]}
    with pytest.raises(RetrainError, match="'age' is long, but the prediction log holds fract"):
        typed_features([{"age": "41.5"}], schema)


def test_no_rows_give_an_empty_frame_with_every_column() -> None:
    frame = typed_features([], SCHEMA)
    assert len(frame) == 0 and len(frame.columns) == len(SCHEMA["fields"])


def test_the_query_binds_the_model_and_a_utc_millisecond_window() -> None:
    paris = timezone(timedelta(hours=2))
    start = datetime(2026, 5, 1, 14, 0, 0, 123_456, tzinfo=paris)
    query = labelled_query("churn", "classification", start, datetime(2026, 5, 8))
    assert query.params == {
        "model": "churn",
        "start": "2026-05-01 12:00:00.123",
        "end": "2026-05-08 00:00:00.000",  # naive: UTC
    }
    assert "FROM labelled_requests" in query.sql and "label_class AS label" in query.sql
    assert "ts >= toDateTime64({start:String}, 3, 'UTC')" in query.sql
    assert "ts < toDateTime64({end:String}, 3, 'UTC')" in query.sql
    assert query.sql.rstrip().endswith("ORDER BY ts, request_id")
    assert query.provenance() == {"sql": query.sql, "params": query.params}


def test_a_regression_query_reads_number_labels() -> None:
    query = labelled_query("price", "regression", datetime(2026, 1, 1, tzinfo=UTC),
                           datetime(2026, 1, 2, tzinfo=UTC))  # fmt: skip
    assert "coalesce(label_number, toFloat64OrNull(label_string)) AS label" in query.sql
    with pytest.raises(ValueError, match="task must be classification or regression"):
        labelled_query("price", "ranking", datetime(2026, 1, 1), datetime(2026, 1, 2))


@pytest.mark.parametrize(
    ("rows", "fraction", "held"),
    [(10, 0.2, 2), (10, 0.25, 2), (10, 0.01, 1), (10, 0.99, 9), (2, 0.5, 1), (1001, 0.2, 200)],
)
def test_the_holdout_is_the_latest_rows(rows: int, fraction: float, held: int) -> None:
    frame = pd.DataFrame({"t": range(rows)})
    train, holdout = time_split(frame, fraction)
    assert len(holdout) == held and len(train) == rows - held
    assert train["t"].max() < holdout["t"].min()  # no training row after a holdout row
    assert pd.concat([train, holdout])["t"].tolist() == list(range(rows))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_a_holdout_fraction_outside_0_1_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="holdout must be a fraction between 0 and 1"):
        time_split(pd.DataFrame({"t": range(10)}), fraction)


def test_the_literal_statement_quotes_every_value() -> None:
    query = labelled_query("churn", "classification", datetime(2026, 5, 1), datetime(2026, 5, 2))
    literal = query.literal()
    assert "model = 'churn'" in literal and "{" not in literal
    assert "toDateTime64('2026-05-01 00:00:00.000', 3, 'UTC')" in literal
    hostile = TrainingQuery("SELECT {v:String}", {"v": "a\\' OR 1=1 --"}).literal()
    assert hostile == "SELECT 'a\\\\\\' OR 1=1 --'"  # backslash doubled, quote escaped

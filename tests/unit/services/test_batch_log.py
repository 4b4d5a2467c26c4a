"""What a batch run logs, without Kafka: the scorer's prediction-log record with
``source = "batch"``, DLQ entries with the scorer's headers, deterministic ids and run
keys, and the sink landing ``source``."""

from __future__ import annotations

from typing import Any

import orjson

from schemas.codec import JSON
from schemas.contracts import codec_for
from services.batch import Requests, chunk_messages, run_key, score_chunk, served_versions
from services.sink.landing import Position
from services.sink.rows import PREDICTION_COLUMNS, TABLES
from streams.scoring.records import log_record
from tests.unit.services.batch_support import deployment, row


def _messages(**dep: Any) -> list[tuple[str | None, bytes, bytes, Any]]:
    d = deployment(**dep)
    records = [row(0), {**row(1), "x0": None}, row(2)]
    chunk = score_chunk(d, records)
    return list(chunk_messages(d, Requests("daily.parquet", "00ff" * 4), 100, chunk, "p.m.dlq"))


def test_each_scored_row_makes_the_scorer_s_record_with_source_batch() -> None:
    messages = _messages(challenger=True)
    logs = [m for m in messages if m[0] is None]
    assert [key for _, key, _, _ in logs] == [b"batch-00ff00ff00ff00ff-100",
                                              b"batch-00ff00ff00ff00ff-102"]  # fmt: skip
    contract = codec_for("prediction_log")
    for _, key, value, headers in logs:
        record = orjson.loads(value)
        contract.check(record)  # the published contract holds
        assert record["source"] == "batch" and record["request_id"] == key.decode()
        assert record["source_topic"] == "batch:daily.parquet"
        assert record["source_partition"] == 0
        assert record["source_offset"] == int(key.decode().rsplit("-", 1)[1])
        assert record["challenger"]["version"] == 2 and record["challenger"]["output"] is not None
        assert record["sensitive"] == {"group": record["features"]["group"]}
        assert headers == [("content-type", b"application/json")]


def test_rows_an_earlier_run_logged_are_left_out() -> None:
    """A marker at 102 (a killed run with another --batch-size): rows 100 and 101 (the
    refused one) are in already; only row 102 is logged."""
    d = deployment()
    chunk = score_chunk(d, [row(0), {**row(1), "x0": None}, row(2)])
    requests = Requests("daily.parquet", "00ff" * 4)
    rest = list(chunk_messages(d, requests, 100, chunk, "p.m.dlq", 102))
    assert [(topic, key) for topic, key, _, _ in rest] == [(None, b"batch-00ff00ff00ff00ff-102")]


def test_each_refused_row_goes_to_the_dlq_with_the_scorer_s_headers() -> None:
    (dlq,) = [m for m in _messages() if m[0] is not None]
    topic, key, value, headers = dlq
    named = dict(headers)
    assert topic == "p.m.dlq" and key == b"batch-00ff00ff00ff00ff-101"
    assert orjson.loads(value)["x0"] is None  # the JSON request the row would have been
    assert named["content-type"] == b"application/json"
    assert named["ms-reason"] == b"wrong_type" and named["ms-stage"] == b"decode"
    assert named["ms-error"] == b"field 'x0': expected double, got null"
    assert named["ms-source-topic"] == b"batch:daily.parquet"
    assert named["ms-source-offset"] == b"101" and named["ms-model"] == b"m"


def test_the_real_time_scorer_logs_source_stream() -> None:
    d = deployment()
    chunk = score_chunk(d, [row(0)])
    request = Requests("x", "0" * 16).request(0, b"{}")
    value = log_record(d, request, chunk.admitted.rows[0], chunk.results[0], None, 1.0, 5)
    assert orjson.loads(value)["source"] == "stream"
    codec_for("prediction_log").check(orjson.loads(value))


def test_request_ids_and_run_keys_are_deterministic() -> None:
    a, b = Requests("in.csv", "ab" * 8), Requests("in.csv", "ab" * 8)
    assert a.request(5, b"{}").request_id == b.request(5, b"{}").request_id
    assert a.request(5, b"{}").content_type == JSON
    long_sql = Requests("SELECT *\n  FROM   t " + "x" * 500, "ab" * 8)
    assert long_sql.topic.startswith("batch:SELECT * FROM t x") and len(long_sql.topic) == 206
    d = deployment(challenger=True)
    assert served_versions(d) == "1/2/-"
    key = run_key("m", "ab" * 8, "1/2/-")
    assert key == run_key("m", "ab" * 8, "1/2/-")
    assert key != run_key("m", "ab" * 8, "3/2/-")  # another champion: another run, logged
    assert key != run_key("m", "cd" * 8, "1/2/-")


def test_the_sink_lands_source() -> None:
    messages = _messages()
    record = orjson.loads(messages[0][2])
    pos = Position("p.m.predictions", 0, 1, None, JSON)
    landed = dict(zip(PREDICTION_COLUMNS, TABLES["predictions"].to_row(record, pos), strict=True))
    assert landed["source"] == "batch"
    del record["source"]  # a record from before the field existed
    landed = dict(zip(PREDICTION_COLUMNS, TABLES["predictions"].to_row(record, pos), strict=True))
    assert landed["source"] == "stream"

"""``modelstream score`` end to end: real broker, registry over Kafka, the real scorer
beside it. Batch scoring of 100k rows gives the real-time path's numbers row for row,
logs each scored row once (``source=batch``), dead-letters the refused ones, and a
rerun of the same input with the same models logs nothing new."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from schemas.codec import JSON
from services.batch.cli import score
from services.registry import Registry, RegistryView
from services.sink.landing import Position
from services.sink.rows import PREDICTION_COLUMNS, TABLES
from services.synthetic import rows
from services.warehouse import Warehouse
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from streams.scoring import Deployment
from tests.integration.scoring_support import (
    ScorerThread,
    Stack,
    collect,
    collect_every_request,
    decode_reply,
    deployment,
    reader,
    send,
    take,
    trained,
)

ROWS = 100_000
SAMPLE = 2_000  # rows also sent through the real-time scorer
REFUSED = range(50_000, 50_005)  # rows whose x0 is missing: the contract refuses them


@pytest.fixture
def stack(kafka: KafkaConfig, unique: Callable[[str], str], tmp_path: Path) -> Iterator[Stack]:
    topics = Topics(unique("bs"))
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    registry = Registry(kafka, topics, actor="tests")
    yield Stack(kafka, topics, registry, tmp_path)
    registry.close()


def _score(stack: Stack, *args: str, clickhouse: str = "") -> Any:
    env = {
        "MODELSTREAM_CLICKHOUSE": clickhouse,
        "MODELSTREAM_KAFKA": stack.kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": stack.topics.prefix,
        "MODELSTREAM_DATA_DIR": str(stack.tmp / "data"),
    }
    command = typer.Typer()  # the one command alone: `modelstream score` is this function
    command.command()(score)
    return CliRunner().invoke(command, list(args), env=env)


def _input(path: Path) -> list[dict[str, Any]]:
    data = list(rows(ROWS, seed=11))
    frame = pd.DataFrame(data)
    frame.loc[list(REFUSED), "x0"] = None
    frame.insert(0, "customer", [f"c{i}" for i in range(ROWS)])  # carried, never scored
    frame.to_parquet(path, index=False)
    return data


def test_batch_equals_the_real_time_path_and_logs_once(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    champion, challenger = trained()
    stack.add_model("m", champion, challenger)
    data = _input(stack.tmp / "daily.parquet")
    out = stack.tmp / "scored.parquet"
    topics = stack.topics
    log = reader(stack.kafka, [topics.predictions("m"), topics.dlq("m")], unique("log"))
    replies = reader(stack.kafka, [topics.replies("m")], unique("replies"))

    args = ["m", "--input", str(stack.tmp / "daily.parquet"), "--output", str(out),
            "--challenger", "--quiet"]  # fmt: skip
    first = _score(stack, *args)
    assert first.exit_code == 2, first.output  # five rows refused, still written
    with ScorerThread(stack.kafka, topics, [_as_registered(stack)]):
        send(stack.kafka, topics.requests("m"), data[:SAMPLE])
        answered = collect_every_request(replies, SAMPLE, topics=1)
    logged = collect(log, ROWS - len(REFUSED) + SAMPLE + len(REFUSED))

    table = pq.read_table(out)
    scored = table.to_pydict()
    _same_as_replies(scored, {decode_reply(m)["request_id"]: decode_reply(m) for m in answered})
    by_source = _by_source(logged, topics)
    _same_as_stream_log(scored, by_source["stream"])
    _logged_once(scored, by_source["batch"], by_source["dlq"])

    second = _score(stack, *args)
    assert second.exit_code == 2, second.output
    assert "logged 0" in second.output and f"({ROWS - len(REFUSED)} logged by an" in second.output
    assert list(take(log, 1.5)) == []  # a rerun with the same champion logs nothing new
    assert pq.read_table(out).equals(table)  # the same file again
    assert not list(stack.tmp.glob("scored.parquet.tmp-*"))


def _as_registered(stack: Stack) -> Deployment:
    """The real-time deployment of the versions as the registry stores them. A River
    ``Select`` keeps its features in a set, whose iteration order (and so the order of the
    dot product's sum, to the last bit) can differ between a model and its unpickled copy,
    and between processes (string hashing): both paths load the same artifact here, in one
    process, as two scorers of one deployment would on one machine."""
    with RegistryView(stack.kafka, stack.topics) as view:
        view.sync()
        return deployment("m", view.load_model("m", 1), view.load_model("m", 2))


Columns = dict[str, list[Any]]


def _same_as_replies(scored: Columns, replies: dict[str, dict[str, Any]]) -> None:
    assert len(replies) == SAMPLE
    for i in range(SAMPLE):
        reply = replies[f"r{i}"]
        assert reply["prediction"] == scored["prediction"][i], i
        for label, p in reply["probabilities"].items():
            assert scored[f"probability_{label}"][i] == p, (i, label)  # to the last bit
        assert scored["served_by"][i] == "champion" and scored["model_version"][i] == 1


def _by_source(messages: list[Any], topics: Topics) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"stream": [], "batch": [], "dlq": []}
    for message in messages:
        if message.topic == topics.dlq("m"):
            out["dlq"].append(message)
        else:
            record = message.json()
            out[record["source"]].append(record)
    return out


def _same_outcome(scored: Columns, prefix: str, i: int, outcome: dict[str, Any]) -> None:
    assert outcome["output"] == scored[f"{prefix}prediction"][i], (prefix, i)
    for label, p in outcome["probabilities"].items():
        assert scored[f"{prefix}probability_{label}"][i] == p, (prefix, i, label)


def _same_as_stream_log(scored: Columns, stream: list[dict[str, Any]]) -> None:
    assert len(stream) == SAMPLE
    for record in stream:
        i = int(record["request_id"][1:])
        _same_outcome(scored, "", i, record["champion"])
        _same_outcome(scored, "challenger_", i, record["challenger"])
        assert scored["challenger_version"][i] == record["challenger"]["version"] == 2


def _logged_once(scored: Columns, batch: list[dict[str, Any]], dlq: list[Any]) -> None:
    ids = Counter(record["request_id"] for record in batch)
    assert len(ids) == len(batch) == ROWS - len(REFUSED)  # each scored row exactly once
    stem = batch[0]["request_id"].rsplit("-", 1)[0] + "-"
    assert set(ids) == {f"{stem}{i}" for i in range(ROWS) if i not in REFUSED}
    for record in batch:  # each log record holds what the output file holds
        i = record["source_offset"]
        assert record["request_id"] == f"{stem}{i}" and record["source_partition"] == 0
        _same_outcome(scored, "", i, record["champion"])
        _same_outcome(scored, "challenger_", i, record["challenger"])
    assert {r["source_topic"] for r in batch} == {"batch:daily.parquet"}
    assert all("customer" not in r["features"] for r in batch[:100])
    assert sorted(int(m.headers["ms-source-offset"]) for m in dlq) == list(REFUSED)
    assert {m.headers["ms-reason"] for m in dlq} == {b"wrong_type"}
    for i in REFUSED:
        assert scored["error"][i].startswith("wrong_type: field 'x0'")
        assert scored["prediction"][i] is None and scored["customer"][i] == f"c{i}"


def test_sql_in_table_out_once_and_logged_rows_land_with_source_batch(
    stack: Stack, unique: Callable[[str], str], warehouse: Warehouse, warehouse_dsn: str
) -> None:
    """A query through the read-only guard in, a ClickHouse table out (created, and a
    rerun inserts nothing twice), and the log records land as ``source = 'batch'``."""
    champion, _ = trained()
    stack.add_model("m", champion)
    db = warehouse.database
    data = list(rows(1_000, seed=4))
    warehouse.command(f"CREATE TABLE {db}.src (id UInt32, x0 Float64, x1 Float64, x2 Float64, "
                      f"x3 Float64, x4 Float64, x5 Float64, x6 Float64, x7 Float64, x8 Float64, "
                      f"x9 Float64, group String) ENGINE = MergeTree ORDER BY id")  # fmt: skip
    names = ["id", *data[0]]
    warehouse.insert(f"{db}.src", [[i, *r.values()] for i, r in enumerate(data)], names)
    log = reader(stack.kafka, [stack.topics.predictions("m")], unique("log"))
    dsn = f"{warehouse_dsn}?database={db}" if warehouse_dsn.startswith("chdb") else warehouse_dsn
    args = ["m", "--sql", f"SELECT * FROM {db}.src ORDER BY id", "--table", f"{db}.scored"]

    for _ in range(2):  # the second run inserts and logs nothing new
        result = _score(stack, *args, clickhouse=dsn)
        assert result.exit_code == 0, result.output
    refused = _score(stack, "m", "--sql", f"DROP TABLE {db}.src", "--table", "t", clickhouse=dsn)
    assert refused.exit_code == 1 and "read" in refused.output, refused.output  # the guard
    _, counted = warehouse.query(
        f"SELECT count(), uniqExact(id), countIf(served_by = 'champion') FROM {db}.scored"
    )
    assert counted == [(1_000, 1_000, 1_000)]
    logged = collect(log, 1_000)
    assert len(logged) == 1_000
    landing = TABLES["predictions"]
    landed = [landing.to_row(m.json(), Position(m.topic, 0, i, None, JSON))
              for i, m in enumerate(logged)]  # fmt: skip
    warehouse.insert("predictions", landed, list(PREDICTION_COLUMNS))
    _, by_source = warehouse.query("SELECT source, count() FROM predictions GROUP BY source")
    assert by_source == [("batch", 1_000)]
    _, joined = warehouse.query(
        f"SELECT count() FROM predictions p JOIN {db}.scored s "
        "ON p.source_offset = s.id AND p.champion_output = s.prediction"
    )
    assert joined == [(1_000,)]

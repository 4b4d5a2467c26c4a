"""The warehouse against the real ClickHouse engine (embedded chDB): schema, rows, dedup,
and the guard on SQL that people type."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from services.cli import app
from services.security.local import CREDENTIALS_FILE, create_credentials
from services.sink.sqlserver import SqlRejectedError, SqlServer, remote_query
from services.warehouse import (
    MIGRATIONS_DIR,
    ChecksumMismatch,
    MigrationError,
    QueryError,
    ReadOnlySql,
    SqlLimits,
    SqlRefused,
    Warehouse,
    WarehouseLocked,
    WarehouseUnavailable,
    connect,
    load_migrations,
    private_dir,
)
from tests.integration.fixtures_warehouse import SAMPLE_ROWS, as_insert, sample_row

pytestmark = pytest.mark.integration

TABLES = {
    "predictions",
    "feedback",
    "metrics",
    "alerts",
    "dlq",
    "model_events",
    "window_summaries",
    "reference_profiles",
}
VIEWS = {
    "labelled_predictions",
    "labelled_requests",
    "champion_vs_challenger",
    "drift_by_feature",
    "fairness_by_group",
    "latency_qps",
    "dlq_reasons",
    # with parameters (013_summary_views.sql, 014_segment_views.sql)
    "drift_from_summaries",
    "performance_from_summaries",
    "fairness_from_summaries",
    "segment_predictions",
    "drift_from_predictions",
    "performance_from_predictions",
    "fairness_from_predictions",
}
# the column a table's TTL counts from; None: kept forever
TTL_FROM = {t: "ts" for t in TABLES} | {
    "model_events": None,
    "reference_profiles": None,
    "window_summaries": "window_start",
}


def test_migrate_on_an_empty_warehouse_creates_every_table(empty_warehouse: Warehouse) -> None:
    applied = empty_warehouse.migrate()

    assert applied == [m.label for m in load_migrations()]
    assert set(empty_warehouse.describe_schema()) == TABLES | VIEWS | {"schema_migrations"}
    recorded = empty_warehouse.applied_migrations()
    assert [(m.version, m.checksum) for m in recorded] == [
        (m.version, m.checksum) for m in load_migrations()
    ]


def test_migrate_twice_applies_nothing_and_keeps_the_schema(empty_warehouse: Warehouse) -> None:
    empty_warehouse.migrate()
    before = empty_warehouse.describe_schema()

    assert empty_warehouse.migrate() == []
    assert empty_warehouse.describe_schema() == before
    assert len(empty_warehouse.applied_migrations()) == len(load_migrations())


def test_every_table_has_a_sample_row() -> None:
    # Contract: a new table gets a realistic row here, so the round trip below covers it.
    assert set(SAMPLE_ROWS) == TABLES


@pytest.mark.parametrize("table", sorted(TABLES))
def test_a_realistic_row_round_trips(warehouse: Warehouse, table: str) -> None:
    rows, columns = as_insert([SAMPLE_ROWS[table]])

    warehouse.insert(table, rows, columns)

    binary = {"payload": "bytes"} if table == "dlq" else None
    got_columns, got = warehouse.query(
        f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM {table}", column_formats=binary
    )
    assert got_columns == tuple(columns)
    assert got == [tuple(rows[0])]


def test_columns_match_the_sample_rows(warehouse: Warehouse) -> None:
    for table, row in SAMPLE_ROWS.items():
        _, described = warehouse.query(f"DESCRIBE TABLE {table}")
        assert [r[0] for r in described] == list(row), table
        assert all(r[4] for r in described), f"every column of {table} has a comment"


def test_one_feature_is_plain_sql(warehouse: Warehouse) -> None:
    ages = ["31", "42", "n/a", "57"]
    rows, columns = as_insert(
        [
            sample_row("predictions", request_id=f"r{i}", features={"age": a})
            for i, a in enumerate(ages)
        ]
    )
    warehouse.insert("predictions", rows, columns)

    _, got = warehouse.query(
        "SELECT avg(toFloat64OrNull(features['age'])), countIf(features['age'] = 'n/a') "
        "FROM predictions WHERE model = {model:String}",
        {"model": "churn"},
    )
    assert got == [(pytest.approx(130 / 3), 1)]


def test_same_batch_same_token_is_stored_once(warehouse: Warehouse) -> None:
    # A batch spanning two days lands in two partitions: dedup must hold across both.
    day = timedelta(days=1)
    rows, columns = as_insert(
        [
            sample_row(
                "predictions", request_id=f"r{i}", ts=SAMPLE_ROWS["predictions"]["ts"] + i * day
            )
            for i in range(2)
        ]
    )

    warehouse.insert("predictions", rows, columns, dedup_token="p[3]@100-101")
    warehouse.insert("predictions", rows, columns, dedup_token="p[3]@100-101")
    assert _count(warehouse, "predictions") == 2

    warehouse.insert("predictions", rows, columns, dedup_token="p[3]@102-103")
    assert _count(warehouse, "predictions") == 4


def test_identical_batch_without_token_is_deduplicated_by_content(warehouse: Warehouse) -> None:
    # The engine hashes the block when no token is given: identical batches are dropped.
    rows, columns = as_insert([SAMPLE_ROWS["feedback"]])
    warehouse.insert("feedback", rows, columns)
    warehouse.insert("feedback", rows, columns)

    assert _count(warehouse, "feedback") == 1


def test_dataframes_round_trip(warehouse: Warehouse) -> None:
    frame = pd.DataFrame([SAMPLE_ROWS["model_events"], sample_row("model_events", version="9")])

    warehouse.insert_df("model_events", frame, dedup_token="events-1")
    warehouse.insert_df("model_events", frame, dedup_token="events-1")

    got = warehouse.query_df("SELECT version, action FROM model_events ORDER BY version")
    assert got.to_dict("records") == [
        {"version": "8", "action": "set_challenger"},
        {"version": "9", "action": "set_challenger"},
    ]


def test_labelled_predictions_joins_the_latest_label(warehouse: Warehouse) -> None:
    rows, columns = as_insert([SAMPLE_ROWS["predictions"]])
    warehouse.insert("predictions", rows, columns)
    first, later = (
        SAMPLE_ROWS["feedback"],
        sample_row(
            "feedback", label_string="stay", ts=SAMPLE_ROWS["feedback"]["ts"] + timedelta(hours=1)
        ),
    )
    rows, columns = as_insert([first, later])
    warehouse.insert("feedback", rows, columns)

    _, got = warehouse.query(
        "SELECT request_id, champion_output, challenger_output, label_string "
        "FROM labelled_predictions WHERE model = 'churn'"
    )
    assert got == [("req-0001", "stay", "churn", "stay")]


@pytest.mark.parametrize("ttl_days", [0, 30])
def test_ttl_is_templated_into_the_ddl(empty_warehouse: Warehouse, ttl_days: int) -> None:
    empty_warehouse.migrate(ttl_days=ttl_days)
    schema = empty_warehouse.describe_schema()

    for table, column in TTL_FROM.items():
        if column is None:  # the audit trail and the references are kept forever
            assert " TTL " not in schema[table]
        else:
            has_ttl = f"TTL toDateTime({column}) + toIntervalDay({ttl_days})" in schema[table]
            assert has_ttl == (ttl_days > 0), schema[table]
        assert "non_replicated_deduplication_window = 1000" in schema[table]
    assert {m.ttl_days for m in empty_warehouse.applied_migrations()} == {ttl_days}


def test_an_edited_applied_migration_is_refused(empty_warehouse: Warehouse, tmp_path: Path) -> None:
    folder = _copy_migrations(tmp_path)
    empty_warehouse.migrate(directory=folder)
    edited = folder / "002_feedback.sql"
    edited.write_text(edited.read_text().replace("source LowCardinality", "origin LowCardinality"))

    with pytest.raises(ChecksumMismatch, match=r"002_feedback\.sql.*new file NNN_name\.sql"):
        empty_warehouse.migrate(directory=folder)


def test_a_new_migration_is_applied_alone(empty_warehouse: Warehouse, tmp_path: Path) -> None:
    folder = _copy_migrations(tmp_path)
    empty_warehouse.migrate(directory=folder)
    (folder / "900_feedback_comment.sql").write_text(
        "ALTER TABLE feedback ADD COLUMN IF NOT EXISTS note String COMMENT 'free text';\n"
        "ALTER TABLE feedback COMMENT COLUMN note 'free text; optional';\n"
    )

    assert empty_warehouse.migrate(directory=folder) == ["900_feedback_comment"]
    assert "note" in empty_warehouse.describe_schema()["feedback"]


def test_a_failing_migration_is_not_recorded(empty_warehouse: Warehouse, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_t.sql").write_text(
        "CREATE TABLE IF NOT EXISTS t (x Int32) ENGINE = MergeTree ORDER BY x;\n"
        "CREATE TABLE IF NOT EXISTS u (x NoSuchType) ENGINE = MergeTree ORDER BY x;\n"
    )

    with pytest.raises(MigrationError, match=r"001_t\.sql, statement 2"):
        empty_warehouse.migrate(directory=folder)
    assert empty_warehouse.applied_migrations() == []

    (folder / "001_t.sql").write_text(
        (folder / "001_t.sql").read_text().replace("NoSuchType", "Int32")
    )
    assert empty_warehouse.migrate(directory=folder) == ["001_t"]


def test_engine_errors_are_translated(warehouse: Warehouse) -> None:
    with pytest.raises(QueryError, match="querying SELECT") as info:
        warehouse.query("SELECT * FROM no_such_table")
    assert info.value.code == 60

    rows, columns = as_insert([sample_row("feedback", ts="not a time")])
    with pytest.raises(QueryError, match="inserting 1 rows into feedback"):
        warehouse.insert("feedback", rows, columns)


def test_a_handle_can_be_closed_and_the_path_reopened(
    warehouse_dsn: str, warehouse_database: str
) -> None:
    with connect(warehouse_dsn, database=warehouse_database) as first:
        first.migrate()
        rows, columns = as_insert([SAMPLE_ROWS["alerts"]])
        first.insert("alerts", rows, columns)
    with connect(warehouse_dsn, database=warehouse_database) as again:
        assert _count(again, "alerts") == 1


@pytest.mark.embedded_only  # only the embedded engine pins a process to one path
def test_a_second_chdb_path_in_this_process_is_locked(
    warehouse_engine: Warehouse, tmp_path: Path
) -> None:
    with pytest.raises(WarehouseLocked, match="one chDB path at a time: close every Warehouse"):
        connect(f"chdb://{tmp_path / 'other'}")


@pytest.mark.embedded_only  # only the embedded engine locks its directory
def test_a_chdb_path_held_by_another_process_is_locked(warehouse_engine: Warehouse) -> None:
    script = (
        "from services.warehouse import connect, WarehouseLocked\n"
        f"try: connect({warehouse_engine.dsn.redacted()!r})\n"
        "except WarehouseLocked as e: print('locked:', e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        check=True,
    )
    assert done.stdout.startswith("locked:"), done.stdout + done.stderr
    assert f"held by PID {os.getpid()}" in done.stdout


def test_a_refused_server_is_unavailable() -> None:
    with pytest.raises(WarehouseUnavailable, match=r"connecting to http://u:\*\*\*@127\.0\.0\.1"):
        connect("http://u:secret@127.0.0.1:9/db?connect_timeout=1")


def _count(warehouse: Warehouse, table: str) -> int:
    return int(warehouse.query(f"SELECT count() FROM {table}").rows[0][0])


def _copy_migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    return folder


# -- people's SQL: ReadOnlySql, the sink's endpoint, `modelstream sql` ---------------------


@pytest.fixture
def credentials_file(tmp_path: Path) -> Path:
    """The secure local broker's admin credentials, as `kafka start --secure` writes them."""
    state_dir = tmp_path / "kafka"
    create_credentials(state_dir)
    return state_dir / CREDENTIALS_FILE


@pytest.fixture
def guarded(warehouse_dsn: str, warehouse: Warehouse) -> Iterator[ReadOnlySql]:
    with ReadOnlySql.open(warehouse.dsn, SqlLimits(max_execution_time_s=2)) as sql:
        yield sql


def test_file_on_the_broker_credentials_is_refused(
    guarded: ReadOnlySql, warehouse: Warehouse, credentials_file: Path
) -> None:
    secret = credentials_file.read_text()
    for sql in (
        f"SELECT * FROM file('{credentials_file}', 'RawBLOB')",
        f"SELECT file('{credentials_file}')",  # the scalar: chDB runs it under readonly=1
        f"SELECT `file` /* */ ('{credentials_file}')",
        f"SELECT * FROM (SELECT * FROM file('{credentials_file}', 'RawBLOB') SETTINGS readonly=0)",
    ):
        with pytest.raises(SqlRefused) as info:
            guarded.run(sql)
        assert secret not in str(info.value)
    # the engine refuses it too, with no help from the name check
    with pytest.raises(QueryError) as info:
        warehouse.query(
            f"SELECT * FROM file('{credentials_file}', 'RawBLOB')",
            settings=SqlLimits().settings(),
        )
    assert info.value.code == 164


OUTSIDE_OR_WRITES = (
    "SELECT * FROM url('http://127.0.0.1:9/x', 'RawBLOB')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT * FROM s3('http://127.0.0.1:9/bucket/x.bin', 'RawBLOB')",
    "SELECT * FROM executable('id', 'RawBLOB', 'x String')",
    "INSERT INTO feedback (request_id) VALUES ('x')",
    "INSERT INTO FUNCTION file('/tmp/out.csv', 'CSV') SELECT 1",
    "CREATE TABLE z (x UInt8) ENGINE = Memory",
    "SET readonly = 0",
    "/* quiet */ KILL QUERY WHERE 1",
    "SELECT 1; DROP TABLE feedback",
)


def test_writes_and_the_outside_world_are_refused(
    guarded: ReadOnlySql, warehouse: Warehouse
) -> None:
    for sql in OUTSIDE_OR_WRITES:
        with pytest.raises(SqlRefused):
            guarded.run(sql)
    # without the name check, the engine's readonly=1 refuses the table functions
    settings = SqlLimits().settings()
    for sql in OUTSIDE_OR_WRITES[:4]:
        with pytest.raises(QueryError) as info:
            warehouse.query(sql, settings=settings)
        assert info.value.code == 164, sql  # READONLY


def test_the_engine_enforces_readonly_and_the_limits(
    guarded: ReadOnlySql, warehouse: Warehouse
) -> None:
    # a SETTINGS clause in the query cannot undo them: readonly=1 forbids any change
    with pytest.raises(SqlRefused, match="drop the SETTINGS clause"):
        guarded.run("SELECT count() FROM feedback SETTINGS readonly = 0")
    with pytest.raises(SqlRefused, match="max_execution_time=2s"):
        guarded.run("SELECT 1 SETTINGS max_execution_time = 1000")
    with pytest.raises(QueryError, match="stopped after 2s") as info:
        guarded.run("SELECT count() FROM numbers(100000000000)")
    assert info.value.code == 159  # TIMEOUT_EXCEEDED
    # reads work, views with parameters too, and the writer's handle is not read-only
    assert guarded.run("SELECT count() FROM feedback").rows == [(0,)]
    assert guarded.run("SHOW TABLES").rows
    rows, columns = as_insert([SAMPLE_ROWS["feedback"]])
    warehouse.insert("feedback", rows, columns)
    assert guarded.run("SELECT count() FROM feedback").rows == [(1,)]
    assert warehouse.query("SELECT getSetting('readonly')").rows == [(0,)]


def test_memory_limit_stops_a_greedy_query(warehouse: Warehouse) -> None:
    limits = SqlLimits(max_memory_usage_bytes=32 * 1024**2)
    with (
        ReadOnlySql.open(warehouse.dsn, limits) as sql,
        pytest.raises(QueryError, match="stopped at 33554432 bytes") as info,
    ):
        sql.run("SELECT length(groupArray(number)) FROM numbers(50000000)")
    assert info.value.code == 241  # MEMORY_LIMIT_EXCEEDED


def test_the_sink_endpoint_needs_its_token_and_refuses_file(
    warehouse: Warehouse, credentials_file: Path, tmp_path: Path
) -> None:
    state_file = tmp_path / "data" / "sink.json"
    server = SqlServer.open(warehouse.dsn, state_file)
    server.start()
    try:
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(state_file.parent.stat().st_mode) == 0o700
        state = json.loads(state_file.read_text())
        assert remote_query(state_file, "SELECT count() FROM feedback") == {
            "columns": ["count()"],
            "rows": [[0]],
        }
        with pytest.raises(SqlRejectedError, match="reads outside the warehouse"):
            remote_query(state_file, f"SELECT * FROM file('{credentials_file}', 'RawBLOB')")
        with pytest.raises(SqlRejectedError, match="only read statements"):
            remote_query(state_file, "INSERT INTO feedback (request_id) VALUES ('x')")
        for token in (None, "wrong", state["token"][:-1]):
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            request = urllib.request.Request(state["url"], b"SELECT 1", headers, method="POST")
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(request, timeout=10)
            assert info.value.code == 401
    finally:
        server.stop()
    assert not state_file.exists()
    assert warehouse.query("SELECT getSetting('readonly')").rows == [(0,)]


def test_modelstream_sql_opening_the_warehouse_refuses_file(
    warehouse: Warehouse, warehouse_dsn: str, credentials_file: Path, tmp_path: Path
) -> None:
    env = {
        "MODELSTREAM_CLICKHOUSE": f"{warehouse_dsn}?database={warehouse.database}"
        if warehouse.dsn.embedded
        else warehouse_dsn.replace("?", f"/{warehouse.database}?", 1),
        "MODELSTREAM_DATA_DIR": str(tmp_path / "data"),  # no sink there: opens it itself
    }
    runner = CliRunner()
    read = runner.invoke(app, ["sql", "SELECT count() FROM feedback", "--output", "json"], env=env)
    assert read.exit_code == 0, read.output
    assert json.loads(read.stdout) == [{"count()": 0}]
    refused = runner.invoke(
        app, ["sql", f"SELECT * FROM file('{credentials_file}', 'RawBLOB')"], env=env
    )
    assert refused.exit_code == 2
    assert "reads outside the warehouse" in refused.output
    assert credentials_file.read_text() not in refused.output
    sneaky = runner.invoke(app, ["sql", "SELECT * FROM numbers(1) SETTINGS readonly = 0"], env=env)
    assert sneaky.exit_code == 1 and "drop the SETTINGS clause" in sneaky.output


def test_a_new_chdb_directory_is_private(warehouse_engine: Warehouse, tmp_path: Path) -> None:
    target = tmp_path / "loose"
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)
    private_dir(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    private_dir(tmp_path / "new" / "dir")
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700

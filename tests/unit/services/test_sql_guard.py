"""The guard on people's SQL without an engine: what is refused before ClickHouse sees it,
the sink's state file, and the secrets the `db` and `sql` commands must not print.

The same guard against the real engine (file() on the broker's credentials, readonly=1,
limits, the endpoint's token): tests/integration/test_warehouse.py.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.clikit import sql_limits
from services.settings import Settings
from services.sink.sqlserver import remote_query, write_private
from services.warehouse import READ_ONLY, SqlLimits, refusal

READS = [
    "SELECT 1",
    "  select model, count() FROM predictions GROUP BY model",
    "WITH x AS (SELECT 1) SELECT * FROM x",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "-- a comment first\nSELECT 1",
    "SHOW TABLES",
    "DESCRIBE TABLE predictions",
    "EXPLAIN SELECT 1",
    "EXISTS TABLE predictions",
    "SELECT * FROM drift_from_summaries(model = 'churn', start = now() - 3600, end = now())",
    "SELECT url, domain(url) FROM t",  # a column named url is no call
    "SELECT * FROM numbers(3)",
]
NOT_READS = [
    "INSERT INTO predictions VALUES (1)",
    "/* hidden */ INSERT INTO predictions VALUES (1)",
    "ALTER TABLE predictions DELETE WHERE 1",
    "KILL QUERY WHERE 1",  # ClickHouse allows it under readonly=1
    "SET readonly = 0",
    "SYSTEM SHUTDOWN",
    "OPTIMIZE TABLE predictions",
]
OUTSIDE = [
    "SELECT * FROM file('/home/me/.modelstream/kafka/credentials.json', 'RawBLOB')",
    "SELECT file('/etc/passwd')",
    "SELECT `file`('/etc/passwd')",
    "SELECT file/* hidden */('/etc/passwd')",
    "SELECT * FROM URL('http://169.254.169.254/latest/meta-data', 'RawBLOB')",
    "SELECT * FROM remoteSecure('10.0.0.1', system.users)",
    "SELECT * FROM s3('https://bucket.s3.amazonaws.com/x', 'RawBLOB')",
    "SELECT * FROM executable('id', 'RawBLOB', 'x String')",
    "SELECT * FROM mysql('db:3306', 'd', 't', 'u', 'p')",
    "SELECT * FROM predictions WHERE 1 IN (SELECT * FROM file('/x', 'RawBLOB'))",
]


@pytest.mark.parametrize("sql", READS)
def test_reads_go_to_the_engine(sql: str) -> None:
    assert refusal(sql) is None


@pytest.mark.parametrize("sql", NOT_READS)
def test_statements_that_are_not_reads_are_refused(sql: str) -> None:
    assert refusal(sql) == READ_ONLY


@pytest.mark.parametrize("sql", OUTSIDE)
def test_functions_that_read_outside_the_warehouse_are_refused(sql: str) -> None:
    reason = refusal(sql)
    assert reason is not None
    assert "reads outside the warehouse" in reason


def test_one_statement_at_a_time() -> None:
    assert refusal("SELECT 1; SET readonly = 0") == (
        "one statement at a time, please (found a ; inside it)"
    )
    assert refusal("SELECT 1;") is None


def test_limits_come_from_the_settings() -> None:
    settings = Settings(sql_max_execution_time_s=7, sql_max_memory_bytes=64 * 1024**2)
    assert sql_limits(settings) == SqlLimits(7, 64 * 1024**2)
    assert sql_limits(Settings()).settings() == {
        "max_execution_time": 30,
        "max_memory_usage": 2 * 1024**3,
        "readonly": 1,
    }


def test_the_state_file_is_0600_from_creation(tmp_path: Path) -> None:
    path = tmp_path / "sink.json"
    path.write_text("{}")
    os.chmod(path, 0o644)  # left by an older sink, world-readable
    write_private(path, json.dumps({"url": "http://127.0.0.1:1/sql", "token": "t"}))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["token"] == "t"
    assert [p.name for p in tmp_path.iterdir()] == ["sink.json"]  # no temporary left


def test_a_state_file_without_a_sink_means_no_sink(tmp_path: Path) -> None:
    path = tmp_path / "sink.json"
    assert remote_query(path, "SELECT 1") is None
    write_private(path, json.dumps({"url": "http://127.0.0.1:9/sql", "token": "t"}))
    assert remote_query(path, "SELECT 1", timeout=2) is None  # nobody listens on port 9


def test_sql_refuses_before_opening_anything(tmp_path: Path) -> None:
    env = {"MODELSTREAM_DATA_DIR": str(tmp_path), "MODELSTREAM_CLICKHOUSE": "http://127.0.0.1:9"}
    done = CliRunner().invoke(app, ["sql", "SELECT * FROM file('/etc/passwd', 'RawBLOB')"], env=env)
    assert done.exit_code == 2
    assert "reads outside the warehouse" in done.output


def test_db_migrate_never_prints_the_password(tmp_path: Path) -> None:
    dsn = "http://ana:s3cret-pw@127.0.0.1:9/ml?connect_timeout=1"
    env = {"MODELSTREAM_DATA_DIR": str(tmp_path), "MODELSTREAM_CLICKHOUSE": dsn}
    done = CliRunner().invoke(app, ["db", "migrate"], env=env)
    assert done.exit_code == 1
    assert "s3cret-pw" not in done.output
    assert "ana:***@127.0.0.1:9" in done.output

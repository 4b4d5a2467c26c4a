"""How clickhouse-connect errors map onto the warehouse's hierarchy, and chDB lock probing."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from clickhouse_connect.driver import exceptions as ch

from services.warehouse import (
    ChecksumMismatch,
    InvalidDsn,
    MigrationError,
    QueryError,
    WarehouseError,
    WarehouseLocked,
    WarehouseUnavailable,
)
from services.warehouse._chdb import lock_holder
from services.warehouse._errors import translate


def test_one_root() -> None:
    for kind in (InvalidDsn, WarehouseUnavailable, WarehouseLocked, QueryError, MigrationError):
        assert issubclass(kind, WarehouseError)
    assert issubclass(WarehouseLocked, WarehouseUnavailable)
    assert issubclass(ChecksumMismatch, MigrationError)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ch.OperationalError("HTTPConnectionPool: Connection refused"), WarehouseUnavailable),
        (ch.DatabaseError("Code: 241. Memory limit exceeded", code=241), WarehouseUnavailable),
        (ch.DatabaseError("Code: 252. Too many parts", code=252), WarehouseUnavailable),
        (ch.DatabaseError("Code: 60. Unknown table", code=60), QueryError),
        (ch.ProgrammingError("No data specified for insert"), QueryError),
        (ValueError("Invalid isoformat string: 'x'"), QueryError),
        (
            ch.ProgrammingError("EmbeddedServer already initialized with path '/a'"),
            WarehouseLocked,
        ),
    ],
)
def test_translate_picks_the_class(exc: Exception, kind: type[WarehouseError]) -> None:
    error = translate(exc, "doing it")

    assert type(error) is kind
    assert str(error).startswith("doing it: ")


def test_query_error_keeps_the_clickhouse_code() -> None:
    error = translate(ch.DatabaseError("Code: 62. Syntax error", code=62), "querying")

    assert isinstance(error, QueryError)
    assert error.code == 62


def test_a_free_directory_has_no_holder(tmp_path: Path) -> None:
    assert lock_holder(str(tmp_path)) is None
    (tmp_path / "status").write_text("PID: 1\n")
    assert lock_holder(str(tmp_path)) is None  # a stale file, nobody holds the lock


def test_a_held_directory_names_its_holder(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("PID: 4242\nStarted at: 2024-05-01 12:00:00\nRevision: 54515\n")
    fd = os.open(status, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert lock_holder(str(tmp_path)) == "PID 4242"
    finally:
        os.close(fd)

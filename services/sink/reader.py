"""The warehouse for reading, wherever it is: a ClickHouse server, the embedded one, or
the embedded one through the sink that holds it.

A chDB directory opens in one process at a time, and while ``modelstream up`` runs that
process is the sink. :class:`SinkReader` asks it over its loopback endpoint
(:mod:`services.sink.sqlserver`) with the same ``query(sql, params)`` and
``query_df(sql, params)`` as :class:`~services.warehouse.Warehouse`: parameters are bound
by the engine, times come back as UTC datetimes, and the endpoint's limits apply
(``readonly=1``, 30 s, 2 GiB). :func:`open_reader` picks: the sink when it holds the
embedded warehouse, else the warehouse itself (a server, or the embedded one when no
sink runs). The lifecycle, ``retrain`` and ``score --sql`` read this way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from services.clikit import sql_state_file
from services.settings import Settings
from services.sink.sqlserver import DATETIME_TAG, remote_query
from services.warehouse import QueryResult, WarehouseUnavailable, connect

__all__ = ["Reader", "SinkReader", "open_reader"]


class Reader(Protocol):
    """What reading code needs of a warehouse (a Warehouse and a SinkReader are both)."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None, *,
              read_only: bool = False) -> QueryResult: ...  # fmt: skip

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame: ...


class SinkReader:
    """Runs SELECTs on the warehouse a running sink owns (``<data dir>/sink.json``)."""

    def __init__(self, state_file: Path, timeout: float = 60.0) -> None:
        self.state_file, self.timeout = state_file, timeout

    def available(self) -> bool:
        """Whether a sink answers for this data dir."""
        return remote_query(self.state_file, "SELECT 1") is not None

    def query(self, sql: str, params: Mapping[str, Any] | None = None, *,
              read_only: bool = True) -> QueryResult:  # fmt: skip
        """Columns and rows; every query is read-only here (``read_only`` is accepted
        for :class:`Reader`'s sake)."""
        bound = {name: _param(value) for name, value in (params or {}).items()}
        answer = remote_query(self.state_file, sql, self.timeout, params=bound, typed=True)
        if answer is None:
            raise WarehouseUnavailable(
                f"the sink that served {self.state_file} stopped answering: start it again "
                "(`modelstream up`), or stop the stack so that the warehouse opens here"
            )
        rows = [tuple(_cell(value) for value in row) for row in answer["rows"]]
        return QueryResult(tuple(answer["columns"]), rows)

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        columns, rows = self.query(sql, params)
        frame = pd.DataFrame(rows, columns=list(columns))
        for name in frame.columns:
            if len(frame) and isinstance(frame[name].iloc[0], datetime):
                frame[name] = pd.to_datetime(frame[name], utc=True)
        return frame


@contextmanager
def open_reader(settings: Settings) -> Iterator[Reader]:
    """The running sink when it holds the embedded warehouse, else the warehouse itself
    (migrated: a reader may be the first to open a new one)."""
    sink = SinkReader(sql_state_file(settings))
    if settings.clickhouse is None and sink.available():
        yield sink
        return
    with connect(settings.clickhouse_dsn) as warehouse:
        warehouse.migrate(ttl_days=settings.clickhouse_ttl_days)
        yield warehouse


def _param(value: Any) -> Any:
    """A parameter as JSON the engine parses back: a time as UTC text with microseconds.

    >>> _param(datetime(2026, 5, 1, 12, 0, 0, 250000, tzinfo=UTC))
    '2026-05-01 12:00:00.250000'
    """
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, dict) and DATETIME_TAG in value:
        return datetime.fromisoformat(value[DATETIME_TAG])
    return value

"""Measured latency and traffic per model, from the warehouse's prediction log, for the
catalogue.

Where the numbers come from depends on where the warehouse lives:

- embedded (``chdb://``): the sink owns the chDB directory (one process at a time), so the
  query goes through the sink's read-only SQL endpoint (``<data dir>/sink.json``). The
  gateway never opens the directory itself: with no sink running, statistics are
  unavailable, and say so.
- a ClickHouse server (``http(s)://``): queried directly.

A catalogue request never waits long for them: one worker thread runs the query, a
caller waits at most ``timeout`` seconds (then gets the previous answer, or "unavailable"),
and every answer, good or bad, is kept ``ttl`` seconds.

Errors::

    StatsUnavailableError   the warehouse could not answer; the message says why
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from services.settings import Settings
from services.sink.sqlserver import SqlRejectedError, remote_query
from services.warehouse import Dsn, Warehouse, WarehouseError, connect, parse_dsn

__all__ = [
    "ModelStats",
    "Query",
    "StatsReport",
    "StatsUnavailableError",
    "WarehouseStats",
    "stats_sql",
    "warehouse_stats",
]

log = logging.getLogger(__name__)

Query = Callable[[str], tuple[Sequence[str], Sequence[Sequence[Any]]]]
"""Runs one read statement, returns ``(columns, rows)``; raises StatsUnavailableError."""

WINDOW_S: Final = 3600


class StatsUnavailableError(Exception):
    """The warehouse could not answer (no sink running, unreachable, query refused)."""


@dataclass(frozen=True)
class ModelStats:
    """One model's traffic over the last ``window_s`` seconds, as the scorer measured it."""

    model: str
    window_s: int
    requests: int
    qps: float  # requests / window_s: the average over the whole window
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float  # share answered with an error (neither champion nor backup served)
    backup_rate: float  # share the backup answered because the champion failed
    last_at: str | None = None  # the latest prediction's time (UTC)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StatsReport:
    """Every model with traffic in the window, or why there are no numbers."""

    models: Mapping[str, ModelStats]
    window_s: int = WINDOW_S
    unavailable: str | None = None
    measured_at: float = field(default_factory=time.time)

    def for_models(self, names: Iterable[str]) -> dict[str, ModelStats | None]:
        """``name → stats`` (None: no request in the window, or no numbers at all)."""
        return {name: self.models.get(name) for name in names}


def stats_sql(window_s: int = WINDOW_S) -> str:
    """The statement behind the numbers (also shown on the catalogue page).

    >>> "FROM predictions" in stats_sql(60) and "toIntervalSecond(60)" in stats_sql(60)
    True
    """
    return (
        "SELECT model, count() AS requests,\n"
        "       quantile(0.5)(latency_ms) AS p50_ms, quantile(0.95)(latency_ms) AS p95_ms,\n"
        "       quantile(0.99)(latency_ms) AS p99_ms,\n"
        "       avg(served_by = 'none') AS error_rate, avg(served_by = 'backup') AS backup_rate,\n"
        "       toString(max(ts)) AS last_at\n"
        "FROM predictions\n"
        f"WHERE ts >= now64(3) - toIntervalSecond({int(window_s)})\n"
        "GROUP BY model"
    )  # time-boxed by the caller: the sink's read-only guard, or QUERY_SETTINGS


def parse_stats(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], window_s: int
) -> dict[str, ModelStats]:
    """Rows of :func:`stats_sql` → ``model → ModelStats``.

    >>> cols = ["model", "requests", "p50_ms", "p95_ms", "p99_ms", "error_rate",
    ...         "backup_rate", "last_at"]
    >>> s = parse_stats(cols, [["churn", 7200, 1.5, 3.0, None, 0.01, 0.0, "2025-01-01"]], 3600)
    >>> s["churn"].qps, s["churn"].p99_ms
    (2.0, None)
    """
    found = {}
    for row in rows:
        value = dict(zip(columns, row, strict=True))
        requests = int(value["requests"])
        found[str(value["model"])] = ModelStats(
            model=str(value["model"]), window_s=window_s, requests=requests,
            qps=requests / window_s, p50_ms=_number(value["p50_ms"]),
            p95_ms=_number(value["p95_ms"]), p99_ms=_number(value["p99_ms"]),
            error_rate=_number(value["error_rate"]) or 0.0,
            backup_rate=_number(value["backup_rate"]) or 0.0,
            last_at=str(value["last_at"]) if value.get("last_at") else None,
        )  # fmt: skip
    return found


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


class WarehouseStats:
    """Cached, time-boxed statistics over ``query`` (see the module docstring).

    ``query=None`` makes statistics that are always unavailable for ``reason``.
    """

    def __init__(
        self, query: Query | None, *, reason: str = "no warehouse configured",
        window_s: int = WINDOW_S, ttl: float = 10.0, timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._query, self._reason = query, reason
        self.window_s, self._ttl, self._timeout, self._clock = window_s, ttl, timeout, clock
        self._lock = threading.Lock()
        self._cached: StatsReport | None = None
        self._cached_at = -math.inf
        self._inflight: threading.Event | None = None

    def report(self) -> StatsReport:
        """The latest numbers; waits at most ``timeout`` seconds for fresh ones."""
        if self._query is None:
            return StatsReport({}, self.window_s, unavailable=self._reason)
        with self._lock:
            if self._cached is not None and self._clock() - self._cached_at < self._ttl:
                return self._cached
            if self._inflight is None:
                self._inflight = threading.Event()
                threading.Thread(target=self._refresh, name="catalogue-stats", daemon=True).start()
            done, stale = self._inflight, self._cached
        if done.wait(self._timeout):
            assert self._cached is not None  # set before the event
            return self._cached
        if stale is not None:
            return stale
        why = f"the warehouse did not answer within {self._timeout:g} s (asked again on reload)"
        return StatsReport({}, self.window_s, unavailable=why)

    def for_models(self, names: Iterable[str]) -> dict[str, ModelStats | None]:
        """``name → stats`` of each model (None: no traffic in the window, or unavailable:
        see :meth:`report`)."""
        return self.report().for_models(names)

    def _refresh(self) -> None:
        report = self._measure()
        with self._lock:
            self._cached, self._cached_at = report, self._clock()
            done, self._inflight = self._inflight, None
        if done is not None:
            done.set()

    def _measure(self) -> StatsReport:
        assert self._query is not None
        try:
            columns, rows = self._query(stats_sql(self.window_s))
            return StatsReport(parse_stats(columns, rows, self.window_s), self.window_s)
        except StatsUnavailableError as exc:
            return StatsReport({}, self.window_s, unavailable=str(exc))
        except Exception as exc:  # the catalogue renders whatever happens here
            log.exception("catalogue statistics failed")
            return StatsReport({}, self.window_s, unavailable=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        closer = getattr(self._query, "close", None)
        if callable(closer):
            closer()


class SinkQuery:
    """Queries through the sink that owns the embedded warehouse."""

    def __init__(self, state_file: Path, timeout: float = 10.0) -> None:
        self.state_file, self.timeout = state_file, timeout

    def __call__(self, sql: str) -> tuple[Sequence[str], Sequence[Sequence[Any]]]:
        try:
            answer = remote_query(self.state_file, sql, timeout=self.timeout)
        except SqlRejectedError as exc:
            raise StatsUnavailableError(f"the warehouse refused the query: {exc}") from exc
        if answer is None:
            raise StatsUnavailableError(
                "the embedded warehouse is read through the sink, and no sink is running "
                f"for this data dir ({self.state_file.parent}): start `modelstream run sink`"
            )
        return answer["columns"], answer["rows"]


QUERY_SETTINGS: Final = {"max_execution_time": 10}  # a catalogue page must not hang on it


class ServerQuery:
    """Queries a ClickHouse server directly (connected on first use, again after errors)."""

    def __init__(self, dsn: Dsn) -> None:
        self.dsn = dsn
        self._warehouse: Warehouse | None = None

    def __call__(self, sql: str) -> tuple[Sequence[str], Sequence[Sequence[Any]]]:
        try:
            if self._warehouse is None:
                self._warehouse = connect(self.dsn)
            result = self._warehouse.query(sql, settings=QUERY_SETTINGS)
        except WarehouseError as exc:
            self.close()
            raise StatsUnavailableError(str(exc)) from exc
        return result.columns, result.rows

    def close(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None


def warehouse_stats(settings: Settings, **options: Any) -> WarehouseStats:
    """The catalogue's statistics for this deployment's warehouse (``options``: see
    :class:`WarehouseStats`). Raises InvalidDsn for a DSN that cannot be understood."""
    dsn = parse_dsn(settings.clickhouse_dsn)
    query: Query = SinkQuery(settings.data_dir / "sink.json") if dsn.embedded else ServerQuery(dsn)
    return WarehouseStats(query, **options)

"""SQL that comes from people: read-only, bounded in time and memory, on its own session.

Three layers, the engine's being the one that counts:

1. The statement must start with a read keyword (SELECT, WITH, SHOW, DESCRIBE, DESC,
   EXPLAIN, EXISTS) after any comments and brackets, and be one statement (no ``;``).
   ``KILL QUERY`` is allowed by ClickHouse under ``readonly=1``; this layer refuses it.
2. Functions that reach outside the warehouse are refused by name before the engine sees
   them: the scalar ``file()`` (chDB evaluates it even under ``readonly=1``) and the table
   functions ``file``, ``url``, ``remote``, ``s3``, ``executable``, ``mysql``, ... (the
   engine refuses those itself; this is defence in depth).
3. The engine runs it with ``readonly=1`` (no writes, no DDL, no table functions that
   are not read-only, no setting changes from the query), ``max_execution_time`` and
   ``max_memory_usage``. On chDB these are SET once on a dedicated session (a handle of
   its own on the same engine), ``readonly`` last, so a ``SETTINGS`` clause in the
   query cannot undo them and nothing leaks into the handle that writes. On a server
   they travel with every query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from services.warehouse._dsn import Dsn
from services.warehouse._errors import QueryError, WarehouseUnavailable
from services.warehouse._warehouse import QueryResult, Warehouse, connect

__all__ = ["READ_ONLY", "ReadOnlySql", "SqlLimits", "SqlRefused", "refusal"]

READONLY_CODE = 164  # ClickHouse: Cannot execute query in readonly mode
TIMEOUT_CODE = 159  # TIMEOUT_EXCEEDED
MEMORY_CODE = 241  # MEMORY_LIMIT_EXCEEDED
READ_ONLY = (
    "only read statements (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) are run: "
    "the warehouse is changed by the sink and `modelstream db migrate` alone"
)
OUTSIDE = (
    "{name}() reads outside the warehouse and is not run here: query the warehouse's "
    "tables and views (SHOW TABLES lists them)"
)
# every other statement ClickHouse knows: refused here (KILL would pass readonly=1); a word
# that starts no statement at all is a typo, left to the engine's own syntax error
_NOT_READS = re.compile(
    r"(INSERT|CREATE|ALTER|DROP|UNDROP|TRUNCATE|DELETE|UPDATE|RENAME|EXCHANGE|OPTIMIZE|"
    r"SYSTEM|KILL|GRANT|REVOKE|SET|USE|ATTACH|DETACH|BACKUP|RESTORE|MOVE|REPLACE|WATCH|"
    r"CHECK|BEGIN|COMMIT|ROLLBACK|START|EXECUTE|UNDO)\b",
    re.IGNORECASE,
)
_COMMENTS = re.compile(r"/\*.*?\*/|--[^\n]*|#[^\n]*", re.DOTALL)
_EXTERNAL = (
    "file|fileCluster|url|urlCluster|remote|remoteSecure|cluster|clusterAllReplicas|"
    "s3|s3Cluster|gcs|oss|cosn|azureBlobStorage|azureBlobStorageCluster|hdfs|hdfsCluster|"
    "executable|mysql|postgresql|sqlite|mongodb|redis|jdbc|odbc|ytsaurus|"
    "iceberg\\w*|deltaLake\\w*|hudi\\w*|paimon\\w*|dictionary"
)
_OUTSIDE = re.compile(rf"(?<![\w.])[`\"]?({_EXTERNAL})[`\"]?\s*\(", re.IGNORECASE)


class SqlRefused(QueryError):  # noqa: N818 - reads as what befell the statement
    """The statement is not run: not a read, reaches outside the warehouse, or the
    engine refused it in read-only mode. The message says which."""


@dataclass(frozen=True)
class SqlLimits:
    """What one statement may use; ClickHouse stops it beyond either."""

    max_execution_time_s: int = 30
    max_memory_usage_bytes: int = 2 * 1024**3

    def settings(self) -> dict[str, int]:
        """The ClickHouse settings, ``readonly`` last (after it nothing may change).

        >>> list(SqlLimits(5, 10).settings().items())
        [('max_execution_time', 5), ('max_memory_usage', 10), ('readonly', 1)]
        """
        return {
            "max_execution_time": self.max_execution_time_s,
            "max_memory_usage": self.max_memory_usage_bytes,
            "readonly": 1,
        }


def refusal(sql: str) -> str | None:
    """Why ``sql`` is not sent to the engine at all, or None (then the engine runs it
    read-only and a typo in a read gets ClickHouse's own syntax error).

    >>> refusal("select 1") is None, refusal("/* hi */ (SELECT 1)") is None
    (True, True)
    >>> refusal("DROP TABLE predictions") == READ_ONLY, refusal("SELEC 1") is None
    (True, True)
    >>> refusal("/* x */ KILL QUERY WHERE 1") == READ_ONLY
    True
    >>> refusal("SELECT 1; DROP TABLE x")
    'one statement at a time, please (found a ; inside it)'
    >>> refusal("SELECT `file` /* */ ('/etc/passwd')").split(" reads")[0]
    'file()'
    >>> refusal("SELECT * FROM URL('http://x', 'RawBLOB')").split(" reads")[0]
    'URL()'
    >>> refusal("SELECT url, profile FROM t WHERE domain(url) = 'x'") is None
    True
    """
    body = _COMMENTS.sub(" ", sql).strip().rstrip(";")
    if ";" in body:
        return "one statement at a time, please (found a ; inside it)"
    if _NOT_READS.match(body.lstrip("( \t\r\n")):
        return READ_ONLY
    outside = _OUTSIDE.search(body)
    return OUTSIDE.format(name=outside.group(1)) if outside else None


class ReadOnlySql:
    """Runs people's SQL on a handle of its own; see the module docstring.

    Open with :meth:`open` (a DSN: a new session on the same engine or server), use
    :meth:`run`, :meth:`close` when done (or ``with``). Thread-safe as the handle is.
    """

    def __init__(self, warehouse: Warehouse, limits: SqlLimits) -> None:
        self._warehouse = warehouse
        self._limits = limits
        self._per_query: dict[str, int] | None = None
        if warehouse.dsn.embedded:
            for name, value in limits.settings().items():
                warehouse.command(f"SET {name} = {int(value)}")
        else:  # no server session: the settings travel with each query
            self._per_query = limits.settings()

    @classmethod
    def open(cls, dsn: str | Dsn, limits: SqlLimits | None = None) -> ReadOnlySql:
        """A read-only session on the warehouse at ``dsn`` (see :func:`connect`)."""
        warehouse = connect(dsn)
        try:
            return cls(warehouse, limits or SqlLimits())
        except BaseException:
            warehouse.close()
            raise

    @property
    def limits(self) -> SqlLimits:
        return self._limits

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """``sql``'s columns and rows (``params`` bound to its ``{name:Type}``
        placeholders); :class:`SqlRefused` when it is not run,
        :class:`QueryError` when the engine rejects it (syntax, unknown table) or stops it
        at a limit, :class:`WarehouseUnavailable` when it cannot be reached."""
        reason = refusal(sql)
        if reason is not None:
            raise SqlRefused(reason)
        try:
            return self._warehouse.query(sql, params, settings=self._per_query)
        except WarehouseUnavailable as exc:
            over = self._over_limit(str(exc))
            if over is None:
                raise
            raise over from exc
        except QueryError as exc:
            if exc.code == READONLY_CODE and "Cannot modify" in str(exc):
                raise SqlRefused(self._fixed(), exc.code) from exc
            if exc.code == READONLY_CODE:
                raise SqlRefused(READ_ONLY, exc.code) from exc
            raise QueryError(tidy(str(exc)), exc.code) from exc

    def _over_limit(self, message: str) -> QueryError | None:
        if "TIMEOUT_EXCEEDED" in message:
            return QueryError(
                f"stopped after {self._limits.max_execution_time_s}s, the most a statement "
                "may run here: narrow it (a WHERE on ts, a LIMIT) or raise "
                "MODELSTREAM_SQL_MAX_EXECUTION_TIME_S",
                TIMEOUT_CODE,
            )
        if "MEMORY_LIMIT_EXCEEDED" in message:
            return QueryError(
                f"stopped at {self._limits.max_memory_usage_bytes} bytes of memory, the most "
                "a statement may use here: narrow it or raise MODELSTREAM_SQL_MAX_MEMORY_BYTES",
                MEMORY_CODE,
            )
        return None

    def _fixed(self) -> str:
        return (
            f"settings are fixed here (readonly=1, max_execution_time="
            f"{self._limits.max_execution_time_s}s, max_memory_usage="
            f"{self._limits.max_memory_usage_bytes} bytes): drop the SETTINGS clause"
        )

    def close(self) -> None:
        self._warehouse.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def tidy(message: str) -> str:
    r"""ClickHouse's error without what the client appended to the query, and its list of
    expected tokens cut short.

    >>> noise = "\n FORMAT Native"
    >>> tidy("Syntax error at 7 (1): 1" + noise + ". Expected one of: a, b, " + "x, " * 80)
    'Syntax error at 7 (1): 1. Expected one of: a, b, x, x, x, ...'
    """
    text = re.sub(r"\s*(SETTINGS [^\n]*?)?\s*FORMAT Native", "", message)
    head, found, expected = text.partition("Expected one of: ")
    if found and len(expected) > 40:
        expected = expected[:24].rsplit(",", 1)[0] + ", ..."
    return head + found + expected

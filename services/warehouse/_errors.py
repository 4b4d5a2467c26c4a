"""Errors of the warehouse, and the one place clickhouse-connect errors are translated.

::

    WarehouseError              root: catch this to catch everything from the warehouse
    ├── InvalidDsn              the DSN cannot be understood (also a ValueError)
    ├── WarehouseUnavailable    cannot reach or use the engine now; retrying later may work
    │   └── WarehouseLocked     a chDB directory is held by another process, or this
    │                           process holds another chDB path
    ├── QueryError              the engine rejected a statement or the rows (syntax, unknown
    │                           table, bad value); retrying the same thing will fail again
    └── MigrationError          a migration file is malformed or cannot be applied
        └── ChecksumMismatch    an applied migration file was edited afterwards
"""

from __future__ import annotations

from clickhouse_connect.driver import exceptions as ch

__all__ = [
    "ChecksumMismatch",
    "InvalidDsn",
    "MigrationError",
    "QueryError",
    "WarehouseError",
    "WarehouseLocked",
    "WarehouseUnavailable",
    "translate",
]


class WarehouseError(Exception):
    """Root of every error raised by :mod:`services.warehouse`."""


class InvalidDsn(WarehouseError, ValueError):  # noqa: N818 - named like httpx.InvalidURL
    """The DSN is not ``chdb:///abs/path`` nor ``http(s)://user:pass@host:port/db``."""


class WarehouseUnavailable(WarehouseError):  # noqa: N818 - a state, like httpx.TimeoutException
    """The engine cannot be reached or is overloaded: the caller may retry later."""


class WarehouseLocked(WarehouseUnavailable):
    """A chDB directory is already open elsewhere (chDB allows one engine per process)."""


class QueryError(WarehouseError):
    """The engine rejected the statement or the data; ``code`` is ClickHouse's error code."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class MigrationError(WarehouseError):
    """A migration file is malformed or failed to apply."""


class ChecksumMismatch(MigrationError):  # noqa: N818 - reads as the condition it reports
    """A migration that was already applied has changed on disk since."""


# Server-side codes that describe load or a passing fault, not a wrong statement:
# TIMEOUT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES, NO_FREE_CONNECTION, SOCKET_TIMEOUT,
# NETWORK_ERROR, MEMORY_LIMIT_EXCEEDED, TABLE_IS_READ_ONLY, TOO_MANY_PARTS,
# UNKNOWN_STATUS_OF_INSERT, ALL_CONNECTION_TRIES_FAILED, KEEPER_EXCEPTION.
RETRYABLE_CODES = frozenset({159, 202, 203, 209, 210, 241, 242, 252, 319, 279, 999})

_OTHER_PATH_OPEN = "already initialized with path"


def translate(exc: Exception, doing: str) -> WarehouseError:
    """Map a clickhouse-connect (or serialisation) error to this package's hierarchy.

    ``doing`` says what was attempted; it leads the message. The caller raises the result
    ``from exc`` so the original stays in the traceback.

    >>> from clickhouse_connect.driver.exceptions import OperationalError
    >>> type(translate(OperationalError("Connection refused"), "connecting")).__name__
    'WarehouseUnavailable'
    >>> str(translate(ValueError("Invalid isoformat string: 'x'"), "inserting into dlq"))
    "inserting into dlq: Invalid isoformat string: 'x'"
    """
    text = str(exc).strip()
    message = f"{doing}: {text}"
    code = getattr(exc, "code", None)
    if _OTHER_PATH_OPEN in text:
        return WarehouseLocked(
            f"{message}. This process holds another chDB path, and a process can hold one "
            "chDB path at a time: close every Warehouse on it first, or use a database "
            "(connect(dsn, database=...)) instead of a second directory"
        )
    if isinstance(exc, ch.OperationalError) or code in RETRYABLE_CODES:
        return WarehouseUnavailable(message)
    return QueryError(message, code if isinstance(code, int) else None)

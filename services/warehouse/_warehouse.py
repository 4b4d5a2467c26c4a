"""The :class:`Warehouse` handle: one clickhouse-connect client, typed, errors translated."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from services.private import private_dir as _private_dir
from services.warehouse._chdb import lock_holder
from services.warehouse._dsn import Dsn, identifier, parse_dsn
from services.warehouse._errors import (
    ChecksumMismatch,
    MigrationError,
    WarehouseError,
    WarehouseLocked,
    WarehouseUnavailable,
    translate,
)
from services.warehouse._migrations import Migration, load_migrations

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MIGRATIONS_TABLE",
    "AppliedMigration",
    "QueryResult",
    "Warehouse",
    "connect",
    "private_dir",
]

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "schema_migrations"
_UNKNOWN_DATABASE = 81
# Built here, not in a numbered file: migrate needs it before it can read what was applied.
_MIGRATIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}
(
    version UInt32 COMMENT 'Number of the migration file (NNN in NNN_name.sql)',
    name String COMMENT 'Name part of the file',
    checksum String COMMENT 'SHA-256 of the file text when it was applied',
    applied_at DateTime64(3, 'UTC') COMMENT 'When it was applied',
    ttl_days UInt32 COMMENT 'TTL the tables were created with (0 = none)'
)
ENGINE = MergeTree
ORDER BY version
COMMENT 'Migrations applied by services.warehouse (schemas/clickhouse/NNN_name.sql)'
"""
_MIGRATION_COLUMNS = ("version", "name", "checksum", "applied_at", "ttl_days")


class QueryResult(NamedTuple):
    """Column names and rows of a query; unpacks as ``columns, rows = wh.query(...)``."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class AppliedMigration:
    """A row of ``schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: datetime
    ttl_days: int


def connect(dsn: str | Dsn, *, database: str | None = None) -> Warehouse:
    """Open the warehouse at ``dsn`` (``chdb:///dir`` or ``http(s)://...``).

    ``database`` overrides the DSN's; it is created when missing. For chDB the directory
    is created too. One process can hold one chDB directory at a time (any number of
    ``Warehouse`` handles on it); to switch directory, close every handle first.
    Raises :class:`InvalidDsn`, :class:`WarehouseLocked`, :class:`WarehouseUnavailable`.
    """
    target = dsn if isinstance(dsn, Dsn) else parse_dsn(dsn)
    if database is not None:
        target = replace(target, database=identifier(database, target.redacted()))
    if target.embedded and target.path is not None:
        private_dir(target.path)
    try:
        client = _open_client(target, target.database)
    except ClickHouseError as exc:
        if getattr(exc, "code", None) != _UNKNOWN_DATABASE:
            raise _open_error(exc, target) from exc
        client = _create_database(target)
    return Warehouse(client, target)


def private_dir(path: str | Path) -> None:
    """:func:`services.private.private_dir`, its failure a :class:`WarehouseError`: the
    directory holds every prediction, and chDB's own files."""
    try:
        _private_dir(path)
    except OSError as exc:
        raise WarehouseError(f"creating the private directory {path}: {exc}") from exc


def _open_error(exc: ClickHouseError, dsn: Dsn) -> WarehouseError:
    holder = lock_holder(dsn.path) if dsn.embedded and dsn.path else None
    if holder is not None:
        return WarehouseLocked(
            f"connecting to {dsn.redacted()}: the directory is held by {holder}. A chDB "
            "directory can be opened by one process at a time: stop that process, or "
            "query through it"
        )
    return translate(exc, f"connecting to {dsn.redacted()}")


def _open_client(dsn: Dsn, database: str | None) -> Client:
    # tz_mode="aware": DateTime64(3, 'UTC') columns come back as UTC-aware datetimes.
    if dsn.embedded:
        return clickhouse_connect.get_client(
            interface="chdb", path=dsn.path, database=database, tz_mode="aware"
        )
    # No HTTP session: settings travel with each query, and a session would serialise
    # (or reject) concurrent queries from threads sharing this client.
    return clickhouse_connect.get_client(
        interface=dsn.scheme,
        host=dsn.host,
        port=dsn.port,
        username=dsn.username,
        password=dsn.password,
        database=database,
        tz_mode="aware",
        autogenerate_session_id=False,
        generic_args=dict(dsn.options) or None,
    )


def _create_database(dsn: Dsn) -> Client:
    try:
        client = _open_client(dsn, None)
    except ClickHouseError as exc:
        raise _open_error(exc, dsn) from exc
    try:
        client.command(f"CREATE DATABASE IF NOT EXISTS {dsn.database}")
        client.database = dsn.database
    except ClickHouseError as exc:
        client.close()
        raise translate(exc, f"creating database {dsn.database} at {dsn.redacted()}") from exc
    return client


class Warehouse:
    """A connection to the analytical store. Use :func:`connect` to get one.

    Also a context manager: ``with connect(dsn) as wh: ...`` closes it on the way out.
    """

    def __init__(self, client: Client, dsn: Dsn) -> None:
        self._client = client
        self._dsn = dsn
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Warehouse {self._dsn.redacted()} database={self.database} {state}>"

    @property
    def dsn(self) -> Dsn:
        """Where this warehouse lives."""
        return self._dsn

    @property
    def database(self) -> str:
        """The database statements run in."""
        return self._dsn.database

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing useful (DDL, ALTER, OPTIMIZE)."""
        try:
            self._client.command(sql, parameters=dict(params) if params else None)
        except ClickHouseError as exc:
            raise translate(exc, f"running {_head(sql)}") from exc

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        column_formats: Mapping[str, str] | None = None,
        read_only: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> QueryResult:
        """Run a SELECT; bind values with ``{name:Type}`` placeholders and ``params``.

        ``column_formats={"payload": "bytes"}`` reads a String column as raw bytes.
        ``read_only``: the engine refuses anything that writes (``readonly=2``), for
        SELECTs this code wrote. SQL that comes from people goes through
        :class:`~services.warehouse.ReadOnlySql` instead. ``settings``: ClickHouse
        settings for this query alone.
        """
        per_query = dict(settings or {})
        if read_only:
            per_query["readonly"] = 2
        try:
            result = self._client.query(
                sql,
                parameters=dict(params) if params else None,
                column_formats=dict(column_formats) if column_formats else None,
                settings=per_query or None,
            )
        except ClickHouseError as exc:
            raise translate(exc, f"querying {_head(sql)}") from exc
        return QueryResult(tuple(result.column_names), [tuple(row) for row in result.result_rows])

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a SELECT into a pandas DataFrame."""
        try:
            frame: pd.DataFrame = self._client.query_df(
                sql, parameters=dict(params) if params else None
            )
        except ClickHouseError as exc:
            raise translate(exc, f"querying {_head(sql)}") from exc
        return frame

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        dedup_token: str | None = None,
    ) -> None:
        """Insert ``rows`` (tuples or lists, in ``columns`` order) as one batch.

        With ``dedup_token``, a batch inserted again with the same token is dropped by
        the engine (it remembers the last 1000 inserts per table), so a retry after a lost
        acknowledgement is safe. Without a token the engine dedups on the batch's content
        hash: an identical batch is dropped too. Whether a batch was dropped is not
        reported (chDB counts the rows sent either way).
        """
        if not rows:
            return
        try:
            self._client.insert(
                table, rows, column_names=list(columns), settings=_dedup(dedup_token)
            )
        except (ClickHouseError, ValueError, TypeError) as exc:
            # ValueError/TypeError: clickhouse-connect could not serialise a value.
            raise translate(exc, f"inserting {len(rows)} rows into {table}") from exc

    def insert_df(self, table: str, frame: pd.DataFrame, dedup_token: str | None = None) -> None:
        """Insert a DataFrame whose column names are the table's; see :meth:`insert`."""
        if frame.empty:
            return
        try:
            self._client.insert_df(table, frame, settings=_dedup(dedup_token))
        except (ClickHouseError, ValueError, TypeError) as exc:
            raise translate(exc, f"inserting {len(frame)} rows into {table}") from exc

    def describe_schema(self) -> dict[str, str]:
        """Table (and view) name to its CREATE statement, for this database."""
        _, rows = self.query(
            "SELECT name, create_table_query FROM system.tables "
            "WHERE database = currentDatabase() ORDER BY name"
        )
        return {str(name): str(ddl) for name, ddl in rows}

    def migrate(self, ttl_days: int = 0, directory: Path | None = None) -> list[str]:
        """Apply the migrations not applied yet, in order; return their ``NNN_name``.

        ``ttl_days`` (0 = keep forever) is used when a table is created; it does not
        change tables that exist. Raises :class:`ChecksumMismatch` when an applied file
        changed, :class:`MigrationError` when a statement fails.
        """
        migrations = load_migrations(directory)
        self.command(_MIGRATIONS_DDL)
        applied = {m.version: m for m in self.applied_migrations()}
        _check_unchanged(migrations, applied)
        if applied and ttl_days not in {m.ttl_days for m in applied.values()}:
            log.warning(
                "migrate(ttl_days=%d): existing tables keep the TTL they were created "
                "with (%s days); change it with ALTER TABLE ... MODIFY TTL",
                ttl_days,
                sorted({m.ttl_days for m in applied.values()}),
            )
        done = []
        for migration in migrations:
            if migration.version not in applied:
                self._apply(migration, ttl_days)
                done.append(migration.label)
                log.info("applied migration %s to %s", migration.label, self.database)
        return done

    def applied_migrations(self) -> list[AppliedMigration]:
        """What ``schema_migrations`` records, by version (empty before the first migrate)."""
        exists = self.query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() "
            "AND name = {table:String}",
            {"table": MIGRATIONS_TABLE},
        ).rows[0][0]
        if not exists:
            return []
        # Two processes migrating at once may both record a file: fold duplicates.
        _, rows = self.query(
            f"SELECT version, any(name), any(checksum), min(applied_at), any(ttl_days) "
            f"FROM {MIGRATIONS_TABLE} GROUP BY version ORDER BY version"
        )
        return [AppliedMigration(int(v), str(n), str(c), a, int(t)) for v, n, c, a, t in rows]

    def close(self) -> None:
        """Release the client (for chDB: the engine, once the last handle closes)."""
        if not self._closed:
            self._closed = True
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _apply(self, migration: Migration, ttl_days: int) -> None:
        statements = migration.statements(ttl_days)
        if not statements:
            raise MigrationError(
                f"expected at least one statement in {migration.label}.sql, got none"
            )
        for number, statement in enumerate(statements, start=1):
            try:
                self._client.command(statement)
            except ClickHouseError as exc:
                error = translate(exc, f"applying {migration.label}.sql, statement {number}")
                if isinstance(error, WarehouseUnavailable):
                    raise error from exc
                raise MigrationError(
                    f"{error}. Nothing after it was applied; fix the file and run migrate again"
                ) from exc
        self.insert(
            MIGRATIONS_TABLE,
            [(migration.version, migration.name, migration.checksum, datetime.now(UTC), ttl_days)],
            _MIGRATION_COLUMNS,
        )


def _check_unchanged(migrations: list[Migration], applied: dict[int, AppliedMigration]) -> None:
    changed = [
        m for m in migrations if m.version in applied and applied[m.version].checksum != m.checksum
    ]
    if not changed:
        return
    lines = [
        f"{m.label}.sql: applied with checksum {applied[m.version].checksum[:12]}, "
        f"now {m.checksum[:12]}"
        for m in changed
    ]
    raise ChecksumMismatch(
        "migrations already applied have changed on disk: " + "; ".join(lines) + ". "
        "An applied migration must not change: revert the edit and put the change in a new "
        "file NNN_name.sql (e.g. ALTER TABLE ... ADD COLUMN IF NOT EXISTS). If the edit is "
        "cosmetic and the database already matches it, record the new checksum: "
        f"ALTER TABLE {MIGRATIONS_TABLE} UPDATE checksum = '<new sha256>' WHERE version = N"
    )


def _dedup(token: str | None) -> dict[str, Any] | None:
    return {"insert_deduplication_token": token} if token else None


def _head(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 80 else text[:77] + "..."

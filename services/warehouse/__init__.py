"""The analytical store: ClickHouse, embedded or on a server, behind one small API.

Everything the product records lands here for SQL: every prediction (inputs, champion and
challenger outputs, versions, latency), delayed labels, monitoring metrics, alerts,
dead-lettered messages and model registry events. Kafka stays the system of record; this is
where analysts ask questions.

Where it lives is a DSN, and the code and SQL are the same for both:

- ``chdb:///abs/dir`` — the real ClickHouse engine inside this process (chDB). One process
  may hold a chDB directory at a time, and a process holds one chDB directory at a time;
  any number of :class:`Warehouse` handles may share it. To switch directory in one
  process, close every handle first. Isolate work with databases, not directories.
- ``http(s)://user:pass@host:port/db`` — a ClickHouse server.

The schema is the numbered files in ``schemas/clickhouse/``, applied by
:meth:`Warehouse.migrate` and recorded in ``schema_migrations``.

In code (``wh.query`` binds ``{name:Type}`` placeholders server side)::

    with connect("chdb:///var/lib/modelstream/warehouse") as wh:
        wh.migrate(ttl_days=90)
        wh.insert("feedback", rows, FEEDBACK_COLUMNS, dedup_token="feedback[0]@100-199")
        columns, rows = wh.query(
            "SELECT champion_version, avg(champion_latency_ms) FROM predictions "
            "WHERE model = {model:String} GROUP BY champion_version", {"model": "churn"})

SQL that people type (``modelstream sql``, the sink's endpoint) runs through
:class:`ReadOnlySql`: ``readonly=1`` on a session of its own, time and memory bounded,
functions that read outside the warehouse (``file()``, ``url()``, ...) refused.

Errors (see ``_errors`` for the drawing): everything raised is a :class:`WarehouseError`;
:class:`WarehouseUnavailable` means "retry later", :class:`QueryError` means "this
statement or these rows will never work" (:class:`SqlRefused`: people's SQL that is not
run), :class:`MigrationError` is about the schema files.
"""

from services.warehouse._dsn import DEFAULT_DATABASE, Dsn, parse_dsn
from services.warehouse._errors import (
    ChecksumMismatch,
    InvalidDsn,
    MigrationError,
    QueryError,
    WarehouseError,
    WarehouseLocked,
    WarehouseUnavailable,
)
from services.warehouse._guard import READ_ONLY, ReadOnlySql, SqlLimits, SqlRefused, refusal
from services.warehouse._migrations import (
    MIGRATIONS_DIR,
    Migration,
    load_migrations,
    render,
    split_statements,
)
from services.warehouse._warehouse import (
    MIGRATIONS_TABLE,
    AppliedMigration,
    QueryResult,
    Warehouse,
    connect,
    private_dir,
)

__all__ = [
    "DEFAULT_DATABASE",
    "MIGRATIONS_DIR",
    "MIGRATIONS_TABLE",
    "READ_ONLY",
    "AppliedMigration",
    "ChecksumMismatch",
    "Dsn",
    "InvalidDsn",
    "Migration",
    "MigrationError",
    "QueryError",
    "QueryResult",
    "ReadOnlySql",
    "SqlLimits",
    "SqlRefused",
    "Warehouse",
    "WarehouseError",
    "WarehouseLocked",
    "WarehouseUnavailable",
    "connect",
    "load_migrations",
    "parse_dsn",
    "private_dir",
    "refusal",
    "render",
    "split_statements",
]

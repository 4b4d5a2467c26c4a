"""Where scored rows go: a file written aside and renamed, or a ClickHouse table.

A file is written to ``<out>.tmp-<random>`` in the output's directory and renamed over
``<out>`` (``os.replace``, atomic on one filesystem) only when every chunk is in it: a
run that stops half-way leaves the previous output, or none, and no partial file (its
temporary file is removed; a killed process may leave a ``.tmp-`` file, never ``<out>``
half-written).

A table is created when missing (every column ``Nullable``, ``MergeTree`` with a
deduplication window) and receives one insert per chunk whose deduplication token names
the run and the chunk (``batch-<run key>-<chunk size>[<chunk>]``): a rerun of the same
input with the same models and ``--batch-size`` inserts nothing twice (with another
``--batch-size`` the chunks differ, and so would the rows inserted again).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from services.batch._errors import InputError, UnreachableError
from services.batch._source import file_format
from services.warehouse import QueryError, Warehouse, WarehouseError

__all__ = ["FileOutput", "Output", "TableOutput", "clickhouse_type", "table_name"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEDUP_WINDOW = 10_000  # inserts remembered per table: a rerun of up to 10k chunks dedups


class Output(Protocol):
    """Receives the scored chunks in order; :meth:`commit` once all are in."""

    where: str

    def open(self, schema: pa.Schema) -> None: ...

    def write(self, table: pa.Table, chunk: int) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class FileOutput:
    """A Parquet or CSV file, written aside and renamed into place by :meth:`commit`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self.kind = file_format(path)
        if not path.parent.is_dir():
            raise InputError(f"{path.parent}: no such directory; create it or choose another "
                             "--output")  # fmt: skip
        self.aside = path.with_name(f"{path.name}.tmp-{secrets.token_hex(4)}")
        self._writer: pq.ParquetWriter | pa_csv.CSVWriter | None = None
        self._schema: pa.Schema | None = None

    def open(self, schema: pa.Schema) -> None:
        """Start the file aside (before the first chunk: an empty input still has columns)."""
        self._schema = schema
        try:
            if self.kind == "parquet":
                self._writer = pq.ParquetWriter(self.aside, schema)
            else:
                self._writer = pa_csv.CSVWriter(self.aside, schema)
        except OSError as exc:
            raise InputError(f"cannot write {self.aside} ({exc.strerror}): check the "
                             "directory's permissions and free space") from exc  # fmt: skip

    def write(self, table: pa.Table, chunk: int) -> None:
        if self._writer is None:
            self.open(table.schema)
        assert self._writer is not None
        self._writer.write_table(table)

    def commit(self) -> None:
        if self._writer is None:
            raise InputError("nothing was written: the output was never opened")
        self._writer.close()
        os.replace(self.aside, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.aside.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        if kind is not None:
            self.abort()


def table_name(text: str) -> str:
    """``table`` or ``database.table``, each part a plain identifier, quoted.

    >>> table_name("scored"), table_name("ml.scored_daily")
    ('`scored`', '`ml`.`scored_daily`')
    >>> table_name("x; DROP TABLE y")
    Traceback (most recent call last):
    services.batch._errors.InputError: --table 'x; DROP TABLE y': expected table or database.table, letters, digits and _ only
    """  # noqa: E501
    parts = text.split(".")
    if not 1 <= len(parts) <= 2 or not all(_NAME.fullmatch(p) for p in parts):
        raise InputError(f"--table {text!r}: expected table or database.table, letters, "
                         "digits and _ only")  # fmt: skip
    return ".".join(f"`{p}`" for p in parts)


_SIMPLE = {
    pa.int8(): "Int8", pa.int16(): "Int16", pa.int32(): "Int32", pa.int64(): "Int64",
    pa.uint8(): "UInt8", pa.uint16(): "UInt16", pa.uint32(): "UInt32", pa.uint64(): "UInt64",
    pa.float32(): "Float32", pa.float64(): "Float64", pa.bool_(): "Bool",
    pa.string(): "String", pa.large_string(): "String", pa.date32(): "Date32",
}  # fmt: skip


def clickhouse_type(kind: pa.DataType) -> str:
    """The ClickHouse column type of an Arrow type (always ``Nullable``).

    >>> clickhouse_type(pa.float64()), clickhouse_type(pa.timestamp("ms", tz="UTC"))
    ('Nullable(Float64)', "Nullable(DateTime64(3, 'UTC'))")
    """
    if pa.types.is_timestamp(kind):
        scale = {"s": 0, "ms": 3, "us": 6, "ns": 9}[kind.unit]
        return f"Nullable(DateTime64({scale}, '{kind.tz or 'UTC'}'))"
    simple = _SIMPLE.get(kind)
    if simple is None:
        raise InputError(f"a column of type {kind} cannot go to a ClickHouse table here: "
                         "cast it in the input, or write a file with --output")  # fmt: skip
    return f"Nullable({simple})"


class TableOutput:
    """A ClickHouse table; one deduplicated insert per chunk."""

    def __init__(self, warehouse: Warehouse, table: str, run_key: str, batch_size: int) -> None:
        self.warehouse = warehouse
        self.table = table_name(table)
        self.where = f"table {table}"
        self.token = f"batch-{run_key}-{batch_size}"
        self._created = False

    def open(self, schema: pa.Schema) -> None:
        columns = ", ".join(f"`{f.name}` {clickhouse_type(f.type)}" for f in schema)
        self._command(
            f"CREATE TABLE IF NOT EXISTS {self.table} ({columns}) ENGINE = MergeTree "
            f"ORDER BY tuple() SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"
        )
        self._created = True

    def write(self, table: pa.Table, chunk: int) -> None:
        if not self._created:
            self.open(table.schema)
        columns = table.column_names
        rows = list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
        token = f"{self.token}[{chunk}]"
        try:
            self.warehouse.insert(self.table, rows, columns, dedup_token=token)
        except QueryError as exc:
            raise InputError(f"cannot insert into {self.table} ({exc}): if it exists with "
                             "other columns, choose another --table") from exc  # fmt: skip
        except WarehouseError as exc:
            raise UnreachableError(f"cannot insert into {self.table}: {exc}") from exc

    def _command(self, sql: str) -> None:
        try:
            self.warehouse.command(sql)
        except QueryError as exc:
            raise InputError(f"cannot create {self.table}: {exc}") from exc
        except WarehouseError as exc:
            raise UnreachableError(f"cannot create {self.table}: {exc}") from exc

    def commit(self) -> None:
        """Every chunk is in already (each insert is its own)."""

    def abort(self) -> None:
        """Inserted chunks stay: a rerun's inserts of them are dropped as duplicates."""

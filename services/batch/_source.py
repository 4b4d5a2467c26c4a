"""Where the rows to score come from: a Parquet or CSV file, or a read-only query.

A source knows its name (the file's name or the SQL text: the prediction log's
``source_topic`` is ``batch:<name>``), a fingerprint of its content (16 hex digits of a
SHA-256: the same bytes, the same request ids) and its row count, and hands out its
rows in chunks of exactly the size asked for: a chunk is the unit of scoring, logging
and resuming, so the same input always cuts into the same chunks.

CSV columns that the model's input schema declares as text are read as text (a zip code
``"007"`` stays ``"007"``); every other column's type is inferred.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from services.batch._errors import InputError

__all__ = ["FORMATS", "Source", "exact_chunks", "file_format", "from_file", "from_rows"]

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Source:
    """Rows to score, read lazily in exact chunks by :meth:`chunks`."""

    name: str
    fingerprint: str
    rows: int
    schema: pa.Schema
    _batches: Callable[[int], Iterable[pa.RecordBatch]]

    def chunks(self, size: int) -> Iterator[pa.Table]:
        """The rows in order, ``size`` at a time (the last chunk may be shorter)."""
        return exact_chunks(self._batches(size), size)


def exact_chunks(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Re-cut ``batches`` into tables of exactly ``size`` rows (the last one: the rest).

    >>> b = pa.record_batch({"a": [1, 2, 3]})
    >>> [t.column("a").to_pylist() for t in exact_chunks([b, b], 4)]
    [[1, 2, 3, 1], [2, 3]]
    """
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == size:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def file_format(path: Path) -> str:
    """``parquet`` or ``csv``, by the file's suffix.

    >>> file_format(Path("x/daily.PARQUET")), file_format(Path("a.csv"))
    ('parquet', 'csv')
    """
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: expected a .parquet or .csv file, got {path.suffix or 'no suffix'!r}"
        )
    return kind


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_READ_BLOCK):
            sha.update(block)
    return sha.hexdigest()[:16]


def from_file(path: Path, text_columns: Collection[str] = ()) -> Source:
    """A Parquet or CSV file as a source; ``text_columns``: CSV columns read as text."""
    kind = file_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; give an existing --input file")
    try:
        fingerprint = _digest(path)
        if kind == "parquet":
            return _parquet(path, fingerprint)
        return _csv(path, fingerprint, text_columns)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read it as {kind} ({exc}); check the file") from exc


def _parquet(path: Path, fingerprint: str) -> Source:
    meta = pq.ParquetFile(path)

    def batches(size: int) -> Iterator[pa.RecordBatch]:
        yield from pq.ParquetFile(path).iter_batches(batch_size=size)

    return Source(path.name, fingerprint, meta.metadata.num_rows, meta.schema_arrow, batches)


def _csv(path: Path, fingerprint: str, text_columns: Collection[str]) -> Source:
    with path.open("rb") as handle:
        header = handle.readline().decode("utf-8", "replace")
    present = {name.strip().strip('"') for name in header.rstrip("\r\n").split(",")}
    types = {name: pa.string() for name in text_columns if name in present}
    table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types=types))
    return _of_table(path.name, fingerprint, table)


def _of_table(name: str, fingerprint: str, table: pa.Table) -> Source:
    def batches(size: int) -> Iterator[pa.RecordBatch]:
        yield from table.to_batches(max_chunksize=size)

    return Source(name, fingerprint, table.num_rows, table.schema, batches)


def from_rows(name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Source:
    """A query's result as a source; its fingerprint covers the SQL text and every value.

    >>> s = from_rows("SELECT 1 AS a", ["a"], [(1,), (2,)])
    >>> s.rows, s.schema.names, len(s.fingerprint)
    (2, ['a'], 16)
    """
    sha = hashlib.sha256(name.encode())
    sha.update(orjson.dumps([list(columns), *map(list, rows)], default=str))
    try:
        table = pa.table({c: [row[i] for row in rows] for i, c in enumerate(columns)})
    except pa.ArrowException as exc:
        raise InputError(f"the query's result cannot be read as columns ({exc}): CAST its "
                         "columns to one type each") from exc  # fmt: skip
    return _of_table(name, sha.hexdigest()[:16], table)

"""What every landing shares: where a record came from, and how it becomes rows.

A :class:`Landing` turns one Kafka record into the rows of one table. Most records are
one row (``to_row``); a registry record is one row per feature of its reference profile,
or none for an artifact chunk (``to_rows``). A landing that raises
(:class:`UnlandableError`, a codec error, ``KeyError``, ``TypeError``, ``ValueError``)
sends the record to the ``dlq`` table instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.contracts import decode_value
from schemas.timestamps import MAX_MILLIS, MIN_MILLIS

__all__ = ["Landing", "Position", "Row", "UnlandableError", "from_millis"]

Row = tuple[Any, ...]


class UnlandableError(ValueError):
    """A record that decodes but cannot become a row; ``reason`` is its DLQ reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record came from: ``topic[partition]@offset``, its key and its headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Mapping[str, bytes]

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True)
class Landing:
    """How the records of one kind of topic land in one table.

    The record is decoded with ``contract`` (``None``: the raw bytes), then ``to_row``
    makes its row, or ``to_rows`` its rows (exactly one of the two is given).
    """

    table: str
    contract: str | None
    columns: tuple[str, ...]
    to_row: Callable[[Any, Position], Row] | None = None
    to_rows: Callable[[Any, Position], list[Row]] | None = None

    def __post_init__(self) -> None:
        if (self.to_row is None) == (self.to_rows is None):
            raise TypeError(f"{self.table}: expected one of to_row and to_rows")

    def rows(self, value: bytes, pos: Position) -> list[Row]:
        """The rows of one record (none for a record that holds no data)."""
        record = value if self.contract is None else decode_value(value, pos.headers, self.contract)
        if self.to_rows is not None:
            return self.to_rows(record, pos)
        assert self.to_row is not None
        return [self.to_row(record, pos)]


def from_millis(millis: int | None) -> datetime:
    """Epoch milliseconds as a UTC datetime (0 when absent); :class:`UnlandableError`
    (``bad_timestamp``) for what is not a number of milliseconds ClickHouse can store.

    >>> from_millis(1_700_000_000_123).isoformat()
    '2023-11-14T22:13:20.123000+00:00'
    >>> from_millis(10**18)
    Traceback (most recent call last):
    services.sink.landing.UnlandableError: timestamp 1000000000000000000 ms is outside 1900-2299
    """
    if millis is None:
        millis = 0
    if isinstance(millis, bool) or not isinstance(millis, int | float) or millis != millis:
        raise UnlandableError("bad_timestamp", f"timestamp {millis!r} is not a number of ms")
    if not MIN_MILLIS <= millis <= MAX_MILLIS:
        raise UnlandableError("bad_timestamp", f"timestamp {millis} ms is outside 1900-2299")
    return datetime.fromtimestamp(millis / 1e3, tz=UTC)

"""A decoded batch of one model's requests, as rows and as columns.

Each request is decoded once (and checked against the input contract) into a row dict;
the frame keeps the rows in batch order and hands out one column per field on first use,
so a model that works on a matrix (scikit-learn, a compiled River pipeline) reads columns
and one that works on dicts (any other River model) reads rows, from the same decode.

>>> frame = Frame([{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}], ("a", "b"))
>>> len(frame), frame.column("a"), frame.columns()["b"]
(2, [1.0, 2.0], ['x', 'y'])
>>> frame.take([1]).rows
[{'a': 2.0, 'b': 'y'}]
>>> len(Frame.concat([frame, frame.take([0])]))
3
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

__all__ = ["Frame", "Row"]

Row = dict[str, Any]


class Frame:
    """Rows of one batch and their columns (built lazily, at most once each)."""

    __slots__ = ("_columns", "names", "rows")

    def __init__(self, rows: list[Row], names: Sequence[str] | None = None) -> None:
        self.rows = rows
        self.names: tuple[str, ...] = tuple(
            names if names is not None else (rows[0] if rows else ())
        )
        self._columns: dict[str, list[Any]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        """The values of field ``name``, one per row (``None`` where a row lacks it)."""
        found = self._columns.get(name)
        if found is None:
            found = [row.get(name) for row in self.rows]
            self._columns[name] = found
        return found

    def columns(self) -> dict[str, Sequence[Any]]:
        """Every field's column, in field order (transposed in one pass when every row has
        every field, as decoded rows do)."""
        names = self.names
        if len(self._columns) < len(names) and self.rows and len(names) > 1:
            try:
                transposed = zip(*map(itemgetter(*names), self.rows), strict=True)
                self._columns = dict(zip(names, map(list, transposed), strict=True))
            except KeyError:
                pass
        return {name: self.column(name) for name in names}

    def take(self, indices: Iterable[int]) -> Frame:
        rows = self.rows
        return Frame([rows[i] for i in indices], self.names)

    @staticmethod
    def concat(frames: Sequence[Frame]) -> Frame:
        """One frame of every row of ``frames`` in order (a challenger catching up)."""
        if len(frames) == 1:
            return frames[0]
        rows = [row for frame in frames for row in frame.rows]
        return Frame(rows, frames[0].names if frames else ())

    @classmethod
    def of(cls, rows: Sequence[Row] | Frame) -> Frame:
        """``rows`` as a frame (a frame stays itself)."""
        return rows if isinstance(rows, Frame) else cls(list(rows))

"""Which input offsets are done, when a request's outputs leave at different times.

A request's reply (or DLQ entry) leaves with its batch; its prediction-log record leaves
once the challenger has answered (or failed), possibly a few transactions later; in
at-least-once mode each message is done only once the broker acknowledged it. The ledger
keeps one :class:`Unit` per consumed batch with how many of its pieces are still out, and
says per partition which offset may be committed: the first offset of the oldest unit
still open there, else one past the last offset seen.

>>> ledger = Ledger()
>>> first = ledger.open({("t", 0): (0, 9)}, waiting=1)
>>> second = ledger.open({("t", 0): (10, 19), ("t", 1): (0, 4)}, waiting=0)
>>> ledger.offsets()
{('t', 0): 0, ('t', 1): 5}
>>> ledger.done(first)
>>> ledger.offsets()
{('t', 0): 20, ('t', 1): 5}
"""

from __future__ import annotations

__all__ = ["Ledger", "TopicPartitionKey", "Unit"]

TopicPartitionKey = tuple[str, int]


class Unit:
    """One consumed batch: its offset range per partition and how many pieces are out."""

    __slots__ = ("ranges", "waiting")

    def __init__(self, ranges: dict[TopicPartitionKey, tuple[int, int]], waiting: int) -> None:
        self.ranges = ranges
        self.waiting = waiting


class Ledger:
    """Open units in consumption order, and the next offset per partition."""

    def __init__(self) -> None:
        self._open: list[Unit] = []
        self._next: dict[TopicPartitionKey, int] = {}

    def open(self, ranges: dict[TopicPartitionKey, tuple[int, int]], waiting: int) -> Unit:
        unit = Unit(ranges, waiting)
        nxt = self._next
        for tp, (_, last) in ranges.items():
            if last + 1 > nxt.get(tp, -1):
                nxt[tp] = last + 1
        if waiting > 0:
            self._open.append(unit)
        return unit

    def add(self, unit: Unit, pieces: int = 1) -> None:
        unit.waiting += pieces

    def done(self, unit: Unit, pieces: int = 1) -> None:
        unit.waiting -= pieces
        if unit.waiting <= 0 and unit in self._open:
            self._open.remove(unit)

    def offsets(self) -> dict[TopicPartitionKey, int]:
        """Per partition: everything before this offset is done."""
        out = dict(self._next)
        blocked: set[TopicPartitionKey] = set()
        for unit in self._open:
            for tp, (first, _) in unit.ranges.items():
                if tp not in blocked:
                    out[tp] = first
                    blocked.add(tp)
        return out

    def forget(self, partitions: set[TopicPartitionKey]) -> None:
        """Drop ``partitions`` (revoked, or rewound after an abort)."""
        for tp in partitions:
            self._next.pop(tp, None)
        for unit in list(self._open):
            for tp in partitions:
                unit.ranges.pop(tp, None)
            if not unit.ranges:
                self._open.remove(unit)

    def clear(self) -> None:
        self._open.clear()
        self._next.clear()

    @property
    def open_units(self) -> int:
        return len(self._open)

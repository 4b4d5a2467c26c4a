"""Finding the one request whose output can never be produced.

An output the broker always refuses (a topic's own rule the scorer cannot check in
advance) aborts its transaction, and the replay makes it again. After two aborts in a
row the scorer bisects: the next batch takes half as many requests as the aborted
transaction held, and every further abort halves again. A batch that commits was clean,
and the culprit's partition is rewound to it after each abort, so it is in the next
batch again and the halving closes in on it. A transaction of one request that aborts
marks that request *unproducible*: at its next reading it goes to the DLQ with the error
text instead of being served. While bisecting, each transaction carries its own
requests' log records, so the aborted transaction's requests are exactly the batch's,
and only the partitions of the last aborted transaction are read (:attr:`focus`: the
other partitions' backlog would otherwise be crawled through first, a few requests per
transaction).
Batches grow back to full size once a request was isolated, once twice as many
requests as the first aborted transaction held committed cleanly (the aborts were
transient after all), or when the focus partitions have nothing more to read
(:meth:`Isolation.release`: the other partitions would otherwise wait for ever).

A request marked twice (its DLQ entry was refused too) is marked ``bare``: its DLQ entry
keeps only the scorer's headers. A third time, :class:`Isolation` gives up (the DLQ topic
itself cannot be written to).

>>> iso = Isolation(max_batch=8)
>>> origins = {("t", 0, offset) for offset in range(8)}
>>> iso.aborted(origins, "e"), iso.limit      # once: a transient failure, perhaps
(None, 8)
>>> iso.aborted(origins, "e"), iso.limit      # twice in a row: bisect
(None, 4)
>>> iso.committed(4); iso.limit, iso.focus    # the first half was clean
(4, {('t', 0)})
>>> iso.aborted({("t", 0, o) for o in range(4, 8)}, "e"), iso.limit
(None, 2)
>>> iso.aborted({("t", 0, 4), ("t", 0, 5)}, "e"), iso.limit
(None, 1)
>>> iso.aborted({("t", 0, 4)}, "refused"), iso.limit
(('t', 0, 4), 8)
>>> iso.verdict(("t", 0, 4))
Verdict(error='refused', attempts=1, written=False)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Isolation", "IsolationError", "Origin", "Verdict"]

Origin = tuple[str, int, int]  # a request's topic, partition and offset
GIVE_UP = 3  # a request's DLQ entry refused twice: the DLQ topic cannot be written


class IsolationError(Exception):
    """Even the DLQ entry of an isolated request cannot be produced."""


@dataclass(frozen=True)
class Verdict:
    """Why a request is unproducible, and how many times it was found so."""

    error: str
    attempts: int = 1
    written: bool = False  # its DLQ entry committed: a replay writes nothing for it

    @property
    def bare(self) -> bool:
        """Its full DLQ entry was refused too: write only what the scorer adds."""
        return self.attempts > 1


class Isolation:
    """Batch size after aborts, and the requests found unproducible."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._cap: int | None = None
        self._aborts = 0
        self._clean = 0  # requests committed since the bisection began
        self._suspects = 0  # requests of the first aborted transaction
        self._focus: set[tuple[str, int]] = set()
        self._verdicts: dict[Origin, Verdict] = {}

    @property
    def limit(self) -> int:
        """How many requests the next batch may take."""
        return self._cap or self.max_batch

    @property
    def splitting(self) -> bool:
        return self._cap is not None

    @property
    def focus(self) -> set[tuple[str, int]] | None:
        """While bisecting: the partitions of the last aborted transaction."""
        return self._focus if self._cap is not None else None

    @property
    def found(self) -> bool:
        """Some request was found unproducible (the batch's requests must be screened)."""
        return bool(self._verdicts)

    def aborted(self, origins: set[Origin], error: str) -> Origin | None:
        """A transaction of ``origins``' outputs aborted; returns the request found
        unproducible, if this abort isolated one. Raises :class:`IsolationError` when a
        request's DLQ entry kept being refused."""
        self._aborts += 1
        if (self._aborts < 2 and self._cap is None) or not origins:
            return None
        if len(origins) > 1:
            if self._cap is None:
                self._suspects, self._clean = len(origins), 0
            self._cap = max(1, len(origins) // 2)
            self._focus = {(topic, partition) for topic, partition, _ in origins}
            return None
        (origin,) = origins
        known = self._verdicts.get(origin)
        attempts = 1 if known is None else known.attempts + 1
        if attempts >= GIVE_UP:
            raise IsolationError(
                f"the DLQ entry of {origin[0]}[{origin[1]}]@{origin[2]} was refused "
                f"{attempts - 1} times ({error}): check that the model's DLQ topic exists "
                "and that the scorer may write to it, then restart the scorer"
            )
        self._verdicts[origin] = Verdict(error if known is None else known.error, attempts)
        self._aborts, self._cap = 0, None
        return origin

    def committed(self, requests: int) -> None:
        """A transaction of ``requests`` requests' outputs committed."""
        self._aborts = 0
        if self._cap is not None:
            self._clean += requests
            if self._clean >= 2 * self._suspects:
                self._cap = None

    def release(self) -> None:
        """Stop bisecting: the focus partitions ran dry before enough clean commits.

        >>> iso = Isolation(max_batch=8)
        >>> for _ in range(2):
        ...     _ = iso.aborted({("t", 0, 1), ("t", 0, 2)}, "e")
        >>> iso.focus, iso.limit
        ({('t', 0)}, 1)
        >>> iso.release(); iso.focus, iso.limit
        (None, 8)
        """
        self._cap, self._aborts = None, 0

    def verdict(self, origin: Origin) -> Verdict | None:
        return self._verdicts.get(origin)

    def written(self, origin: Origin) -> None:
        """``origin``'s DLQ entry committed; a replay (its partition's committed offset may
        still be behind it) writes nothing more for it."""
        known = self._verdicts.get(origin)
        if known is not None:
            self._verdicts[origin] = Verdict(known.error, known.attempts, written=True)

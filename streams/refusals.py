"""Refused records, summed up: one log line per source per interval, not one per record.

A stage that refuses a record (the monitor cannot decode it, the sink sends it to the dlq
table) tells :class:`RefusalLog`; each ``interval`` seconds at most it logs one WARNING
per (kind, model) that had refusals, with the count per reason, the first error of each
reason and where the first refused record is::

    1600 feedback records of loan refused in the last 60 s: 1600 wrong_type (field
    'label': expected null | string | double, got object) (first at ms.loan.feedback[0]@17)

So a producer sending the wrong type costs a line a minute, not a line a record, and the
position says where to look. The interval starts at the first refusal after a quiet one;
:meth:`RefusalLog.flush` logs what is pending (at shutdown). The counts a stage keeps in
its stats are its own: this only logs.

Examples
--------
>>> now = [0.0]
>>> refusals = RefusalLog(logging.getLogger("doc"), interval=60, clock=lambda: now[0])
>>> for offset in (7, 8):
...     refusals.add("feedback", "loan", f"ms.loan.feedback[0]@{offset}", "wrong_type",
...                  "field 'label': expected null | string | double, got array of 1")
>>> refusals.summaries()   # nothing yet: the interval is not over
[]
>>> now[0] = 61.0
>>> print(*refusals.summaries())
2 feedback records of loan refused in the last 61 s: 2 wrong_type (field 'label': \
expected null | string | double, got array of 1) (first at ms.loan.feedback[0]@7)
>>> refusals.summaries(now=True)   # logged once: the next interval starts empty
[]
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RefusalLog", "reason_of"]


def reason_of(exc: BaseException) -> str:
    """The stable reason code of an error: a contract error's ``reason`` (``wrong_type``),
    else the exception's type name (``KeyError``)."""
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else type(exc).__name__


@dataclass
class _Pending:
    first_at: str
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)


class RefusalLog:
    """Counts refused records and logs them in summary lines (see the module docstring).

    ``outcome`` ends each line when set (``"they are in the dlq table"``).
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 60.0,
        outcome: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.outcome = outcome
        self._clock = clock
        self._since: float | None = None
        self._pending: dict[tuple[str, str], _Pending] = {}

    def add(self, kind: str, model: str, position: str, reason: str, detail: str) -> None:
        """One refused ``kind`` record of ``model`` at ``position`` (``topic[p]@offset``)."""
        if self._since is None:
            self._since = self._clock()
        pending = self._pending.get((kind, model))
        if pending is None:
            pending = self._pending[(kind, model)] = _Pending(position)
        pending.reasons[reason] += 1
        pending.examples.setdefault(reason, detail[:300])

    def tick(self) -> None:
        """Log the summaries when the interval is over."""
        for line in self.summaries():
            self.logger.warning("%s", line)

    def flush(self) -> None:
        """Log the summaries now (at shutdown)."""
        for line in self.summaries(now=True):
            self.logger.warning("%s", line)

    def summaries(self, *, now: bool = False) -> list[str]:
        """The summary lines, once the interval is over (or ``now``); then start afresh."""
        if self._since is None:
            return []
        seconds = self._clock() - self._since
        if seconds < self.interval and not now:
            return []
        lines = [self._line(kind, model, p, seconds) for (kind, model), p in self._pending.items()]
        self._pending, self._since = {}, None
        return lines

    def _line(self, kind: str, model: str, pending: _Pending, seconds: float) -> str:
        count = sum(pending.reasons.values())
        of = f" of {model}" if model else ""
        why = ", ".join(
            f"{n} {reason} ({pending.examples[reason]})"
            for reason, n in pending.reasons.most_common()
        )
        tail = f"; {self.outcome}" if self.outcome else ""
        return (
            f"{count} {kind} record{'' if count == 1 else 's'}{of} refused in the last "
            f"{seconds:.0f} s: {why} "
            f"(first at {pending.first_at}){tail}"
        )

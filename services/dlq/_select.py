"""Which DLQ entries a command is about: the models' topics, a start time, filters.

``--since`` takes a duration back from now (``90s``, ``15m``, ``1h``, ``2d``, ``1w``) or
an ISO time (``2026-12-07``, ``2026-12-07T10:00``, with or without an offset; a time
without one is UTC). It becomes the start offset of each partition through the broker's
time index (``offsets_for_times``), so a recent window does not read the whole topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.dlq._entry import DlqEntry, Position
from services.dlq._errors import SelectionError

__all__ = ["Selection", "parse_since"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The start time ``text`` means, as an aware UTC datetime.

    >>> now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    >>> parse_since("1h", now).isoformat(), parse_since("2d", now).isoformat()
    ('2026-12-07T11:00:00+00:00', '2026-12-05T12:00:00+00:00')
    >>> parse_since("2026-12-07T10:30", now).isoformat()
    '2026-12-07T10:30:00+00:00'
    >>> parse_since("2026-12-07T10:30+01:00", now).isoformat()
    '2026-12-07T09:30:00+00:00'
    >>> parse_since("yesterday", now)
    Traceback (most recent call last):
    ...
    services.dlq._errors.SelectionError: --since 'yesterday' is neither a duration \
(30s, 15m, 1h, 2d, 1w) nor an ISO time (2026-12-07T10:00)
    """
    now = now or datetime.now(tz=UTC)
    clean = text.strip().lower()
    match = _DURATION.match(clean)
    if match:
        return now - timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SelectionError(
            f"--since {text!r} is neither a duration (30s, 15m, 1h, 2d, 1w) nor an ISO time "
            "(2026-12-07T10:00)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


@dataclass(frozen=True)
class Selection:
    """Filters over entries; None or empty matches everything.

    >>> from services.dlq._entry import DlqEntry, Position
    >>> entry = DlqEntry(Position("ms.m.dlq", 0, 3), 5_000, None, None, 2,
    ...                  [("ms-reason", b"wrong_type"), ("ms-request-id", b"r-1")])
    >>> Selection(reasons=("wrong_type",)).matches(entry)
    True
    >>> Selection(reasons=("unknown_model",)).matches(entry)
    False
    >>> Selection(since_ms=6_000).matches(entry), Selection(request_id="r-1").matches(entry)
    (False, True)
    >>> Selection(positions=frozenset({Position("ms.m.dlq", 0, 4)})).matches(entry)
    False
    """

    reasons: tuple[str, ...] = ()
    since_ms: int | None = None
    request_id: str | None = None
    positions: frozenset[Position] = field(default_factory=frozenset)

    def matches(self, entry: DlqEntry) -> bool:
        if self.reasons and entry.reason not in self.reasons:
            return False
        if self.since_ms is not None and entry.timestamp_ms < self.since_ms:
            return False
        if self.request_id and entry.request_id != self.request_id:
            return False
        return not self.positions or entry.position in self.positions

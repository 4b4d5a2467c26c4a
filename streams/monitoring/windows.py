"""Tumbling windows shared by every windowed monitor: count-based or event-time based.

A :class:`WindowSpec` says how events are grouped, a :class:`WindowClock` tracks the open
window of one monitor, and a :class:`Window` describes a closed one.

* ``WindowSpec(events=N)``: a window closes right after its N-th event. ``start_ms`` and
  ``end_ms`` of the closed window are the smallest and the largest timestamp seen + 1.
* ``WindowSpec(millis=M)``: windows are aligned on multiples of M ms of event time
  (``[k*M, (k+1)*M)``). A window closes when the first event at or past its end arrives
  (or on :meth:`WindowClock.advance`, for a wall-clock punctuation). Events older than the
  open window are counted in it and in :attr:`WindowClock.late`; event-time reordering is
  the caller's business.

A monitor calls :meth:`WindowClock.before` before adding an event and
:meth:`WindowClock.after` after it; each returns the window that just closed, if any.

Examples
--------
>>> clock = WindowClock(WindowSpec(events=2))
>>> [clock.after(ts) for ts in (10, 20, 30)]
[None, Window(index=0, first_event=0, end_event=2, start_ms=10, end_ms=21), None]
>>> clock.flush()
Window(index=1, first_event=2, end_event=3, start_ms=30, end_ms=31)
>>> timed = WindowClock(WindowSpec(millis=1000))
>>> timed.before(1500), timed.after(1500), timed.before(1999), timed.after(1999)
(None, None, None, None)
>>> timed.before(2100)
Window(index=0, first_event=0, end_event=2, start_ms=1000, end_ms=2000)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.monitoring.errors import MonitorConfigError

__all__ = ["Window", "WindowClock", "WindowSpec"]


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Tumbling windows of ``events`` events or of ``millis`` ms of event time (one of)."""

    events: int | None = None
    millis: int | None = None

    def __post_init__(self) -> None:
        if (self.events is None) == (self.millis is None):
            raise MonitorConfigError(
                f"expected exactly one of events= or millis=, got events={self.events}, "
                f"millis={self.millis}"
            )
        size = self.events if self.events is not None else self.millis
        if size is None or size < 1:
            raise MonitorConfigError(f"expected a window size >= 1, got {size}")


@dataclass(frozen=True, slots=True)
class Window:
    """A closed window: events ``[first_event, end_event)`` of the monitor's stream
    (0-based), spanning ``[start_ms, end_ms)`` of event time."""

    index: int
    first_event: int
    end_event: int
    start_ms: int
    end_ms: int

    @property
    def count(self) -> int:
        """Number of events in the window."""
        return self.end_event - self.first_event


class WindowClock:
    """The open window of one monitor (see the module docstring)."""

    __slots__ = ("_end", "_events", "_first", "_index", "_millis", "_seen", "_start", "late")

    def __init__(self, spec: WindowSpec) -> None:
        self._events = spec.events
        self._millis = spec.millis
        self._index = 0
        self._seen = 0
        self._first = 0
        self._start = 0
        self._end = 0
        self.late = 0

    @property
    def seen(self) -> int:
        """Events added so far, over all windows."""
        return self._seen

    @property
    def open_count(self) -> int:
        """Events in the open window."""
        return self._seen - self._first

    def before(self, ts: int) -> Window | None:
        """Call before adding the event at ``ts``; closes the open time window it ends."""
        if self._millis is None:
            return None
        if self._seen == self._first:
            self._align(ts)
            return None
        if ts >= self._end:
            closed = self._close(self._start, self._end)
            self._align(ts)
            return closed
        if ts < self._start:
            self.late += 1
        return None

    def after(self, ts: int) -> Window | None:
        """Call after adding the event at ``ts``; closes a count window that is full."""
        self._seen += 1
        if self._events is None:
            return None
        if self._seen - self._first == 1:
            self._start = self._end = ts
        elif ts < self._start:
            self._start = ts
        elif ts > self._end:
            self._end = ts
        if self._seen - self._first >= self._events:
            return self._close(self._start, self._end + 1)
        return None

    def after_many(self, ts: Sequence[int]) -> Window | None:
        """:meth:`after` for each of ``ts`` in turn, at once: for count windows, and no
        more events than :meth:`room` (the last of them may close the window)."""
        if self._events is None or len(ts) > self.room:
            raise MonitorConfigError(
                f"expected at most {self.room} events of a count window, got {len(ts)}"
            )
        if not ts:
            return None
        low, high = min(ts), max(ts)
        if self._seen == self._first:
            self._start, self._end = low, high
        else:
            self._start, self._end = min(self._start, low), max(self._end, high)
        self._seen += len(ts)
        if self._seen - self._first >= self._events:
            return self._close(self._start, self._end + 1)
        return None

    @property
    def room(self) -> int:
        """Events the open count window takes before it closes (time windows: no limit)."""
        if self._events is None:
            return 2**62
        return self._events - (self._seen - self._first)

    def advance(self, ts: int) -> Window | None:
        """Close the open time window if ``ts`` is at or past its end (a punctuation)."""
        if self._millis is None or self._seen == self._first or ts < self._end:
            return None
        return self._close(self._start, self._end)

    def flush(self) -> Window | None:
        """Close the open window early (shutdown, rebalance); ``None`` when it is empty."""
        if self._seen == self._first:
            return None
        end = self._end if self._millis is not None else self._end + 1
        return self._close(self._start, end)

    def _align(self, ts: int) -> None:
        assert self._millis is not None
        self._start = ts - ts % self._millis
        self._end = self._start + self._millis

    def _close(self, start_ms: int, end_ms: int) -> Window:
        window = Window(self._index, self._first, self._seen, start_ms, end_ms)
        self._index += 1
        self._first = self._seen
        return window

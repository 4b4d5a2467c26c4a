"""The time range a report covers, and the step its time series are bucketed by.

The default range is the last 24 hours that hold rows for the model: it ends at the
latest prediction (inclusive), so a report of yesterday's demo is not empty today; a
model with no prediction at all gets the 24 hours before ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from services.reports._errors import WindowError

__all__ = ["DEFAULT_SPAN", "STEPS", "Window", "resolve", "step_for"]

DEFAULT_SPAN: Final = timedelta(hours=24)
# Steps a chart is bucketed by, in seconds: round numbers a reader recognises.
STEPS: Final = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_TICK: Final = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def label(self) -> str:
        """The range as a reader sees it.

        >>> Window(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)).label()
        '2026-12-01 00:00 to 2026-12-02 00:00 UTC'
        """
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"


def utc(moment: datetime) -> datetime:
    """A naive time is UTC; an aware one is converted to UTC.

    >>> utc(datetime(2026, 12, 1, 10)).isoformat()
    '2026-12-01T10:00:00+00:00'
    """
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def resolve(start: datetime | None, end: datetime | None, latest: datetime | None,
            now: datetime) -> Window:  # fmt: skip
    """The report's window from what was asked and the model's latest prediction.

    >>> t = datetime(2026, 12, 1, 12, tzinfo=UTC)
    >>> resolve(None, None, t, t + timedelta(days=3)).label()
    '2026-11-30 12:00 to 2026-12-01 12:00 UTC'
    >>> resolve(None, None, None, t).start == t - DEFAULT_SPAN
    True
    >>> resolve(t, None, None, t + timedelta(hours=2)).seconds
    7200.0
    >>> resolve(t, t, None, t)
    Traceback (most recent call last):
    ...
    services.reports._errors.WindowError: the report's start (2026-12-01 12:00:00+00:00) \
must be before its end (2026-12-01 12:00:00+00:00): check --from and --to
    """
    if end is not None:
        stop = utc(end)
    elif latest is not None and (start is None or utc(latest) >= utc(start)):
        stop = utc(latest) + _TICK
    else:
        stop = utc(now)
    begin = utc(start) if start is not None else stop - DEFAULT_SPAN
    if begin >= stop:
        raise WindowError(
            f"the report's start ({begin}) must be before its end ({stop}): check --from and --to"
        )
    return Window(begin, stop)


def step_for(window: Window, points: int) -> int:
    """The smallest round step (seconds) that cuts the window in at most ``points`` buckets.

    >>> w = Window(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    >>> step_for(w, 1440), step_for(w, 24), step_for(w, 12)
    (60, 3600, 7200)
    """
    for step in STEPS:
        if window.seconds / step <= points:
            return step
    return STEPS[-1]

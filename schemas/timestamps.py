"""The timestamps every stage accepts: what ClickHouse's ``DateTime64(3)`` holds.

A record whose epoch milliseconds fall outside 1900-01-01 .. 2299-12-31 would fail the
sink's whole insert (at every retry) and date a monitor window nowhere: every stage
refuses it as ``bad_timestamp``.

>>> from datetime import UTC, datetime
>>> datetime.fromtimestamp(MAX_MILLIS // 1000, tz=UTC).isoformat()
'2299-12-31T23:59:59+00:00'
>>> datetime.fromtimestamp(MIN_MILLIS // 1000, tz=UTC).isoformat()
'1900-01-01T00:00:00+00:00'
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_MILLIS", "MIN_MILLIS"]

MIN_MILLIS: Final = -2_208_988_800_000  # 1900-01-01T00:00:00Z
MAX_MILLIS: Final = 10_413_791_999_999  # 2299-12-31T23:59:59.999Z

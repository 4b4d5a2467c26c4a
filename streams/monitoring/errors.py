"""Errors raised by the monitoring estimators.

Hierarchy::

    MonitoringError                 root: catch this to handle any monitoring failure
    ├── ReferenceProfileError       a reference profile cannot be compared against
    ├── MonitorConfigError          a window, threshold or parameter is out of range
    ├── EmptySampleError            a statistic was asked of a sample with no values
    ├── SnapshotRefused             a state snapshot is unsigned or its signature is wrong
    └── BadTimestampError           a record's time is outside 1900-2299 (``bad_timestamp``)

Each also derives from :class:`ValueError`, so callers that validate input generically
still catch them; :class:`BadTimestampError` is a :class:`schemas.codec.DecodeError` too,
with the reason the sink gives the same record.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.codec import DecodeError

__all__ = [
    "BadTimestampError",
    "EmptySampleError",
    "MonitorConfigError",
    "MonitoringError",
    "ReferenceProfileError",
    "SnapshotRefused",
]


class MonitoringError(Exception):
    """Root of the monitoring errors."""


class ReferenceProfileError(MonitoringError, ValueError):
    """The reference profile is malformed or has no data for a feature."""


class MonitorConfigError(MonitoringError, ValueError):
    """A monitor was configured with a value it cannot work with."""


class EmptySampleError(MonitoringError, ValueError):
    """A statistic needs at least one value and got none."""


class SnapshotRefused(MonitoringError, ValueError):  # noqa: N818 - what befell the snapshot
    """A monitor state snapshot that is not unpickled: it is unsigned, or its HMAC does
    not verify under this deployment's key (:mod:`streams.monitoring.snapshots`)."""


class BadTimestampError(MonitoringError, DecodeError, ValueError):
    """A record's time is not one ClickHouse's ``DateTime64(3)`` can store (1900-2299):
    refused as the sink refuses it (:mod:`streams.monitoring.inputs`)."""

    reason: ClassVar[str] = "bad_timestamp"

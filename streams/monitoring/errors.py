"""Errors raised by the monitoring estimators.

Hierarchy::

    MonitoringError                 root: catch this to handle any monitoring failure
    ├── ReferenceProfileError       a reference profile cannot be compared against
    ├── MonitorConfigError          a window, threshold or parameter is out of range
    └── EmptySampleError            a statistic was asked of a sample with no values

Each also derives from :class:`ValueError`, so callers that validate input generically
still catch them.
"""

from __future__ import annotations

__all__ = ["EmptySampleError", "MonitorConfigError", "MonitoringError", "ReferenceProfileError"]


class MonitoringError(Exception):
    """Root of the monitoring errors."""


class ReferenceProfileError(MonitoringError, ValueError):
    """The reference profile is malformed or has no data for a feature."""


class MonitorConfigError(MonitoringError, ValueError):
    """A monitor was configured with a value it cannot work with."""


class EmptySampleError(MonitoringError, ValueError):
    """A statistic needs at least one value and got none."""

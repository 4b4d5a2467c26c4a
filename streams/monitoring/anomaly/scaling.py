"""Scaling inputs to [0, 1] for Half-Space Trees: from the reference profile or running.

Half-Space Trees split each feature at random points of ``[0, 1]``, so each value is
scaled with ``(x - low) / (high - low)``: ``low``, ``high`` the training ``min`` and
``max`` from the reference profile (:class:`ProfileScaler`), or the minimum and maximum
seen so far (:class:`RunningScaler`, unstable for the first values). Values outside the
range are not clipped -- they fall in the outermost half-spaces, which is what makes them
stand out. Missing or non-numeric values are replaced by the middle of the range, 0.5.

Examples
--------
>>> scaler = ProfileScaler({"age": (20.0, 60.0), "income": (0.0, 1e5)})
>>> scaler.scale({"age": 30.0, "income": None})
{'age': 0.25, 'income': 0.5}
>>> running = RunningScaler(["x"])
>>> [running.scale({"x": v})["x"] for v in (5.0, 10.0, 7.5)]
[0.5, 1.0, 0.5]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from streams.monitoring.errors import MonitorConfigError, ReferenceProfileError

__all__ = ["ProfileScaler", "RunningScaler", "finite_number"]


class ProfileScaler:
    """Scales with fixed ``(low, high)`` per feature, e.g. the training min and max."""

    def __init__(self, limits: Mapping[str, tuple[float, float]]) -> None:
        if not limits:
            raise MonitorConfigError("expected limits for at least one feature, got none")
        self._limits = [(name, low, (high - low) or 1.0) for name, (low, high) in limits.items()]

    @property
    def features(self) -> tuple[str, ...]:
        """The scaled features."""
        return tuple(name for name, _, _ in self._limits)

    @classmethod
    def from_profile(
        cls, profile: Mapping[str, Any], features: Sequence[str] | None = None
    ) -> ProfileScaler:
        """Limits from the profile's numeric ``min`` and ``max``."""
        numeric: Mapping[str, Any] = profile.get("numeric") or {}
        names = (
            list(features)
            if features is not None
            else [name for name, entry in numeric.items() if entry.get("min") is not None]
        )
        limits = {}
        for name in names:
            entry = numeric.get(name) or {}
            if entry.get("min") is None or entry.get("max") is None:
                raise ReferenceProfileError(f"expected min and max for {name!r}, got none")
            limits[name] = (float(entry["min"]), float(entry["max"]))
        return cls(limits)

    def scale(self, row: Mapping[str, object]) -> dict[str, float]:
        """The row's features scaled to the reference range."""
        scaled = {}
        for name, low, width in self._limits:
            value = finite_number(row.get(name))
            scaled[name] = (value - low) / width if value is not None else 0.5
        return scaled


class RunningScaler:
    """Scales with the minimum and maximum seen so far (updated by every :meth:`scale`)."""

    def __init__(self, features: Sequence[str]) -> None:
        if not features:
            raise MonitorConfigError("expected at least one feature, got none")
        self._ranges = {name: [math.inf, -math.inf] for name in features}

    @property
    def features(self) -> tuple[str, ...]:
        """The scaled features."""
        return tuple(self._ranges)

    def scale(self, row: Mapping[str, object]) -> dict[str, float]:
        """Update the ranges with the row, then scale it."""
        scaled = {}
        for name, bounds in self._ranges.items():
            value = finite_number(row.get(name))
            if value is None:
                scaled[name] = 0.5
                continue
            bounds[0], bounds[1] = min(bounds[0], value), max(bounds[1], value)
            width = bounds[1] - bounds[0]
            scaled[name] = (value - bounds[0]) / width if width > 0 else 0.5
        return scaled


def finite_number(value: object) -> float | None:
    """``value`` when it is a finite int, float or bool, else ``None`` (missing): NaN,
    infinities, text, and ints too large for a float.

    >>> finite_number(3), finite_number(float("inf")), finite_number("1"), finite_number(10**400)
    (3, None, None, None)
    """
    if type(value) is float:
        return value if value - value == 0.0 else None
    if isinstance(value, int):
        try:
            return value if math.isfinite(value) else None
        except OverflowError:
            return None
    return None

"""A streaming quantile sketch for latencies: fixed log-spaced buckets (DDSketch-style).

Bucket ``i`` holds the values in ``(g^(i-1), g^i]`` with ``g = (1 + a) / (1 - a)`` and
answers with ``2 g^i / (g + 1)``, which is within a relative error ``a`` of every value in
the bucket. So :meth:`LatencySketch.quantile` returns a value within relative error ``a``
(``relative_accuracy``, default 1 %) of the exact order statistic ``x_(floor(q (n-1)))``
(numpy's ``method="lower"``), for values in ``[min_ms, max_ms]`` (default 1 us to 1,000 s:
1,037 buckets). Values outside are clamped into the outer buckets; answers are clamped
to the exact minimum and maximum seen, and ``q = 0`` / ``q = 1`` return them exactly.

Adding a value costs one logarithm and one counter increment; memory is fixed.

Examples
--------
>>> sketch = LatencySketch()
>>> for ms in range(1, 101):
...     sketch.add(float(ms))
>>> [round(sketch.quantile(q), 2) for q in (0.5, 0.95, 0.99)]  # exact: 50, 95, 99
[49.9, 94.64, 98.5]
>>> sketch.count, sketch.max
(100, 100.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from streams.monitoring.errors import EmptySampleError, MonitorConfigError

__all__ = ["LatencySketch"]


class LatencySketch:
    """Quantiles of positive values within a relative error (see the module docstring)."""

    __slots__ = (
        "_counts",
        "_gamma",
        "_inv_log",
        "_last",
        "_offset",
        "count",
        "max",
        "min",
        "relative_accuracy",
    )

    def __init__(
        self, relative_accuracy: float = 0.01, *, min_ms: float = 1e-3, max_ms: float = 1e6
    ) -> None:
        if not 0 < relative_accuracy < 1 or not 0 < min_ms < max_ms:
            raise MonitorConfigError(
                f"expected 0 < relative_accuracy < 1 and 0 < min_ms < max_ms, got "
                f"{relative_accuracy}, {min_ms}, {max_ms}"
            )
        self.relative_accuracy = relative_accuracy
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._inv_log = 1.0 / math.log(self._gamma)
        self._offset = math.ceil(math.log(min_ms) * self._inv_log)
        self._last = math.ceil(math.log(max_ms) * self._inv_log) - self._offset
        self._counts = [0] * (self._last + 1)
        self.count = 0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Count one latency (ms); values <= 0 count in the lowest bucket."""
        index = math.ceil(math.log(value) * self._inv_log) - self._offset if value > 0 else 0
        self._counts[min(max(index, 0), self._last)] += 1
        self.count += 1
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def add_many(self, values: Sequence[float]) -> None:
        """:meth:`add` on each value (finite numbers), in one call."""
        if not values:
            return
        counts, inv, offset, last = self._counts, self._inv_log, self._offset, self._last
        log, ceil = math.log, math.ceil
        for value in values:
            index = ceil(log(value) * inv) - offset if value > 0 else 0
            counts[0 if index < 0 else last if index > last else index] += 1
        self.count += len(values)
        low, high = min(values), max(values)
        if low < self.min:
            self.min = low
        if high > self.max:
            self.max = high

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 <= q <= 1), within the relative accuracy."""
        if self.count == 0:
            raise EmptySampleError("expected at least one value in the sketch, got none")
        rank = math.floor(q * (self.count - 1))
        if rank <= 0 or rank >= self.count - 1:
            return self.min if rank <= 0 else self.max
        cumulative = np.cumsum(self._counts)
        index = int(np.searchsorted(cumulative, rank, side="right"))
        estimate = 2 * self._gamma ** (index + self._offset) / (self._gamma + 1)
        return min(max(estimate, self.min), self.max)

    def clear(self) -> None:
        """Forget every value."""
        self._counts = [0] * (self._last + 1)
        self.count = 0
        self.min = math.inf
        self.max = -math.inf

"""Live values of one numeric feature, binned into the reference's histogram edges.

Adding a value costs one ``bisect`` over the reference's cut points (its edges plus the
training quantiles inside its bins, see :class:`NumericReference`; O(log bins)) and a
counter increment; the window keeps no raw values. A closed window holds the counts per
reference bin (the profile's convention: values beyond the edges are counted in the outer
bins), the counts per cut-point interval (``fine``), and how many values fell below the
lowest edge / above the highest one with their sums, which lets the Kolmogorov-Smirnov and
Wasserstein approximations see the mass outside the reference range.

Missing values (``None``, NaN, +-inf, strings that are not numbers) are counted apart, as
the profile does. Booleans count as 0 / 1.

Examples
--------
>>> from streams.monitoring.drift.reference import NumericReference
>>> window = HistogramWindow(NumericReference((0.0, 1.0, 2.0, 3.0), (5, 5, 5)))
>>> for value in (-1.0, 0.5, 1.5, 2.0, 3.0, 7.0, None, float("nan"), "2.5"):
...     window.add(value)
>>> window.snapshot()
BinnedSample(counts=(2, 1, 4), below=1, below_sum=-1.0, above=1, above_sum=7.0, missing=2, \
fine=None)
>>> window.snapshot().total
0
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING

import numpy as np

from streams.monitoring.drift.reference import NumericReference
from streams.monitoring.errors import EmptySampleError

if TYPE_CHECKING:
    from streams.monitoring.columns import NumericColumn

__all__ = ["BinnedSample", "HistogramWindow", "as_number", "cdfs_at_points", "sum_in_order"]


@dataclass(frozen=True, slots=True)
class BinnedSample:
    """A closed window of one numeric feature: counts per reference bin, out-of-range
    counts and sums, how many values were missing, and the counts per cut-point interval
    of the reference (``None`` when they are the bins)."""

    counts: tuple[int, ...]
    below: int = 0
    below_sum: float = 0.0
    above: int = 0
    above_sum: float = 0.0
    missing: int = 0
    fine: tuple[int, ...] | None = None

    @property
    def total(self) -> int:
        """Number of (non-missing) values in the window."""
        return sum(self.counts)


class HistogramWindow:
    """Counts of live values per reference bin; :meth:`snapshot` closes the window."""

    __slots__ = (
        "_high",
        "_inner",
        "_low",
        "_starts",
        "above",
        "above_sum",
        "below",
        "below_sum",
        "counts",
        "missing",
    )

    def __init__(self, reference: NumericReference) -> None:
        self._inner = reference.points[1:-1]
        self._starts = reference.starts if len(reference.points) > len(reference.edges) else None
        self._low = reference.edges[0]
        self._high = reference.edges[-1]
        self.counts = [0] * (len(reference.points) - 1)
        self.below = self.above = self.missing = 0
        self.below_sum = self.above_sum = 0.0

    def add(self, value: object) -> None:
        """Count one live value."""
        if type(value) is not float:
            number = as_number(value)
            if number is None:
                self.missing += 1
                return
            value = number
        if value - value != 0.0:  # NaN and +-inf, without a function call
            self.missing += 1
            return
        # bisect on the interior edges is the profile's clip(searchsorted(...) - 1)
        self.counts[bisect_right(self._inner, value)] += 1
        if value < self._low:
            self.below += 1
            self.below_sum += value
        elif value > self._high:
            self.above += 1
            self.above_sum += value

    def add_batch(self, column: NumericColumn | None, n: int) -> None:
        """Count a batch of ``n`` live values at once (the same counts and sums as
        :meth:`add` on each, :mod:`streams.monitoring.columns`); ``None``: all missing."""
        if column is None:
            self.missing += n
            return
        counts = self.counts
        for i, n in enumerate(column.counts.tolist()):
            counts[i] += n
        self.missing += column.missing
        if column.below:
            self.below += column.below
            self.below_sum = sum_in_order(self.below_sum, column.below_values)
        if column.above:
            self.above += column.above
            self.above_sum = sum_in_order(self.above_sum, column.above_values)

    def snapshot(self) -> BinnedSample:
        """The window so far; the counters start again from zero."""
        fine = tuple(self.counts)
        coarse = fine if self._starts is None else _merge(fine, self._starts)
        sample = BinnedSample(
            coarse,
            self.below,
            self.below_sum,
            self.above,
            self.above_sum,
            self.missing,
            None if self._starts is None else fine,
        )
        self.counts = [0] * len(self.counts)
        self.below = self.above = self.missing = 0
        self.below_sum = self.above_sum = 0.0
        return sample


def _merge(fine: tuple[int, ...], starts: tuple[int, ...]) -> tuple[int, ...]:
    ends = (*starts[1:], len(fine))
    return tuple(sum(fine[a:b]) for a, b in zip(starts, ends, strict=True))


def sum_in_order(start: float, values: np.ndarray) -> float:
    """``start`` plus every value, added left to right: the float a loop of ``+=`` gives
    (``cumsum`` adds in order, unlike ``sum``'s pairwise tree).

    >>> sum_in_order(0.1, np.array([0.2, 0.3])) == (0.1 + 0.2) + 0.3
    True
    """
    if not len(values):
        return start
    return float(np.cumsum(np.concatenate(([start], values)))[-1])


def as_number(value: object) -> float | None:
    """``value`` as a float, or ``None`` when it is missing or not a number (an int
    beyond a float's range is not one).

    >>> as_number(3), as_number(True), as_number("1e3"), as_number("x"), as_number(10**400)
    (3.0, 1.0, 1000.0, None, None)
    """
    if isinstance(value, int | float | str):
        try:
            return float(value)
        except (OverflowError, ValueError):
            return None
    return None


def cdfs_at_points(
    reference: NumericReference, live: BinnedSample
) -> tuple[tuple[float, ...], tuple[float, ...], list[float]]:
    """The cut points, and the reference and live CDFs (left limits) at each.

    The live CDF counts the values below the lowest edge, so at the last point it is
    ``1 - above / total``. Uses the fine counts when the sample has them, the edges
    otherwise. Plain Python: a dozen points cost less than NumPy's call overhead.
    """
    m = live.total
    if m == 0:
        raise EmptySampleError("expected a live window with values, got none")
    if live.fine is not None and len(live.fine) == len(reference.points) - 1:
        points, ref_cdf, counts = reference.points, reference.cdf, list(live.fine)
    else:
        points, counts = reference.edges, list(live.counts)
        ref_cdf = tuple(c / reference.total for c in accumulate(reference.counts, initial=0))
    counts[0] -= live.below
    counts[-1] -= live.above
    live_cdf = [(live.below + c) / m for c in accumulate(counts, initial=0)]
    return points, ref_cdf, live_cdf

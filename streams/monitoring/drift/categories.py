"""Live values of one categorical feature, counted per reference category.

A value is turned into the profile's string form (booleans as ``"true"`` / ``"false"``);
categories the reference does not know are counted in the last bin, ``other``, which the
reference fills with its categories beyond the top ones. ``None`` and NaN are missing.

Examples
--------
>>> from streams.monitoring.drift.reference import CategoricalReference
>>> window = CategoryWindow(CategoricalReference(("basic", "pro"), (3, 2), other=1))
>>> for value in ("basic", "pro", "pro", "max", None, float("nan")):
...     window.add(value)
>>> window.snapshot()
CategorySample(counts=(1, 2, 1), missing=2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.monitoring.drift.reference import CategoricalReference, category_key

__all__ = ["CategorySample", "CategoryWindow"]


@dataclass(frozen=True, slots=True)
class CategorySample:
    """A closed window of one categorical feature: counts per reference category,
    ``other`` last, and how many values were missing."""

    counts: tuple[int, ...]
    missing: int = 0

    @property
    def total(self) -> int:
        """Number of (non-missing) values in the window."""
        return sum(self.counts)


class CategoryWindow:
    """Counts of live categories; :meth:`snapshot` closes the window."""

    __slots__ = ("_index", "_other", "counts", "missing")

    def __init__(self, reference: CategoricalReference) -> None:
        self._index = {name: i for i, name in enumerate(reference.categories)}
        self._other = len(reference.categories)
        self.counts = [0] * (self._other + 1)
        self.missing = 0

    def add(self, value: object) -> None:
        """Count one live value."""
        if type(value) is not str:
            if value is None or value != value:  # NaN is the only value unequal to itself
                self.missing += 1
                return
            value = category_key(value)
        self.counts[self._index.get(value, self._other)] += 1

    def add_batch(self, column: tuple[Sequence[int], int] | None, n: int) -> None:
        """Count a batch of ``n`` values at once, as (counts, missing)
        (:func:`streams.monitoring.columns.count_categories`); ``None``: all missing."""
        if column is None:
            self.missing += n
            return
        counts, missing = column
        mine = self.counts
        for i, found in enumerate(counts):
            mine[i] += found
        self.missing += missing

    def snapshot(self) -> CategorySample:
        """The window so far; the counters start again from zero."""
        sample = CategorySample(tuple(self.counts), self.missing)
        self.counts = [0] * len(self.counts)
        self.missing = 0
        return sample

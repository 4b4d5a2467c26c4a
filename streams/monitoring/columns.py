"""A batch of events' feature values as columns: binned once, added to every window.

The monitor's hot path is per-feature work on every event: a bisect into the reference's
cut points for the drift window, the same bisect again for the window summary, a change
detector update. :class:`~streams.monitoring.watch.ModelWatch` keeps the inputs of the
events since its last drain and, at the next window boundary (or tick), turns each feature
into a column: one NumPy conversion, one ``searchsorted`` and one ``bincount`` per feature
and batch, whose :class:`NumericColumn` every numeric window adds at once, and one
``Counter`` per categorical feature (:func:`count_categories`).

The results are the per-event ones, exactly: a value is missing or not, and lands in the
same bin, by the rules of :func:`~streams.monitoring.drift.histogram.as_number`; sums are
accumulated left to right from the window's running sum (``cumsum`` adds in the order a
loop would), so they are the same floats. A column that is not all numbers (strings,
hostile values) takes a per-value path with the same rules and never raises.

Examples
--------
>>> from streams.monitoring.drift.reference import NumericReference
>>> ref = NumericReference((0.0, 1.0, 2.0, 3.0), (5, 5, 5))
>>> column = NumericColumn.of([-1.0, 0.5, 1.5, 2.0, 3.0, 7.0, None, float("nan"), "2.5"], ref)
>>> column.counts.tolist(), column.below, column.above, column.missing
([2, 1, 4], 1, 1, 2)
>>> column.detector.tolist()[-1]  # a number in a string counts in the histogram, not here
nan
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from streams.monitoring.drift.histogram import as_number
from streams.monitoring.drift.reference import CategoricalReference, NumericReference, category_key

__all__ = ["Column", "NumericColumn", "count_categories", "detector_column"]

_NUMBERS: Final = frozenset({float, int, bool, type(None)})
_TEXT: Final = frozenset({str, type(None)})


@dataclass(frozen=True, slots=True)
class NumericColumn:
    """One numeric feature's values in a batch, binned against a reference."""

    #: per cut-point interval of the reference (the histogram window's ``counts``)
    counts: np.ndarray
    below: int
    below_values: np.ndarray
    above: int
    above_values: np.ndarray
    missing: int
    #: the finite values, in event order (sums and squares)
    finite: np.ndarray
    #: the values a change detector sees (numbers only; NaN where it skips), event order
    detector: np.ndarray

    @classmethod
    def of(cls, values: Sequence[object], reference: NumericReference) -> NumericColumn:
        column, detector = _floats(values)
        finite = column[np.isfinite(column)]
        inner = np.asarray(reference.points[1:-1], dtype=float)
        bins = np.searchsorted(inner, finite, side="right")
        counts = np.bincount(bins, minlength=len(reference.points) - 1)
        below = finite[finite < reference.edges[0]]
        above = finite[finite > reference.edges[-1]]
        return cls(
            counts, len(below), below, len(above), above, len(column) - len(finite), finite,
            detector,
        )  # fmt: skip


#: a batch's values of one feature: binned numbers, or (counts per category, missing)
Column = NumericColumn | tuple[list[int], int]


def detector_column(values: Sequence[object]) -> np.ndarray:
    """The values a change detector sees: ints, floats and booleans as floats, anything
    else NaN (skipped, as the per-event path skips it)."""
    return _floats(values)[1]


def _floats(values: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """(every value by :func:`as_number`, NaN where missing; numbers only, NaN elsewhere)."""
    if set(map(type, values)) <= _NUMBERS:
        try:
            column = np.array(values, dtype=float)  # None -> NaN, True -> 1.0
        except (OverflowError, TypeError, ValueError):
            pass
        else:
            return column, column
    numbers = [as_number(v) for v in values]
    column = np.array([np.nan if n is None else n for n in numbers], dtype=float)
    only = np.array(
        [n if n is not None and isinstance(v, int | float) else np.nan
         for v, n in zip(values, numbers, strict=True)],
        dtype=float,
    )  # fmt: skip
    return column, only


def count_categories(
    values: Sequence[object], reference: CategoricalReference
) -> tuple[list[int], int]:
    """(counts per reference category, ``other`` last; missing), as
    :class:`~streams.monitoring.drift.categories.CategoryWindow` counts them.

    >>> ref = CategoricalReference(("basic", "pro"), (3, 2), other=1)
    >>> count_categories(["basic", "pro", "pro", "max", None, float("nan"), True], ref)
    ([1, 2, 2], 2)
    """
    index = {name: i for i, name in enumerate(reference.categories)}
    other = len(reference.categories)
    counts = [0] * (other + 1)
    missing = 0
    if set(map(type, values)) <= _TEXT:  # the usual case: one Counter, C speed
        for value, n in Counter(values).items():
            if value is None:
                missing += n
            else:
                counts[index.get(str(value), other)] += n  # str already: no copy
        return counts, missing
    for value in values:
        if type(value) is not str:
            if value is None or value != value:  # NaN is the only value unequal to itself
                missing += 1
                continue
            value = category_key(value)
        counts[index.get(value, other)] += 1
    return counts, missing

"""The reference a live window is compared against, read from a model's training profile.

The profile (``services/registry/_profile.py``) stores, per numeric feature, histogram
edges at the training data's quantiles with exact counts, and per categorical feature the
most frequent categories with counts plus an ``other`` count. Its conventions are kept
here: ``counts[i]`` counts ``edges[i] <= x < edges[i+1]``, the last bin also holds
``x == edges[-1]``, live values beyond the edges belong to the outer bins, and categories
are strings with booleans as ``"true"`` / ``"false"``.

Examples
--------
>>> profile = {"numeric": {"age": {"count": 5, "std": 14.1,
...                                "histogram": {"edges": [20.0, 30.0, 40.0, 60.0],
...                                              "counts": [1, 1, 3]}}},
...            "categorical": {"plan": {"counts": {"basic": 3, "pro": 2}, "other": 1}}}
>>> refs = references_from_profile(profile)
>>> refs["age"]
NumericReference(edges=(20.0, 30.0, 40.0, 60.0), counts=(1, 1, 3), std=14.1)
>>> refs["plan"].bins, refs["plan"].counts_with_other
(('basic', 'pro'), (3, 2, 1))
>>> NumericReference.from_samples([1.0, 2.0, 3.0, 4.0], bins=2)
NumericReference(edges=(1.0, 2.5, 4.0), counts=(2, 2), std=1.118033988749895)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Final

import numpy as np

from streams.monitoring.errors import ReferenceProfileError

__all__ = [
    "QUANTILE_LEVELS",
    "CategoricalReference",
    "NumericReference",
    "Reference",
    "category_key",
    "references_from_profile",
]

QUANTILE_LEVELS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class NumericReference:
    """Histogram of a numeric feature's training values.

    ``std`` is the population standard deviation; ``quantiles`` holds ``(level, value)``
    pairs of the training data. Quantiles that fall strictly inside a bin become extra cut
    points: :attr:`points` are the edges and those quantiles, :attr:`cdf` the reference
    CDF at each point (exact at the edges, the quantile level at the others, which is off
    by at most ``2 / total``). Live values are binned on :attr:`points`, so the KS and
    Wasserstein approximations see the tails of the wide outer bins.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    std: float | None = None
    quantiles: tuple[tuple[float, float], ...] = field(default=(), repr=False)
    points: tuple[float, ...] = field(init=False, repr=False, compare=False)
    cdf: tuple[float, ...] = field(init=False, repr=False, compare=False)
    starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.counts) < 1 or len(self.edges) != len(self.counts) + 1:
            raise ReferenceProfileError(
                f"expected len(edges) == len(counts) + 1 >= 2, got {len(self.edges)} edges "
                f"and {len(self.counts)} counts"
            )
        if sum(self.counts) <= 0 or min(self.counts) < 0:
            raise ReferenceProfileError(
                f"expected non-negative counts, some > 0, got {self.counts}"
            )
        if any(b < a for a, b in pairwise(self.edges)):
            raise ReferenceProfileError(f"expected sorted edges, got {self.edges}")
        points, cdf, starts = _cut_points(self.edges, self.counts, self.quantiles)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "cdf", cdf)
        object.__setattr__(self, "starts", starts)

    @property
    def total(self) -> int:
        """Number of training values in the histogram."""
        return sum(self.counts)

    @classmethod
    def from_profile(cls, feature: Mapping[str, Any]) -> NumericReference:
        """Read one entry of the profile's ``numeric`` section."""
        histogram = feature.get("histogram") or {}
        edges, counts = histogram.get("edges") or [], histogram.get("counts") or []
        if not counts:
            raise ReferenceProfileError("expected a histogram with counts, got none")
        levels: Mapping[str, float] = feature.get("quantiles") or {}
        quantiles = tuple(sorted((float(level), float(v)) for level, v in levels.items()))
        return cls(
            tuple(map(float, edges)),
            tuple(map(int, counts)),
            _float_or_none(feature.get("std")),
            quantiles,
        )

    @classmethod
    def from_samples(
        cls, values: Iterable[float], *, bins: int = 10, levels: Sequence[float] = QUANTILE_LEVELS
    ) -> NumericReference:
        """Build the reference the profile would store for ``values`` (NaN/inf ignored)."""
        data = np.asarray(list(values), dtype=float)
        data = data[np.isfinite(data)]
        if data.size == 0:
            raise ReferenceProfileError("expected at least one finite value, got none")
        edges = np.unique(np.quantile(data, np.linspace(0.0, 1.0, bins + 1)))
        if edges.size == 1:
            edges = np.repeat(edges, 2)
        index = np.clip(np.searchsorted(edges, data, side="right") - 1, 0, edges.size - 2)
        counts = np.bincount(index, minlength=edges.size - 1)
        quantiles = (
            tuple(zip(map(float, levels), map(float, np.quantile(data, levels)), strict=True))
            if len(levels)
            else ()
        )
        return cls(tuple(map(float, edges)), tuple(map(int, counts)), float(data.std()), quantiles)


def _cut_points(
    edges: tuple[float, ...], counts: tuple[int, ...], quantiles: tuple[tuple[float, float], ...]
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[int, ...]]:
    """Edges and inner quantiles, the reference CDF at each, and where each bin starts."""
    cumulative = [float(c) for c in np.concatenate([[0], np.cumsum(counts)]) / sum(counts)]
    known = set(edges)
    inner = sorted(
        (v, level) for level, v in quantiles if edges[0] < v < edges[-1] and v not in known
    )
    points: list[float] = []
    cdf: list[float] = []
    starts: list[int] = []
    k = 0
    for i, edge in enumerate(edges):
        while k < len(inner) and inner[k][0] < edge:  # a quantile inside bin i - 1
            x, level = inner[k]
            points.append(x)
            cdf.append(max(min(level, cumulative[i]), cumulative[i - 1], cdf[-1]))
            k += 1
        if i < len(counts):
            starts.append(len(points))
        points.append(edge)
        cdf.append(cumulative[i])
    return tuple(points), tuple(cdf), tuple(starts)


@dataclass(frozen=True, slots=True)
class CategoricalReference:
    """Category counts of a categorical feature's training values, the rest in ``other``."""

    categories: tuple[str, ...]
    counts: tuple[int, ...]
    other: int = 0

    def __post_init__(self) -> None:
        if len(self.categories) != len(self.counts) or len(set(self.categories)) != len(
            self.categories
        ):
            raise ReferenceProfileError(
                f"expected one count per distinct category, got {len(self.categories)} "
                f"categories and {len(self.counts)} counts"
            )
        if sum(self.counts) + self.other <= 0 or min((*self.counts, self.other)) < 0:
            raise ReferenceProfileError(
                f"expected non-negative counts, some > 0, got {self.counts}"
            )

    @property
    def bins(self) -> tuple[str, ...]:
        """The known categories; bin ``len(bins)`` is ``other`` (unknown categories)."""
        return self.categories

    @property
    def counts_with_other(self) -> tuple[int, ...]:
        """Counts per bin, ``other`` last."""
        return (*self.counts, self.other)

    @classmethod
    def from_profile(cls, feature: Mapping[str, Any]) -> CategoricalReference:
        """Read one entry of the profile's ``categorical`` section."""
        counts: Mapping[str, int] = feature.get("counts") or {}
        return cls(tuple(counts), tuple(map(int, counts.values())), int(feature.get("other", 0)))

    @classmethod
    def from_values(cls, values: Sequence[object]) -> CategoricalReference:
        """Count every category of ``values`` (``None`` ignored)."""
        tally: dict[str, int] = {}
        for value in values:
            if value is not None:
                key = category_key(value)
                tally[key] = tally.get(key, 0) + 1
        return cls(tuple(tally), tuple(tally.values()))


Reference = NumericReference | CategoricalReference


def category_key(value: object) -> str:
    """The profile's string form of a category: booleans as ``"true"`` / ``"false"``."""
    if value is True or value is False or isinstance(value, np.bool_):
        return "true" if value else "false"
    return str(value)


def references_from_profile(
    profile: Mapping[str, Any], features: Iterable[str] | None = None
) -> dict[str, Reference]:
    """Every feature of ``profile`` (or only ``features``) that has data to compare with.

    Features whose training values were all missing have no histogram and are left out;
    naming one in ``features`` raises :class:`ReferenceProfileError`.
    """
    numeric: Mapping[str, Any] = profile.get("numeric") or {}
    categorical: Mapping[str, Any] = profile.get("categorical") or {}
    wanted = None if features is None else set(features)
    refs: dict[str, Reference] = {}
    for name, entry in numeric.items():
        if _keep(name, wanted, bool((entry.get("histogram") or {}).get("counts"))):
            refs[name] = NumericReference.from_profile(entry)
    for name, entry in categorical.items():
        if _keep(name, wanted, bool(entry.get("counts") or entry.get("other"))):
            refs[name] = CategoricalReference.from_profile(entry)
    missing = (wanted or set()) - refs.keys()
    if missing:
        raise ReferenceProfileError(f"expected features in the profile, missing {sorted(missing)}")
    return refs


def _keep(name: str, wanted: set[str] | None, has_data: bool) -> bool:
    return has_data if wanted is None else name in wanted


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None

"""Per-feature drift of live inputs against the reference profile, window by window.

Each event adds one value per feature to that feature's window sketch (a bisect into the
reference edges for numeric features, a dict lookup for categorical ones); when the
window closes, every configured method runs on every feature's counts and the monitor
returns one :class:`DriftResult` per (feature, method). Nothing else is kept per event.

Defaults: tumbling windows of :data:`DEFAULT_WINDOW` (500 events), the methods and
thresholds of :mod:`streams.monitoring.drift.methods` (calibrated for windows of a few
hundred values), and no result for a feature with fewer than ``min_count`` (100) values
in the window.

Examples
--------
>>> from streams.monitoring.drift.reference import NumericReference, CategoricalReference
>>> refs = {"x": NumericReference.from_samples([i / 100 for i in range(100)], bins=4),
...         "plan": CategoricalReference(("basic", "pro"), (50, 50))}
>>> monitor = FeatureDriftMonitor(refs, window=WindowSpec(events=40), min_count=10)
>>> results = []
>>> for i in range(40):
...     results += monitor.update({"x": 0.9 + i / 1000, "plan": "pro"}, ts=i)
>>> sorted((r.feature, r.method, r.drifted) for r in results)[:3]
[('plan', 'chisquare', True), ('plan', 'js', True), ('plan', 'psi', True)]
>>> [r.window.end_event for r in results][:1]
[40]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from streams.monitoring.drift.categories import CategoryWindow
from streams.monitoring.drift.histogram import HistogramWindow
from streams.monitoring.drift.methods import (
    CATEGORICAL_METHODS,
    DEFAULT_THRESHOLDS,
    NUMERIC_METHODS,
    NUMERIC_ONLY,
    Sample,
    is_drifted,
    measure,
    threshold_scale,
)
from streams.monitoring.drift.reference import NumericReference, Reference, references_from_profile
from streams.monitoring.drift.result import DriftResult
from streams.monitoring.errors import MonitorConfigError
from streams.monitoring.windows import Window, WindowClock, WindowSpec

if TYPE_CHECKING:
    from streams.monitoring.columns import Column

__all__ = ["DEFAULT_WINDOW", "FeatureDriftMonitor"]

DEFAULT_WINDOW: Final = WindowSpec(events=500)
_NONE: Final[Sequence[DriftResult]] = ()


class FeatureDriftMonitor:
    """Drift of every referenced feature, per window and method (see the module docstring).

    ``thresholds`` override the defaults for every feature, ``feature_thresholds`` for
    one feature (``{"age": {"psi": 0.1}}``).
    """

    def __init__(
        self,
        references: Mapping[str, Reference],
        *,
        window: WindowSpec = DEFAULT_WINDOW,
        numeric_methods: Sequence[str] = NUMERIC_METHODS,
        categorical_methods: Sequence[str] = CATEGORICAL_METHODS,
        thresholds: Mapping[str, float] | None = None,
        feature_thresholds: Mapping[str, Mapping[str, float]] | None = None,
        min_count: int = 100,
    ) -> None:
        if not references:
            raise MonitorConfigError("expected at least one feature reference, got none")
        self._references = dict(references)
        self._clock = WindowClock(window)
        self._min_count = min_count
        self._windows = {
            name: HistogramWindow(ref) if isinstance(ref, NumericReference) else CategoryWindow(ref)
            for name, ref in self._references.items()
        }
        self._adders: list[tuple[str, Callable[[object], None]]] = [
            (name, sketch.add) for name, sketch in self._windows.items()
        ]
        self._plans = {
            name: self._plan(
                name,
                ref,
                numeric_methods,
                categorical_methods,
                thresholds or {},
                (feature_thresholds or {}).get(name, {}),
            )
            for name, ref in self._references.items()
        }

    @classmethod
    def from_profile(
        cls, profile: Mapping[str, Any], *, features: Sequence[str] | None = None, **options: Any
    ) -> FeatureDriftMonitor:
        """A monitor for the features of a training profile (all that have data)."""
        return cls(references_from_profile(profile, features), **options)

    @property
    def references(self) -> dict[str, Reference]:
        """The reference of every monitored feature."""
        return dict(self._references)

    @property
    def features(self) -> tuple[str, ...]:
        """The monitored features."""
        return tuple(self._references)

    @property
    def seen(self) -> int:
        """Events seen so far."""
        return self._clock.seen

    def thresholds(self, feature: str) -> dict[str, float]:
        """Method to threshold (in the value's units) for ``feature``."""
        return dict(self._plans[feature])

    def update(self, row: Mapping[str, object], ts: int = 0) -> Sequence[DriftResult]:
        """Add one event (feature name to value, ``ts`` in epoch ms); returns the results
        of the window this event closed, usually none. Absent features count as missing."""
        closed = self._clock.before(ts)
        results = self._close(closed) if closed is not None else _NONE
        get = row.get
        for name, add in self._adders:
            add(get(name))
        closed = self._clock.after(ts)
        if closed is not None:
            results = [*results, *self._close(closed)]
        return results

    @property
    def room(self) -> int:
        """Events the open window takes before it closes (count windows)."""
        return self._clock.room

    def extend(self, columns: Mapping[str, Column], ts: Sequence[int]) -> Sequence[DriftResult]:
        """:meth:`update` for a batch of events at once, each feature's values as one
        column (:mod:`streams.monitoring.columns`; a feature absent from ``columns`` is
        missing in every event): count windows only, at most :attr:`room` events. Returns
        the results of the window the last event closed, if it did."""
        for name, sketch in self._windows.items():
            sketch.add_batch(columns.get(name), len(ts))  # type: ignore[arg-type]  # its kind
        closed = self._clock.after_many(ts)
        return self._close(closed) if closed is not None else _NONE

    def advance(self, ts: int) -> Sequence[DriftResult]:
        """Close the open time window if ``ts`` is past its end (wall-clock punctuation)."""
        closed = self._clock.advance(ts)
        return self._close(closed) if closed is not None else _NONE

    def flush(self) -> Sequence[DriftResult]:
        """Close the open window now, however few events it holds."""
        closed = self._clock.flush()
        return self._close(closed) if closed is not None else _NONE

    def _close(self, window: Window) -> list[DriftResult]:
        results: list[DriftResult] = []
        for name, sketch in self._windows.items():
            sample = sketch.snapshot()
            if sample.total >= self._min_count:
                results.extend(self._measure(name, sample, window))
        return results

    def _measure(self, name: str, sample: Sample, window: Window) -> list[DriftResult]:
        reference = self._references[name]
        results = []
        for method, threshold in self._plans[name].items():
            found = measure(method, reference, sample)
            drifted = is_drifted(method, found.value, found.p_value, threshold)
            results.append(
                DriftResult(
                    name,
                    method,
                    found.value,
                    found.p_value,
                    threshold,
                    drifted,
                    sample.total,
                    sample.missing,
                    window,
                )
            )
        return results

    @staticmethod
    def _plan(
        name: str,
        reference: Reference,
        numeric_methods: Sequence[str],
        categorical_methods: Sequence[str],
        thresholds: Mapping[str, float],
        overrides: Mapping[str, float],
    ) -> dict[str, float]:
        numeric = isinstance(reference, NumericReference)
        methods = numeric_methods if numeric else categorical_methods
        plan = {}
        for method in methods:
            if method not in DEFAULT_THRESHOLDS or (not numeric and method in NUMERIC_ONLY):
                kind = "numeric" if numeric else "categorical"
                raise MonitorConfigError(
                    f"expected a drift method for a {kind} feature on {name!r}, got {method!r}"
                )
            limit = overrides.get(method, thresholds.get(method, DEFAULT_THRESHOLDS.get(method)))
            if limit is None:
                raise MonitorConfigError(
                    f"expected a threshold for {method!r} on {name!r}, got none"
                )
            plan[method] = limit * threshold_scale(method, reference)
        return plan

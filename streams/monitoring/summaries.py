"""Additive window summaries: what one task (a model's input partition) saw in one window
of event time, in a form that adds up across partitions and windows.

Every closed window of :class:`SummaryWindows` (tumbling, aligned on multiples of
``window_ms`` of event time, 60 s by default) yields :class:`Summary` records, written to
``<prefix>.summaries`` and landed in ClickHouse's ``window_summaries``:

=============== ======================================= =====================================
``kind``        ``counts``                              ``stats``
=============== ======================================= =====================================
numeric         per cut-point interval of the reference  ``missing below below_sum above
                profile (its ``points``: edges and the   above_sum count sum sum_sq``
                training quantiles inside them)
categorical     per reference category, ``other`` last   ``missing``
classification  ``tp fp fn tn correct n`` (``positive``  --
                is the declared positive class)
regression      --                                       ``n sum_error sum_abs_error
                                                         sum_sq_error sum_y sum_sq_y``
fairness        ``count selected positives              --
                true_positives negatives
                false_positives`` of one group
latency         per bucket of :data:`LATENCY_BUCKETS_MS` ``count sum``
=============== ======================================= =====================================

Numeric and categorical summaries follow the reference profile of the champion version
in ``model_version``; classification, regression and fairness summaries are per role and
the version that answered (fairness: ``feature`` is the attribute, ``group`` its value;
a prediction counts where it was made, its label where it joined). Sums of summaries are
summaries: :func:`merge` adds them, :func:`binned_sample` and :func:`category_sample` turn
one back into what the drift estimators measure, so PSI, Jensen-Shannon, chi-square,
binned KS and Wasserstein of any set of windows and partitions are the estimators'
numbers on the summed counts (SQL does the same sums, ``docs/queries.md``).

An event older than the last closed window counts in the open one: a partition emits one
summary per window and kind, never two for the same window.

Examples
--------
>>> from streams.monitoring.drift.reference import NumericReference
>>> ref = {"x": NumericReference((0.0, 1.0, 2.0), (5, 5))}
>>> windows = SummaryWindows(ref, window_ms=1000)
>>> windows.on_features({"x": 0.5}, 1500), windows.on_features({"x": 1.5}, 1700)
([], [])
>>> [s.kind for s in windows.on_features({"x": 9.0}, 2100)]
['numeric']
>>> windows.flush()[0].stats["above_sum"]
9.0
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from streams.monitoring.columns import Column, NumericColumn
from streams.monitoring.drift.categories import CategorySample, CategoryWindow
from streams.monitoring.drift.histogram import (
    BinnedSample,
    HistogramWindow,
    as_number,
    sum_in_order,
)
from streams.monitoring.drift.reference import CategoricalReference, NumericReference, Reference
from streams.monitoring.fairness.groups import GroupCounts
from streams.monitoring.labels import label_key

__all__ = [
    "CLASSIFICATION_COUNTS",
    "FAIRNESS_COUNTS",
    "LATENCY_BUCKETS_MS",
    "REGRESSION_STATS",
    "Summary",
    "SummaryWindows",
    "binned_sample",
    "category_sample",
    "merge",
]

#: upper bounds (ms, inclusive) of the latency buckets; the last bucket is everything above
LATENCY_BUCKETS_MS: Final = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
)  # fmt: skip
CLASSIFICATION_COUNTS: Final = ("tp", "fp", "fn", "tn", "correct", "n")
FAIRNESS_COUNTS: Final = (
    "count", "selected", "positives", "true_positives", "negatives", "false_positives",
)  # fmt: skip
REGRESSION_STATS: Final = ("n", "sum_error", "sum_abs_error", "sum_sq_error", "sum_y", "sum_sq_y")
DEFAULT_WINDOW_MS: Final = 60_000
_BUCKETS: Final = np.array(LATENCY_BUCKETS_MS)


@dataclass(frozen=True, slots=True)
class Summary:
    """One additive summary of one window (see the module docstring)."""

    kind: str
    window_start: int
    window_end: int
    counts: tuple[float, ...] = ()
    stats: Mapping[str, float] = field(default_factory=dict)
    feature: str | None = None
    group: str | None = None
    role: str | None = None
    model_version: int | None = None
    #: the last summary a task emitted for this window at once (a merger may merge then)
    last: bool = False

    def key(self) -> tuple[Any, ...]:
        """What identifies it within a model's window (partition aside)."""
        return (self.kind, self.feature, self.group, self.role, self.model_version)

    def to_record(self, *, model: str, partition: int) -> dict[str, Any]:
        """The JSON record of ``<prefix>.summaries``."""
        return {
            "model": model,
            "partition": partition,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "kind": self.kind,
            "model_version": self.model_version,
            "role": self.role,
            "feature": self.feature,
            "group": self.group,
            "counts": list(self.counts),
            "stats": dict(self.stats),
            "last": self.last,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Summary:
        return cls(
            record["kind"], int(record["window_start"]), int(record["window_end"]),
            tuple(record.get("counts") or ()), dict(record.get("stats") or {}),
            record.get("feature"), record.get("group"), record.get("role"),
            record.get("model_version"), bool(record.get("last")),
        )  # fmt: skip


def merge(summaries: Iterable[Summary]) -> list[Summary]:
    """Summaries with the same :meth:`Summary.key` added up (window: their span)."""
    merged: dict[tuple[Any, ...], Summary] = {}
    for s in summaries:
        found = merged.get(s.key())
        if found is None:
            merged[s.key()] = s
            continue
        if len(found.counts) != len(s.counts):
            raise ValueError(f"cannot add summaries of {s.key()} with different bins")
        stats = dict(found.stats)
        for name, value in s.stats.items():
            stats[name] = stats.get(name, 0.0) + value
        merged[s.key()] = Summary(
            s.kind, min(found.window_start, s.window_start), max(found.window_end, s.window_end),
            tuple(a + b for a, b in zip(found.counts, s.counts, strict=True)), stats,
            s.feature, s.group, s.role, s.model_version,
        )  # fmt: skip
    return list(merged.values())


def binned_sample(summary: Summary, reference: NumericReference) -> BinnedSample:
    """What the drift estimators measure, from a numeric summary."""
    fine = tuple(int(c) for c in summary.counts)
    refined = len(reference.points) > len(reference.edges)
    coarse = fine
    if refined:
        ends = (*reference.starts[1:], len(fine))
        coarse = tuple(sum(fine[a:b]) for a, b in zip(reference.starts, ends, strict=True))
    st = summary.stats
    return BinnedSample(
        coarse, int(st.get("below", 0)), float(st.get("below_sum", 0.0)),
        int(st.get("above", 0)), float(st.get("above_sum", 0.0)), int(st.get("missing", 0)),
        fine if refined else None,
    )  # fmt: skip


def category_sample(summary: Summary) -> CategorySample:
    """What the drift estimators measure, from a categorical summary."""
    return CategorySample(
        tuple(int(c) for c in summary.counts), int(summary.stats.get("missing", 0))
    )


class _Numeric(HistogramWindow):
    """A histogram window that also sums the values and their squares."""

    __slots__ = ("n", "sum", "sum_sq")

    def __init__(self, reference: NumericReference) -> None:
        super().__init__(reference)
        self.n, self.sum, self.sum_sq = 0, 0.0, 0.0

    def add(self, value: object) -> None:
        number = value if type(value) is float else as_number(value)
        if number is not None and number - number == 0.0:  # finite, as the histogram reads it
            self.n += 1
            self.sum += number
            self.sum_sq += number * number
        super().add(value)

    def add_batch(self, column: NumericColumn | None, n: int) -> None:
        if column is not None and len(finite := column.finite):
            self.n += len(finite)
            self.sum = sum_in_order(self.sum, finite)
            self.sum_sq = sum_in_order(self.sum_sq, finite * finite)
        super().add_batch(column, n)


class SummaryWindows:
    """The open window of one task's summaries (see the module docstring)."""

    def __init__(
        self,
        references: Mapping[str, Reference],
        *,
        window_ms: int = DEFAULT_WINDOW_MS,
        positive_label: object = None,
        version: int | None = None,
    ) -> None:
        self.window_ms = window_ms
        self.version = version
        self._references = dict(references)
        self._positive = None if positive_label is None else label_key(positive_label)
        self._start: int | None = None
        self._closed_until = -(2**62)
        self._fresh()

    def _fresh(self) -> None:
        self._features: list[tuple[str, _Numeric | CategoryWindow]] = [
            (name, _Numeric(ref) if isinstance(ref, NumericReference) else CategoryWindow(ref))
            for name, ref in self._references.items()
            if isinstance(ref, NumericReference | CategoricalReference)
        ]
        self._classification: dict[tuple[str, int], list[int]] = {}
        self._regression: dict[tuple[str, int], list[float]] = {}
        self._fairness: dict[tuple[str, int, str, str], GroupCounts] = {}
        self._latency = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self._latency_sum = 0.0
        self._waiting_latency: list[float] = []  # on_event's, bucketed at the close
        self._events = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_waiting_latency": []} | state)  # a snapshot from before

    def _bucket_latencies(self) -> None:
        """Add :meth:`on_event`'s latencies to the buckets (as :meth:`on_latency` would)."""
        waiting = self._waiting_latency
        if not waiting:
            return
        values = np.array(waiting, dtype=float)
        found = np.bincount(
            np.searchsorted(_BUCKETS, values, side="left"), minlength=len(self._latency)
        )
        for i, n in enumerate(found.tolist()):
            self._latency[i] += n
        self._latency_sum = sum_in_order(self._latency_sum, values)
        waiting.clear()

    # -- inputs ---------------------------------------------------------------------

    def on_features(self, features: Mapping[str, object], ts: int) -> list[Summary]:
        """One prediction's inputs."""
        closed = self._at(ts)
        self._events += 1
        get = features.get
        for name, window in self._features:
            window.add(get(name))
        return closed

    def closes(self, ts: int) -> bool:
        """Whether an event at ``ts`` closes the open window (:meth:`on_event` would
        return its summaries): add the columns of the events before it first."""
        return self._start is not None and ts >= self._start + self.window_ms

    def on_event(self, ts: int, latency_ms: float | None = None) -> list[Summary]:
        """One prediction whose inputs come later, with the others of the open window
        (:meth:`add_columns`), and its latency (a finite number, or ``None``); returns
        the summaries of the window it closed."""
        closed = self._at(ts)
        self._events += 1
        if latency_ms is not None:
            self._waiting_latency.append(latency_ms)
        return closed

    def add_columns(self, columns: Mapping[str, Column], n: int) -> None:
        """The inputs of ``n`` events of the open window (see :meth:`on_event`), each
        feature's values as a column (:mod:`streams.monitoring.columns`; an absent
        feature is missing in every event)."""
        self._bucket_latencies()
        for name, window in self._features:
            window.add_batch(columns.get(name), n)  # type: ignore[arg-type]  # its kind

    @property
    def features(self) -> dict[str, Reference]:
        """The inputs summarised, with their references."""
        return {name: self._references[name] for name, _ in self._features}

    def on_latency(self, latency_ms: float | None) -> None:
        """One request's latency (after :meth:`on_features` for the same event)."""
        if latency_ms is None:
            return
        self._latency[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
        self._latency_sum += latency_ms

    def on_selection(self, role: str, version: int, sensitive: Mapping[str, str],
                     output: object, attributes: Sequence[str]) -> None:  # fmt: skip
        """One prediction of ``role`` for the fairness counts (after :meth:`on_features`)."""
        if self._positive is None:
            return
        selected = label_key(output) == self._positive
        for attribute in attributes:
            self._group(role, version, attribute, sensitive).add(selected)

    def on_joined(
        self, ts: int, role: str, version: int, output: object, label: object,
        sensitive: Mapping[str, str], attributes: Sequence[str],
    ) -> list[Summary]:  # fmt: skip
        """One labelled prediction of ``role``: confusion counts (or regression sums) and
        the group's labelled counts."""
        closed = self._at(ts)
        if self._positive is None and isinstance(output, int | float) and label is not None:
            y, e = float(label), float(output) - float(label)  # type: ignore[arg-type]  # a regression label is a number
            sums = self._regression.setdefault((role, version), [0.0] * len(REGRESSION_STATS))
            for i, v in enumerate((1.0, e, abs(e), e * e, y, y * y)):
                sums[i] += v
            return closed
        predicted, actual = label_key(output), label_key(label)
        counts = self._classification.setdefault((role, version), [0] * 6)
        if self._positive is not None:
            p, a = predicted == self._positive, actual == self._positive
            counts[0 if p and a else 1 if p else 2 if a else 3] += 1
        counts[4] += predicted == actual
        counts[5] += 1
        if self._positive is not None:  # the prediction was counted when it was made
            p, a = predicted == self._positive, actual == self._positive
            for attribute in attributes:
                self._group(role, version, attribute, sensitive).add_label(p, a)
        return closed

    def rebase(self, references: Mapping[str, Reference], version: int | None) -> list[Summary]:
        """Follow a new champion's reference profile: the open window's input summaries
        so far are emitted under the old version, the rest of the window goes on."""
        out = []
        if self._start is not None and self._events:
            out = [s for s in self._summaries() if s.kind in ("numeric", "categorical")]
            out = _marked(out)
        self._references, self.version = dict(references), version
        self._bucket_latencies()
        latency, latency_sum = self._latency, self._latency_sum
        classification, regression, fairness = (
            self._classification, self._regression, self._fairness,
        )  # fmt: skip
        self._fresh()
        self._latency, self._latency_sum = latency, latency_sum
        self._classification, self._regression, self._fairness = (
            classification, regression, fairness,
        )  # fmt: skip
        return out

    def advance(self, now_ms: int, grace_ms: int = 10_000) -> list[Summary]:
        """Close the open window once ``now_ms`` is ``grace_ms`` past its end."""
        if self._start is not None and now_ms >= self._start + self.window_ms + grace_ms:
            return self._close()
        return []

    def flush(self) -> list[Summary]:
        """Close the open window now."""
        return self._close() if self._start is not None else []

    # -- windows --------------------------------------------------------------------

    def _group(
        self, role: str, version: int, attribute: str, sensitive: Mapping[str, str]
    ) -> GroupCounts:
        key = (role, version, attribute, str(sensitive.get(attribute, "(missing)")))
        found = self._fairness.get(key)
        if found is None:
            found = self._fairness[key] = GroupCounts()
        return found

    def _at(self, ts: int) -> list[Summary]:
        """Move to the window of ``ts`` (a late event counts in the open window)."""
        ts = max(ts, self._closed_until)
        start = ts - ts % self.window_ms
        if self._start is None:
            self._start = start
            return []
        if start > self._start:
            closed = self._close()
            self._start = start
            return closed
        return []

    def _close(self) -> list[Summary]:
        out = _marked(self._summaries())
        assert self._start is not None
        self._closed_until = self._start + self.window_ms
        self._start = None
        self._fresh()
        return out

    def _summaries(self) -> list[Summary]:
        assert self._start is not None
        self._bucket_latencies()
        start, end, version = self._start, self._start + self.window_ms, self.version
        out: list[Summary] = []
        for name, window in self._features:
            if isinstance(window, _Numeric):
                n, total, squares = window.n, window.sum, window.sum_sq
                window.n, window.sum, window.sum_sq = 0, 0.0, 0.0
                b = window.snapshot()
                out.append(Summary("numeric", start, end, b.fine or b.counts, {
                    "missing": b.missing, "below": b.below, "below_sum": b.below_sum,
                    "above": b.above, "above_sum": b.above_sum, "count": n, "sum": total,
                    "sum_sq": squares,
                }, feature=name, model_version=version))  # fmt: skip
            else:
                c = window.snapshot()
                out.append(Summary("categorical", start, end, c.counts, {"missing": c.missing},
                                   feature=name, model_version=version))  # fmt: skip
        if not self._events:  # labels only: no input to describe
            out = []
        for (role, v), counts in self._classification.items():
            out.append(Summary("classification", start, end, tuple(counts), role=role,
                               model_version=v))  # fmt: skip
        for (role, v), sums in self._regression.items():
            out.append(Summary("regression", start, end, (), dict(zip(REGRESSION_STATS, sums,
                               strict=True)), role=role, model_version=v))  # fmt: skip
        for (role, v, attribute, group), g in self._fairness.items():
            rates = (g.count, g.selected, g.positives, g.true_positives, g.negatives,
                     g.false_positives)  # fmt: skip
            out.append(Summary("fairness", start, end, rates, feature=attribute, group=group,
                               role=role, model_version=v))  # fmt: skip
        if any(self._latency):
            stats = {"count": sum(self._latency), "sum": self._latency_sum}
            out.append(Summary("latency", start, end, tuple(self._latency), stats))
        return out


def _marked(summaries: list[Summary]) -> list[Summary]:
    """``summaries`` with the last one flagged ``last``."""
    if summaries:
        summaries[-1] = replace(summaries[-1], last=True)
    return summaries

"""Everything the monitor computes for one model, as one picklable object.

A :class:`ModelWatch` turns prediction-log records, labels and DLQ entries into metric
points and alerts, using the estimators of the subpackages: data drift per feature
against the champion's reference profile (windowed PSI/KS/JS/Wasserstein/chi-square) and
per-feature ADWIN; concept drift on the champion's error stream once labels join;
delayed-label performance of champion and challenger on the same requests (labels compared
by class text, :mod:`schemas.labels`: ``true`` matches an output ``"True"``); fairness per
declared sensitive attribute (selection rates from every prediction, TPR/FPR from
labelled ones), for the champion and the challenger alike; Half-Space Trees anomaly
rates; QPS, latency, error, DLQ and backup rates. Pure: no Kafka, no clock but the
records' timestamps and the ``now_ms`` a caller passes.

Numeric estimators (per-feature ADWIN, Half-Space Trees) see only the numeric inputs
(:attr:`ModelSpec.numeric`, from the input schema); categorical inputs get categorical
drift (PSI, Jensen-Shannon, chi-square on the reference's category counts).

When the champion changes, :meth:`ModelWatch.rebase` measures drift against the new
champion's reference profile from then on: the drift windows, per-feature detectors,
anomaly trees and concept-drift detectors start afresh, and an ``info`` alert of kind
``monitor`` records it. Label joins, performance per version, fairness and ops go on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np
import orjson

from schemas.labels import label_class
from streams.monitoring.anomaly import HalfSpaceTreesMonitor, ProfileScaler, RunningScaler
from streams.monitoring.anomaly.scaling import finite_number
from streams.monitoring.change import ConceptDriftMonitor, FeatureChangeMonitor
from streams.monitoring.columns import Column, NumericColumn, count_categories, detector_column
from streams.monitoring.drift import FeatureDriftMonitor
from streams.monitoring.drift.reference import CategoricalReference, NumericReference
from streams.monitoring.fairness import FairnessMonitor
from streams.monitoring.ops import OpsMonitor
from streams.monitoring.performance import LabelJoiner, PerformanceMonitor, Scored
from streams.monitoring.results import Alert, MetricPoint
from streams.monitoring.summaries import Summary, SummaryWindows

__all__ = ["FEEDBACK_SKEW_MS", "ModelSpec", "ModelWatch"]

Emitted = MetricPoint | Alert | Summary

#: How far ahead of the monitor's clock a record's own ``ts`` may be; later ones are
#: clamped to it (counted in :attr:`ModelWatch.clamped`), so that one record from a
#: producer with a wrong clock cannot move the label joiner's clock into the future and
#: expire every prediction waiting for its label. The clock is the later of the wall
#: clock and the latest prediction's ``ts`` (a log replayed from elsewhere keeps its own:
#: the first prediction of a watch sets it). A feedback record's ``ts`` is clamped
#: wherever it is used; a prediction's only as the joiner's and this clock's time (its
#: windows keep the ``ts`` it was logged with).
FEEDBACK_SKEW_MS: Final = 300_000
_NO_OUTCOME: Final[Mapping[str, Any]] = {}
_NO_CLOCK: Final = -(2**62)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the watch needs to know about the model (from the registry)."""

    model: str
    task: str = "classification"
    features: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    reference_profile: Mapping[str, Any] | None = None
    positive_label: str | None = "True"
    label_ttl_ms: int = 3_600_000
    drift_window: int = 500
    #: event-time window of the additive summaries (streams.monitoring.summaries)
    summary_window_ms: int = 60_000
    #: the numeric inputs (None: every feature that is not sensitive and has numeric
    #: statistics in the reference profile)
    numeric: tuple[str, ...] | None = None
    #: the champion version whose reference profile this is (None: unknown)
    version: int | None = None

    def numeric_features(self) -> list[str]:
        """The inputs numeric estimators see: numeric, not sensitive, and described by
        the reference profile (mean, std, min and max) when there is one."""
        given = self.numeric if self.numeric is not None else self.features
        names = [f for f in given if f not in self.sensitive]
        if not self.reference_profile:
            return list(names) if self.numeric is not None else []
        stats: Mapping[str, Any] = self.reference_profile.get("numeric") or {}
        keys = ("mean", "std", "min", "max")
        return [f for f in names if all((stats.get(f) or {}).get(k) is not None for k in keys)]


class ModelWatch:
    """The monitor's per-model state (see the module docstring)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.events = 0
        self.clamped = 0
        self.latest_ts = _NO_CLOCK  # the latest prediction's ts (clamped)
        self._reference(spec)
        self.ops = OpsMonitor()
        task: Literal["classification", "regression"] = (
            "regression" if spec.task == "regression" else "classification"
        )
        positive = spec.positive_label if task == "classification" else None
        self.summaries = SummaryWindows(
            self.drift.references if self.drift is not None else {},
            window_ms=spec.summary_window_ms, positive_label=positive, version=spec.version,
        )  # fmt: skip
        # a waiting prediction is kept as JSON bytes (see _pack): pickling the snapshot of
        # 20,000 of them costs ~12 ms, against ~120 ms as objects
        self.joiner: LabelJoiner[bytes, Any] = LabelJoiner(
            ttl_ms=spec.label_ttl_ms, max_entries=200_000
        )
        self.performance = PerformanceMonitor(task, positive_label=positive)
        # per role: (selection rates from every prediction, TPR/FPR from labelled ones)
        self.fairness: dict[str, tuple[FairnessMonitor, FairnessMonitor]] = (
            {
                role: (
                    FairnessMonitor(spec.sensitive, positive_label=positive),
                    FairnessMonitor(spec.sensitive, positive_label=positive),
                )
                for role in ("champion", "challenger")
            }
            if spec.sensitive and positive
            else {}
        )
        self.champion_version: int | None = None
        # the inputs of the events since the last drain (see _drain)
        self._rows: list[Mapping[str, object]] = []
        self._ts: list[int] = []
        self._limit = self._room()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_rows": [], "_ts": []} | state)  # a snapshot from before
        self._limit = self._room()

    def _reference(self, spec: ModelSpec) -> None:
        """The estimators measured against the champion's reference profile."""
        profile = spec.reference_profile
        numeric = spec.numeric_features()
        self.drift = _drift(profile, spec.drift_window)
        self.changes = (
            FeatureChangeMonitor.from_profile(profile, features=numeric)
            if profile and numeric
            else None
        )
        scaler: ProfileScaler | RunningScaler | None = (
            None
            if not numeric
            else ProfileScaler.from_profile(profile, numeric)
            if profile
            else RunningScaler(numeric)
        )
        self.anomaly = HalfSpaceTreesMonitor(scaler, seed=7) if scaler is not None else None
        self.concept = ConceptDriftMonitor(
            "regression" if spec.task == "regression" else "classification"
        )

    @property
    def reference_version(self) -> int | None:
        """The champion version whose reference profile drift is measured against."""
        return self.spec.version

    def rebase(self, spec: ModelSpec) -> list[Emitted]:
        """Measure against ``spec`` (a new champion's) from now on; returns the results
        of the windows this closes and an ``info`` alert recording the change."""
        out: list[Emitted] = self._drain()
        if self.drift is not None:
            out += [self._versioned(r.to_metric()) for r in self.drift.flush()]
        if self.anomaly is not None:
            out += self._reports(self.anomaly.flush())
        before = self.spec.version
        self.spec = dataclasses.replace(
            self.spec,
            version=spec.version,
            features=spec.features,
            numeric=spec.numeric,
            reference_profile=spec.reference_profile,
        )
        self._reference(self.spec)
        self._limit = self._room()
        out += self.summaries.rebase(
            self.drift.references if self.drift is not None else {}, spec.version
        )
        self.champion_version = spec.version
        out.append(Alert(
            kind="monitor", severity="info", model_version=spec.version, at_event=self.events,
            message=f"champion v{before} -> v{spec.version}: drift is measured against "
                    f"v{spec.version}'s reference profile from event {self.events} on; drift "
                    "windows and change detectors restarted",
        ))  # fmt: skip
        return out

    # -- inputs ---------------------------------------------------------------------

    def on_prediction(self, record: Mapping[str, Any], now_ms: int | None = None) -> list[Emitted]:
        """A logged prediction; with ``now_ms``, a ``ts`` beyond the monitor's clock +
        :data:`FEEDBACK_SKEW_MS` moves the clock (and the label joiner's) no further."""
        ts, features = int(record["ts"]), record["features"]
        if not isinstance(features, dict):
            raise TypeError(f"expected the features as an object, got {type(features).__name__}")
        champion, challenger = record["champion"], record.get("challenger") or None
        version = champion["version"]
        request_id = record["request_id"]
        self.events += 1
        clock_ts = ts if self.latest_ts == _NO_CLOCK else self._clamp(ts, now_ms)
        if clock_ts > self.latest_ts:
            self.latest_ts = clock_ts
        out: list[Emitted] = []
        summaries = self.summaries
        if self._rows and summaries.closes(ts):
            out += self._drain()  # the inputs before this event belong to the closing window
        self.champion_version = version
        # a batch row's latencies are its share of a chunk's: not a request's, left out
        timed = record.get("source") != "batch"
        latency = _ms(record.get("latency_ms")) if timed else None
        out += summaries.on_event(ts, latency)
        self._rows.append(features)
        self._ts.append(ts)
        if len(self._rows) >= self._limit:
            out += self._drain()
        shadow = challenger or _NO_OUTCOME
        reports = self.ops.scored(
            ts, latency, _ms(champion.get("latency_ms")) if timed else None,
            _ms(shadow.get("latency_ms")) if timed else None,
            record.get("served_by", "champion"), bool(champion.get("error")),
            bool(shadow.get("error")),
        )  # fmt: skip
        if reports:
            out += self._reports(reports)
        answered = challenger is not None and challenger.get("output") is not None
        sensitive = dict(record.get("sensitive") or {})
        if self.fairness:
            out += self._selection(champion, challenger if answered else None, sensitive, ts)
        packed = _pack(champion, challenger if answered else None, sensitive)
        joined = self.joiner.add_prediction(request_id, packed, clock_ts)
        if joined is not None:  # the label came first
            out += self._joined(joined.prediction, joined.label, ts)
        return out

    def _selection(
        self, champion: Mapping[str, Any], challenger: Mapping[str, Any] | None,
        sensitive: dict[str, str], ts: int,
    ) -> list[Emitted]:  # fmt: skip
        """Selection rates per group, of every answer (champion and challenger)."""
        out: list[Emitted] = []
        for role, outcome in (("champion", champion), ("challenger", challenger)):
            scored = _scored(outcome) if outcome is not None else None
            if scored is not None and scored.output is not None:
                self.summaries.on_selection(
                    role, scored.version, sensitive, scored.output, self.spec.sensitive
                )
                selection = self.fairness[role][0]
                out += self._fairness(
                    selection.update(sensitive, scored.output, ts=ts), "predictions", role,
                    scored.version,
                )  # fmt: skip
        return out

    def on_feedback(self, record: Mapping[str, Any], now_ms: int | None = None) -> list[Emitted]:
        """A label; its ``ts`` is clamped to the monitor's clock (``now_ms`` or the latest
        prediction's ts, the later) + :data:`FEEDBACK_SKEW_MS`."""
        ts = self._clamp(int(record["ts"]), now_ms)
        label = _truth(self.performance.task, record.get("label"))
        joined = self.joiner.add_label(record["request_id"], label, ts)
        return [] if joined is None else self._joined(joined.prediction, joined.label, ts)

    def _clamp(self, ts: int, now_ms: int | None) -> int:
        """``ts``, or the monitor's clock + :data:`FEEDBACK_SKEW_MS` when it is later
        (counted in :attr:`clamped`); no clamp without ``now_ms``."""
        if now_ms is None:
            return ts
        limit = max(now_ms, self.latest_ts) + FEEDBACK_SKEW_MS
        if ts <= limit:
            return ts
        self.clamped += 1
        return limit

    def on_dlq(self, reason: str, ts_ms: int) -> list[Emitted]:
        return self._reports(self.ops.update_dlq(ts_ms))

    def tick(self, now_ms: int) -> list[Emitted]:
        """Add the inputs waiting for a drain, close time windows that ended (ops),
        expire labels nobody will join."""
        out = self._drain()
        self.joiner.expire(now_ms)
        return [*out, *self.summaries.advance(now_ms), *self._reports(self.ops.advance(now_ms))]

    def flush(self) -> list[Emitted]:
        """Every open window, closed now (end of a demo or a test)."""
        out = self._drain()
        out += self.summaries.flush()
        if self.drift is not None:
            out += [self._versioned(r.to_metric()) for r in self.drift.flush()]
        for monitor in (self.performance, self.anomaly, self.ops):
            if monitor is not None:
                out += self._reports(monitor.flush())
        for role, (selection, labelled) in self.fairness.items():
            out += self._fairness(selection.flush(), "predictions", role)
            out += self._fairness(labelled.flush(), "labelled", role)
        return out

    # -- inputs, a batch at a time -----------------------------------------------------

    def _room(self) -> int:
        """Events to gather before a drain: up to the drift window's end, so that its
        results come with the event that closes it (and never more than 1,000)."""
        return min(self.drift.room, 1_000) if self.drift is not None else 1_000

    def _drain(self) -> list[Emitted]:
        """Add the inputs gathered since the last drain to the drift windows, the window
        summaries and the per-feature change detectors, a column per feature
        (:mod:`streams.monitoring.columns`), and to the anomaly trees (a batch of the
        sampled events): the same counts, sums, detections and scores as one event at a
        time. Every gathered event is of the summaries' open window and of the drift
        window (on_prediction drains before either closes)."""
        rows, ts = self._rows, self._ts
        if not rows:
            return []
        self._rows, self._ts = [], []
        self.ops.absorb()
        try:
            return self._add_columns(rows, ts)
        finally:
            self._limit = self._room()

    def _add_columns(self, rows: list[Mapping[str, object]], ts: list[int]) -> list[Emitted]:
        n = len(rows)
        columns: dict[str, Column] = {}
        # the summaries' references are the drift monitor's (see __init__ and rebase)
        for name, reference in self.summaries.features.items():
            values = [row.get(name) for row in rows]
            if isinstance(reference, NumericReference):
                columns[name] = NumericColumn.of(values, reference)
            elif isinstance(reference, CategoricalReference):
                columns[name] = count_categories(values, reference)
        self.summaries.add_columns(columns, n)
        out: list[Emitted] = []
        if self.changes is not None:
            detect: dict[str, np.ndarray] = {}
            for name in self.changes.features:
                found = columns.get(name)
                detect[name] = (
                    found.detector
                    if isinstance(found, NumericColumn)
                    else detector_column([row.get(name) for row in rows])
                )
            for change in self.changes.update_columns(detect, n):
                if change.level == "drift":
                    out.append(change.to_alert(kind="drift", model_version=self.champion_version,
                                               feature=change.key))  # fmt: skip
        if self.anomaly is not None:
            out += self._reports(self.anomaly.update_many(rows, ts))
        if self.drift is not None:
            for result in self.drift.extend(columns, ts):
                out.append(self._versioned(result.to_metric()))
                if result.drifted:
                    out.append(
                        dataclasses.replace(result.to_alert(), model_version=self.champion_version)
                    )
        return out

    # -- helpers --------------------------------------------------------------------

    def _joined(self, prediction: bytes, label: Any, ts: int) -> list[Emitted]:
        if label is None:  # known to be unlabelable: joined, but nothing to learn from
            return []
        served, shadow, sensitive = _unpack(prediction)
        out: list[Emitted] = []
        if self._rows and self.summaries.closes(ts):
            out += self._drain()  # a label's ts closes the summaries' window too
        for role, scored in (("champion", served), ("challenger", shadow)):
            if scored is not None and scored.output is not None:
                out += self.summaries.on_joined(
                    ts, role, scored.version, scored.output, label, sensitive,
                    self.spec.sensitive if self.fairness else (),
                )  # fmt: skip
        outcomes = {"champion": served} | ({"challenger": shadow} if shadow is not None else {})
        out += self._reports(self.performance.update(label, outcomes, ts))
        if served.output is None:  # the champion failed: no error to measure, no group rate
            return out
        for found in self.concept.update(label, served.output):
            if found.level == "drift":
                out.append(found.to_alert(kind="concept_drift", model_version=served.version))
        for role, scored in (("champion", served), ("challenger", shadow)):
            if self.fairness and scored is not None and scored.output is not None:
                labelled = self.fairness[role][1]
                out += self._fairness(
                    labelled.update(sensitive, scored.output, label, ts), "labelled", role,
                    scored.version,
                )  # fmt: skip
        return out

    def _reports(self, reports: Sequence[Any]) -> list[Emitted]:
        out: list[Emitted] = []
        for report in reports:
            out += [self._versioned(p) for p in report.to_metrics()]
            alerts = getattr(report, "alerts", None)
            if callable(alerts):
                out += alerts()
        return out

    def _fairness(
        self, reports: Sequence[Any], basis: str, role: str, version: int | None = None
    ) -> list[Emitted]:
        out: list[Emitted] = []
        for report in reports:
            for point in report.to_metrics():
                labels = dict(point.labels) | {"attribute": report.attribute, "basis": basis}
                point = dataclasses.replace(point, labels=labels, role=role)
                if version is not None:
                    point = dataclasses.replace(point, model_version=version)
                out.append(self._versioned(point))
            if basis == "labelled":
                alerts = report.alerts()
                if role == "challenger":  # a shadow's gap: for the promotion gate to weigh
                    alerts = [
                        dataclasses.replace(a, message=f"challenger: {a.message}",
                                            model_version=version or a.model_version)
                        for a in alerts
                    ]  # fmt: skip
                out += alerts
        return out

    def _versioned(self, point: MetricPoint) -> MetricPoint:
        if point.model_version is None and self.champion_version is not None:
            return dataclasses.replace(point, model_version=self.champion_version)
        return point


def _drift(profile: Mapping[str, Any] | None, window: int) -> FeatureDriftMonitor | None:
    if not profile:
        return None
    from streams.monitoring.windows import WindowSpec

    return FeatureDriftMonitor.from_profile(profile, window=WindowSpec(events=window))


def _truth(task: str, label: object) -> str | float | None:
    """A label as every estimator compares it: its class text (classification), or its
    number (regression; a text label is no measurement there, as for SQL's
    ``label_number``, so it counts like null)."""
    if task == "classification":
        return label_class(label)
    return float(label) if isinstance(label, int | float) and not isinstance(label, bool) else None


def _pack(
    served: Mapping[str, Any], shadow: Mapping[str, Any] | None, sensitive: dict[str, str]
) -> bytes:
    """What a prediction waiting for its label needs (of the log's champion and, if it
    answered, challenger outcomes), as compact JSON."""
    return orjson.dumps((
        served["version"], served.get("output"), served.get("probabilities"),
        *((shadow["version"], shadow.get("output"), shadow.get("probabilities"))
          if shadow else ()),
        sensitive,
    ))  # fmt: skip


def _ms(value: object) -> float | None:
    """A latency as the ops and summary figures take it: a finite number, else ``None``."""
    number = finite_number(value)
    return None if number is None else float(number)


def _unpack(packed: bytes) -> tuple[Scored, Scored | None, dict[str, str]]:
    """The inverse of :func:`_pack`.

    >>> _unpack(_pack({"version": 1, "output": "True", "probabilities": {"True": 0.7}},
    ...               None, {"group": "a"}))
    (Scored(version=1, output='True', probabilities={'True': 0.7}), None, {'group': 'a'})
    """
    values = orjson.loads(packed)
    served = Scored(values[0], values[1], values[2])
    shadow = Scored(values[3], values[4], values[5]) if len(values) == 7 else None
    return served, shadow, values[-1]


def _scored(outcome: Mapping[str, Any]) -> Scored:
    return Scored(outcome["version"], outcome.get("output"), outcome.get("probabilities"))

"""Everything the monitor computes for one model, as one picklable object.

A :class:`ModelWatch` turns prediction-log records, labels and DLQ entries into metric
points and alerts, using the estimators of the subpackages: data drift per feature
against the champion's reference profile (windowed PSI/KS/JS/Wasserstein/chi-square) and
per-feature ADWIN; concept drift on the champion's error stream once labels join;
delayed-label performance of champion and challenger on the same requests (labels compared
by class text, :mod:`schemas.labels`: ``true`` matches an output ``"True"``); fairness per
declared sensitive attribute (selection rates from every prediction, TPR/FPR from
labelled ones); Half-Space Trees anomaly rates; QPS, latency, error, DLQ and backup
rates. Pure: no Kafka, no clock but the records' timestamps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from schemas.labels import label_class
from streams.monitoring.anomaly import HalfSpaceTreesMonitor, ProfileScaler, RunningScaler
from streams.monitoring.change import ConceptDriftMonitor, FeatureChangeMonitor
from streams.monitoring.drift import FeatureDriftMonitor
from streams.monitoring.fairness import FairnessMonitor
from streams.monitoring.ops import OpsMonitor
from streams.monitoring.performance import LabelJoiner, PerformanceMonitor, Scored
from streams.monitoring.results import Alert, MetricPoint

__all__ = ["ModelSpec", "ModelWatch"]

Emitted = MetricPoint | Alert


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


class ModelWatch:
    """The monitor's per-model state (see the module docstring)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        profile = spec.reference_profile
        numeric = [f for f in spec.features if f not in spec.sensitive]
        self.events = 0
        self.drift = _drift(profile, spec.drift_window)
        self.changes = (
            FeatureChangeMonitor.from_profile(profile, features=numeric) if profile else None
        )
        scaler = ProfileScaler.from_profile(profile, numeric) if profile else RunningScaler(numeric)
        self.anomaly = HalfSpaceTreesMonitor(scaler, seed=7)
        self.ops = OpsMonitor()
        task: Literal["classification", "regression"] = (
            "regression" if spec.task == "regression" else "classification"
        )
        positive = spec.positive_label if task == "classification" else None
        self.joiner: LabelJoiner[tuple[Scored, Scored | None, dict[str, str]], Any] = LabelJoiner(
            ttl_ms=spec.label_ttl_ms, max_entries=200_000
        )
        self.performance = PerformanceMonitor(task, positive_label=positive)
        self.concept = ConceptDriftMonitor(task)
        self.fair_selection = (
            FairnessMonitor(spec.sensitive, positive_label=positive)
            if spec.sensitive and positive
            else None
        )
        self.fair_labelled = (
            FairnessMonitor(spec.sensitive, positive_label=positive)
            if spec.sensitive and positive
            else None
        )
        self.champion_version: int | None = None

    # -- inputs ---------------------------------------------------------------------

    def on_prediction(self, record: Mapping[str, Any]) -> list[Emitted]:
        self.events += 1
        ts, features = int(record["ts"]), record["features"]
        champion, challenger = record["champion"], record.get("challenger")
        self.champion_version = champion["version"]
        out: list[Emitted] = []
        if self.drift is not None:
            for result in self.drift.update(features, ts):
                out.append(self._versioned(result.to_metric()))
                if result.drifted:
                    out.append(
                        dataclasses.replace(result.to_alert(), model_version=self.champion_version)
                    )
        if self.changes is not None:
            for found in self.changes.update(features):
                if found.level == "drift":
                    out.append(found.to_alert(kind="drift", model_version=self.champion_version,
                                              feature=found.key))  # fmt: skip
        out += self._reports(self.anomaly.update(features, ts))
        out += self._ops(record, ts)
        served = _scored(champion)
        shadow = (
            _scored(challenger) if challenger and challenger.get("output") is not None else None
        )
        sensitive = dict(record.get("sensitive") or {})
        if self.fair_selection is not None and served.output is not None:
            out += self._fairness(
                self.fair_selection.update(sensitive, served.output, ts=ts), "predictions"
            )
        joined = self.joiner.add_prediction(record["request_id"], (served, shadow, sensitive), ts)
        if joined is not None:  # the label came first
            out += self._joined(joined.prediction, joined.label, ts)
        return out

    def on_feedback(self, record: Mapping[str, Any]) -> list[Emitted]:
        ts = int(record["ts"])
        label = _truth(self.performance.task, record.get("label"))
        joined = self.joiner.add_label(record["request_id"], label, ts)
        return [] if joined is None else self._joined(joined.prediction, joined.label, ts)

    def on_dlq(self, reason: str, ts_ms: int) -> list[Emitted]:
        return self._reports(self.ops.update_dlq(ts_ms))

    def tick(self, now_ms: int) -> list[Emitted]:
        """Close time windows that ended (ops), expire labels nobody will join."""
        self.joiner.expire(now_ms)
        return self._reports(self.ops.advance(now_ms))

    def flush(self) -> list[Emitted]:
        """Every open window, closed now (end of a demo or a test)."""
        out: list[Emitted] = []
        if self.drift is not None:
            out += [self._versioned(r.to_metric()) for r in self.drift.flush()]
        for monitor in (self.performance, self.anomaly, self.ops):
            out += self._reports(monitor.flush())
        for fair, basis in (
            (self.fair_selection, "predictions"),
            (self.fair_labelled, "labelled"),
        ):
            if fair is not None:
                out += self._fairness(fair.flush(), basis)
        return out

    # -- helpers --------------------------------------------------------------------

    def _joined(self, prediction: tuple[Scored, Scored | None, dict[str, str]], label: Any,
                ts: int) -> list[Emitted]:  # fmt: skip
        if label is None:  # known to be unlabelable: joined, but nothing to learn from
            return []
        served, shadow, sensitive = prediction
        outcomes = {"champion": served} | ({"challenger": shadow} if shadow is not None else {})
        out = self._reports(self.performance.update(label, outcomes, ts))
        if served.output is None:  # the champion failed: no error to measure, no group rate
            return out
        for found in self.concept.update(label, served.output):
            if found.level == "drift":
                out.append(found.to_alert(kind="concept_drift", model_version=served.version))
        if self.fair_labelled is not None:
            out += self._fairness(
                self.fair_labelled.update(sensitive, served.output, label, ts), "labelled"
            )
        return out

    def _ops(self, record: Mapping[str, Any], ts: int) -> list[Emitted]:
        champion, challenger = record["champion"], record.get("challenger") or {}
        failed = [role for role, o in (("champion", champion), ("challenger", challenger))
                  if o and o.get("error")]  # fmt: skip
        roles = {"champion": champion.get("latency_ms"), "challenger": challenger.get("latency_ms")}
        return self._reports(self.ops.update(
            ts, latency_ms=record.get("latency_ms"), role_latency=roles,
            served_by=record.get("served_by", "champion"), failed=failed,
        ))  # fmt: skip

    def _reports(self, reports: Sequence[Any]) -> list[Emitted]:
        out: list[Emitted] = []
        for report in reports:
            out += [self._versioned(p) for p in report.to_metrics()]
            alerts = getattr(report, "alerts", None)
            if callable(alerts):
                out += alerts()
        return out

    def _fairness(self, reports: Sequence[Any], basis: str) -> list[Emitted]:
        out: list[Emitted] = []
        for report in reports:
            for point in report.to_metrics():
                labels = dict(point.labels) | {"attribute": report.attribute, "basis": basis}
                out.append(self._versioned(dataclasses.replace(point, labels=labels)))
            if basis == "labelled":
                out += report.alerts()
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


def _scored(outcome: Mapping[str, Any]) -> Scored:
    return Scored(outcome["version"], outcome.get("output"), outcome.get("probabilities"))

"""What the monitor emits: metric points, alerts, and the result of a significance test.

:class:`MetricPoint` and :class:`Alert` carry the fields of ``schemas/avro/metric.avsc``
and ``schemas/avro/alert.avsc`` except ``model`` and ``ts``: an estimator knows neither
which model it watches nor when its result will be written, so the emitter stamps both
with ``to_record(model=..., ts=...)``, which returns the Avro record as a plain dict.

Examples
--------
>>> point = MetricPoint(kind="drift", name="psi", value=0.31, count=500,
...                     window_start=0, window_end=60_000, feature="age")
>>> record = point.to_record(model="churn", ts=60_001)
>>> record["name"], record["feature"], record["model_version"], record["labels"]
('psi', 'age', None, {})
>>> alert = Alert(kind="drift", severity="warning", message="psi 0.31 > 0.2",
...               feature="age", value=0.31, threshold=0.2, at_event=500)
>>> alert.to_record(model="churn", ts=60_001)["severity"]
'warning'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

__all__ = ["KINDS", "Alert", "MetricPoint", "Severity", "Significance"]

Severity = Literal["info", "warning", "critical"]
KINDS: Final = ("drift", "concept_drift", "performance", "fairness", "ops", "anomaly", "monitor")


class Significance(NamedTuple):
    """A test statistic and its p-value (the probability of a value at least this extreme
    when nothing changed)."""

    statistic: float
    p_value: float


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One measurement over one window (``window_end`` exclusive, epoch milliseconds)."""

    kind: str
    name: str
    value: float
    count: int
    window_start: int
    window_end: int
    feature: str | None = None
    group: str | None = None
    role: str | None = None
    model_version: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_record(self, *, model: str, ts: int) -> dict[str, Any]:
        """The ``Metric`` Avro record for ``model``, emitted at ``ts`` (epoch ms)."""
        return {
            "ts": ts,
            "model": model,
            "model_version": self.model_version,
            "role": self.role,
            "kind": self.kind,
            "name": self.name,
            "feature": self.feature,
            "group": self.group,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "value": float(self.value),
            "count": self.count,
            "labels": dict(self.labels),
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """A finding that needs attention; ``at_event`` is how many events the estimator had
    seen when it fired."""

    kind: str
    severity: Severity
    message: str
    feature: str | None = None
    value: float | None = None
    threshold: float | None = None
    at_event: int | None = None
    model_version: int | None = None

    def to_record(self, *, model: str, ts: int) -> dict[str, Any]:
        """The ``Alert`` Avro record for ``model``, raised at ``ts`` (epoch ms)."""
        return {
            "ts": ts,
            "model": model,
            "model_version": self.model_version,
            "kind": self.kind,
            "severity": self.severity,
            "feature": self.feature,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "at_event": self.at_event,
        }

"""Per-model statistics of one window from its per-partition summaries (pure; the merger
process, ``services/merger.py``, keeps the summaries and sends what this returns).

:func:`merged_window` adds the latest summary of every partition
(:func:`streams.monitoring.summaries.merge`) and measures the sums with the monitor's own
estimators: drift per feature and method against the reference profile of the champion
version the summaries name (thresholds as the monitor's, :class:`FeatureDriftMonitor`),
accuracy / precision / recall / F1 per role and version from the confusion counts, MAE /
RMSE from the regression sums, per-group rates and Fairlearn's gaps per attribute and role,
and request count and mean latency. Its metric points carry ``labels["scope"] = "model"``
and ``labels["partitions"]`` (how many partitions the window has summaries from), apart
from the per-partition points of the monitor (``labels["partition"]``). Alerts are drift
past a threshold and fairness gaps past their limits, as the monitor raises them.

Examples
--------
>>> from streams.monitoring.summaries import Summary
>>> counts = Summary("classification", 0, 60_000, (30, 10, 20, 40, 70, 100),
...                  role="champion", model_version=1)
>>> points, alerts = merged_window([counts], lambda version: None)
>>> {p.name: round(p.value, 4) for p in points}
{'accuracy': 0.7, 'precision': 0.75, 'recall': 0.6, 'f1': 0.6667}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from streams.monitoring.drift.methods import is_drifted, measure
from streams.monitoring.drift.monitor import FeatureDriftMonitor
from streams.monitoring.drift.reference import NumericReference
from streams.monitoring.fairness.groups import GroupCounts
from streams.monitoring.fairness.report import FairnessReport
from streams.monitoring.performance.classification import Confusion, f1, precision, recall
from streams.monitoring.results import Alert, MetricPoint
from streams.monitoring.summaries import (
    CLASSIFICATION_COUNTS,
    Summary,
    binned_sample,
    category_sample,
    merge,
)
from streams.monitoring.windows import Window

__all__ = ["DriftFor", "merged_window"]

#: the drift monitor (references and thresholds) of a champion version, None if unknown
DriftFor = Callable[[int], FeatureDriftMonitor | None]
_SCOPE: Final = "model"


def merged_window(
    summaries: Iterable[Summary], drift_for: DriftFor, partitions: int = 1
) -> tuple[list[MetricPoint], list[tuple[str, Alert]]]:
    """The merged window's metric points, and its alerts each with the rule it breaks
    (``drift|<feature>|<method>|<version>``, ``fairness|<role>|<attribute>|<gap>|<version>``:
    a merger raises a rule once per window, see the module docstring)."""
    points: list[MetricPoint] = []
    alerts: list[tuple[str, Alert]] = []
    fairness: dict[tuple[str | None, int | None, str | None], dict[str, GroupCounts]] = {}
    labels = {"scope": _SCOPE, "partitions": str(partitions)}
    for s in merge(summaries):
        if s.kind in ("numeric", "categorical"):
            _drift(s, drift_for, labels, points, alerts)
        elif s.kind == "classification":
            points += _classification(s, labels)
        elif s.kind == "regression":
            points += _regression(s, labels)
        elif s.kind == "fairness":
            groups = fairness.setdefault((s.role, s.model_version, s.feature), {})
            counts = [int(c) for c in s.counts]
            groups[str(s.group)] = GroupCounts(*counts)
        elif s.kind == "latency" and s.stats.get("count"):
            count = int(s.stats["count"])
            points.append(_point(s, "ops", "requests", count, count, labels))
            points.append(_point(s, "ops", "latency_mean_ms", s.stats["sum"] / count, count,
                                 labels))  # fmt: skip
    span = _span(points)
    for (role, version, attribute), groups in fairness.items():
        window = Window(0, 0, sum(g.count for g in groups.values()), *span)
        report = FairnessReport.from_rates(
            str(attribute), window, {name: g.rates() for name, g in groups.items()}
        )
        for point in report.to_metrics():
            points.append(dataclasses.replace(
                point, role=role, model_version=version,
                labels=dict(point.labels) | labels | {"attribute": str(attribute)},
            ))  # fmt: skip
        for alert in report.alerts():
            where = "all partitions" if role == "champion" else f"{role}, all partitions"
            gap = alert.message.split(": ", 1)[-1].split(" ", 1)[0]
            alerts.append((f"fairness|{role}|{attribute}|{gap}|{version}", dataclasses.replace(
                alert, model_version=version, message=f"{alert.message} ({where})"
            )))  # fmt: skip
    return points, alerts


def _span(points: list[MetricPoint]) -> tuple[int, int]:
    if not points:
        return 0, 0
    return min(p.window_start for p in points), max(p.window_end for p in points)


def _point(
    s: Summary, kind: str, name: str, value: float, count: int, labels: Mapping[str, str]
) -> MetricPoint:
    return MetricPoint(
        kind=kind, name=name, value=value, count=count, window_start=s.window_start,
        window_end=s.window_end, feature=None, role=s.role, model_version=s.model_version,
        labels=dict(labels),
    )  # fmt: skip


def _drift(
    s: Summary, drift_for: DriftFor, labels: Mapping[str, str],
    points: list[MetricPoint], alerts: list[tuple[str, Alert]],
) -> None:  # fmt: skip
    monitor = drift_for(s.model_version) if s.model_version is not None else None
    if monitor is None or s.feature not in monitor.references:
        return
    ref = monitor.references[s.feature]
    sample = binned_sample(s, ref) if isinstance(ref, NumericReference) else category_sample(s)
    if sample.total <= 0:
        return
    for method, threshold in monitor.thresholds(s.feature).items():
        found = measure(method, ref, sample)
        drifted = is_drifted(method, found.value, found.p_value, threshold)
        extra = {"threshold": repr(threshold), "drifted": "true" if drifted else "false",
                 "missing": str(sample.missing)}  # fmt: skip
        if found.p_value is not None:
            extra["p_value"] = repr(found.p_value)
        points.append(MetricPoint(
            kind="drift", name=method, value=found.value, count=sample.total,
            window_start=s.window_start, window_end=s.window_end, feature=s.feature,
            model_version=s.model_version, labels=dict(labels) | extra,
        ))  # fmt: skip
        if drifted:
            value = found.p_value if found.p_value is not None else found.value
            rule = "p-value" if found.p_value is not None else method
            rule = f"drift|{s.feature}|{method}|{s.model_version}"
            alerts.append((rule, Alert(
                kind="drift", severity="warning", feature=s.feature, value=value,
                threshold=threshold, model_version=s.model_version,
                message=f"{s.feature}: {rule} {value:.4g} past {threshold:.4g} ({method}, "
                        f"{sample.total} values of all partitions, window "
                        f"[{s.window_start}, {s.window_end}))",
            )))  # fmt: skip


def _classification(s: Summary, labels: Mapping[str, str]) -> list[MetricPoint]:
    c = dict(zip(CLASSIFICATION_COUNTS, (int(v) for v in s.counts), strict=True))
    n = c["n"]
    if not n:
        return []
    found = {"accuracy": c["correct"] / n}
    if c["tp"] + c["fp"] + c["fn"] + c["tn"] == n:  # a positive class was declared
        confusion = Confusion(tp=c["tp"], fp=c["fp"], fn=c["fn"], tn=c["tn"])
        found |= {"precision": precision(confusion), "recall": recall(confusion),
                  "f1": f1(confusion)}  # fmt: skip
    return [_point(s, "performance", name, value, n, labels) for name, value in found.items()]


def _regression(s: Summary, labels: Mapping[str, str]) -> list[MetricPoint]:
    n = s.stats.get("n", 0.0)
    if not n:
        return []
    found = {
        "mae": s.stats["sum_abs_error"] / n,
        "rmse": math.sqrt(s.stats["sum_sq_error"] / n),
    }
    return [_point(s, "performance", k, v, int(n), labels) for k, v in found.items()]

"""What the performance monitor reports for one window, and its metric points.

Examples
--------
>>> from streams.monitoring.windows import Window
>>> report = PerformanceReport(
...     Window(0, 0, 100, 0, 60_000),
...     (RoleMetrics("champion", 3, 100, {"accuracy": 0.9}),),
...     (Comparison(3, 4, 100, "accuracy", 0.9, 0.94, "mcnemar", 1.0, 0.39),),
... )
>>> [(p.name, p.role, p.model_version, round(p.value, 2)) for p in report.to_metrics()]
[('accuracy', 'champion', 3, 0.9), ('accuracy_delta', 'challenger', 4, 0.04), \
('mcnemar_p_value', 'challenger', 4, 0.39)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streams.monitoring.results import MetricPoint
from streams.monitoring.windows import Window

__all__ = ["Comparison", "PerformanceReport", "RoleMetrics"]


@dataclass(frozen=True, slots=True)
class RoleMetrics:
    """Metrics of one model version in one role over the ``count`` requests it answered."""

    role: str
    version: int
    count: int
    metrics: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Challenger against champion on the ``count`` requests both answered: ``metric`` for
    each, and the significance of the difference (``test``: mcnemar or paired_ttest)."""

    champion_version: int
    challenger_version: int
    count: int
    metric: str
    champion: float
    challenger: float
    test: str
    statistic: float
    p_value: float

    @property
    def delta(self) -> float:
        """Challenger minus champion."""
        return self.challenger - self.champion


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """Everything measured over one window of joined requests."""

    window: Window
    roles: tuple[RoleMetrics, ...]
    comparisons: tuple[Comparison, ...]

    def to_metrics(self) -> list[MetricPoint]:
        """``performance`` metric points: one per role and metric, and per comparison the
        delta (labels carry both values and the test) and the test's p-value."""
        start, end = self.window.start_ms, self.window.end_ms
        points = [
            MetricPoint(
                "performance",
                name,
                value,
                role.count,
                start,
                end,
                role=role.role,
                model_version=role.version,
            )
            for role in self.roles
            for name, value in role.metrics.items()
        ]
        for c in self.comparisons:
            points += _comparison_points(c, start, end)
        return points


def _comparison_points(c: Comparison, start: int, end: int) -> list[MetricPoint]:
    labels = {
        "champion_version": str(c.champion_version),
        "champion": repr(c.champion),
        "challenger": repr(c.challenger),
        "test": c.test,
        "statistic": repr(c.statistic),
        "p_value": repr(c.p_value),
    }
    return [
        MetricPoint(
            "performance",
            name,
            value,
            c.count,
            start,
            end,
            role="challenger",
            model_version=c.challenger_version,
            labels=labels,
        )
        for name, value in ((f"{c.metric}_delta", c.delta), (f"{c.test}_p_value", c.p_value))
    ]

"""What the fairness monitor reports for one sensitive attribute over one window.

Examples
--------
>>> from streams.monitoring.windows import Window
>>> report = FairnessReport.from_rates(
...     "sex", Window(0, 0, 200, 0, 1000),
...     {"f": GroupRates(100, 0.3, None, None, 0), "m": GroupRates(100, 0.5, None, None, 0)})
>>> round(report.demographic_parity_difference, 6), report.demographic_parity_ratio
(0.2, 0.6)
>>> [a.message for a in report.alerts()]
['sex: demographic_parity_difference 0.2 > 0.1 over events [0, 200)', \
'sex: demographic_parity_ratio 0.6 < 0.8 over events [0, 200)']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from streams.monitoring.fairness.demographic_parity import (
    demographic_parity_difference,
    demographic_parity_ratio,
)
from streams.monitoring.fairness.equal_opportunity import equal_opportunity_difference
from streams.monitoring.fairness.equalized_odds import equalized_odds_difference
from streams.monitoring.fairness.groups import GroupRates
from streams.monitoring.results import Alert, MetricPoint
from streams.monitoring.windows import Window

__all__ = ["DEFAULT_LIMITS", "FairnessReport"]

DEFAULT_LIMITS: Final[Mapping[str, float]] = {
    "demographic_parity_difference": 0.1,
    "demographic_parity_ratio": 0.8,
    "equal_opportunity_difference": 0.1,
    "equalized_odds_difference": 0.1,
}


@dataclass(frozen=True, slots=True)
class FairnessReport:
    """Per-group rates of one attribute and the gaps between them (``None`` when
    undefined: too few groups, or no labels)."""

    attribute: str
    window: Window
    groups: Mapping[str, GroupRates]
    demographic_parity_difference: float
    demographic_parity_ratio: float | None
    equal_opportunity_difference: float | None
    equalized_odds_difference: float | None

    @classmethod
    def from_rates(
        cls, attribute: str, window: Window, groups: Mapping[str, GroupRates]
    ) -> FairnessReport:
        """Compute the gaps from the groups' rates."""
        selection = {name: g.selection_rate for name, g in groups.items()}
        tpr = {name: g.tpr for name, g in groups.items()}
        fpr = {name: g.fpr for name, g in groups.items()}
        return cls(
            attribute,
            window,
            dict(groups),
            demographic_parity_difference(selection),
            demographic_parity_ratio(selection),
            equal_opportunity_difference(tpr),
            equalized_odds_difference(tpr, fpr),
        )

    def gaps(self) -> dict[str, float]:
        """The defined gaps, by metric name."""
        found = {
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equal_opportunity_difference": self.equal_opportunity_difference,
            "equalized_odds_difference": self.equalized_odds_difference,
        }
        return {name: value for name, value in found.items() if value is not None}

    def to_metrics(self) -> list[MetricPoint]:
        """``fairness`` points: per group (``group`` = ``attribute=value``) count,
        selection rate, TPR and FPR when defined; per attribute every defined gap."""
        start, end = self.window.start_ms, self.window.end_ms
        points = []
        for name, rates in self.groups.items():
            group = f"{self.attribute}={name}"
            values = {
                "count": float(rates.count),
                "selection_rate": rates.selection_rate,
                "tpr": rates.tpr,
                "fpr": rates.fpr,
            }
            points += [
                MetricPoint("fairness", metric, value, rates.count, start, end, group=group)
                for metric, value in values.items()
                if value is not None
            ]
        total = sum(rates.count for rates in self.groups.values())
        points += [
            MetricPoint(
                "fairness", name, value, total, start, end, labels={"attribute": self.attribute}
            )
            for name, value in self.gaps().items()
        ]
        return points

    def alerts(self, limits: Mapping[str, float] = DEFAULT_LIMITS) -> list[Alert]:
        """A ``warning`` per gap past its limit (ratios: below it; differences: above)."""
        alerts = []
        span = f"events [{self.window.first_event}, {self.window.end_event})"
        for name, value in self.gaps().items():
            limit = limits.get(name)
            if limit is None:
                continue
            ratio = name.endswith("_ratio")
            if (value < limit) if ratio else (value > limit):
                finding = f"{name} {value:.4g} {'<' if ratio else '>'} {limit:.4g}"
                alerts.append(
                    Alert(
                        kind="fairness",
                        severity="warning",
                        value=value,
                        threshold=limit,
                        message=f"{self.attribute}: {finding} over {span}",
                        at_event=self.window.end_event,
                    )
                )
        return alerts

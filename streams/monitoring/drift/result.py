"""One drift measurement of one feature over one window, and how it becomes output.

Examples
--------
>>> from streams.monitoring.windows import Window
>>> result = DriftResult("age", "psi", 0.31, None, 0.2, True, 500, 0,
...                      Window(3, 1500, 2000, 60_000, 80_000))
>>> point = result.to_metric()
>>> point.name, point.value, point.window_start, point.labels["drifted"]
('psi', 0.31, 60000, 'true')
>>> drift_alerts([result])[0].message
'age: psi 0.31 > 0.2 over events [1500, 2000)'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streams.monitoring.results import Alert, MetricPoint
from streams.monitoring.windows import Window

__all__ = ["DriftResult", "drift_alerts"]


@dataclass(frozen=True, slots=True)
class DriftResult:
    """``method`` measured on ``feature`` over ``window`` (``count`` values, ``missing``
    missing); ``threshold`` is in the value's units (p-value units for tests)."""

    feature: str
    method: str
    value: float
    p_value: float | None
    threshold: float
    drifted: bool
    count: int
    missing: int
    window: Window

    def to_metric(self) -> MetricPoint:
        """The ``drift`` metric point; p-value, threshold and verdict go in the labels."""
        labels = {
            "threshold": repr(self.threshold),
            "drifted": "true" if self.drifted else "false",
            "missing": str(self.missing),
            "window_index": str(self.window.index),
        }
        if self.p_value is not None:
            labels["p_value"] = repr(self.p_value)
        return MetricPoint(
            kind="drift",
            name=self.method,
            value=self.value,
            count=self.count,
            window_start=self.window.start_ms,
            window_end=self.window.end_ms,
            feature=self.feature,
            labels=labels,
        )

    def to_alert(self) -> Alert:
        """A ``warning`` alert, fired at the window's last event."""
        if self.p_value is not None:
            test = f"({self.method} {self.value:.4g})"
            finding = f"p-value {self.p_value:.3g} < {self.threshold:.3g} {test}"
            value = self.p_value
        else:
            finding = f"{self.method} {self.value:.4g} > {self.threshold:.4g}"
            value = self.value
        span = f"events [{self.window.first_event}, {self.window.end_event})"
        return Alert(
            kind="drift",
            severity="warning",
            message=f"{self.feature}: {finding} over {span}",
            feature=self.feature,
            value=value,
            threshold=self.threshold,
            at_event=self.window.end_event,
        )


def drift_alerts(results: Iterable[DriftResult]) -> list[Alert]:
    """One alert per drifted result."""
    return [result.to_alert() for result in results if result.drifted]

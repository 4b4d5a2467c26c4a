"""What a change detector reports, and the interface every detector here follows.

Examples
--------
>>> found = Detection(detector="adwin", level="drift", at_event=812, estimate=0.31, key="error")
>>> alert = found.to_alert()
>>> alert.kind, alert.severity, alert.at_event
('concept_drift', 'critical', 812)
>>> alert.message
'error: adwin detected drift at event 812, estimate 0.31'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from streams.monitoring.results import Alert

__all__ = ["ChangeDetector", "Detection", "Level"]

Level = Literal["warning", "drift"]


@dataclass(frozen=True, slots=True)
class Detection:
    """A detector fired: ``at_event`` is how many values it had seen (1-based index of the
    value that triggered it), ``estimate`` the mean (or error rate) it tracks right after
    the value. The change began before ``at_event``: the difference is the detection delay
    (see the measured delays in :mod:`.concept`)."""

    detector: str
    level: Level
    at_event: int
    estimate: float
    key: str | None = None

    def to_alert(
        self,
        *,
        kind: str = "concept_drift",
        model_version: int | None = None,
        feature: str | None = None,
    ) -> Alert:
        """An alert: ``critical`` for drift, ``warning`` for a warning level."""
        subject = f"{self.key}: " if self.key else ""
        message = (
            f"{subject}{self.detector} detected {self.level} at event {self.at_event}, "
            f"estimate {self.estimate:.4g}"
        )
        return Alert(
            kind=kind,
            severity="critical" if self.level == "drift" else "warning",
            message=message,
            feature=feature,
            value=self.estimate,
            at_event=self.at_event,
            model_version=model_version,
        )


class ChangeDetector(ABC):
    """A streaming detector of a change in the mean of one stream of numbers."""

    name: str = "detector"

    def __init__(self) -> None:
        self.seen = 0
        self.detections = 0

    @abstractmethod
    def update(self, x: float) -> Detection | None:
        """Add one value; returns a detection when this value triggered one."""

    def update_many(self, values: Sequence[float]) -> list[tuple[int, Detection]]:
        """:meth:`update` on each value in turn; returns (index in ``values``, detection)
        for each detection."""
        update = self.update
        return [(i, found) for i, x in enumerate(values) if (found := update(x)) is not None]

    def _found(self, level: Level, estimate: float) -> Detection:
        if level == "drift":
            self.detections += 1
        return Detection(self.name, level, self.seen, float(estimate))

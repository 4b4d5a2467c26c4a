"""Fairness per declared sensitive attribute, per group, window by window.

Each event is a prediction with the values of the model's sensitive attributes (the
prediction log's ``sensitive`` map) and, once joined, its label. Per attribute and group
the monitor counts predictions, positive predictions and -- for labelled events -- true
and false positives; at each window close (default 1,000 events) it reports per group the
count, selection rate, TPR and FPR, and the demographic parity difference and ratio, equal
opportunity difference and equalized odds difference (Fairlearn's definitions, see the
modules of this package).

Feed it joined (prediction, label) pairs for TPR/FPR-based gaps, or predictions without
labels (``y_true=None``) for selection rates alone. An event without a value for an
attribute counts in the group :data:`MISSING`.

Examples
--------
>>> monitor = FairnessMonitor(["sex"], positive_label=1, window=WindowSpec(events=4))
>>> events = [("f", 1, 1), ("f", 0, 1), ("m", 1, 0), ("m", 1, 1)]
>>> reports = [r for sex, pred, true in events
...            for r in monitor.update({"sex": sex}, pred, true)]
>>> r = reports[0]
>>> r.groups["f"].selection_rate, r.groups["m"].selection_rate
(0.5, 1.0)
>>> r.demographic_parity_difference, r.equal_opportunity_difference
(0.5, 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from streams.monitoring.errors import MonitorConfigError
from streams.monitoring.fairness.groups import GroupCounts
from streams.monitoring.fairness.report import FairnessReport
from streams.monitoring.labels import label_key
from streams.monitoring.windows import Window, WindowClock, WindowSpec

__all__ = ["DEFAULT_WINDOW", "MISSING", "FairnessMonitor"]

DEFAULT_WINDOW: Final = WindowSpec(events=1000)
MISSING: Final = "(missing)"
_NONE: Final[Sequence[FairnessReport]] = ()


class FairnessMonitor:
    """Windowed group fairness of one model's predictions (see the module docstring)."""

    def __init__(
        self,
        attributes: Sequence[str],
        *,
        positive_label: object,
        window: WindowSpec = DEFAULT_WINDOW,
    ) -> None:
        if not attributes:
            raise MonitorConfigError("expected at least one sensitive attribute, got none")
        self.attributes = tuple(attributes)
        self.positive = label_key(positive_label)
        self._clock = WindowClock(window)
        self._groups: dict[str, dict[str, GroupCounts]] = {name: {} for name in self.attributes}

    def update(
        self, sensitive: Mapping[str, str], y_pred: object, y_true: object = None, ts: int = 0
    ) -> Sequence[FairnessReport]:
        """Add one prediction (and its label when known); returns the reports of the
        window it closed, one per attribute."""
        closed = self._clock.before(ts)
        reports = self._close(closed) if closed is not None else _NONE
        predicted = label_key(y_pred) == self.positive
        actual = None if y_true is None else label_key(y_true) == self.positive
        for attribute, groups in self._groups.items():
            name = sensitive.get(attribute, MISSING)
            counts = groups.get(name)
            if counts is None:
                counts = groups[name] = GroupCounts()
            counts.add(predicted, actual)
        closed = self._clock.after(ts)
        if closed is not None:
            reports = [*reports, *self._close(closed)]
        return reports

    def flush(self) -> Sequence[FairnessReport]:
        """Close the open window now."""
        closed = self._clock.flush()
        return self._close(closed) if closed is not None else _NONE

    def _close(self, window: Window) -> list[FairnessReport]:
        reports = [
            FairnessReport.from_rates(
                attribute, window, {name: c.rates() for name, c in groups.items()}
            )
            for attribute, groups in self._groups.items()
            if groups
        ]
        self._groups = {name: {} for name in self.attributes}
        return reports

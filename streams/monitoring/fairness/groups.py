"""Per-group counts of one sensitive attribute, and the rates Fairlearn defines on them.

For a group: ``selection_rate = selected / count`` (the positive prediction rate),
``tpr = true_positives / positives`` and ``fpr = false_positives / negatives`` over the
labelled events. A rate with a zero denominator is ``None`` (undefined), not 0.

Examples
--------
>>> g = GroupCounts()
>>> for predicted, actual in ((True, True), (True, False), (False, True), (False, None)):
...     g.add(predicted, actual)
>>> g.rates()
GroupRates(count=4, selection_rate=0.5, tpr=0.5, fpr=1.0, labelled=3)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GroupCounts", "GroupRates"]


@dataclass(frozen=True, slots=True)
class GroupRates:
    """A group's rates over one window (``tpr`` / ``fpr`` ``None`` when undefined)."""

    count: int
    selection_rate: float
    tpr: float | None
    fpr: float | None
    labelled: int


@dataclass(slots=True)
class GroupCounts:
    """Running counts of one group; :meth:`add` one event, :meth:`rates` at window close."""

    count: int = 0
    selected: int = 0
    positives: int = 0
    true_positives: int = 0
    negatives: int = 0
    false_positives: int = 0

    def add(self, predicted_positive: bool, actual_positive: bool | None = None) -> None:
        """Count one prediction, and its label when known."""
        self.count += 1
        self.selected += predicted_positive
        if actual_positive is not None:
            self.add_label(predicted_positive, actual_positive)

    def add_label(self, predicted_positive: bool, actual_positive: bool) -> None:
        """Count the label of a prediction counted before (by :meth:`add` without one)."""
        if actual_positive:
            self.positives += 1
            self.true_positives += predicted_positive
        else:
            self.negatives += 1
            self.false_positives += predicted_positive

    def rates(self) -> GroupRates:
        """The group's rates."""
        return GroupRates(
            count=self.count,
            selection_rate=self.selected / self.count if self.count else 0.0,
            tpr=self.true_positives / self.positives if self.positives else None,
            fpr=self.false_positives / self.negatives if self.negatives else None,
            labelled=self.positives + self.negatives,
        )

"""Model performance per version and role on joined (label, prediction) pairs, per window.

Feed it what :class:`~streams.monitoring.performance.joiner.LabelJoiner` joins: the label
and, per role, what that model version said (:class:`Scored`). Each window (default 1,000
joined requests) yields a :class:`PerformanceReport`:

- per (role, version), over the requests that role answered -- classification: accuracy,
  log loss (when probabilities came with every prediction), and with a positive label
  precision, recall, F1 and exact ROC AUC (from the window's stored scores);
  regression: MAE, RMSE, R^2;
- challenger against champion over the requests **both** answered (with a shadow
  challenger on every request, the same requests as above): accuracy and McNemar's test
  for classifiers, MAE and a paired t-test on absolute errors for regressors.

Classification labels, outputs and the keys of ``probabilities`` are compared by their
class text (:func:`~streams.monitoring.labels.label_key`: ``True`` and ``"true"`` are
``"True"``, ``1.0`` is ``"1"``), as SQL compares them. A null label or output is skipped.

Examples
--------
>>> monitor = PerformanceMonitor(positive_label="yes", window=WindowSpec(events=4))
>>> rows = [("yes", "yes", "no"), ("no", "no", "no"), ("yes", "no", "yes"), ("no", "no", "no")]
>>> reports = []
>>> for label, champ, chall in rows:
...     reports += monitor.update(label, {"champion": Scored(1, champ),
...                                       "challenger": Scored(2, chall)})
>>> [(r.role, r.version, r.metrics["accuracy"]) for r in reports[0].roles]
[('champion', 1, 0.75), ('challenger', 2, 0.75)]
>>> c = reports[0].comparisons[0]
>>> c.metric, c.delta, c.test, c.p_value
('accuracy', 0.0, 'mcnemar', 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from streams.monitoring.errors import MonitorConfigError
from streams.monitoring.labels import label_key
from streams.monitoring.performance.classification import (
    accuracy,
    confusion,
    f1,
    log_loss,
    precision,
    recall,
)
from streams.monitoring.performance.mcnemar import mcnemar, mcnemar_counts
from streams.monitoring.performance.paired_ttest import paired_ttest
from streams.monitoring.performance.regression import mae, r2, rmse
from streams.monitoring.performance.report import Comparison, PerformanceReport, RoleMetrics
from streams.monitoring.performance.roc_auc import roc_auc
from streams.monitoring.windows import Window, WindowClock, WindowSpec

__all__ = ["DEFAULT_WINDOW", "PerformanceMonitor", "Scored"]

DEFAULT_WINDOW: Final = WindowSpec(events=1000)
_NONE: Final[Sequence[PerformanceReport]] = ()
Task = Literal["classification", "regression"]


@dataclass(frozen=True, slots=True)
class Scored:
    """What one model version answered: a label or number, and class probabilities."""

    version: int
    output: str | float | bool | None
    probabilities: Mapping[str, float] | None = None


@dataclass(slots=True)
class _Column:
    y_true: list[object] = field(default_factory=list)
    y_pred: list[object] = field(default_factory=list)
    p_true: list[float] = field(default_factory=list)
    p_positive: list[float] = field(default_factory=list)
    scored: bool = True


class PerformanceMonitor:
    """Windowed performance of every (role, version), and challenger vs champion."""

    def __init__(
        self,
        task: Task = "classification",
        *,
        positive_label: object = None,
        window: WindowSpec = DEFAULT_WINDOW,
        champion: str = "champion",
        challenger: str = "challenger",
    ) -> None:
        if task not in ("classification", "regression"):
            raise MonitorConfigError(f"expected task classification|regression, got {task!r}")
        self.task = task
        self.positive = None if positive_label is None else label_key(positive_label)
        self._roles = (champion, challenger)
        self._clock = WindowClock(window)
        self._columns: dict[tuple[str, int], _Column] = {}
        self._pairs: dict[tuple[int, int], tuple[_Column, _Column]] = {}

    def update(
        self, label: object, outcomes: Mapping[str, Scored], ts: int = 0
    ) -> Sequence[PerformanceReport]:
        """Add one joined request; returns the report of the window it closed, if any."""
        if label is None:
            return _NONE
        closed = self._clock.before(ts)
        reports = [self._report(closed)] if closed is not None else _NONE
        truth = label_key(label) if self.task == "classification" else float(label)  # type: ignore[arg-type]  # regression labels are numbers
        for role, scored in outcomes.items():
            if scored.output is not None:
                self._add(self._column(role, scored.version), truth, scored)
        self._add_pair(truth, outcomes)
        closed = self._clock.after(ts)
        if closed is not None:
            reports = [*reports, self._report(closed)]
        return reports

    def flush(self) -> Sequence[PerformanceReport]:
        """Close the open window now."""
        closed = self._clock.flush()
        return [self._report(closed)] if closed is not None else _NONE

    def _column(self, role: str, version: int) -> _Column:
        column = self._columns.get((role, version))
        if column is None:
            column = self._columns[(role, version)] = _Column()
        return column

    def _add(self, column: _Column, truth: object, scored: Scored) -> None:
        if self.task == "regression":
            column.y_true.append(truth)
            column.y_pred.append(float(scored.output))  # type: ignore[arg-type]  # regression outputs are numbers
            return
        column.y_true.append(truth)
        column.y_pred.append(label_key(scored.output))
        probabilities = scored.probabilities
        if probabilities is None:
            column.scored = False
            return
        by_class = {label_key(name): p for name, p in probabilities.items()}
        column.p_true.append(by_class.get(str(truth), 0.0))
        if self.positive is not None:
            column.p_positive.append(by_class.get(self.positive, 0.0))

    def _add_pair(self, truth: object, outcomes: Mapping[str, Scored]) -> None:
        first, second = (outcomes.get(role) for role in self._roles)
        if first is None or second is None or first.output is None or second.output is None:
            return
        key = (first.version, second.version)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = (_Column(), _Column())
        self._add(pair[0], truth, first)
        self._add(pair[1], truth, second)

    def _report(self, window: Window) -> PerformanceReport:
        roles = tuple(
            RoleMetrics(role, version, len(column.y_true), self._metrics(column))
            for (role, version), column in self._columns.items()
        )
        comparisons = tuple(
            self._compare(versions, first, second)
            for versions, (first, second) in self._pairs.items()
        )
        self._columns, self._pairs = {}, {}
        return PerformanceReport(window, roles, comparisons)

    def _metrics(self, column: _Column) -> dict[str, float]:
        y_true, y_pred = column.y_true, column.y_pred
        if self.task == "regression":
            truth, pred = _floats(y_true), _floats(y_pred)
            return {"mae": mae(truth, pred), "rmse": rmse(truth, pred), "r2": r2(truth, pred)}
        metrics = {"accuracy": accuracy(y_true, y_pred)}
        if column.scored:
            metrics["log_loss"] = log_loss(column.p_true)
        if self.positive is not None:
            c = confusion(y_true, y_pred, positive=self.positive)
            metrics |= {"precision": precision(c), "recall": recall(c), "f1": f1(c)}
            auc = (
                roc_auc([t == self.positive for t in y_true], column.p_positive)
                if (column.scored)
                else None
            )
            if auc is not None:
                metrics["roc_auc"] = auc
        return metrics

    def _compare(self, versions: tuple[int, int], first: _Column, second: _Column) -> Comparison:
        n = len(first.y_true)
        if self.task == "regression":
            truth = _floats(first.y_true)
            a = [abs(t - p) for t, p in zip(truth, _floats(first.y_pred), strict=True)]
            b = [abs(t - p) for t, p in zip(truth, _floats(second.y_pred), strict=True)]
            test = paired_ttest(a, b)
            return Comparison(*versions, n, "mae", sum(a) / n, sum(b) / n, "paired_ttest", *test)
        right_a = [t == p for t, p in zip(first.y_true, first.y_pred, strict=True)]
        right_b = [t == p for t, p in zip(second.y_true, second.y_pred, strict=True)]
        test = mcnemar(*mcnemar_counts(right_a, right_b))
        return Comparison(
            *versions, n, "accuracy", sum(right_a) / n, sum(right_b) / n, "mcnemar", *test
        )


def _floats(values: list[object]) -> list[float]:
    return [float(v) for v in values]  # type: ignore[arg-type]  # regression columns hold floats

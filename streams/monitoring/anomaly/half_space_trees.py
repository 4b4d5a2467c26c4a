"""Anomaly scores of a model's inputs with River's Half-Space Trees, sampled, per window.

:class:`river.anomaly.HalfSpaceTrees` scores how isolated a point is among recent inputs
(0 normal, 1 anomalous) and keeps learning, so it follows slow change -- and a new regime
stops looking anomalous once the trees have learned it (a few ``window_size`` events). Scoring and
learning one event costs ~22-55 us, so only every ``sample_every``-th event is scored
(default 10: a few us per event on average). The trees need ``window_size`` learned
events before their scores mean anything; until then nothing is counted.

Scores depend on the number of features and the trees' shape, so by default the
threshold calibrates itself: the 99th percentile of the first ``calibration`` (1,000)
scored events, which makes about 1 % of stable inputs anomalous by construction (on 10
normal features a fixed 0.95 gives 0.7 %, while the median score is 0.84). Calibration
scores only set the threshold; windows report from the first score after it. Pass
``threshold`` to fix it. Each window (default 10,000 events, so ~1,000 scored) reports
the anomaly rate, mean and max score; :meth:`AnomalyReport.alerts` flags a rate above
``rate_limit`` (default 0.05, five times the calibrated rate).

Examples
--------
>>> import random
>>> from streams.monitoring.anomaly.scaling import ProfileScaler
>>> rng = random.Random(0)
>>> monitor = HalfSpaceTreesMonitor(ProfileScaler({"x": (-4.0, 4.0), "y": (-4.0, 4.0)}),
...                                 sample_every=1, calibration=300, window=WindowSpec(events=500),
...                                 seed=1)
>>> reports = []
>>> for i in range(2000):
...     shift = 0.0 if i < 1500 else 3.0
...     reports += monitor.update({"x": rng.gauss(shift, 1), "y": rng.gauss(shift, 1)})
>>> [(r.window.index, r.scored, r.anomaly_rate > 0.05) for r in reports]
[(0, 0, False), (1, 450, False), (2, 500, False), (3, 500, True)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
from river import anomaly

from streams.monitoring.errors import MonitorConfigError
from streams.monitoring.results import Alert, MetricPoint
from streams.monitoring.windows import Window, WindowClock, WindowSpec

__all__ = ["DEFAULT_WINDOW", "AnomalyReport", "HalfSpaceTreesMonitor", "Scaler"]

DEFAULT_WINDOW: Final = WindowSpec(events=10_000)
_NONE: Final[Sequence[AnomalyReport]] = ()


class Scaler(Protocol):
    """Maps a row to features in about [0, 1]."""

    def scale(self, row: Mapping[str, object]) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class AnomalyReport:
    """Scored events of one window: how many, how many above ``threshold``, score stats."""

    window: Window
    scored: int
    anomalies: int
    mean_score: float
    max_score: float
    threshold: float

    @property
    def anomaly_rate(self) -> float:
        """Fraction of scored events above the threshold."""
        return self.anomalies / self.scored if self.scored else 0.0

    def to_metrics(self) -> list[MetricPoint]:
        """``anomaly`` points: anomaly_rate, score_mean, score_max."""
        labels = {"threshold": repr(self.threshold), "sampled_events": str(self.scored)}
        values = (
            ("anomaly_rate", self.anomaly_rate),
            ("score_mean", self.mean_score),
            ("score_max", self.max_score),
        )
        return [
            MetricPoint(
                "anomaly",
                name,
                value,
                self.scored,
                self.window.start_ms,
                self.window.end_ms,
                labels=labels,
            )
            for name, value in values
        ]

    def alerts(self, rate_limit: float = 0.05) -> list[Alert]:
        """A ``warning`` when the anomaly rate is above ``rate_limit``."""
        if self.anomaly_rate <= rate_limit:
            return []
        return [
            Alert(
                kind="anomaly",
                severity="warning",
                value=self.anomaly_rate,
                threshold=rate_limit,
                message=(
                    f"anomaly rate {self.anomaly_rate:.3g} > {rate_limit:.3g} over events "
                    f"[{self.window.first_event}, {self.window.end_event})"
                ),
                at_event=self.window.end_event,
            )
        ]


class HalfSpaceTreesMonitor:
    """Sampled Half-Space Trees scores of one model's inputs (see the module docstring)."""

    def __init__(
        self,
        scaler: Scaler,
        *,
        sample_every: int = 10,
        threshold: float | None = None,
        calibration: int = 1000,
        window: WindowSpec = DEFAULT_WINDOW,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        seed: int | None = None,
    ) -> None:
        if sample_every < 1 or calibration < 1:
            raise MonitorConfigError(
                f"expected sample_every >= 1 and calibration >= 1, got {sample_every} and "
                f"{calibration}"
            )
        self._scaler = scaler
        self._every = sample_every
        self._warmup = window_size
        self._calibration = calibration
        self._pending: list[float] = []
        self.threshold = threshold
        self._trees = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )
        self._clock = WindowClock(window)
        self._scores: list[float] = []
        self._learned = 0
        self.last_score: float | None = None

    def update(self, row: Mapping[str, object], ts: int = 0) -> Sequence[AnomalyReport]:
        """Add one event (scored if it is a sampled one); returns closed windows' reports."""
        closed = self._clock.before(ts)
        reports = [self._close(closed)] if closed is not None else _NONE
        if self._clock.seen % self._every == 0:
            self._score(self._scaler.scale(row))
        closed = self._clock.after(ts)
        if closed is not None:
            reports = [*reports, self._close(closed)]
        return reports

    def flush(self) -> Sequence[AnomalyReport]:
        """Close the open window now."""
        closed = self._clock.flush()
        return [self._close(closed)] if closed is not None else _NONE

    def _score(self, x: dict[str, float]) -> None:
        if self._learned >= self._warmup:
            score = float(self._trees.score_one(x))  # type: ignore[no-untyped-call]  # River is untyped
            self.last_score = score
            if self.threshold is None:
                self._calibrate(score)
            else:
                self._scores.append(score)
        self._trees.learn_one(x)  # type: ignore[no-untyped-call]  # River is untyped
        self._learned += 1

    def _calibrate(self, score: float) -> None:
        self._pending.append(score)
        if len(self._pending) >= self._calibration:
            self.threshold = float(np.quantile(self._pending, 0.99))
            self._pending = []

    def _close(self, window: Window) -> AnomalyReport:
        scores, self._scores = self._scores, []
        threshold = self.threshold if self.threshold is not None else 1.0
        if not scores:
            return AnomalyReport(window, 0, 0, 0.0, 0.0, threshold)
        anomalies = sum(1 for s in scores if s > threshold)
        return AnomalyReport(
            window, len(scores), anomalies, sum(scores) / len(scores), max(scores), threshold
        )

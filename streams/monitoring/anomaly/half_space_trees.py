"""Anomaly scores of a model's inputs with River's Half-Space Trees, sampled, per window.

:class:`river.anomaly.HalfSpaceTrees` scores how isolated a point is among recent inputs
(0 normal, 1 anomalous) and keeps learning, so it follows slow change -- and a new regime
stops looking anomalous once the trees have learned it (a few ``window_size`` events). River
draws the trees, kept as NumPy arrays that score and learn to river's very floats: ~20 us an
event one at a time, ~4 us in batches (:meth:`HalfSpaceTreesMonitor.update_many`), so only
every ``sample_every``-th event is scored (default 10: ~2.5 us, ~0.7 us in batches of 500,
scaling included). The trees need ``window_size`` learned events before their scores mean
anything; until then nothing is counted.

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

import operator
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
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
        start, end = self.window.start_ms, self.window.end_ms
        return [
            MetricPoint("anomaly", name, value, self.scored, start, end, labels=labels)
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
        if min(sample_every, calibration, n_trees, window_size) < 1 or height < 0:
            raise MonitorConfigError(
                "expected sample_every, calibration, n_trees, window_size >= 1 and height >= 0, "
                f"got {sample_every}, {calibration}, {n_trees}, {window_size} and {height}"
            )
        self._scaler, self._every, self._warmup = scaler, sample_every, window_size
        self._calibration = calibration
        self._pending: list[float] = []
        self.threshold = threshold
        # river draws the trees (on the first point's features) as it learns the first point
        self._river: anomaly.HalfSpaceTrees | None = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )
        self._forest: _Forest | None = None
        self._clock = WindowClock(window)
        self._by_count = window.events is not None
        self._scores: list[float] = []
        self._learned = 0
        self.last_score: float | None = None

    def update(self, row: Mapping[str, object], ts: int = 0) -> Sequence[AnomalyReport]:
        """Add one event (scored if it is a sampled one); returns closed windows' reports."""
        closed = self._clock.before(ts)
        reports = [self._close(closed)] if closed is not None else _NONE
        if self._clock.seen % self._every == 0:
            self._take(self._learn([self._scaler.scale(row)], single=True))
        closed = self._clock.after(ts)
        if closed is not None:
            reports = [*reports, self._close(closed)]
        return reports

    def update_many(
        self, rows: Sequence[Mapping[str, object]], ts: Sequence[int]
    ) -> list[AnomalyReport]:
        """:meth:`update` for each of ``rows`` at ``ts`` in turn, at once: the same reports
        and the same state, the sampled events scored and learned as arrays."""
        if len(ts) != (n := len(rows)):
            raise MonitorConfigError(f"expected one ts per row, got {len(ts)} for {n} rows")
        clock, every = self._clock, self._every
        first = -clock.seen % every  # the first sampled event of the batch
        sampled = range(first, n, every)
        scores = self._learn([self._scaler.scale(rows[i]) for i in sampled])
        skip = len(sampled) - len(scores)  # the first sampled events were only learned
        taken = 0
        reports: list[AnomalyReport] = []

        def take_before(event: int) -> None:  # the scores of the events before event
            nonlocal taken
            upto = max(0, len(range(first, event, every)) - skip)
            self._take(scores[taken:upto])
            taken = upto

        if self._by_count:  # up to the end of the open window at a time
            end = 0
            while end < n:
                start, end = end, min(n, end + clock.room)
                take_before(end)
                if (closed := clock.after_many(ts[start:end])) is not None:
                    reports.append(self._close(closed))
        else:
            for i, t in enumerate(ts):
                if (closed := clock.before(t)) is not None:
                    take_before(i)
                    reports.append(self._close(closed))
                clock.after(t)  # closes count windows only
        take_before(n)
        return reports

    def flush(self) -> Sequence[AnomalyReport]:
        """Close the open window now."""
        closed = self._clock.flush()
        return [self._close(closed)] if closed is not None else _NONE

    def __setstate__(self, state: dict[str, object]) -> None:
        if "_trees" in state:  # pickled when the state was river's trees: make them arrays
            river: Any = state.pop("_trees")
            forest = _Forest.from_river(river) if river.trees else None
            by_count = getattr(state["_clock"], "_events", None) is not None
            state |= {"_river": None if forest else river, "_forest": forest, "_by_count": by_count}
        self.__dict__.update(state)

    def _learn(self, xs: list[dict[str, float]], single: bool = False) -> list[float]:
        """Score then learn each of ``xs`` in turn: the scores of those scored (the last)."""
        if not xs:
            return []
        learned, self._learned = self._learned, self._learned + len(xs)
        if self._forest is None:
            assert self._river is not None
            self._river.learn_one(xs[0])  # type: ignore[no-untyped-call]  # River is untyped
            self._forest, self._river = _Forest.from_river(self._river), None
            learned, xs = learned + 1, xs[1:]  # the first point is never scored
        scores = self._forest.learn(xs, learned, single)
        self.last_score = scores[-1] if scores else self.last_score
        return scores

    def _take(self, scores: list[float]) -> None:
        """Count ``scores`` in the open window, or in the calibration first."""
        if self.threshold is None and scores:
            need = self._calibration - len(self._pending)
            self._pending += scores[:need]
            if len(self._pending) < self._calibration:
                return
            self.threshold, self._pending = float(np.quantile(self._pending, 0.99)), []
            scores = scores[need:]
        self._scores += scores

    def _close(self, window: Window) -> AnomalyReport:
        scores, self._scores = self._scores, []
        threshold = self.threshold if self.threshold is not None else 1.0
        if not scores:
            return AnomalyReport(window, 0, 0, 0.0, 0.0, threshold)
        anomalies, mean = sum(1 for s in scores if s > threshold), sum(scores) / len(scores)
        return AnomalyReport(window, len(scores), anomalies, mean, max(scores), threshold)


_MISSING: Final = object()
_FEW: Final = 4  # fewer points are walked in Python


class _Forest:
    """River's Half-Space Trees as arrays, scored and learned as river does, to the bit.

    Node ``i`` of tree ``t`` (children ``2i + 1``, left, and ``2i + 2``) is at ``t * nodes +
    i`` of flat arrays: ``feature``, ``threshold`` of the splits, river's ``r_mass``
    (reference window) and ``l_mass`` (latest). Batches with a point lacking a feature (its
    path depends on the points before) or values other than numbers, and small ones, are
    walked point by point in Python like river, on lists after a single point (``_lists``:
    either they or the arrays hold the masses, never both).
    """

    def __init__(self, features: tuple[str, ...], height: int, size: int, arrays: Any) -> None:
        # arrays: feature, threshold [tree, split (node < 2**height - 1)], masses [tree, node]
        self.features, self.height, self.window_size = features, height, size
        feature, threshold, r_mass, l_mass = arrays
        self.n_trees, self.nodes = np.shape(r_mass)
        leaves = ((0, 0), (0, 2**height))
        self.feature = np.pad(np.asarray(feature, np.intp), leaves).ravel()
        self.threshold = np.pad(np.asarray(threshold, float), leaves, constant_values=np.nan)
        self.threshold = self.threshold.ravel()
        self.r_mass, self.l_mass = (np.array(m, dtype=np.int64).ravel() for m in (r_mass, l_mass))
        self._lists: tuple[list[int], list[int]] | None = None  # (r_mass, l_mass)
        self.size_limit = 0.1 * size
        self.max_score = self.n_trees * size * (2 ** (height + 1) - 1)
        get = operator.itemgetter(*features) if features else lambda x: ()
        self._values = get if len(features) != 1 else lambda x: (get(x),)  # KeyError: missing
        nodes = np.arange(self.n_trees * self.nodes, dtype=np.intp)
        self._right = nodes + nodes % self.nodes + 2  # flat index of the right child
        self._roots = np.arange(self.n_trees, dtype=np.intp) * self.nodes
        self._shift = np.arange(height + 1, dtype=np.int64)[:, None, None]  # the depth
        self._splits: list[tuple[int, float, int]] = []  # (feature, threshold, left child)

    @classmethod
    def from_river(cls, river: anomaly.HalfSpaceTrees) -> _Forest:
        """The arrays of ``river``'s trees (built: it has learned a point)."""
        nodes: list[Any] = []  # tree by tree, level by level: the splits, then the leaves
        for level in ([tree] for tree in river.trees):
            while level:
                nodes += level
                level = [child for node in level for child in getattr(node, "children", ())]
        splits = [(node.feature, node.threshold) for node in nodes if hasattr(node, "feature")]
        features = tuple(sorted({name for name, _ in splits}))
        index = {name: k for k, name in enumerate(features)}
        shape = (len(river.trees), -1)
        feature = np.reshape([index[name] for name, _ in splits], shape)
        threshold = np.reshape([at for _, at in splits], shape)
        masses = np.reshape([(node.r_mass, node.l_mass) for node in nodes], (*shape, 2))
        arrays = (feature, threshold, *np.moveaxis(masses, 2, 0))
        return cls(features, river.height, river.window_size, arrays)

    def __reduce__(self) -> tuple[type[_Forest], tuple[object, ...]]:
        """Pickled as arrays: the splits without the leaves, masses in the smallest type."""
        masses = np.reshape(self._lists or (self.r_mass, self.l_mass), (2, self.n_trees, -1))
        splits = np.s_[:, : 2**self.height - 1]
        feature = self.feature.reshape(masses.shape[1:])[splits]
        feature = feature.astype(np.min_scalar_type(max(len(self.features) - 1, 0)))
        threshold = self.threshold.reshape(masses.shape[1:])[splits]
        masses = masses.astype(np.min_scalar_type(int(masses.max())))
        shape = (self.features, self.height, self.window_size)
        return _Forest, (*shape, (feature, threshold, *masses))

    def learn(self, xs: Sequence[Mapping[str, object]], learned: int, single: bool) -> list[float]:
        """Score then learn each of ``xs`` in turn (after ``learned`` points): the scores
        from river's second window on; ``single``: a point of ``update``, walked on lists."""
        window, x = self.window_size, None
        if len(xs) >= _FEW and not single:
            with suppress(KeyError):  # a point lacks a feature: walk
                x = np.array([self._values(point) for point in xs])
            if x is not None and (x.dtype.kind not in "biuf" or x.ndim != 2):
                x = None  # values other than numbers: compared as in Python, by Python
        if x is None:
            if single and self._lists is None:
                self._lists = (self.r_mass.tolist(), self.l_mass.tolist())
            scores = [self._walk(point, learned + k) for k, point in enumerate(xs)]
            return [score for score in scores if score is not None]
        if self._lists is not None:
            (self.r_mass[:], self.l_mass[:]), self._lists = self._lists, None
        paths = self._paths(x.astype(np.float64, copy=False))
        out: list[float] = []
        end = 0
        while end < len(xs):  # the points of one of river's windows at a time
            start, end = end, min(len(xs), end + window - (learned + end) % window)
            if learned + start >= window:  # the same reference masses for all of them
                out += self._score_paths(paths[:, start:end]).tolist()
            self.l_mass += np.bincount(paths[:, start:end].ravel(), minlength=self.l_mass.size)
            self._pivot(learned + end)
        return out

    def _pivot(self, learned: int) -> None:
        """River's window change, after every ``window_size`` learned points."""
        if learned % self.window_size == 0 and self._lists is not None:
            self._lists = (self._lists[1], [0] * len(self._lists[1]))
        elif learned % self.window_size == 0:
            self.r_mass[:], self.l_mass[:] = self.l_mass, 0

    def _paths(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """Nodes (flat indices) of each point's path in each tree: ``[depth, point, tree]``."""
        flat, base = x.ravel(), (np.arange(len(x), dtype=np.intp) * x.shape[1])[:, None]
        paths = np.empty((self.height + 1, len(x), self.n_trees), dtype=np.intp)
        paths[0], at = self._roots, paths[0]
        for depth in range(1, self.height + 1):
            value = flat.take(self.feature.take(at) + base)
            left = np.less(value, self.threshold.take(at))  # NaN goes right, as in river
            at = np.subtract(self._right.take(at), left, out=paths[depth])
        return paths

    def _score_paths(self, paths: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
        """River's scores from the paths: per tree ``score = 0.0; score += r_mass *
        2**depth`` down to a node with ``r_mass < size_limit``, then the trees' in order."""
        mass = self.r_mass.take(paths)
        stopped = np.less(mass[:-1], self.size_limit)  # stopped after depth d: below too
        np.logical_or.accumulate(stopped, axis=0, out=stopped)
        terms = mass << self._shift
        np.copyto(terms[1:], 0, where=stopped)
        total = np.add.accumulate(terms.astype(np.float64), axis=0)[-1]  # in river's order
        total = np.add.accumulate(total, axis=1)[:, -1]
        scores: npt.NDArray[np.float64] = 1 - total / float(self.max_score)
        return scores

    def _walk(self, x: Mapping[str, object], learned: int) -> float | None:
        """Score (from river's second window on) then learn ``x``, as river does."""
        scored = learned >= self.window_size
        r_mass, l_mass = self._lists or (self.r_mass.data, self.l_mass.data)
        if not self._splits:
            nodes = (self.feature.tolist(), self.threshold.tolist(), (self._right - 1).tolist())
            self._splits = list(zip(*nodes, strict=True))
        splits, limit = self._splits, self.size_limit
        values = [x.get(name, _MISSING) for name in self.features]
        total = 0.0
        for at in self._roots.tolist():
            score, depth_pow, scoring = 0.0, 1, scored
            for _ in range(self.height):
                if scoring:  # score += r_mass * 2**depth down to r_mass < size_limit
                    mass = r_mass[at]
                    score += mass * depth_pow
                    scoring = mass >= limit
                    depth_pow <<= 1
                l_mass[at] += 1
                feature, threshold, at = splits[at]  # at: the left child
                value = values[feature]
                if value is _MISSING:  # the child with the larger l_mass, left on ties
                    at += l_mass[at] < l_mass[at + 1]
                elif not value < threshold:  # type: ignore[operator]  # as river
                    at += 1
            if scoring:
                score += r_mass[at] * depth_pow
            l_mass[at] += 1
            total += score
        self._pivot(learned + 1)
        return 1 - total / self.max_score if scored else None

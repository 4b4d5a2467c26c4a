"""Half-Space Trees as arrays: ``update_many`` is ``update``, scores are river's to the bit,
and the state pickles as arrays (and loads from river's trees, the former layout)."""

from __future__ import annotations

import copy
import pickle
import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from river import anomaly

from streams.monitoring import MonitorConfigError, WindowSpec
from streams.monitoring.anomaly import (
    AnomalyReport,
    HalfSpaceTreesMonitor,
    ProfileScaler,
    RunningScaler,
)

# the attributes of a monitor as the code before the arrays pickled it
OLD_KEYS = [
    *("_scaler", "_every", "_warmup", "_calibration", "_pending", "threshold"),
    *("_clock", "_scores", "_learned", "last_score"),
]


class Raw:
    """Passes numbers through (a scaler for the trees' edge cases): a missing or non-numeric
    value leaves the feature missing; NaN, infinities, ints, bools and values far outside
    [0, 1] stay as they are."""

    def scale(self, row: Mapping[str, object]) -> dict[str, float]:
        return {k: v for k, v in row.items() if isinstance(v, int | float)}  # type: ignore[misc]


class Recording:
    """A scaler that keeps what it returns: the points the trees are fed."""

    def __init__(self, scaler: Any) -> None:
        self.scaler = scaler
        self.points: list[dict[str, float]] = []

    def scale(self, row: Mapping[str, object]) -> dict[str, float]:
        point: dict[str, float] = self.scaler.scale(row)
        self.points.append(point)
        return point


def _scaler(kind: str, names: list[str]) -> Any:
    if kind == "profile":
        return ProfileScaler({name: (-3.0, 3.0) for name in names})
    return RunningScaler(names) if kind == "running" else Raw()


def _rows(n: int, names: list[str], seed: int) -> list[dict[str, object]]:
    """Gaussian rows (shifting halfway) with missing, NaN, None, text, infinite, huge, int,
    bool and far out-of-range values here and there."""
    rng = random.Random(seed)
    odd: list[Callable[[], object]] = [
        lambda: float("nan"),
        lambda: None,
        lambda: "text",
        lambda: float("inf"),
        lambda: -1e300,
        lambda: rng.randrange(-2, 3),
        lambda: rng.random() < 0.5,
        lambda: rng.gauss(0.0, 50.0),
    ]
    rows = []
    for i in range(n):
        row: dict[str, object] = {}
        for name in names:
            u = rng.random() if i else 1.0  # the first row has every feature but the last
            if u < 0.03 or (i == 0 and name == names[-1] != names[0]):
                continue  # missing
            row[name] = rng.choice(odd)() if u < 0.1 else rng.gauss(0.0 if i < n // 2 else 1.5, 1)
        rows.append(row)
    return rows


def _chunks(n: int, rng: random.Random) -> list[tuple[int, int]]:
    out, start = [], 0
    while start < n:
        end = min(n, start + rng.choice([0, 1, 2, 3, 5, 9, 17, 64, 250, 701]))
        out.append((start, end))
        start = end
    return out


def _feed_many(
    monitor: HalfSpaceTreesMonitor, rows: list[Any], ts: list[int], rng: random.Random
) -> list[AnomalyReport]:
    return [r for a, b in _chunks(len(rows), rng) for r in monitor.update_many(rows[a:b], ts[a:b])]


def _feed_one(monitor: HalfSpaceTreesMonitor, rows: list[Any], ts: list[int]) -> list[Any]:
    return [r for row, t in zip(rows, ts, strict=True) for r in monitor.update(row, t)]


@pytest.mark.parametrize("kind", ["profile", "running", "raw"])
@pytest.mark.parametrize("n_features", [1, 3, 10])
@pytest.mark.parametrize("every", [1, 10])
@pytest.mark.parametrize("threshold", [None, 0.8])
def test_update_many_is_update(
    kind: str, n_features: int, every: int, threshold: float | None
) -> None:
    names = [f"f{i}" for i in range(n_features)]
    seed = n_features + every + (kind == "raw")

    def make() -> HalfSpaceTreesMonitor:
        return HalfSpaceTreesMonitor(
            _scaler(kind, names),
            sample_every=every,
            threshold=threshold,
            calibration=40,
            window=WindowSpec(events=97),
            window_size=23,
            seed=seed,
        )

    one, many = make(), make()
    rows = _rows(1200 if every == 1 else 2000, names, seed)
    ts = [i * 3 + (i % 5) for i in range(len(rows))]
    rng = random.Random(seed)
    expected = _feed_one(one, rows, ts)
    assert len(expected) == len(rows) // 97 and sum(r.scored for r in expected) > 0
    assert _feed_many(many, rows, ts, rng) == expected
    assert (many.last_score, many.threshold) == (one.last_score, one.threshold)
    assert many.last_score is not None and many.threshold is not None
    assert many._learned == one._learned
    # and the same state: what follows, one way or the other, gives the same
    more = _rows(400, names, seed + 10)
    later = [t + 10**6 for t in range(len(more))]
    assert _feed_one(many, more, later) == _feed_one(one, more, later)
    assert _feed_many(many, more, later, rng) == _feed_many(one, more, later, rng)
    assert many.flush() == one.flush()


@pytest.mark.parametrize("every", [1, 4])
def test_update_many_is_update_with_time_windows(every: int) -> None:
    names = ["a", "b", "c"]

    def make() -> HalfSpaceTreesMonitor:
        return HalfSpaceTreesMonitor(
            _scaler("profile", names),
            sample_every=every,
            calibration=30,
            window=WindowSpec(millis=500),
            window_size=20,
            seed=5,
        )

    one, many = make(), make()
    rng = random.Random(3)
    rows = _rows(3000, names, 3)
    ts = [i * 7 - rng.randrange(0, 900) for i in range(len(rows))]  # late events too
    expected = _feed_one(one, rows, ts)
    assert len(expected) > 20
    assert _feed_many(many, rows, ts, rng) == expected
    assert many._clock.late == one._clock.late > 0
    assert many.flush() == one.flush()


@pytest.mark.parametrize("kind", ["profile", "running", "raw"])
@pytest.mark.parametrize("n_features", [1, 3, 10])
@pytest.mark.parametrize("every", [1, 10])
@pytest.mark.parametrize("how", ["update_many", "mixed"])
def test_scores_are_rivers(kind: str, n_features: int, every: int, how: str) -> None:
    """Windows of ``every`` events hold one sampled event each, so each report's max_score
    is one score, which must be the very float river's own trees give for the point."""
    names = [f"f{i}" for i in range(n_features)]
    for seed, (n_trees, height, window_size) in enumerate([(10, 8, 250), (3, 4, 7), (1, 1, 1)]):
        scaler = Recording(_scaler(kind, names))
        monitor = HalfSpaceTreesMonitor(
            scaler,
            sample_every=every,
            threshold=0.5,
            window=WindowSpec(events=every),
            n_trees=n_trees,
            height=height,
            window_size=window_size,
            seed=seed,
        )
        rows = _rows(max(1000, (window_size + 250) * every), names, seed)
        ts = list(range(len(rows)))
        rng = random.Random(seed)
        reports: list[AnomalyReport] = []
        for a, b in _chunks(len(rows), rng):
            if how == "mixed" and rng.random() < 0.5:  # single points walk, batches are arrays
                reports += _feed_one(monitor, rows[a:b], ts[a:b])
            else:
                reports += monitor.update_many(rows[a:b], ts[a:b])
        scores = [r.max_score for r in reports if r.scored]
        assert all(r.scored == 1 and r.mean_score == r.max_score for r in reports if r.scored)

        river: Any = anomaly.HalfSpaceTrees(  # River is untyped
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )
        expected = []
        for k, point in enumerate(scaler.points):
            if k >= window_size:
                expected.append(river.score_one(point))
            river.learn_one(point)
        assert len(scores) == len(expected) >= 250
        assert scores == expected  # ==, float for float
        # the trees too: the same splits and masses as river's
        forest = monitor._forest
        assert forest is not None
        theirs = pickle.loads(pickle.dumps(type(forest).from_river(river)))
        ours = pickle.loads(pickle.dumps(forest))
        for name in ("feature", "threshold", "r_mass", "l_mass"):
            np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name))
        assert ours.features == theirs.features


def test_mass_lists_and_arrays_agree() -> None:
    """Single points walk lists, batches arrays: switching between them loses nothing."""
    names = ["a", "b"]
    rows = _rows(3000, names, 9)
    ts = list(range(len(rows)))
    one = HalfSpaceTreesMonitor(_scaler("raw", names), sample_every=1, window_size=30, seed=2)
    many = copy.deepcopy(one)
    rng = random.Random(4)
    got: list[AnomalyReport] = []
    for a, b in _chunks(len(rows), rng):
        got += (
            _feed_one(many, rows[a:b], ts[a:b])
            if rng.random() < 0.5
            else many.update_many(rows[a:b], ts[a:b])
        )
    assert got == _feed_one(one, rows, ts)
    assert many.flush() == one.flush()


def _pair_after(rows: list[Any], cut: int, batch: bool) -> tuple[HalfSpaceTreesMonitor, bytes]:
    monitor = HalfSpaceTreesMonitor(
        _scaler("running", ["a", "b", "c"]),
        sample_every=3,
        calibration=50,
        window=WindowSpec(events=200),
        window_size=40,
        seed=11,
    )
    ts = list(range(cut))
    if batch:
        monitor.update_many(rows[:cut], ts)
    else:
        _feed_one(monitor, rows[:cut], ts)
    return monitor, pickle.dumps(monitor)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("cut", [0, 1, 2, 119, 120, 121, 1000, 2345])
def test_pickle_round_trip_mid_stream(cut: int, batch: bool) -> None:
    rows = _rows(2500, ["a", "b", "c"], 8)
    monitor, blob = _pair_after(rows, cut, batch)
    restored = pickle.loads(blob)
    if monitor._forest is not None:
        assert b"river.tree" not in blob and b"river.anomaly" not in blob  # arrays only
    ts = list(range(cut, len(rows)))
    assert _feed_one(restored, rows[cut:], ts) == _feed_one(monitor, rows[cut:], ts)
    assert (restored.last_score, restored.threshold) == (monitor.last_score, monitor.threshold)
    assert restored.flush() == monitor.flush()


def test_pickle_is_small_and_lossless() -> None:
    rows = _rows(20_000, [f"f{i}" for i in range(10)], 1)
    monitor = HalfSpaceTreesMonitor(_scaler("profile", [f"f{i}" for i in range(10)]), seed=7)
    monitor.update_many(rows, list(range(len(rows))))
    blob = pickle.dumps(monitor)
    assert len(blob) < 40_000  # river's trees pickled to ~170 kB
    forest, restored = monitor._forest, pickle.loads(blob)._forest
    for name in ("feature", "threshold", "r_mass", "l_mass"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(forest, name))


def _old_layout(monitor: HalfSpaceTreesMonitor, river: anomaly.HalfSpaceTrees) -> bytes:
    """``monitor`` pickled as the code before the arrays did: river's trees in ``_trees``."""
    old = HalfSpaceTreesMonitor.__new__(HalfSpaceTreesMonitor)
    old.__dict__.update(copy.deepcopy({key: vars(monitor)[key] for key in OLD_KEYS}))
    old.__dict__["_trees"] = copy.deepcopy(river)
    return pickle.dumps(old)


@pytest.mark.parametrize("cut", [0, 1, 50, 777, 3000])
def test_old_layout_loads(cut: int) -> None:
    names = ["a", "b", "c"]
    rows = _rows(3500, names, 6)
    scaler = Recording(_scaler("running", names))
    monitor = HalfSpaceTreesMonitor(
        scaler,
        sample_every=2,
        calibration=30,
        window=WindowSpec(events=150),
        window_size=25,
        seed=4,
    )
    _feed_one(monitor, rows[:cut], list(range(cut)))
    river: Any = anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=25, seed=4)
    for point in scaler.points:  # the trees the former code had learned
        river.learn_one(point)
    restored = pickle.loads(_old_layout(monitor, river))
    assert (restored._forest is None) == (cut == 0) == (restored._river is not None)
    ts = list(range(cut, len(rows)))
    rng = random.Random(cut)
    assert _feed_many(restored, rows[cut:], ts, rng) == _feed_one(monitor, rows[cut:], ts)
    assert (restored.last_score, restored.threshold) == (monitor.last_score, monitor.threshold)
    assert restored.flush() == monitor.flush()


def test_pickle_before_the_first_point() -> None:
    """Before the first point the river object (and its seeded generator) is the state: a
    copy draws the same trees; afterwards the arrays are, and the river object is gone."""
    monitor = HalfSpaceTreesMonitor(_scaler("profile", ["a"]), sample_every=1, seed=None)
    twin = pickle.loads(pickle.dumps(monitor))
    rows = _rows(600, ["a"], 2)
    assert monitor.update_many(rows, list(range(600))) == twin.update_many(rows, list(range(600)))
    assert monitor._river is None and monitor._forest is not None
    np.testing.assert_array_equal(monitor._forest.threshold, twin._forest.threshold)


def test_bad_input() -> None:
    monitor = HalfSpaceTreesMonitor(_scaler("profile", ["a"]))
    with pytest.raises(MonitorConfigError):
        monitor.update_many([{"a": 1.0}], [])
    assert monitor.update_many([], []) == []
    bads: list[dict[str, Any]] = [{"window_size": 0}, {"n_trees": 0}, {"height": -1}]
    for bad in bads:
        with pytest.raises(MonitorConfigError):
            HalfSpaceTreesMonitor(_scaler("profile", ["a"]), **bad)


class Text:
    """Text for ``a`` in the rows that ask for it."""

    def scale(self, row: Mapping[str, object]) -> dict[str, Any]:
        return {"a": "text", "b": 0.5} if row.get("text") else {"a": 0.25, "b": 0.5}


@pytest.mark.parametrize("n", [1, 8])
def test_text_fails_as_in_river(n: int) -> None:
    river: Any = anomaly.HalfSpaceTrees(window_size=5, seed=1)
    river.learn_one({"a": 0.25, "b": 0.5})
    with pytest.raises(TypeError):  # '<' between str and float
        river.learn_one({"a": "text", "b": 0.5})
    monitor = HalfSpaceTreesMonitor(Text(), sample_every=1, window_size=5, seed=1)
    monitor.update_many([{}] * 10, list(range(10)))
    with pytest.raises(TypeError):
        monitor.update_many([{"text": True}] * n, list(range(n)))
    with pytest.raises(TypeError):
        monitor.update({"text": True})

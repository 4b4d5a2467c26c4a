"""Contract tests over every estimator (river's test_estimators style).

Every public class with an ``update`` (or ``add``) in a monitoring subpackage must have a
case here; each case feeds a tiny stream and checks that the estimator is deterministic,
survives a pickle round trip mid-stream (state can be checkpointed), returns sequences,
closes its windows on ``flush``, and that everything it emits becomes valid Avro records.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pickle
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import pytest

from streams.monitoring import Alert, MetricPoint, WindowSpec
from streams.monitoring.anomaly import HalfSpaceTreesMonitor, ProfileScaler, RunningScaler
from streams.monitoring.change import (
    ADWINDetector,
    ConceptDriftMonitor,
    DDMDetector,
    Detection,
    FeatureChangeMonitor,
    PageHinkleyDetector,
)
from streams.monitoring.drift import (
    CategoricalReference,
    CategoryWindow,
    DriftResult,
    FeatureDriftMonitor,
    HistogramWindow,
    NumericReference,
)
from streams.monitoring.fairness import FairnessMonitor, GroupCounts
from streams.monitoring.ops import LatencySketch, OpsMonitor
from streams.monitoring.performance import LabelJoiner, PerformanceMonitor, Scored
from streams.monitoring.windows import WindowClock

SUBPACKAGES = ["drift", "change", "performance", "fairness", "anomaly", "ops"]
AVRO = Path(__file__).resolve().parents[4] / "schemas" / "avro"
SMALL = WindowSpec(events=20)
NUMERIC = NumericReference.from_samples([i / 10 for i in range(100)], bins=5)
CATEGORIES = CategoricalReference(("a", "b"), (10, 5))


@dataclass(frozen=True)
class Case:
    make: Callable[[], Any]
    step: Callable[[Any, int, random.Random], Any]
    n: int = 60


def _row(i: int, rng: random.Random) -> dict[str, Any]:
    return {"x": rng.gauss(5, 3), "c": rng.choice("abz"), "y": None if i % 7 == 0 else i / 10}


CASES: dict[str, Case] = {
    "FeatureDriftMonitor": Case(
        lambda: FeatureDriftMonitor({"x": NUMERIC, "c": CATEGORIES}, window=SMALL, min_count=5),
        lambda e, i, rng: e.update(_row(i, rng), ts=i),
    ),
    "HistogramWindow": Case(
        lambda: HistogramWindow(NUMERIC), lambda e, i, rng: e.add(_row(i, rng)["y"])
    ),
    "CategoryWindow": Case(
        lambda: CategoryWindow(CATEGORIES), lambda e, i, rng: e.add(_row(i, rng)["c"])
    ),
    "ADWINDetector": Case(ADWINDetector, lambda e, i, rng: e.update(float(i > 50)), n=150),
    "PageHinkleyDetector": Case(
        lambda: PageHinkleyDetector(threshold=5.0, min_instances=5),
        lambda e, i, rng: e.update(float(i > 30) * 3),
    ),
    "DDMDetector": Case(
        lambda: DDMDetector(warm_start=5),
        lambda e, i, rng: e.update(float(rng.random() < (0.1 if i < 30 else 0.9))),
    ),
    "ConceptDriftMonitor": Case(
        lambda: ConceptDriftMonitor(
            detectors=(lambda: ADWINDetector(clock=4), lambda: DDMDetector(warm_start=5))
        ),
        lambda e, i, rng: e.update("a", "a" if i < 30 or rng.random() < 0.1 else "b"),
    ),
    "FeatureChangeMonitor": Case(
        lambda: FeatureChangeMonitor(
            {"x": (5.0, 3.0), "y": (3.0, 2.0)}, detector=lambda: PageHinkleyDetector(threshold=5.0)
        ),
        lambda e, i, rng: e.update(_row(i, rng)),
    ),
    "LabelJoiner": Case(
        lambda: LabelJoiner(ttl_ms=30, max_entries=8),
        lambda e, i, rng: (
            e.add_prediction(f"r{i}", i, ts=i),
            e.add_label(f"r{rng.randrange(i + 5)}", 1, ts=i),
        ),
    ),
    "PerformanceMonitor": Case(
        lambda: PerformanceMonitor(positive_label="a", window=SMALL),
        lambda e, i, rng: e.update(
            rng.choice("ab"),
            {
                "champion": Scored(1, rng.choice("ab"), {"a": 0.7, "b": 0.3}),
                "challenger": Scored(2, rng.choice("ab"), {"a": rng.random(), "b": 0.5}),
            },
            ts=i,
        ),
    ),
    "PerformanceMonitor[regression]": Case(
        lambda: PerformanceMonitor("regression", window=SMALL),
        lambda e, i, rng: e.update(
            float(i),
            {
                "champion": Scored(1, i + rng.gauss(0, 1)),
                "challenger": Scored(2, i + rng.gauss(0, 2)),
            },
        ),
    ),
    "FairnessMonitor": Case(
        lambda: FairnessMonitor(["g"], positive_label=1, window=SMALL),
        lambda e, i, rng: e.update({"g": rng.choice("pq")}, rng.randrange(2), rng.randrange(2)),
    ),
    "GroupCounts": Case(GroupCounts, lambda e, i, rng: e.add(i % 2 == 0, i % 3 == 0)),
    "HalfSpaceTreesMonitor": Case(
        lambda: HalfSpaceTreesMonitor(
            ProfileScaler({"x": (-4.0, 14.0)}),
            sample_every=2,
            calibration=3,
            window=SMALL,
            window_size=5,
            seed=1,
        ),
        lambda e, i, rng: e.update(_row(i, rng), ts=i),
    ),
    "HalfSpaceTreesMonitor[running]": Case(
        lambda: HalfSpaceTreesMonitor(
            RunningScaler(["x", "y"]),
            sample_every=1,
            threshold=0.5,
            window=SMALL,
            window_size=5,
            seed=1,
        ),
        lambda e, i, rng: e.update(_row(i, rng), ts=i),
    ),
    "OpsMonitor": Case(
        lambda: OpsMonitor(window=WindowSpec(millis=200)),
        lambda e, i, rng: (
            e.update_dlq(ts=i * 10)
            if i % 9 == 0
            else e.update(
                ts=i * 10,
                latency_ms=rng.expovariate(1.0),
                role_latency={"champion": rng.expovariate(2.0)},
                served_by=rng.choice(["champion", "backup", "none"]),
                failed=["champion"][: i % 2],
            )
        ),
    ),
    "LatencySketch": Case(LatencySketch, lambda e, i, rng: e.add(rng.expovariate(0.1))),
    "WindowClock": Case(lambda: WindowClock(SMALL), lambda e, i, rng: (e.before(i), e.after(i))),
}


def _run(case: Case, seed: int = 0, pickle_at: int | None = None) -> tuple[Any, list[Any]]:
    rng = random.Random(seed)
    estimator = case.make()
    outputs = []
    for i in range(case.n):
        if i == pickle_at:
            estimator = pickle.loads(pickle.dumps(estimator))
        outputs.append(case.step(estimator, i, rng))
    return estimator, outputs


def test_every_estimator_has_a_case() -> None:
    found = set()
    for name in SUBPACKAGES:
        package = importlib.import_module(f"streams.monitoring.{name}")
        for attr in package.__all__:
            obj = getattr(package, attr)
            if (
                inspect.isclass(obj)
                and not inspect.isabstract(obj)
                and (hasattr(obj, "update") or hasattr(obj, "add"))
            ):
                found.add(attr)
    assert found <= {name.split("[")[0] for name in CASES}, found - set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic(name: str) -> None:
    _, first = _run(CASES[name])
    _, second = _run(CASES[name])
    assert repr(first) == repr(second)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pickle_round_trip_mid_stream(name: str) -> None:
    _, straight = _run(CASES[name])
    _, resumed = _run(CASES[name], pickle_at=33)
    assert repr(straight) == repr(resumed)


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_are_valid_records(name: str) -> None:
    estimator, outputs = _run(CASES[name])
    if hasattr(estimator, "flush"):
        outputs.append(estimator.flush())
    repr(estimator)
    metric, alert = _schema("metric.avsc"), _schema("alert.avsc")
    for item in _flatten(outputs):
        for point in _metrics(item):
            assert fastavro.validation.validate(point.to_record(model="m", ts=1), metric)
        for found in _alerts(item):
            assert fastavro.validation.validate(found.to_record(model="m", ts=1), alert)


@pytest.mark.parametrize(
    "name",
    [n for n in sorted(CASES) if "Monitor" in n and "Change" not in n and "Concept" not in n],
)
def test_windowed_monitors_account_for_every_event(name: str) -> None:
    estimator, outputs = _run(CASES[name])
    assert all(isinstance(o, Sequence) for o in outputs)
    windows = {r.window for r in _flatten([*outputs, estimator.flush()])}
    if "Drift" not in name:  # drift skips features below min_count, not windows
        assert sum(w.count for w in windows) == 60
    assert all(w.end_event <= 60 for w in windows)


def _schema(name: str) -> Any:
    return fastavro.parse_schema(json.loads((AVRO / name).read_text()))


def _flatten(outputs: list[Any]) -> list[Any]:
    flat = []
    for output in outputs:
        if isinstance(output, tuple | list):
            flat += _flatten(list(output))
        elif output is not None and not isinstance(output, bool | float | int):
            flat.append(output)
    return flat


def _metrics(item: Any) -> list[MetricPoint]:
    if isinstance(item, DriftResult):
        return [item.to_metric()]
    return list(item.to_metrics()) if hasattr(item, "to_metrics") else []


def _alerts(item: Any) -> list[Alert]:
    if isinstance(item, DriftResult | Detection):
        return [item.to_alert()]
    return list(item.alerts()) if hasattr(item, "alerts") else []

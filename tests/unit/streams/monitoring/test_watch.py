"""The whole per-model watch on synthetic streams with known truth."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pandas as pd
import pytest

from services.registry import reference_profile
from services.synthetic import rows
from streams.monitoring.results import Alert, MetricPoint
from streams.monitoring.watch import ModelSpec, ModelWatch

FEATURES = tuple(f"x{i}" for i in range(10))


def spec(**overrides: Any) -> ModelSpec:
    train = pd.DataFrame(list(rows(5_000, seed=1, sensitive=False)))
    base = ModelSpec("m", features=FEATURES, reference_profile=reference_profile(train))
    return ModelSpec(**{**base.__dict__, **overrides})


def record(
    i: int,
    row: dict[str, Any],
    output: str = "True",
    challenger: str | None = None,
    group: str | None = None,
) -> dict[str, Any]:
    outcome = {
        "version": 1,
        "output": output,
        "probabilities": {"True": 0.7, "False": 0.3},
        "latency_ms": 0.05,
        "error": None,
        "skipped": None,
    }
    shadow = None
    if challenger is not None:
        shadow = outcome | {"version": 2, "output": challenger}
    return {
        "request_id": f"r{i}",
        "model": "m",
        "ts": 1_800_000_000_000 + i,
        "client_id": None,
        "source_topic": "t",
        "source_partition": 0,
        "source_offset": i,
        "features": row,
        "champion": outcome,
        "challenger": shadow,
        "served_by": "champion",
        "backup": None,
        "schema_fingerprint": "00",
        "training_data_fingerprint": None,
        "sensitive": {"group": group} if group else {},
        "latency_ms": 0.1,
    }


def test_mean_shift_on_one_feature_alerts_there_and_only_there() -> None:
    watch = ModelWatch(spec())
    alerts: list[tuple[str | None, int]] = []
    stable = list(rows(5_000, seed=11, sensitive=False))
    shifted = list(rows(45_000, seed=12, sensitive=False, shift={"x3": 1.0}))
    for i, row in enumerate(stable + shifted):
        for out in watch.on_prediction(record(i, row)):
            if isinstance(out, Alert) and out.kind == "drift":
                alerts.append((out.feature, i))
    on_x3 = [i for feature, i in alerts if feature == "x3"]
    others = Counter(feature for feature, _ in alerts if feature != "x3")
    assert on_x3 and 5_000 <= on_x3[0] < 6_000, on_x3[:3]
    print(
        f"drift: x3 detected {on_x3[0] - 5_000} events after the shift; "
        f"false alarms on stable features: {sum(others.values())}"
    )
    assert not others, others


def test_concept_change_alerts_within_500_events() -> None:
    watch = ModelWatch(spec(reference_profile=None))
    rng = random.Random(3)
    found = []
    for i in range(10_000):
        error_rate = 0.1 if i < 5_000 else 0.3
        wrong = rng.random() < error_rate
        watch.on_prediction(record(i, {"x0": 0.0}))
        label = "False" if wrong else "True"
        for out in watch.on_feedback(
            {
                "request_id": f"r{i}",
                "model": "m",
                "label": label,
                "ts": 1_800_000_000_000 + i,
                "source": None,
            }
        ):
            if isinstance(out, Alert) and out.kind == "concept_drift":
                found.append(i)
    after = [i for i in found if i >= 5_000]
    assert after and after[0] - 5_000 <= 500, found[:5]
    assert not [i for i in found if i < 5_000]
    print(f"concept drift detected {after[0] - 5_000} events after the change")


def test_fairness_equals_hand_computed_selection_rates() -> None:
    watch = ModelWatch(spec(reference_profile=None, sensitive=("group",)))
    points: list[MetricPoint] = []
    for i in range(1_000):  # group a: 600 requests, 60 % positive; b: 400, 25 % positive
        group = "a" if i < 600 else "b"
        positive = (i % 10 < 6) if group == "a" else (i % 4 == 0)
        points += [
            p
            for p in watch.on_prediction(
                record(i, {"x0": 0.0}, "True" if positive else "False", group=group)
            )
            if isinstance(p, MetricPoint) and p.kind == "fairness"
        ]
    points += [p for p in watch.flush() if isinstance(p, MetricPoint) and p.kind == "fairness"]
    by = {(p.name, p.group): p.value for p in points if p.labels.get("basis") == "predictions"}
    assert by[("selection_rate", "group=a")] == pytest.approx(0.6)
    assert by[("selection_rate", "group=b")] == pytest.approx(0.25)
    assert by[("demographic_parity_difference", None)] == pytest.approx(0.35)
    assert by[("demographic_parity_ratio", None)] == pytest.approx(0.25 / 0.6)


def test_delayed_shuffled_labels_give_the_offline_performance() -> None:
    watch = ModelWatch(spec(reference_profile=None))
    rng = random.Random(9)
    n = 1_000
    truth = [rng.random() < 0.5 for _ in range(n)]
    champion = [t if rng.random() < 0.8 else not t for t in truth]
    challenger = [t if rng.random() < 0.7 else not t for t in truth]
    for i in range(n):
        watch.on_prediction(record(i, {"x0": 0.0}, str(champion[i]), str(challenger[i])))
    order = list(range(n))
    rng.shuffle(order)
    points: list[MetricPoint] = []
    for i in order + order[:50]:  # late, shuffled, and 50 delivered twice
        points += [
            p
            for p in watch.on_feedback(
                {
                    "request_id": f"r{i}",
                    "model": "m",
                    "label": str(truth[i]),
                    "ts": 1_800_000_100_000 + i,
                    "source": None,
                }
            )
            if isinstance(p, MetricPoint) and p.kind == "performance"
        ]
    points += [p for p in watch.flush() if isinstance(p, MetricPoint) and p.kind == "performance"]
    acc = {p.role: p.value for p in points if p.name == "accuracy"}
    assert acc["champion"] == pytest.approx(
        sum(c == t for c, t in zip(champion, truth, strict=True)) / n
    )
    assert acc["challenger"] == pytest.approx(
        sum(c == t for c, t in zip(challenger, truth, strict=True)) / n
    )


def test_a_watch_survives_pickling_mid_window() -> None:
    import pickle

    watch = ModelWatch(spec())
    for i, row in enumerate(rows(700, seed=2, sensitive=False)):
        watch.on_prediction(record(i, row))
    clone = pickle.loads(pickle.dumps(watch))
    more = list(rows(400, seed=3, sensitive=False))
    a = [p for i, r in enumerate(more) for p in watch.on_prediction(record(700 + i, r))]
    b = [p for i, r in enumerate(more) for p in clone.on_prediction(record(700 + i, r))]
    assert a == b and a  # the same windows close with the same numbers


def test_batch_rows_count_as_requests_but_leave_latency_out() -> None:
    from streams.monitoring.summaries import Summary

    watch = ModelWatch(spec(reference_profile=None))
    out = []
    for i in range(300):  # every third row scored by `modelstream score`
        logged = record(i, {"x0": 0.0}) | ({"source": "batch"} if i % 3 == 0 else {})
        out += watch.on_prediction(logged)
    out += watch.flush()
    latency = [s for s in out if isinstance(s, Summary) and s.kind == "latency"]
    assert sum(s.stats["count"] for s in latency) == 200  # the real-time rows only

"""The watch with inputs a real model has: categorical features that are not sensitive,
a producer's clock in the future, labels before their predictions, a challenger judged
for fairness too, and a new champion with a reference profile of its own."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pandas as pd
import pytest

from services.registry import reference_profile
from services.synthetic import rows
from streams.monitoring.results import Alert, MetricPoint
from streams.monitoring.watch import FEEDBACK_SKEW_MS, ModelSpec, ModelWatch
from tests.unit.streams.monitoring.test_watch import FEATURES, record

T0 = 1_800_000_000_000
CHANNELS = ("web", "app", "phone")


def with_channel(count: int, seed: int, weights: tuple[float, ...]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        row | {"channel": rng.choices(CHANNELS, weights)[0]}
        for row in rows(count, seed=seed, sensitive=False)
    ]


def channel_spec() -> ModelSpec:
    train = pd.DataFrame(with_channel(5_000, 1, (0.6, 0.3, 0.1)))
    return ModelSpec(
        "m", features=(*FEATURES, "channel"), reference_profile=reference_profile(train),
        numeric=FEATURES,
    )  # fmt: skip


def test_a_categorical_input_gets_categorical_drift_and_stays_out_of_numeric_detectors() -> None:
    watch = ModelWatch(channel_spec())
    assert watch.changes is not None and watch.anomaly is not None  # numeric detectors: x0..x9
    stable = with_channel(3_000, 5, (0.6, 0.3, 0.1))
    moved = with_channel(3_000, 6, (0.2, 0.3, 0.5))  # the app users left for the phone
    out = [o for i, row in enumerate(stable + moved) for o in watch.on_prediction(record(i, row))]
    channel = [p for p in out if isinstance(p, MetricPoint) and p.feature == "channel"]
    assert {p.name for p in channel} >= {"psi", "js", "chisquare"}
    assert not {p.name for p in channel} & {"ks", "wasserstein"}
    alerts = [a for a in out if isinstance(a, Alert) and a.feature == "channel"]
    assert alerts and all(a.at_event is None or a.at_event > 3_000 for a in alerts)
    early = [p for p in channel if p.name == "psi" and p.window_end <= T0 + 3_000]
    late = [p for p in channel if p.name == "psi" and p.window_start >= T0 + 3_000]
    assert max(p.value for p in early) < 0.1 < min(p.value for p in late)


def test_a_model_with_only_categorical_inputs_is_watched() -> None:
    train = pd.DataFrame([{"channel": c} for c in with_channel(2_000, 1, (1, 1, 1))])
    spec = ModelSpec(
        "m", features=("channel",), reference_profile=reference_profile(train), numeric=()
    )
    watch = ModelWatch(spec)
    assert watch.changes is None and watch.anomaly is None
    out = [
        o for i, r in enumerate(with_channel(1_000, 2, (1, 1, 1)))
        for o in watch.on_prediction(record(i, {"channel": r["channel"]}))
    ]  # fmt: skip
    assert any(isinstance(p, MetricPoint) and p.feature == "channel" for p in out)


def feedback(i: int, label: str, ts: int) -> dict[str, Any]:
    return {"request_id": f"r{i}", "model": "m", "label": label, "ts": ts, "source": None}


def test_a_feedback_clock_in_the_future_expires_nothing() -> None:
    watch = ModelWatch(channel_spec())  # labels wait an hour
    for i in range(100):
        watch.on_prediction(record(i, {"x0": 0.0}))
    # one producer's clock is a year ahead: without the clamp, every pending join expires
    watch.on_feedback(feedback(0, "True", T0 + 365 * 86_400_000), now_ms=T0 + 100)
    assert watch.clamped == 1
    for i in range(1, 100):
        watch.on_feedback(feedback(i, "True", T0 + 200 + i), now_ms=T0 + 200)
    stats = watch.joiner.stats
    assert (stats.joined, stats.expired_predictions, stats.late_labels) == (100, 0, 0)
    assert watch.spec.label_ttl_ms > FEEDBACK_SKEW_MS  # the clamp keeps the clock in range


def test_a_prediction_clock_in_the_future_expires_nothing() -> None:
    watch = ModelWatch(channel_spec())  # labels wait an hour
    for i in range(100):
        watch.on_prediction(record(i, {"x0": 0.0}), now_ms=T0 + 100)
    # one scorer's clock is a year ahead: its ts moves neither the watch's clock nor the
    # joiner's, so the next feedback records are clamped near now and join
    bad = record(100, {"x0": 0.0}) | {"ts": T0 + 365 * 86_400_000}
    watch.on_prediction(bad, now_ms=T0 + 100)
    assert watch.clamped == 1
    assert watch.latest_ts == T0 + 100 + FEEDBACK_SKEW_MS
    for i in range(101):
        watch.on_feedback(feedback(i, "True", T0 + 200 + i), now_ms=T0 + 200)
    stats = watch.joiner.stats
    assert (stats.joined, stats.expired_predictions, stats.late_labels) == (101, 0, 0)


def test_a_replayed_log_keeps_its_own_clock() -> None:
    watch = ModelWatch(channel_spec())
    # a log from a year on (a replay, a test): its first record sets the watch's clock
    later = T0 + 365 * 86_400_000
    for i in range(50):
        watch.on_prediction(record(i, {"x0": 0.0}) | {"ts": later + i}, now_ms=T0)
    assert (watch.clamped, watch.latest_ts) == (0, later + 49)
    for i in range(50):
        watch.on_feedback(feedback(i, "True", later + 100 + i), now_ms=T0)
    assert (watch.clamped, watch.joiner.stats.joined) == (0, 50)


def test_labels_that_arrive_before_their_predictions_join() -> None:
    watch = ModelWatch(dataclasses.replace(channel_spec(), reference_profile=None))
    rng = random.Random(4)
    truth = {i: rng.random() < 0.5 for i in range(500)}
    for i in range(500):
        watch.on_feedback(feedback(i, str(truth[i]), T0 + i), now_ms=T0 + i)
    points = []
    for i in range(500):
        points += watch.on_prediction(record(i, {"x0": 0.0}, output="True"))
    points += watch.flush()
    assert watch.joiner.stats.joined == 500
    accuracy = [p for p in points if isinstance(p, MetricPoint) and p.name == "accuracy"]
    assert sum(p.count for p in accuracy) == 500
    assert sum(p.value * p.count for p in accuracy) == pytest.approx(sum(truth.values()))


def test_the_challenger_is_judged_for_fairness_too() -> None:
    watch = ModelWatch(
        dataclasses.replace(channel_spec(), reference_profile=None, sensitive=("group",))
    )
    points: list[Any] = []
    for i in range(1_000):  # champion: 50 % positive in both groups; challenger: a 0.4 gap
        group = "a" if i % 2 else "b"
        challenger = "True" if ((i // 2) % 10 < (7 if group == "a" else 3)) else "False"
        output = "True" if i % 4 < 2 else "False"
        points += watch.on_prediction(record(i, {"x0": 0.0}, output, challenger, group))
    points += watch.flush()
    gaps = {
        p.role: p.value for p in points
        if isinstance(p, MetricPoint) and p.name == "demographic_parity_difference"
    }  # fmt: skip
    assert gaps["champion"] == pytest.approx(0.0)
    assert gaps["challenger"] == pytest.approx(0.4)
    versions = {
        p.role: p.model_version for p in points
        if isinstance(p, MetricPoint) and p.kind == "fairness"
    }  # fmt: skip
    assert versions == {"champion": 1, "challenger": 2}


def test_a_new_champion_is_measured_against_its_own_reference() -> None:
    old = dataclasses.replace(channel_spec(), version=1)
    watch = ModelWatch(old)
    shifted = list(rows(2_000, seed=8, sensitive=False, shift={"x3": 2.0}))
    before = [o for i, r in enumerate(shifted[:1_000]) for o in watch.on_prediction(record(i, r))]
    assert any(isinstance(a, Alert) and a.feature == "x3" for a in before)
    # v2 was trained on the shifted data: against its profile, x3 is where it should be
    train = pd.DataFrame(
        [r | {"channel": "web"} for r in rows(5_000, seed=9, sensitive=False, shift={"x3": 2.0})]
    )
    new = dataclasses.replace(old, version=2, reference_profile=reference_profile(train))
    events = watch.rebase(new)
    assert watch.reference_version == 2
    notes = [e for e in events if isinstance(e, Alert) and e.kind == "monitor"]
    assert len(notes) == 1 and notes[0].severity == "info" and "v1 -> v2" in notes[0].message
    after = [
        o for i, r in enumerate(shifted[1_000:], 1_000)
        for o in watch.on_prediction(record(i, r))
    ]  # fmt: skip
    assert not [a for a in after if isinstance(a, Alert) and a.feature == "x3"]
    x3 = [p for p in after if isinstance(p, MetricPoint) and p.feature == "x3" and p.name == "psi"]
    assert x3 and max(p.value for p in x3) < 0.1

"""The closed loop on real parts: a concept change → a concept-drift alert → retraining
on the labels since → the new version shadows → the gate promotes it → accuracy is back.

A real scorer process follows the registry; the monitor loop and the sink run in
threads of the test; the lifecycle ticks in the test, which keeps sending requests and
their labels until each step has happened (every step bounded by a deadline).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.contracts import codec_for
from services.lifecycle import Lifecycle, PromotionPolicy, Step
from services.registry import Registry, Trust, recent_events
from services.sink import Sink, SinkConfig
from services.synthetic import CHANGED_WEIGHTS, WEIGHTS, labelled_rows, river_champion, rows
from services.synthetic import true_label as label_of
from services.warehouse import Warehouse
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin, make_producer

from .scoring_support import ScorerProcess, Stack, send

MODEL = "churn"
POLICY = PromotionPolicy(
    min_labels=400, alpha=0.01, max_fairness_widening=0.1, max_p99_increase=0.5,
    auto_retrain=True, trainer="services.lifecycle.trainers:river_logistic",
    retrain_window_s=3600.0, retrain_min_rows=400, holdout=0.25, cooldown_s=3600.0,
)  # fmt: skip


class Pipeline:
    """The monitor and the sink of one deployment, each in a thread of its own."""

    def __init__(self, kafka: KafkaConfig, topics: Topics, warehouse: Warehouse) -> None:
        from services.monitor import spec_for, watch_factory
        from services.registry import RegistryView
        from streams.monitoring.stream import MonitorConfig, MonitorLoop

        self.stop = threading.Event()
        self.view = RegistryView(kafka, topics)
        self.view.sync()
        self.monitor = MonitorLoop(kafka, MonitorConfig(topics, max_interval=0.3),
                                   watch_factory(self.view), spec_for(self.view))  # fmt: skip
        self.sink = Sink(kafka, SinkConfig(topics, max_rows=2_000, max_age=0.2), warehouse)
        self.threads = [
            threading.Thread(target=part.run, args=(self.stop,), daemon=True)
            for part in (self.monitor, self.sink)
        ]

    def __enter__(self) -> Pipeline:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        self.monitor.close()
        self.sink.close()
        self.view.close()


class Traffic:
    """Requests with their labels, in rounds: ``concept`` says which weights label them."""

    def __init__(self, kafka: KafkaConfig, topics: Topics) -> None:
        self.kafka, self.topics = kafka, topics
        self.sent = 0
        self.labels = make_producer(kafka)
        self.codec = codec_for("feedback")
        self.rng = random.Random(11)

    def round(self, n: int, weights: tuple[float, ...]) -> tuple[int, int]:
        """``n`` requests (ids ``q<i>``) and a label for each; the ids' range."""
        first = self.sent
        batch = list(rows(n, seed=1000 + first))
        send(self.kafka, self.topics.requests(MODEL), batch, start=first, prefix="q")
        now = int(time.time() * 1e3)
        for i, row in enumerate(batch, first):
            record = {"request_id": f"q{i}", "model": MODEL, "ts": now, "source": "test",
                      "label": str(label_of(row, self.rng, weights))}  # fmt: skip
            self.labels.produce(self.topics.feedback(MODEL), self.codec.encode_avro(record),
                                f"q{i}".encode())  # fmt: skip
        assert self.labels.flush(30) == 0
        self.sent += n
        return first, self.sent


def _accuracy(warehouse: Warehouse, version: int, ids: tuple[int, int]) -> tuple[float, int]:
    """Accuracy of the champion ``version`` on the requests ``q<ids[0]>..`` that landed."""
    row = warehouse.query(
        "SELECT avg(champion_output = label_string), count() FROM labelled_predictions "
        "WHERE model = %(m)s AND champion_version = %(v)s "
        "AND toUInt64OrZero(substring(request_id, 2)) >= %(a)s "
        "AND toUInt64OrZero(substring(request_id, 2)) < %(b)s",
        {"m": MODEL, "v": str(version), "a": ids[0], "b": ids[1]},
    ).rows[0]
    return float(row[0]), int(row[1])


def _until(what: str, steps: list[Step], traffic: Traffic, lifecycle: Lifecycle,
           done: Callable[[list[Step]], bool], timeout: float = 150.0) -> list[Step]:  # fmt: skip
    """Rounds of concept-B traffic and lifecycle ticks until ``done``; every step taken."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        traffic.round(150, CHANGED_WEIGHTS)
        steps += lifecycle.tick()
        if done(steps):
            return steps
    raise AssertionError(f"no {what} in {timeout:.0f} s; steps: {steps}")


@pytest.fixture
def deployment(
    kafka: KafkaConfig, unique: Callable[[str], str], tmp_path: Path
) -> Iterator[tuple[Stack, Registry]]:
    topics = Topics(unique("lc"))
    ensure_topics(make_admin(kafka), topics.global_specs(1) + topics.model_specs(MODEL, 1))
    stack = Stack(kafka, topics, Registry(kafka, topics, actor="tests"), tmp_path)
    assert stack.registry.signer is not None
    trust = Trust.of(stack.registry.signer.public_key)
    lifecycle_registry = Registry(kafka, topics, actor="lifecycle", signer=stack.registry.signer,
                                  trust=trust)  # fmt: skip
    yield stack, lifecycle_registry
    lifecycle_registry.close()
    stack.registry.close()


def test_a_concept_change_is_retrained_shadowed_and_promoted_with_no_one_at_the_keyboard(
    kafka: KafkaConfig, warehouse: Warehouse, deployment: tuple[Stack, Registry]
) -> None:
    stack, registry = deployment
    champion = river_champion(labelled_rows(2000, seed=3))
    stack.add_model(MODEL, champion)
    policy = dataclasses.replace(POLICY, loop_since=time.time())
    stack.registry.set_policy(MODEL, _json(policy), reason="the loop on, a small gate")
    lifecycle = Lifecycle(registry, warehouse)
    traffic = Traffic(kafka, stack.topics)
    with ScorerProcess(stack), Pipeline(kafka, stack.topics, warehouse):
        before_change = traffic.round(600, WEIGHTS)
        assert lifecycle.tick() == []  # no alert, no challenger: nothing to do
        changed_from = traffic.sent
        steps = _until("retraining", [], traffic, lifecycle,
                       lambda s: any(x.action == "retrained" for x in s))  # fmt: skip
        retrained = next(s for s in steps if s.action == "retrained")
        new = retrained.version
        after_change = (changed_from, traffic.sent)
        steps = _until("promotion", steps, traffic, lifecycle,
                       lambda s: any(x.action in ("promote", "retire") for x in s))  # fmt: skip
        verdict = next(s for s in steps if s.action in ("promote", "retire"))
        print("steps:", [(s.action, s.version, s.reason[:150]) for s in steps])
        assert verdict.action == "promote" and verdict.version == new, verdict
        after_promotion = traffic.round(600, CHANGED_WEIGHTS)
        _wait_landed(warehouse, traffic.sent)
    accuracy = {name: _accuracy(warehouse, version, ids) for name, version, ids in (
        ("before the change", 1, before_change), ("after the change", 1, after_change),
        ("after the promotion", new, after_promotion))}  # fmt: skip
    print(f"accuracy: {accuracy}; the gate decided on {verdict.details['evidence']}")
    assert accuracy["before the change"][0] > 0.8, accuracy
    assert accuracy["after the change"][0] < 0.6, accuracy
    assert accuracy["after the promotion"][0] > 0.8, accuracy
    assert accuracy["after the promotion"][1] >= 500, accuracy
    mv = registry.view.version(MODEL, new)
    assert mv.lineage["kind"] == "retrain" and mv.lineage["parent_version"] == 1
    assert mv.lineage["trigger"]["by"] == "alert", mv.lineage
    assert {a["kind"] for a in mv.lineage["trigger"]["alerts"]} <= {"drift", "concept_drift"}
    evidence = verdict.details["evidence"]
    assert evidence["paired.n"] >= POLICY.min_labels, evidence
    assert evidence["paired.favoured"] == "challenger" and evidence["paired.p_value"] < 0.01
    events = _events(warehouse)
    loop = events[events.index("policy") :]  # before it: v1's registration and promotion
    steps_in_order = [a for a in loop if a in ("register", "retrained", "promote")]
    assert steps_in_order == ["register", "retrained", "promote"], events


def _wait_landed(warehouse: Warehouse, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    sql = "SELECT count() FROM labelled_predictions WHERE model = %(m)s"
    while warehouse.query(sql, {"m": MODEL}).rows[0][0] < count:
        assert time.monotonic() < deadline, "the last requests did not land"
        time.sleep(0.2)


def _events(warehouse: Warehouse, timeout: float = 30.0) -> list[str]:
    """The model's event actions in order, once the promotion has landed."""
    deadline = time.monotonic() + timeout
    while True:
        actions = [r[0] for r in warehouse.query(
            "SELECT action FROM model_events WHERE model = %(m)s ORDER BY ts", {"m": MODEL}
        ).rows]  # fmt: skip
        if actions.count("promote") >= 2 or time.monotonic() > deadline:
            return actions
        time.sleep(0.2)


def _json(policy: PromotionPolicy) -> dict[str, Any]:
    import orjson

    return dict(orjson.loads(policy.to_json()))


def _shadowed(n: int, start: int, champion_right: float, challenger_right: float,
              seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """``n`` labelled requests v1 and v2 both answered, just now."""
    from tests.integration.fixtures_warehouse import sample_row

    rng, now = random.Random(seed), time.time()
    predictions, feedback = [], []
    for i in range(start, start + n):
        truth = "True" if i % 2 else "False"
        other = "False" if truth == "True" else "True"
        at = _utc(now - 1 + i * 1e-6)
        predictions.append(sample_row(
            "predictions", request_id=f"p{i}", model=MODEL, ts=at, sensitive={"group": "a"},
            champion_version="1", champion_error="", challenger_version="2",
            champion_output=truth if rng.random() < champion_right else other,
            challenger_output=truth if rng.random() < challenger_right else other,
            champion_latency_ms=1.0, challenger_latency_ms=1.0, source="stream",
        ))  # fmt: skip
        feedback.append(sample_row("feedback", request_id=f"p{i}", model=MODEL, ts=at,
                                   label_string=truth, label_number=None))  # fmt: skip
    return predictions, feedback


def _insert(warehouse: Warehouse, table: str, rows: list[dict[str, Any]]) -> None:
    from tests.integration.fixtures_warehouse import as_insert

    values, columns = as_insert(rows)
    warehouse.insert(table, values, columns)


def _utc(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


def test_the_process_says_wait_once_keeps_a_pin_and_acts_only_on_new_alerts(
    warehouse: Warehouse, deployment: tuple[Stack, Registry]
) -> None:
    from tests.integration.fixtures_warehouse import sample_row

    stack, registry = deployment
    stack.add_model(MODEL, river_champion(labelled_rows(300, seed=3)),
                    challenger=river_champion(labelled_rows(300, seed=4)))  # fmt: skip
    gate = PromotionPolicy(min_labels=200, alpha=0.01, pinned=True)
    stack.registry.set_policy(MODEL, _json(gate), reason="pinned for the audit")
    lifecycle = Lifecycle(registry, warehouse)

    _insert_pair(warehouse, *_shadowed(100, 0, 0.5, 0.95, seed=1))
    (first,) = lifecycle.tick()
    assert (first.action, first.version) == ("wait", 2), first
    assert "100 of 200" in first.reason, first.reason
    assert lifecycle.tick() == []  # the same wait: no second event

    _insert_pair(warehouse, *_shadowed(300, 100, 0.5, 0.95, seed=2))
    (pinned,) = lifecycle.tick()
    assert pinned.action == "wait" and pinned.reason.startswith("pinned"), pinned.reason
    assert registry.routing(MODEL).champion == 1  # type: ignore[union-attr]

    stack.registry.set_policy(MODEL, _json(dataclasses.replace(gate, pinned=False)))
    (promoted,) = lifecycle.tick()
    assert (promoted.action, promoted.version) == ("promote", 2), promoted
    assert registry.routing(MODEL).champion == 2  # type: ignore[union-attr]
    assert promoted.details["evidence"]["paired.n"] == 400
    assert promoted.details["checks"]["better"]["passed"] is True

    # the loop: an alert raised before it was switched on is not a trigger; one after is
    old = sample_row("alerts", alert_id="old", model=MODEL, model_version="2", role="",
                     kind="concept_drift", name="concept_drift", ts=_utc(time.time() - 1),
                     window_start=_utc(time.time() - 60))  # fmt: skip
    _insert(warehouse, "alerts", [old])
    loop = dataclasses.replace(gate, pinned=False, auto_retrain=True, loop_since=time.time(),
                               trainer="services.lifecycle.trainers:river_logistic",
                               retrain_min_rows=500)  # fmt: skip
    stack.registry.set_policy(MODEL, _json(loop))
    assert lifecycle.tick() == []
    new = old | {"alert_id": "new", "ts": _utc(time.time() + 1)}
    _insert(warehouse, "alerts", [new])
    (waiting,) = lifecycle.tick()
    assert waiting.action == "retrain_waiting", waiting
    assert "need 500" in waiting.reason, waiting.reason
    trail = [e.action for e in recent_events(stack.kafka, stack.topics, MODEL, limit=20)]
    after = trail[trail.index("policy") :]  # the registrations come before
    assert after == ["policy", "wait", "wait", "policy", "promote", "policy",
                     "retrain_waiting"], trail  # fmt: skip


def _insert_pair(warehouse: Warehouse, predictions: list[dict[str, Any]],
                 feedback: list[dict[str, Any]]) -> None:  # fmt: skip
    _insert(warehouse, "predictions", predictions)
    _insert(warehouse, "feedback", feedback)

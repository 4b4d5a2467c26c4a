"""The demo's closed loop: a concept change nobody announces, and the lifecycle alone
takes it from there.

After the main leg, with the same scorer and monitor processes running:

1. the churn model gets a promotion policy with the loop on (a small gate, so the demo
   stays short), and a first tick of the lifecycle judges the hand-registered challenger
   on the labels the main leg sent (it is vetoed if the gate is still waiting, to make
   room for the loop's own);
2. requests keep coming, labelled at once, but by the changed concept
   (:data:`~services.synthetic.CHANGED_WEIGHTS`): the champion's accuracy falls, the
   monitor raises a concept-drift alert, the lifecycle retrains on the labels since that
   alert, the new version shadows, and once enough labels are in, the gate promotes it;
3. more requests measure the new champion on the changed concept.

Every step is a model event; the summary prints them with the accuracies before the
change, after it, and after the promotion.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from rich.console import Console

from schemas.codec import Codec
from schemas.contracts import codec_for
from services.lifecycle import Lifecycle, PromotionPolicy, Step, describe_policy
from services.registry import Registry
from services.registry.cli import signer_from, trust_from
from services.settings import Settings
from services.synthetic import CHANGED_WEIGHTS, input_schema, true_label
from services.synthetic import rows as feature_rows
from services.warehouse import Warehouse
from streams.kafka import KafkaConfig, Topics, make_producer

__all__ = ["LOOP_POLICY", "LoopResult", "run_loop_leg"]

MODEL = "churn"
LOOP_POLICY = PromotionPolicy(
    min_labels=500, alpha=0.01, max_fairness_widening=0.1, max_p99_increase=1.0,
    auto_retrain=True, trainer="services.lifecycle.trainers:river_logistic",
    retrain_window_s=3600.0, retrain_min_rows=400, holdout=0.25, cooldown_s=3600.0,
)  # fmt: skip
ROUND = 200  # requests between two lifecycle ticks
TIMEOUT = 240.0  # seconds the loop may take to close


@dataclass
class LoopResult:
    """What the closed loop did, for the summary and ``demo.json``."""

    policy: str = ""
    first_verdict: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    closed: bool = False
    elapsed_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy, "first_verdict": self.first_verdict,
            "steps": self.steps,
            "accuracy": self.accuracy, "closed": self.closed,
            "elapsed_s": round(self.elapsed_s, 1),
        }  # fmt: skip


class _Traffic:
    """Requests ``loop-<run>-<i>`` and a label for each, by the changed concept."""

    def __init__(self, kafka: KafkaConfig, names: Topics, run: str) -> None:
        self.names, self.run, self.sent = names, run, 0
        self.producer = make_producer(kafka)
        self.requests, self.labels = Codec(input_schema()), codec_for("feedback")
        self.rng = random.Random(23)

    def round(self, n: int) -> tuple[int, int]:
        first = self.sent
        batch = list(feature_rows(n, seed=5000 + first, group_effect=0.7))
        now = int(time.time() * 1e3)
        for i, row in enumerate(batch, first):
            rid = f"loop-{self.run}-{i}".encode()
            self.producer.produce(self.names.requests(MODEL), self.requests.encode_avro(row), rid)
            label = str(true_label(row, self.rng, CHANGED_WEIGHTS))
            record = {"request_id": rid.decode(), "model": MODEL, "label": label, "ts": now,
                      "source": "demo"}  # fmt: skip
            self.producer.produce(self.names.feedback(MODEL), self.labels.encode_avro(record), rid)
        self.producer.flush(30)
        self.sent += n
        return first, self.sent


def run_loop_leg(settings: Settings, kafka: KafkaConfig, names: Topics, warehouse: Warehouse,
                 run: str, console: Console) -> LoopResult:  # fmt: skip
    """Set the policy, change the concept, and tick until the loop has closed (or the
    time is up: the summary then says how far it got)."""
    result, started = LoopResult(), time.monotonic()
    registry = Registry(kafka, names, actor="lifecycle", timeout=30,
                        signer=signer_from(settings), trust=trust_from(settings))  # fmt: skip
    with registry:
        policy = replace(LOOP_POLICY, loop_since=time.time())  # the main leg's alerts are old
        registry.set_policy(MODEL, orjson.loads(policy.to_json()), reason="demo: loop on")
        registry.versions(MODEL)  # caught up: the policy as stored
        result.policy = describe_policy(registry.view.policy(MODEL))
        lifecycle = Lifecycle(registry, warehouse)
        routing = registry.routing(MODEL)
        champion = routing.champion if routing is not None else 1
        result.first_verdict = _judge_first(lifecycle, registry, result, started)
        traffic = _Traffic(kafka, names, run)
        with console.status("closed loop: the concept changed; waiting for the lifecycle") as st:
            _close(lifecycle, traffic, result, started, st)
        if result.closed:
            result.accuracy = _accuracies(warehouse, run, result, traffic, champion)
    result.elapsed_s = time.monotonic() - started
    return result


def _judge_first(lifecycle: Lifecycle, registry: Registry, result: LoopResult,
                 started: float) -> dict[str, Any]:  # fmt: skip
    steps = lifecycle.tick()
    _record(result, steps, started)
    verdict = next((s for s in steps if s.action in ("promote", "retire", "wait")), None)
    routing = registry.routing(MODEL)
    if routing is not None and routing.challenger is not None:
        why = "demo: the gate is still waiting; make room for the loop"
        registry.retire(MODEL, routing.challenger, action="veto", reason=why)
    if verdict is None:
        return {}
    return {"version": verdict.version, "action": verdict.action, "reason": verdict.reason}


def _close(lifecycle: Lifecycle, traffic: _Traffic, result: LoopResult, started: float,
           status: Any) -> None:  # fmt: skip
    deadline = started + TIMEOUT
    while time.monotonic() < deadline:
        traffic.round(ROUND)
        steps = lifecycle.tick()
        _record(result, steps, started)
        for step in steps:
            status.update(f"closed loop: {step.action} v{step.version} - {step.reason[:80]}")
            if step.action == "promote":
                result.closed = True
                return


def _record(result: LoopResult, steps: list[Step], started: float) -> None:
    for step in steps:
        numbers = step.details.get("evidence", {})
        result.steps.append({
            "at_s": round(time.monotonic() - started, 1), "action": step.action,
            "version": step.version, "reason": step.reason,
            "labelled": numbers.get("paired.n"), "p_value": numbers.get("paired.p_value"),
        })  # fmt: skip


def _accuracies(warehouse: Warehouse, run: str, result: LoopResult,
                traffic: _Traffic, champion: int) -> dict[str, dict[str, float]]:  # fmt: skip
    """Champion accuracy from ClickHouse: the main leg's requests (the first concept), the
    changed concept before the promotion, and ``ROUND`` * 4 requests after it."""
    promoted = next(s["version"] for s in result.steps if s["action"] == "promote")
    before_end = traffic.sent
    after = traffic.round(ROUND * 4)
    _wait_landed(warehouse, run, after[1])
    main_leg = f"^{run}-[0-9]+$"
    changed = f"^loop-{run}-([0-9]+)$"
    return {
        "before the change": _accuracy(warehouse, main_leg, champion, None),
        "after the change": _accuracy(warehouse, changed, champion, (0, before_end)),
        "after the promotion": _accuracy(warehouse, changed, promoted, after),
    }


def _accuracy(warehouse: Warehouse, pattern: str, version: int,
              ids: tuple[int, int] | None) -> dict[str, float]:  # fmt: skip
    """Accuracy of ``version`` as champion on the requests whose id matches ``pattern``
    (its group, the request number, within ``ids``)."""
    within = "" if ids is None else (
        "AND toUInt64OrZero(extract(request_id, %(p)s)) BETWEEN %(a)s AND %(b)s "
    )  # fmt: skip
    row = warehouse.query(
        "SELECT avg(champion_output = label_string), count() FROM labelled_predictions "
        "WHERE model = %(m)s AND champion_version = %(v)s AND match(request_id, %(p)s) "
        + within,
        {"m": MODEL, "v": str(version), "p": pattern,
         "a": ids[0] if ids else 0, "b": ids[1] - 1 if ids else 0},
    ).rows[0]  # fmt: skip
    return {"accuracy": round(float(row[0] or 0.0), 3), "requests": int(row[1])}


def _wait_landed(warehouse: Warehouse, run: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    sql = "SELECT count() FROM labelled_predictions WHERE model = %(m)s AND request_id LIKE %(r)s"
    while time.monotonic() < deadline:
        if warehouse.query(sql, {"m": MODEL, "r": f"loop-{run}-%"}).rows[0][0] >= count:
            return
        time.sleep(0.5)

"""The serving policy, pure: champion, backup on failure or deadline, shadow challenger on
its own worker."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from schemas.codec import Codec
from streams.scoring import (
    Deployment,
    Frame,
    Guard,
    ServedModel,
    ServingPolicy,
    adapt,
    challenger_outcomes,
    score,
    shadow,
)
from streams.scoring.envelope import dlq_headers, parse_request

SCHEMA = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "double"}]}


class Doubler:
    def predict_one(self, x: dict[str, Any]) -> float:
        return 2 * x["a"]


class Picky:
    def predict_one(self, x: dict[str, Any]) -> float:
        if x["a"] < 0:
            raise ValueError("negative input")
        return x["a"]


class Slow:
    def predict_one(self, x: dict[str, Any]) -> float:
        time.sleep(0.3)
        return 0.0


class Held:
    """Blocks every call until :attr:`release` is set; counts calls begun and finished."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.begun = self.finished = 0

    def predict_one(self, x: dict[str, Any]) -> float:
        self.begun += 1
        self.release.wait(60)
        self.finished += 1
        return 0.0


def served(model: Any, version: int) -> ServedModel:
    return ServedModel(
        version, adapt(model, task="regression", features=["a"]), guard=Guard(f"v{version}")
    )


def deployment(
    champion: Any, challenger: Any = None, backup: Any = None, fraction: float = 1.0
) -> Deployment:
    return Deployment(
        "m",
        "regression",
        Codec(SCHEMA),
        served(champion, 1),
        served(challenger, 2) if challenger else None,
        served(backup, 3) if backup else None,
        fraction,
    )


ROWS = [{"a": 1.0}, {"a": -1.0}, {"a": 2.0}]
FRAME = Frame(ROWS)
IDS = ["r0", "r1", "r2"]
# for the tests that are not about deadlines: waits that only bound what must happen
PATIENT = ServingPolicy(champion_deadline=30.0, backup_deadline=30.0, challenger_deadline=30.0)


def shadow_outcomes(dep: Deployment, frame: Frame, ids: list[str], policy: ServingPolicy,
                    wait: float = 30.0) -> list[Any]:  # fmt: skip
    """The challenger's outcomes, polled as the scorer does until they are known."""
    shadowed = shadow(dep, frame, ids, policy)
    limit = time.monotonic() + wait
    while (found := challenger_outcomes(shadowed, len(frame), time.monotonic())) is None:
        assert time.monotonic() < limit, "the challenger's outcomes never became known"
        time.sleep(0.001)
    return found


def test_champion_serves_and_challenger_shadows() -> None:
    dep = deployment(Picky(), Doubler())
    out = score(dep, FRAME, PATIENT)
    assert [o.served_by for o in out] == ["champion", "none", "champion"]
    assert [o.served.output for o in out] == [1.0, None, 2.0]
    assert all(o.challenger is None for o in out)  # the reply path never holds the challenger
    assert [o.output for o in shadow_outcomes(dep, FRAME, IDS, PATIENT)] == [2.0, -2.0, 4.0]
    assert out[1].champion.error is not None and out[1].champion.error[0] == "model_failed"


def test_backup_answers_exactly_the_rows_the_champion_failed() -> None:
    out = score(deployment(Picky(), backup=Doubler()), FRAME, PATIENT)
    assert [o.served_by for o in out] == ["champion", "backup", "champion"]
    assert out[1].served.output == -2.0 and out[0].backup is None


def test_champion_past_its_deadline_hands_over_to_the_backup() -> None:
    policy = ServingPolicy(champion_deadline=0.05)
    out = score(deployment(Slow(), backup=Doubler()), FRAME.take([0]), policy)
    assert out[0].served_by == "backup" and out[0].champion.error[0] == "timeout"  # type: ignore[index]


def test_a_hung_challenger_holds_nothing_and_each_batch_gets_its_own_timeout() -> None:
    held = Held()
    dep = deployment(Doubler(), held)
    policy = ServingPolicy(challenger_deadline=0.05)
    try:
        started = time.monotonic()
        first = shadow(dep, FRAME, IDS, policy)
        replies = [score(dep, FRAME, policy) for _ in range(3)]
        second = shadow(dep, FRAME, IDS, policy)
        assert time.monotonic() - started < 0.5  # replies never waited for the challenger
        assert challenger_outcomes(second, 3, time.monotonic()) is None  # not yet due
        time.sleep(0.06)
        now = time.monotonic()
        for shadowed in (first, second):
            outcomes = challenger_outcomes(shadowed, 3, now)
            assert outcomes is not None
            assert {o.error[0] for o in outcomes} == {"timeout"}  # type: ignore[union-attr,index]
        assert held.begun == 1 and held.finished == 0  # one stuck call, no pile-up
    finally:
        held.release.set()
    assert all(o.served_by == "champion" for batch in replies for o in batch)


class Sleepy:
    """50 ms per call, whatever the batch: a challenger slower than the batches come."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_one(self, x: dict[str, Any]) -> float:
        return x["a"]


def test_a_slow_challenger_catches_up_on_queued_batches_and_drops_none() -> None:
    from streams.scoring.adapters import RiverRegressor

    class SleepyPredictor(RiverRegressor):
        def __init__(self) -> None:
            super().__init__(Sleepy())
            self.sizes: list[int] = []

        def predict(self, rows: Any) -> Any:
            frame = Frame.of(rows)
            self.sizes.append(len(frame))
            time.sleep(0.05)
            return super().predict(frame)

    predictor = SleepyPredictor()
    dep = deployment(Doubler())
    dep = Deployment(dep.model, dep.task, dep.codec, dep.champion,
                     ServedModel(2, predictor, guard=Guard("c")))  # fmt: skip
    batches = [shadow(dep, FRAME, IDS, PATIENT) for _ in range(20)]
    limit = time.monotonic() + 30
    results = []
    for shadowed in batches:
        while (found := challenger_outcomes(shadowed, 3, time.monotonic())) is None:
            assert time.monotonic() < limit
            time.sleep(0.005)
        results.append(found)
    assert all(
        o.ok and o.output == r["a"] for batch in results for o, r in zip(batch, ROWS, strict=True)
    )  # type: ignore[union-attr]
    assert (
        sum(predictor.sizes) == 60 and len(predictor.sizes) < 20
    )  # queued batches scored together


def test_shadow_sampling_is_deterministic_per_request_id() -> None:
    dep = deployment(Doubler(), Doubler(), fraction=0.3)
    ids = [f"req-{i}" for i in range(2_000)]
    chosen = [dep.in_shadow(i) for i in ids]
    assert chosen == [dep.in_shadow(i) for i in ids]
    assert 0.25 < sum(chosen) / len(ids) < 0.35
    out = shadow_outcomes(dep, Frame([{"a": 1.0}] * 200), ids[:200], PATIENT)
    skipped = [o.skipped == "sampled_out" for o in out]
    assert skipped == [not c for c in chosen[:200]]


def test_sklearn_models_are_called_once_per_batch() -> None:
    from sklearn.linear_model import LogisticRegression

    features = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(features, [0, 0, 1, 1])
    calls = []
    original = model.predict_proba
    model.predict_proba = lambda m: calls.append(len(m)) or original(m)  # type: ignore[method-assign]
    out = adapt(model, task="classification", features=["a"]).predict([{"a": 0.0}, {"a": 3.0}])
    assert calls == [2]
    assert [o.output for o in out] == ["0", "1"]
    assert set(out[0].probabilities or {}) == {"0", "1"}


def test_unsupported_artifacts_are_refused_clearly() -> None:
    from streams.scoring import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="cannot call it"):
        adapt(object(), task="regression", features=["a"])


class Message:
    def __init__(self, headers: Any, key: bytes | None, value: bytes) -> None:
        self._h, self._k, self._v = headers, key, value

    def headers(self) -> Any:
        return self._h

    def key(self) -> bytes | None:
        return self._k

    def value(self) -> bytes:
        return self._v

    def topic(self) -> str:
        return "p.m.requests"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41


def test_request_ids_fall_back_to_the_kafka_position() -> None:
    assert parse_request(Message(None, None, b"\xc3\x01xx")).request_id == "p.m.requests-2-41"
    sniffed = parse_request(Message(None, None, b"\xc3\x01xx"))
    assert sniffed.content_type == "application/avro"
    header_id = parse_request(Message([("request-id", b"abc"), ("reply-to", b"out")], b"k", b"{}"))
    assert (header_id.request_id, header_id.reply_to, header_id.content_type) == (
        "abc",
        "out",
        "application/json",
    )


def test_dlq_headers_keep_the_originals_and_add_the_reason() -> None:
    request = parse_request(Message([("client-id", b"c1")], b"k", b"garbage"))
    headers = dict(dlq_headers(request, "m", "malformed", "decode", "not JSON"))
    assert headers["client-id"] == b"c1"
    assert headers["ms-reason"] == b"malformed" and headers["ms-source-offset"] == b"41"

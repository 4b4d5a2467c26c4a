"""The serving policy, pure: champion, backup on failure or deadline, shadow challenger."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from schemas.codec import Codec
from streams.scoring import Deployment, Guard, ServedModel, ServingPolicy, adapt, score
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
IDS = ["r0", "r1", "r2"]
# for the tests that are not about deadlines: waits that only bound what must happen
PATIENT = ServingPolicy(champion_deadline=30.0, backup_deadline=30.0, challenger_grace=30.0)


def test_champion_serves_and_challenger_shadows() -> None:
    out = score(deployment(Picky(), Doubler()), ROWS, IDS, PATIENT)
    assert [o.served_by for o in out] == ["champion", "none", "champion"]
    assert [o.served.output for o in out] == [1.0, None, 2.0]
    assert [o.challenger.output for o in out] == [2.0, -2.0, 4.0]  # type: ignore[union-attr]
    assert out[1].champion.error is not None and out[1].champion.error[0] == "model_failed"


def test_backup_answers_exactly_the_rows_the_champion_failed() -> None:
    out = score(deployment(Picky(), backup=Doubler()), ROWS, IDS, PATIENT)
    assert [o.served_by for o in out] == ["champion", "backup", "champion"]
    assert out[1].served.output == -2.0 and out[0].backup is None


def test_champion_past_its_deadline_hands_over_to_the_backup() -> None:
    policy = ServingPolicy(champion_deadline=0.05)
    out = score(deployment(Slow(), backup=Doubler()), ROWS[:1], IDS[:1], policy)
    assert out[0].served_by == "backup" and out[0].champion.error[0] == "timeout"  # type: ignore[index]


def test_a_slow_challenger_costs_at_most_its_grace_and_is_recorded() -> None:
    held = Held()
    dep = deployment(Doubler(), held)
    try:
        first = score(dep, ROWS, IDS, ServingPolicy(challenger_grace=0.01))
        second = score(dep, ROWS, IDS, ServingPolicy(challenger_grace=0.01))
        # both batches were answered while the challenger's first call was still stuck,
        # and it was not called again: the caller walked away after the grace
        assert held.begun <= 1 and held.finished == 0
    finally:
        held.release.set()
    assert {o.challenger.error[0] for o in first} == {"timeout"}  # type: ignore[union-attr,index]
    assert {o.challenger.skipped for o in second} == {"busy"}  # type: ignore[union-attr]
    assert all(o.served_by == "champion" for o in first + second)


def test_shadow_sampling_is_deterministic_per_request_id() -> None:
    dep = deployment(Doubler(), Doubler(), fraction=0.3)
    ids = [f"req-{i}" for i in range(2_000)]
    chosen = [dep.in_shadow(i) for i in ids]
    assert chosen == [dep.in_shadow(i) for i in ids]
    assert 0.25 < sum(chosen) / len(ids) < 0.35
    out = score(dep, [{"a": 1.0}] * 200, ids[:200], PATIENT)
    skipped = [o.challenger.skipped == "sampled_out" for o in out]  # type: ignore[union-attr]
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

"""Replies and log records: the hand-written Avro reply writer equals the schema codec byte
for byte, and the ledger commits only what is done."""

from __future__ import annotations

import random

import orjson
import pytest

from schemas.codec import Codec
from schemas.contracts import load_schema
from streams.scoring.ledger import Ledger
from streams.scoring.replies import ReplyWriter

CODEC = Codec(load_schema("reply"))


def _reply(rng: random.Random) -> dict[str, object]:
    kind = rng.choice(["class", "number", "error", "no-proba", "empty-proba"])
    labels = [rng.choice(["True", "False", "a", "é✓", "x" * rng.randint(0, 200)]) for _ in range(3)]
    reply: dict[str, object] = {
        "request_id": rng.choice(["", "r-1", "ü" * rng.randint(1, 90), str(rng.random())]),
        "model": rng.choice(["m", "churn-v2", "a" * 100]),
        "model_version": rng.choice([None, 0, 1, 63, 64, 127, 128, 2**31 - 1]),
        "task": rng.choice(["classification", "regression", "unknown"]),
        "prediction": None, "probabilities": None,
        "served_by": rng.choice(["champion", "backup", "none"]),
        "latency_ms": rng.choice([0.0, rng.random() * 1e3, 1e-300, -0.0]),
        "error": None,
        "created_at": rng.choice([0, 1, 63, 64, 1_764_000_000_000, 2**62]),
    }  # fmt: skip
    if kind == "class":
        reply["prediction"] = labels[0]
        reply["probabilities"] = {label: rng.random() for label in labels}
    elif kind == "number":
        reply["prediction"] = rng.uniform(-1e12, 1e12)
    elif kind == "error":
        reply["error"] = {"code": "model_failed", "message": "ValueError: ü" * rng.randint(0, 40),
                          "stage": "score"}  # fmt: skip
    elif kind == "empty-proba":
        reply["prediction"], reply["probabilities"] = labels[1], {}
    return reply


def test_the_reply_writer_equals_the_codec_byte_for_byte() -> None:
    rng = random.Random(5)
    writer = ReplyWriter(CODEC.fingerprint)
    for _ in range(5_000):
        reply = _reply(rng)
        assert writer.encode(reply) == CODEC.encode_avro(reply), reply
        assert CODEC.decode_avro(writer.encode(reply)) == reply


def test_ledger_holds_a_partition_at_its_oldest_open_unit() -> None:
    ledger = Ledger()
    a = ledger.open({("t", 0): (0, 4)}, waiting=2)
    b = ledger.open({("t", 0): (5, 9), ("t", 1): (0, 2)}, waiting=1)
    assert ledger.offsets() == {("t", 0): 0, ("t", 1): 0}
    ledger.done(b)
    assert ledger.offsets() == {("t", 0): 0, ("t", 1): 3}
    ledger.done(a)
    assert ledger.offsets() == {("t", 0): 0, ("t", 1): 3}  # a still waits for one piece
    ledger.done(a)
    assert ledger.offsets() == {("t", 0): 10, ("t", 1): 3} and ledger.open_units == 0


def test_ledger_forgets_revoked_partitions() -> None:
    ledger = Ledger()
    unit = ledger.open({("t", 0): (0, 4), ("t", 1): (0, 4)}, waiting=1)
    ledger.forget({("t", 0)})
    assert ledger.offsets() == {("t", 1): 0}
    ledger.done(unit)
    assert ledger.offsets() == {("t", 1): 5}


@pytest.mark.parametrize("value", [1.5, "True"])
def test_json_replies_are_orjson_of_the_same_record(value: object) -> None:
    from streams.scoring.records import encode_reply

    reply = _reply(random.Random(1)) | {"prediction": value}
    data, ctype = encode_reply(reply, "application/json", ReplyWriter(CODEC.fingerprint))
    assert ctype == b"application/json" and orjson.loads(data) == reply

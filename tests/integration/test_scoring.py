"""The scorer end to end: real broker, real scorer subprocesses, registry over Kafka."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.registry import Registry
from services.synthetic import rows
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from tests.integration.scoring_support import (
    BrokenChallenger,
    FlakyChampion,
    HungChallenger,
    Received,
    ScorerProcess,
    SleepyChallenger,
    Stack,
    collect,
    collect_every_request,
    decode_reply,
    reader,
    send,
    take,
    trained,
)


@pytest.fixture
def stack(kafka: KafkaConfig, unique: Callable[[str], str], tmp_path: Path) -> Iterator[Stack]:
    topics = Topics(unique("sc"))
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    registry = Registry(kafka, topics, actor="tests")
    yield Stack(kafka, topics, registry, tmp_path)
    registry.close()


def replies_by_id(messages: list) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for message in messages:
        reply = decode_reply(message)
        out.setdefault(reply["request_id"], []).append(reply)
    return out


def test_every_request_gets_exactly_one_reply(stack: Stack, unique: Callable[[str], str]) -> None:
    champion, challenger = trained()
    stack.add_model("m", champion, challenger)
    consumer = reader(stack.kafka, [stack.topics.replies("m")], unique("g"))
    with ScorerProcess(stack):
        send(stack.kafka, stack.topics.requests("m"), rows(10_000, seed=3))
        got = collect(consumer, 10_000)
    by_id = replies_by_id(got)
    assert len(got) == 10_000
    assert set(by_id) == {f"r{i}" for i in range(10_000)}
    served = Counter(r[0]["served_by"] for r in by_id.values())
    assert served == {"champion": 10_000}
    assert {r[0]["model_version"] for r in by_id.values()} == {1}


def test_backup_serves_when_the_champion_raises(stack: Stack, unique: Callable[[str], str]) -> None:
    champion, challenger = trained()
    stack.add_model("m", FlakyChampion(champion), backup=challenger)
    data = list(rows(2_000, seed=5))
    consumer = reader(stack.kafka, [stack.topics.replies("m")], unique("g"))
    with ScorerProcess(stack):
        send(stack.kafka, stack.topics.requests("m"), data)
        by_id = replies_by_id(collect(consumer, 2_000))
    assert len(by_id) == 2_000
    for i, row in enumerate(data):
        (reply,) = by_id[f"r{i}"]
        expected = "backup" if row["x0"] > 1.0 else "champion"
        assert reply["served_by"] == expected, (row["x0"], reply)
        assert reply["error"] is None and reply["prediction"] in ("True", "False")
        assert reply["model_version"] == (2 if expected == "backup" else 1)
    assert sum(r["x0"] > 1.0 for r in data) > 100


@pytest.mark.parametrize("bad", ["broken", "sleepy", "hung"])
def test_challenger_failures_never_touch_the_reply_and_every_outcome_is_logged(
    stack: Stack, unique: Callable[[str], str], bad: str
) -> None:
    champion, _ = trained()
    kinds = {"broken": BrokenChallenger, "sleepy": SleepyChallenger, "hung": HungChallenger}
    stack.add_model("m", champion, kinds[bad](champion))
    stack.add_model("ref", champion)  # same champion, no challenger: the baseline
    consumer = reader(stack.kafka, [stack.topics.replies(m) for m in ("m", "ref")], unique("g"))
    log = reader(stack.kafka, [stack.topics.predictions("m")], unique("l"))
    with ScorerProcess(stack, "0", "--challenger-deadline-ms", "2000"):
        for second in range(4):  # a steady 500 req/s per model
            for model in ("m", "ref"):
                send(stack.kafka, stack.topics.requests(model), rows(500, seed=second),
                     start=second * 500, json_every=1)  # fmt: skip
            time.sleep(0.5)
        got = collect(consumer, 4_000)
        logs = [m.json() for m in collect(log, 2_000, timeout=90)]
    replies = [decode_reply(message) for message in got]
    assert all(r["error"] is None and r["served_by"] == "champion" for r in replies)
    answered = {model: {r["request_id"] for r in replies if r["model"] == model}
                for model in ("m", "ref")}  # fmt: skip
    assert len(replies) == 4_000 and answered["m"] == answered["ref"] == {
        f"r{i}" for i in range(2_000)
    }
    # one log record per request, each with the challenger's answer or its own failure
    assert sorted(entry["request_id"] for entry in logs) == sorted(answered["m"])
    outcomes = Counter(
        (entry["challenger"]["error"] or {}).get("code") or entry["challenger"]["skipped"]
        for entry in logs
    )
    expected = {"broken": "model_failed", "sleepy": None, "hung": "timeout"}[bad]
    assert outcomes == {expected: 2_000}, outcomes
    if bad == "sleepy":
        assert all(entry["challenger"]["output"] in ("True", "False") for entry in logs)


def test_bad_input_goes_to_the_dlq_with_reason(stack: Stack, unique: Callable[[str], str]) -> None:
    import orjson

    from schemas.codec import Codec
    from tests.integration.scoring_support import SCHEMA

    champion, _ = trained()
    stack.add_model("m", champion)
    ensure_topics(make_admin(stack.kafka), stack.topics.model_specs("ghost", 1))
    good = next(rows(1))
    other = Codec({"type": "record", "name": "Other", "fields": [{"name": "a", "type": "long"}]})
    cases: dict[str, tuple[bytes, bytes]] = {
        "garbage": (b"\x00\xffnot a request", b"application/octet-stream"),
        "truncated": (Codec(SCHEMA).encode_avro(good)[:-3], b"application/avro"),
        "unknown_fingerprint": (other.encode_avro({"a": 1}), b"application/avro"),
        "missing_field": (
            orjson.dumps({k: v for k, v in good.items() if k != "x3"}),
            b"application/json",
        ),
        "wrong_type": (orjson.dumps(good | {"x1": "abc"}), b"application/json"),
        "unknown_field": (orjson.dumps(good | {"zz": 1.0}), b"application/json"),
        "not_finite": (b'{"x0": NaN}', b"application/json"),
        "not_finite_avro": (_avro_with_nan(good), b"application/avro"),
        "oversize": (b"{" + b" " * 2_000_000 + b"}", b"application/json"),
    }
    expected_reason = {
        "garbage": {"unsupported_content_type"},
        "truncated": {"truncated"},
        "unknown_fingerprint": {"unknown_fingerprint"},
        "missing_field": {"missing_field"},
        "wrong_type": {"wrong_type"},
        "unknown_field": {"unknown_field"},
        "not_finite": {"not_finite", "malformed"},
        "oversize": {"oversize"},
        "not_finite_avro": {"not_finite"},
    }
    from streams.kafka import make_producer

    producer = make_producer(stack.kafka, message_max_bytes=8_000_000)
    for name, (value, ctype) in cases.items():
        producer.produce(
            stack.topics.requests("m"),
            value,
            name.encode(),
            headers=[("content-type", ctype), ("client-id", b"tester")],
        )
    producer.produce(
        stack.topics.requests("ghost"),
        orjson.dumps(good),
        b"ghost",
        headers=[("content-type", b"application/json")],
    )
    assert producer.flush(30) == 0
    send(stack.kafka, stack.topics.requests("m"), rows(100, seed=9))
    topics = [
        stack.topics.replies("m"),
        stack.topics.dlq("m"),
        stack.topics.dlq("ghost"),
        stack.topics.replies("ghost"),
    ]
    consumer = reader(stack.kafka, topics, unique("g"))
    with ScorerProcess(stack):
        got = collect(consumer, 100 + len(cases) + 1)
    dlq = {m.key.decode(): m for m in got if m.topic.endswith(".dlq")}  # type: ignore[union-attr]
    replies = [m for m in got if m.topic.endswith(".replies")]
    assert len(replies) == 100 and len(dlq) == len(cases) + 1  # requests in = replies + DLQ
    for name, (value, _) in cases.items():
        entry = dlq[name]
        assert entry.value == value, name  # the original bytes
        assert entry.headers["ms-reason"].decode() in expected_reason[name], (name, entry.headers)
        assert entry.headers["ms-stage"] == b"decode"
        assert entry.headers["client-id"] == b"tester"  # the original headers
        assert entry.headers["ms-source-topic"].decode() == stack.topics.requests("m")
        assert int(entry.headers["ms-source-offset"]) >= 0
        assert entry.headers["ms-error"]
    assert dlq["ghost"].headers["ms-reason"] == b"unknown_model"
    assert dlq["ghost"].topic == stack.topics.dlq("ghost")


def _avro_with_nan(row: dict) -> bytes:
    """A well-formed single-object message whose x2 is NaN (our encoder refuses to)."""
    import io

    import fastavro

    from schemas.codec import Codec
    from tests.integration.scoring_support import SCHEMA

    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(SCHEMA), row | {"x2": float("nan")})
    return b"\xc3\x01" + Codec(SCHEMA).fingerprint + body.getvalue()


def test_promotion_under_load_loses_nothing(stack: Stack, unique: Callable[[str], str]) -> None:
    champion, challenger = trained()
    stack.add_model("m", champion, challenger)
    consumer = reader(stack.kafka, [stack.topics.replies("m")], unique("g"))
    got: list[Received] = []
    total, requested_ms, tick = 0, 0, 0
    # ~1,000 req/s for 3 s or more: the promotion half-way once v1 has answered, the load
    # on until v2 has answered too, within a bound (how long a swap takes is a benchmark
    # figure: `modelstream bench`, swap_gap_ms)
    deadline = time.monotonic() + 120
    with ScorerProcess(stack):
        while tick < 30 or not any(decode_reply(m)["model_version"] == 2 for m in got):
            assert time.monotonic() < deadline, "the promotion never reached the scorer"
            total += send(stack.kafka, stack.topics.requests("m"), rows(100, seed=tick),
                          start=tick * 100, json_every=1)  # fmt: skip
            if tick >= 15 and got and not requested_ms:
                requested_ms = int(time.time() * 1e3)
                stack.registry.promote("m", 2, reason="challenger wins")
            got += collect(consumer, total, timeout=0.1, quiet=0)  # also paces the load
            tick += 1
        got += collect(consumer, total - len(got))
    by_id = replies_by_id(got)
    assert len(got) == total == len(by_id)
    assert all(r[0]["error"] is None for r in by_id.values())
    ordered = sorted((r[0]["created_at"], r[0]["model_version"]) for r in by_id.values())
    versions = [v for _, v in ordered]
    switch = versions.index(2)
    assert set(versions[:switch]) == {1} and set(versions[switch:]) == {2}  # one clean switch
    assert ordered[switch][0] >= requested_ms  # v2 answered only once it was promoted


def test_two_scorers_share_partitions(stack: Stack, unique: Callable[[str], str]) -> None:
    champion, _ = trained()
    stack.add_model("m", champion)
    consumer = reader(stack.kafka, [stack.topics.replies("m")], unique("g"))
    with ScorerProcess(stack, "a") as first, ScorerProcess(stack, "b") as second:
        # "ready" comes before the group has balanced: wait until both hold partitions
        deadline = time.monotonic() + 60
        while not all("assigned " in p.log.read_text() for p in (first, second)):
            assert time.monotonic() < deadline, "the scorers never shared the partitions"
            time.sleep(0.1)
        send(stack.kafka, stack.topics.requests("m"), rows(6_000, seed=11))
        got = collect(consumer, 6_000)
        logs = first.stop(), second.stop()
    by_id = replies_by_id(got)
    assert len(got) == 6_000 == len(by_id)
    served = [int(_stat(log, "replies")) for log in logs]
    assert all(n > 0 for n in served), served  # both did real work
    assert sum(served) == 6_000


def _stat(log: str, name: str) -> str:
    import re

    found = re.findall(rf"'{name}': (\d+)", log)
    return found[-1] if found else "0"


def _killed_three_times_then_served(
    scorer: ScorerProcess, consumer: Any, watch: Any, feed: Callable[[], bool],
    *, until_aborted: str | None = None,
) -> tuple[list[Received], list[Received]]:  # fmt: skip
    """kill -9 the scorer while it is writing, at least three times, then let one more
    incarnation serve the rest. Returns what ``consumer`` read back (20,000 requests, so
    40,000 messages) and everything ``watch`` (a read_uncommitted reader) saw.

    Each incarnation gets work of its own once it owns its partitions (``feed`` sends the
    next chunk of requests; False when none is left): a scorer serves 20,000 requests in
    about a second, so requests sent all at once could be served before the kills. Each
    kill waits until ``watch`` sees this incarnation's output arrive: the scorer is then
    mid-chunk, and with batches of 200 a transaction is almost always open. With
    ``until_aborted`` (the reply topic), kills go on (at most eight) until one provably
    landed inside a transaction: a request answered twice in the uncommitted log, once in
    the aborted transaction and once in the one that redid it."""
    seen: list[Received] = []
    kills = 0
    while True:
        before = scorer.log.read_text().count("assigned ") if scorer.log.exists() else 0
        scorer.start()
        deadline = time.monotonic() + 60  # "ready" comes before the partitions: wait for them
        while scorer.log.read_text().count("assigned ") <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        fed = feed()
        fresh: list[Received] = []
        deadline = time.monotonic() + 15
        while not fresh and time.monotonic() < deadline:
            fresh = list(_take_now(watch))
        seen += fresh
        if not fed or kills >= 8:
            break  # the last incarnation serves what is left
        if kills >= 3 and (until_aborted is None or _answered_twice(seen, until_aborted)):
            break
        scorer.kill()
        kills += 1
    while feed():
        pass
    got = collect_every_request(consumer, 20_000)
    scorer.stop()
    seen += collect(watch, 0, timeout=0, quiet=2)
    return got, seen


def _same_ids(ids: set[str], n: int, scorer: ScorerProcess, what: str) -> None:
    """``ids`` are r0 ... r{n-1}; if not, say which are missing or extra, compactly, with
    the scorer's log (a failure on a CI machine must explain itself)."""
    expected = {f"r{i}" for i in range(n)}
    if ids == expected:
        return
    missing = sorted(int(i[1:]) for i in expected - ids)
    extra = sorted(ids - expected)
    raise AssertionError(
        f"{what}: {len(missing)} of {n} requests missing (first {missing[:20]}, last "
        f"{missing[-5:]}), {len(extra)} unexpected ({extra[:10]})\n{_log_tail(scorer)}"
    )


def _diagnosis(found: object, scorer: ScorerProcess) -> str:
    return f"{str(found)[:2000]}\n{_log_tail(scorer)}"


def _log_tail(scorer: ScorerProcess) -> str:
    lines = scorer.log.read_text(errors="replace").splitlines() if scorer.log.exists() else []
    return "the scorer's log, last 80 lines:\n" + "\n".join(lines[-80:])


def _chunks(kafka: KafkaConfig, topic: str, n: int, seed: int, size: int) -> Callable[[], bool]:
    """A feed of ``n`` requests (``rows(n, seed)``, ids r0...) in chunks of ``size``."""
    data = list(rows(n, seed=seed))
    sent = [0]

    def feed() -> bool:
        if sent[0] >= n:
            return False
        chunk = data[sent[0] : sent[0] + size]
        send(kafka, topic, chunk, start=sent[0])
        sent[0] += len(chunk)
        return True

    return feed


def _take_now(consumer: Any) -> list[Received]:
    return list(take(consumer, 0.05))


def _answered_twice(seen: list[Received], topic: str) -> bool:
    keys = Counter(m.key for m in seen if m.topic == topic)
    return any(n > 1 for n in keys.values())


def test_kill_minus_nine_three_times_loses_and_duplicates_nothing(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    champion, challenger = trained()
    stack.add_model("m", champion, challenger)
    topics = [stack.topics.replies("m"), stack.topics.predictions("m")]
    consumer = reader(stack.kafka, topics, unique("g"))
    everything = reader(stack.kafka, topics, unique("u"), read_committed=False)
    feed = _chunks(stack.kafka, stack.topics.requests("m"), 20_000, seed=13, size=2_000)
    scorer = ScorerProcess(stack, "k", "--max-batch", "200")
    got, written = _killed_three_times_then_served(
        scorer, consumer, everything, feed, until_aborted=stack.topics.replies("m")
    )
    replies = [m for m in got if m.topic == stack.topics.replies("m")]
    by_id = replies_by_id(replies)
    duplicates = {k: len(v) for k, v in by_id.items() if len(v) > 1}
    assert not duplicates, _diagnosis(duplicates, scorer)
    _same_ids(set(by_id), 20_000, scorer, "replies")
    assert len(replies) == 20_000
    # the prediction log holds every answered request exactly once, with its challenger
    logged = Counter(
        m.json()["request_id"] for m in got if m.topic == stack.topics.predictions("m")
    )
    _same_ids(set(logged), 20_000, scorer, "log records")
    assert set(logged.values()) == {1}, _diagnosis(logged, scorer)
    # and a kill landed inside a transaction: its outputs are in the log, aborted
    assert _answered_twice(written, stack.topics.replies("m")), "no kill landed mid-transaction"
    assert len(written) > len(got)


def test_at_least_once_mode_loses_nothing_under_kill_minus_nine(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    champion, challenger = trained()
    stack.add_model("m", champion, challenger)
    topics = [stack.topics.replies("m"), stack.topics.predictions("m")]
    consumer = reader(stack.kafka, topics, unique("g"))
    feed = _chunks(stack.kafka, stack.topics.requests("m"), 20_000, seed=17, size=2_000)
    scorer = ScorerProcess(stack, "a", "--guarantee", "at-least-once", "--max-batch", "200")
    watch = reader(stack.kafka, topics, unique("u"), read_committed=False)
    got, _ = _killed_three_times_then_served(scorer, consumer, watch, feed)
    log = scorer.log.read_text()
    assert "(at-least-once)" in log
    replies = replies_by_id([m for m in got if m.topic == stack.topics.replies("m")])
    logged = Counter(
        m.json()["request_id"] for m in got if m.topic == stack.topics.predictions("m")
    )
    _same_ids(set(replies), 20_000, scorer, "replies")  # every request, some perhaps twice
    _same_ids(set(logged), 20_000, scorer, "log records")
    # a second answer is the same answer (the same model version scored the same input)
    for answers in replies.values():
        assert len({(a["prediction"], a["model_version"]) for a in answers}) == 1

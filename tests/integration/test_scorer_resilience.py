"""The scorer against outputs that can never be produced and a broker that restarts: a
real broker, the scorer loop in a thread (its stats readable), read_committed readers."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from schemas.codec import Codec
from services.localstack import LocalBroker, free_port, resolve_jars, wait_gone
from services.settings import Settings
from services.synthetic import rows
from streams.kafka import KafkaConfig, Topics, TopicSpec, ensure_topics, make_admin, make_producer
from tests.integration.scoring_support import (
    SCHEMA,
    BigLabel,
    Received,
    ScorerThread,
    collect,
    collect_every_request,
    decode_reply,
    deployment,
    reader,
    send,
    take,
    trained,
)


def _json_request(kafka: KafkaConfig, topic: str, row: dict[str, Any], request_id: str,
                  reply_to: str | None = None, *, keyed: bool = True) -> None:  # fmt: skip
    headers = [("content-type", b"application/json"), ("request-id", request_id.encode())]
    if reply_to is not None:
        headers.append(("reply-to", reply_to.encode()))
    producer = make_producer(kafka, message_max_bytes=8_000_000)
    producer.produce(topic, orjson.dumps(row), request_id.encode() if keyed else None,
                     headers=headers)  # fmt: skip
    assert producer.flush(30) == 0


def _delete(admin: AdminClient, topic: str) -> None:
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result()
    deadline = time.monotonic() + 30
    while topic in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, f"{topic} is still listed"
        time.sleep(0.1)


def _until(consumer: Any, found: Callable[[list[Received]], bool], timeout: float = 30.0
           ) -> list[Received]:  # fmt: skip
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    while not found(got):
        assert time.monotonic() < deadline, f"not found in {len(got)} messages"
        got += take(consumer, 0.2)
    return got


def test_unproducible_outputs_go_to_the_dlq_and_everything_else_is_answered_once(
    kafka: KafkaConfig, unique: Callable[[str], str]
) -> None:
    """A log record over its topic's max.message.bytes, a reply over it, reply-tos outside
    the deployment's reply topics, one deleted after it was used, and a reply the broker
    refuses for a rule no check foresees (no key, to a compacted topic): each request
    goes to the DLQ with its reason, and the other requests are answered exactly once."""
    topics = Topics(unique("rs"))
    admin = make_admin(kafka)
    # Kafka's default limit, set explicitly: librdkafka does not split a batch a topic
    # refuses, so a limit below its batch.size (1 MB) would refuse batches of small records
    small = {"max.message.bytes": "1048588"}
    gateway = {name: f"{topics.prefix}.gateway-{name}.replies" for name in ("gone", "poison")}
    ensure_topics(admin, [
        *topics.model_specs("m", 3)[:2],  # requests, replies
        TopicSpec(topics.predictions("m"), 3, small),
        TopicSpec(topics.dlq("m"), 1),
        TopicSpec(topics.requests("big"), 1),
        TopicSpec(topics.replies("big"), 1, small),
        TopicSpec(topics.predictions("big"), 1, small),
        TopicSpec(topics.dlq("big"), 1),
        TopicSpec(gateway["gone"], 1),
        TopicSpec(gateway["poison"], 1, {"cleanup.policy": "compact"}),
    ])  # fmt: skip
    champion, _ = trained()
    good = list(rows(400, seed=21))
    requests = topics.requests("m")
    everything = [topics.replies("m"), topics.predictions("m"), topics.dlq("m"),
                  topics.replies("big"), topics.dlq("big"), gateway["gone"]]  # fmt: skip
    consumer = reader(kafka, everything, unique("g"))
    deployments = [deployment("m", champion), deployment("big", BigLabel(champion, 600_000))]
    started = time.monotonic()
    with ScorerThread(kafka, topics, deployments, transaction_timeout_ms=4_000) as scorer:
        _json_request(kafka, requests, good[0], "gone-1", gateway["gone"])
        got = _until(consumer, lambda g: any(m.topic == gateway["gone"] for m in g))
        _delete(admin, gateway["gone"])  # the scorer trusts it exists for a minute
        _json_request(kafka, requests, good[1], "gone-2", gateway["gone"])
        send(kafka, requests, good[2:200], start=2)
        _json_request(kafka, requests, good[1], "poison", gateway["poison"], keyed=False)
        send(kafka, requests, good[200:], start=200)
        _json_request(kafka, requests, good[1] | {"group": "g" * 600_000}, "big-log")
        for target in (topics.dlq("m"), "elsewhere.m.replies", f"{topics.prefix}.nope.replies"):
            _json_request(kafka, requests, good[1], f"to:{target}", target)
        _json_request(kafka, topics.requests("big"), good[1], "big-reply")
        # replies and log records of r2...r399, big-log's reply, gone-1's reply and log
        # record, six DLQ entries of m, big-reply's error reply and its two DLQ entries
        got += collect(consumer, 2 * 398 + 1 + 2 + 6 + 1 + 2 - len(got), timeout=150)
    elapsed = time.monotonic() - started
    by_topic: dict[str, list[Received]] = {}
    for message in got:
        by_topic.setdefault(message.topic, []).append(message)
    dlq = {m.headers["ms-request-id"].decode(): m.headers for m in by_topic[topics.dlq("m")]}
    assert {k: v["ms-reason"].decode() for k, v in dlq.items()} == {
        "gone-2": "bad_reply_to",
        "poison": "unproducible",
        "big-log": "log_too_large",
        f"to:{topics.dlq('m')}": "bad_reply_to",
        "to:elsewhere.m.replies": "bad_reply_to",
        f"to:{topics.prefix}.nope.replies": "bad_reply_to",
    }, (dlq, scorer.stats, elapsed)
    assert gateway["poison"].encode() in dlq["poison"]["ms-error"], dlq["poison"]
    # everything else answered once, and logged once
    replied = Counter(decode_reply(m)["request_id"] for m in by_topic[topics.replies("m")])
    expected = {f"r{i}" for i in range(2, 400)} | {"big-log"}
    assert set(replied) == expected and set(replied.values()) == {1}, replied
    logged = Counter(m.json()["request_id"] for m in by_topic[topics.predictions("m")])
    assert set(logged) == {f"r{i}" for i in range(2, 400)} | {"gone-1"}, logged
    assert set(logged.values()) == {1}
    # the reply too large for its topic: an error reply and a DLQ entry; its log record too
    (error,) = [decode_reply(m) for m in by_topic[topics.replies("big")]]
    assert error["error"]["code"] == "reply_too_large" and error["request_id"] == "big-reply"
    reasons = sorted(m.headers["ms-reason"].decode() for m in by_topic[topics.dlq("big")])
    assert reasons == ["log_too_large", "reply_too_large"]
    stats = scorer.stats
    assert stats["in"] == stats["out"] + stats["dlq"] == 406, stats
    assert stats["log_dlq"] == 2 and stats["isolated"] == 1, stats


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own (the session's is shared): pinned ports, so that a
    restart comes back where the clients look for it."""
    settings = Settings()
    libs = resolve_jars(settings.kafka_version, settings.cache_dir)
    broker = LocalBroker(tmp_path / "kafka", libs, port=free_port(), controller_port=free_port(),
                         heap_mb=384)  # fmt: skip
    broker.start(timeout=120)
    yield broker
    broker.stop()


class Load(threading.Thread):
    """``total`` requests, ``per_tick`` every ``tick`` seconds, from one idempotent
    producer that buffers while the broker is away."""

    def __init__(self, kafka: KafkaConfig, topic: str, total: int, per_tick: int = 50,
                 tick: float = 0.05) -> None:  # fmt: skip
        super().__init__(name="load", daemon=True)
        self.producer = make_producer(kafka, message_timeout_ms=120_000)
        self.topic, self.total, self.per_tick, self.tick = topic, total, per_tick, tick
        self.rows = list(rows(total, seed=31))
        self.sent = 0

    def run(self) -> None:
        codec = Codec(SCHEMA)
        for i, row in enumerate(self.rows):
            self.producer.produce(self.topic, codec.encode_avro(row), f"r{i}".encode())
            self.sent += 1
            if self.sent % self.per_tick == 0:
                self.producer.poll(0)
                time.sleep(self.tick)
        assert self.producer.flush(120) == 0


def test_a_broker_restart_mid_run_loses_and_duplicates_nothing(
    own_broker: LocalBroker, unique: Callable[[str], str]
) -> None:
    bootstrap = own_broker.status().bootstrap
    assert bootstrap is not None
    kafka = KafkaConfig(bootstrap, client_id="restart")
    topics = Topics(unique("rb"))
    ensure_topics(make_admin(kafka), topics.model_specs("m", 3))
    champion, challenger = trained()
    total = 3_000
    load = Load(kafka, topics.requests("m"), total)
    with ScorerThread(kafka, topics, [deployment("m", champion, challenger)],
                      max_batch=100, transaction_timeout_ms=5_000) as scorer:  # fmt: skip
        load.start()
        while load.sent < total // 3:
            time.sleep(0.01)
        down, sent_before = time.monotonic(), load.sent
        pid = own_broker.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # no controlled shutdown: transactions die mid-flight
        assert wait_gone(pid, 30)
        own_broker.start(timeout=120)
        downtime = time.monotonic() - down
        load.join(120)
        assert not load.is_alive()
        both = [topics.replies("m"), topics.predictions("m")]
        got = collect_every_request(reader(kafka, both, unique("g")), total)
    replies = Counter(decode_reply(m)["request_id"] for m in got if m.topic == both[0])
    logged = Counter(m.json()["request_id"] for m in got if m.topic == both[1])
    expected = {f"r{i}" for i in range(total)}
    stats = scorer.stats
    assert set(replies) == expected and set(replies.values()) == {1}, (stats, downtime)
    assert set(logged) == expected and set(logged.values()) == {1}, (stats, downtime)
    assert stats["in"] == stats["out"] == total and "dlq" not in stats, stats
    assert sent_before < total, "the broker went down mid-run"
    print(f"broker down {downtime:.1f} s after {sent_before} of {total} requests; {stats}")

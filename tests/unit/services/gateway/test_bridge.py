"""The Kafka bridge's request bookkeeping without a broker: a fake producer in place of
librdkafka's, replies handed to the loop as the reader thread would. What must hold:
no future outlives its call whatever ``produce()`` does, a record that can never be
produced is refused before it is queued, and a reply answers only the request that
sent it (its nonce, its model, its request id), however callers name their requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException

from services.gateway.bridge import TIMEOUT, BridgeConfig, KafkaBridge, PublishError, _parse
from streams.kafka import KafkaConfig, Topics

TOPIC = "acme.m.requests"


class Producer:
    """Records what was produced; ``fail`` maps a request id to what produce() raises."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, list[tuple[str, bytes]], bytes]] = []
        self.fail: dict[str, BaseException] = {}

    def produce(self, topic: str, value: bytes, key: bytes, headers: Any, on_delivery: Any
                ) -> None:  # fmt: skip
        rid = dict(headers)["request-id"].decode()
        if rid in self.fail:
            raise self.fail[rid]
        self.sent.append((key, headers, value))

    def poll(self, timeout: float) -> int:
        return 0


class Message:
    """A reply as the reader thread consumes it."""

    def __init__(self, key: bytes, value: bytes) -> None:
        self._key, self._value = key, value

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "acme.gateway-0.replies"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0


@pytest.fixture
def bridge() -> Iterator[KafkaBridge]:
    bridge = KafkaBridge(KafkaConfig("127.0.0.1:1"), BridgeConfig(Topics("acme")))
    bridge._producer = Producer()  # type: ignore[assignment]
    bridge._known_topics.add(TOPIC)
    yield bridge
    bridge._consumer.close()


def serve(bridge: KafkaBridge, calls: list[tuple[str, list[str]]], replies: Any = None,
          timeout: float = 0.2) -> list[list[Any]]:  # fmt: skip
    """Run ``calls`` (model, request ids) at once; ``replies(sent)`` answers them, as the
    reader thread would, once everything was produced."""

    async def main() -> list[list[Any]]:
        bridge._loop = asyncio.get_running_loop()
        tasks = [asyncio.ensure_future(bridge.request_many(
            model, [(rid, b'{"x": 1}') for rid in ids], f"client-{n}", timeout))
            for n, (model, ids) in enumerate(calls)]  # fmt: skip
        await asyncio.sleep(0)  # every call produced (produce is synchronous)
        if replies is not None:
            bridge._resolve([_parse(m) for m in replies(bridge._producer.sent)])  # type: ignore[misc]
        return list(await asyncio.gather(*tasks))

    return asyncio.run(main())


def reply_to(key: bytes, headers: list[tuple[str, bytes]], model: str = "m",
             rid: str | None = None) -> Message:  # fmt: skip
    """The scorer's reply: keyed like its request, naming its model and request id."""
    rid = rid or dict(headers)["request-id"].decode()
    return Message(key, orjson.dumps({"request_id": rid, "model": model, "prediction": rid}))


def test_a_produce_that_raises_fails_that_request_alone_and_leaves_nothing_behind(
    bridge: KafkaBridge,
) -> None:
    producer: Producer = bridge._producer  # type: ignore[assignment]
    too_big = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    producer.fail = {"b": BufferError("Local: Queue full"), "c": too_big}
    (outcomes,) = serve(
        bridge,
        [("m", ["a", "b", "c", "d"])],
        lambda sent: [reply_to(key, headers) for key, headers, _ in sent],
    )
    assert outcomes[0]["prediction"] == "a" and outcomes[3]["prediction"] == "d"
    assert isinstance(outcomes[1], PublishError) and outcomes[1].code == "queue_full"
    assert isinstance(outcomes[2], PublishError) and outcomes[2].code == "msg_size_too_large"
    assert bridge._pending == {}


def test_timeouts_leave_nothing_behind(bridge: KafkaBridge) -> None:
    (outcomes,) = serve(bridge, [("m", ["a", "b"])], timeout=0.01)
    assert outcomes == [TIMEOUT, TIMEOUT] and bridge._pending == {}


def test_a_record_too_large_for_kafka_is_refused_before_it_is_produced(
    bridge: KafkaBridge,
) -> None:
    assert bridge.max_record_bytes == 1_000_000 - 4_096

    async def main() -> list[Any]:
        bridge._loop = asyncio.get_running_loop()
        big = b"x" * (bridge.max_record_bytes + 1)
        return await bridge.request_many("m", [("big", big)], "alice", 0.01)

    (outcome,) = asyncio.run(main())
    assert isinstance(outcome, PublishError) and outcome.code == "message_too_large"
    assert bridge._producer.sent == [] and bridge._pending == {}  # type: ignore[attr-defined]


def test_two_clients_with_the_same_request_id_each_get_their_own_reply(
    bridge: KafkaBridge,
) -> None:
    def answer(sent: list[Any]) -> list[Message]:
        (key_a, headers_a, _), (key_b, headers_b, _) = sent
        assert key_a != key_b  # keyed by the gateway's nonces, not by the caller's id
        assert dict(headers_a)["request-id"] == dict(headers_b)["request-id"] == b"same"
        return [Message(key_b, orjson.dumps({"request_id": "same", "model": "m",
                                             "prediction": "for-b"})),
                Message(key_a, orjson.dumps({"request_id": "same", "model": "m",
                                             "prediction": "for-a"}))]  # fmt: skip

    first, second = serve(bridge, [("m", ["same"]), ("m", ["same"])], answer)
    assert first[0]["prediction"] == "for-a" and second[0]["prediction"] == "for-b"
    assert bridge._pending == {}


@pytest.mark.parametrize(("model", "rid"), [("other", None), ("m", "someone-else")])
def test_a_reply_naming_another_model_or_request_is_not_taken(
    bridge: KafkaBridge, model: str, rid: str | None
) -> None:
    (outcomes,) = serve(bridge, [("m", ["a"])],
                        lambda sent: [reply_to(k, h, model, rid) for k, h, _ in sent],
                        timeout=0.05)  # fmt: skip
    assert outcomes == [TIMEOUT]
    assert bridge.stats["mismatched"] == 1 and bridge._pending == {}


def test_a_reply_that_is_not_json_is_dropped_by_the_reader() -> None:
    assert _parse(Message(b"n-1", b"\x00avro")) is None  # type: ignore[arg-type]
    assert _parse(Message(b"", b"{}")) is None  # type: ignore[arg-type]
    assert _parse(Message(b"n-1", b'{"model": "m"}')) == ("n-1", {"model": "m"})  # type: ignore[arg-type]

"""HTTP requests onto Kafka and their replies back: one producer and one reply consumer
shared by every request of this gateway instance.

A request is published to ``<prefix>.<model>.requests`` keyed by its request id, with a
``reply-to`` header naming this instance's reply topic (``<prefix>.gateway-<id>.replies``,
created at start). A reader thread consumes that topic (``read_committed``: a reply is
seen once its scorer transaction committed, so it is seen once) and resolves the waiting
request's future on the event loop, one hop per consumed batch. Nothing is allocated per
request beyond the future: no per-request consumers, no polling per request.

The reader is assigned every partition of the reply topic at its current end offsets,
taken before the gateway reports ready, so no reply to a request sent after start is
missed. Replies to requests that already timed out are dropped and counted (``late``).

Errors::

    BridgeError
    ├── PublishError      the request could not be written (no such topic, not authorised)
    └── BridgeClosedError the bridge is stopping or was never started
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from streams.kafka import (
    KafkaConfig,
    Topics,
    TopicSpec,
    ensure_topics,
    make_admin,
    producer_config,
    reply_reader_config,
)

__all__ = ["BridgeClosedError", "BridgeConfig", "BridgeError", "KafkaBridge", "OneRequest",
           "PublishError"]  # fmt: skip

log = logging.getLogger(__name__)
TIMEOUT = object()  # what request_many returns for a request whose reply did not come


class BridgeError(Exception):
    """Root of the bridge's errors."""


class PublishError(BridgeError):
    """Kafka refused or lost the request; ``code`` is librdkafka's error name."""

    def __init__(self, message: str, code: str = "publish_failed") -> None:
        super().__init__(message)
        self.code = code


class BridgeClosedError(BridgeError):
    """The bridge is not running."""


@dataclass(frozen=True)
class BridgeConfig:
    """How this gateway instance talks to Kafka."""

    topics: Topics
    instance_id: str = "0"
    reply_partitions: int = 1  # one reader per instance: one partition is plenty
    model_partitions: int = 3  # for a model's topic set, when the gateway creates it
    reply_retention_ms: int = 3_600_000  # replies are read within seconds or never
    publish_timeout_ms: int = 10_000
    # read_committed (default): a reply is seen once its scorer transaction committed,
    # exactly once. False answers as soon as the scorer wrote the reply, a commit round
    # trip earlier; a reply of a batch that is then aborted may be seen, and the replayed
    # batch's reply is dropped as late (the HTTP client still gets one answer).
    read_committed: bool = True

    @property
    def reply_topic(self) -> str:
        return self.topics.model_topic(f"gateway-{self.instance_id}", "replies")


class OneRequest:
    """``request`` (one record) for a serving backend built on ``request_many``."""

    async def request_many(
        self, model: str, requests: Sequence[tuple[str, bytes]], client_id: str, timeout: float
    ) -> list[Any]:
        raise NotImplementedError

    async def request(
        self, model: str, value: bytes, request_id: str, client_id: str, timeout: float
    ) -> dict[str, Any] | None:
        """Serve one request and wait for its reply; None when none came in time."""
        (reply,) = await self.request_many(model, [(request_id, value)], client_id, timeout)
        if isinstance(reply, PublishError):
            raise reply
        return None if reply is TIMEOUT else reply  # type: ignore[no-any-return]  # a dict


class KafkaBridge(OneRequest):
    """Publish requests, await their replies (see the module docstring)."""

    mode = "kafka"  # services.gateway.context.VIA_KAFKA

    def __init__(self, kafka: KafkaConfig, config: BridgeConfig) -> None:
        self.config = config
        self.topics = config.topics
        self.stats: Counter[str] = Counter()
        self._kafka = kafka
        self._admin = make_admin(kafka)
        self._producer = Producer(
            producer_config(
                kafka, message_timeout_ms=config.publish_timeout_ms,
                client_id=f"{kafka.client_id}-gateway",
            )
        )  # fmt: skip
        group = f"{config.topics.prefix}.gateway-{config.instance_id}"
        self._consumer = Consumer(
            reply_reader_config(kafka, group, read_committed=config.read_committed)
        )
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._known_topics: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def kafka(self) -> KafkaConfig:
        """The connection settings this bridge uses (the catalogue shows their bootstrap
        servers and security protocol, never the credentials)."""
        return self._kafka

    # -- life cycle

    def ensure_topics(self, timeout: float = 30.0) -> None:
        """Create this instance's reply topic and the clients topic when missing."""
        topics = self.config.topics
        reply = TopicSpec(
            self.config.reply_topic, self.config.reply_partitions,
            {"retention.ms": str(self.config.reply_retention_ms)},
            replication=topics.replication,
        )  # fmt: skip
        clients = [spec for spec in topics.global_specs(1) if spec.name == topics.clients]
        ensure_topics(self._admin, [reply, *clients], timeout)

    def start(self, loop: asyncio.AbstractEventLoop, timeout: float = 30.0) -> None:
        """Assign the reply topic at its end, start the reader and the delivery poller."""
        self._consumer.assign(self._end_offsets(self.config.reply_topic, timeout))
        self._loop = loop
        for name, target in (("reply-reader", self._read), ("delivery-poller", self._deliver)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _end_offsets(self, topic: str, timeout: float) -> list[TopicPartition]:
        metadata = self._consumer.list_topics(topic, timeout=timeout)
        partitions = sorted(metadata.topics[topic].partitions)
        ends = []
        for partition in partitions:
            tp = TopicPartition(topic, partition)
            _, high = self._consumer.get_watermark_offsets(tp, timeout, cached=False)
            ends.append(TopicPartition(topic, partition, high))
        return ends

    @property
    def ready(self) -> bool:
        return self._loop is not None and all(t.is_alive() for t in self._threads)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)
        self._producer.flush(5.0)
        self._consumer.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BridgeClosedError("the gateway is shutting down"))

    # -- requests

    async def request_many(
        self, model: str, requests: Sequence[tuple[str, bytes]], client_id: str, timeout: float
    ) -> list[Any]:
        """Publish requests and wait up to ``timeout`` for all replies, in input order.

        Each item is the reply (a dict), :data:`TIMEOUT`, or the :class:`PublishError`
        Kafka answered for that request."""
        loop = self._loop
        if loop is None or self._stop.is_set():
            raise BridgeClosedError("the gateway's Kafka bridge is not running")
        topic = await self._requests_topic(model)
        futures: list[asyncio.Future[bytes]] = []
        try:
            for rid, value in requests:
                futures.append(self._publish(loop, topic, rid, value, client_id))
            if futures:
                await asyncio.wait(futures, timeout=timeout)
        finally:
            for (rid, _), future in zip(requests, futures, strict=False):
                if self._pending.get(rid) is future:
                    del self._pending[rid]
        return [self._outcome(future) for future in futures]

    def _outcome(self, future: asyncio.Future[bytes]) -> Any:
        if not future.done():
            future.cancel()
            self.stats["timeouts"] += 1
            return TIMEOUT
        failure = future.exception()
        if isinstance(failure, PublishError):
            return failure
        if failure is not None:  # the bridge closed under the request
            return PublishError(str(failure), "not_ready")
        self.stats["replied"] += 1
        return orjson.loads(future.result())

    def _publish(
        self, loop: asyncio.AbstractEventLoop, topic: str, rid: str, value: bytes, client: str
    ) -> asyncio.Future[bytes]:
        if rid in self._pending:
            raise PublishError(f"request id {rid!r} is already in flight", "duplicate_request_id")
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending[rid] = future
        headers = [
            ("content-type", b"application/json"),
            ("reply-to", self.config.reply_topic.encode()),
            ("client-id", client.encode()),
            ("request-id", rid.encode()),
        ]
        self._produce(topic, value, rid.encode(), headers, partial(self._delivered, rid))
        self.stats["sent"] += 1
        return future

    def publish_dlq(self, model: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Record a request the gateway refused on the model's DLQ (fire and forget)."""
        self._produce(self.config.topics.dlq(model), value, None, headers, self._dlq_delivered)

    def _produce(self, topic: str, value: bytes, key: bytes | None, headers: Any, cb: Any) -> None:
        try:
            self._producer.produce(topic, value, key, headers=headers, on_delivery=cb)
        except BufferError:  # the local queue is full: give the poller a moment, once
            self._producer.poll(0.05)
            self._producer.produce(topic, value, key, headers=headers, on_delivery=cb)
        except KafkaException as exc:
            raise PublishError(f"could not publish to {topic}: {exc}") from exc

    async def _requests_topic(self, model: str) -> str:
        """The model's requests topic, created with its topic set on first use."""
        topic = self.config.topics.requests(model)
        if topic not in self._known_topics:
            specs = self.config.topics.model_specs(model, self.config.model_partitions)
            try:
                await asyncio.to_thread(ensure_topics, self._admin, specs, 10)
            except Exception as exc:  # any admin failure means: this gateway cannot publish
                raise _topic_error(model, topic, exc) from exc
            self._known_topics.add(topic)
        return topic

    # -- threads

    def _read(self) -> None:
        """Reader thread: consume replies, hand each batch to the event loop at once."""
        assert self._loop is not None
        while not self._stop.is_set():
            try:
                # consume(n, timeout) waits for n messages or the timeout: block only for
                # the first, then take what is already there
                first = self._consumer.poll(0.1)
                if first is None:
                    continue
                messages = [first, *self._consumer.consume(1_000, 0)]
            except KafkaException as exc:
                log.warning("reply consumer: %s", exc)
                continue
            replies = [(m.key(), m.value()) for m in messages if _ok(m)]
            if replies:
                self._loop.call_soon_threadsafe(self._resolve, replies)

    def _resolve(self, replies: list[tuple[bytes | None, bytes | None]]) -> None:
        for key, value in replies:
            future = self._pending.get(key.decode("utf-8", "replace")) if key else None
            if future is None or future.done():
                self.stats["late"] += 1
            else:
                future.set_result(value or b"null")

    def _deliver(self) -> None:
        """Poller thread: serve delivery reports (failures resolve their request)."""
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def _delivered(self, rid: str, error: KafkaError | None, message: Message) -> None:
        if error is None or self._loop is None:
            return
        code = error.name().lower()
        failure = PublishError(f"Kafka did not accept the request: {error.str()}", code)
        self._loop.call_soon_threadsafe(self._fail, rid, failure)

    def _fail(self, rid: str, failure: PublishError) -> None:
        future = self._pending.get(rid)
        if future is not None and not future.done():
            future.set_exception(failure)
        self.stats["publish_failed"] += 1

    def _dlq_delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            log.error("could not record a refused request on %s: %s", message.topic(), error)


def _topic_error(model: str, topic: str, exc: Exception) -> PublishError:
    if "AUTHORIZATION" in str(exc).upper():
        return PublishError(
            f"this gateway's Kafka principal may not use {topic} (topic authorization "
            f"failed): grant it the gateway role for the model, e.g. `modelstream kafka acls "
            f"grant USER --role gateway --model {model}`",
            "topic_authorization_failed",
        )
    return PublishError(
        f"the topics of model {model!r} do not exist and could not be created ({exc}); "
        f"run `modelstream topics create --model {model}`",
        "no_topic",
    )


def _ok(message: Message) -> bool:
    error = message.error()
    if error is not None and error.code() != KafkaError._PARTITION_EOF:
        log.warning("reply consumer error: %s", error)
    return error is None

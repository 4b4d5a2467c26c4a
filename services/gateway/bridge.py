"""HTTP requests onto Kafka and their replies back: one producer and one reply consumer
shared by every request of this gateway instance.

A request is published to ``<prefix>.<model>.requests`` keyed by a nonce the gateway
makes (random per process, then a counter), with ``request-id`` the caller's request id
and a ``reply-to`` header naming this instance's reply topic
(``<prefix>.gateway-<id>.replies``, created at start). The scorer keys its reply with the
request's key, so a reply finds its request by the nonce, never by a caller's id: two
clients sending the same ``X-Request-Id`` never meet, and a reply is taken only when its
``model`` and ``request_id`` are the ones sent (else it is dropped and counted,
``mismatched``). A reader thread consumes that topic (``read_committed``: a reply is seen
once its scorer transaction committed, so it is seen once), parses each reply off the
event loop and resolves the waiting request's future on the loop, one hop per consumed
batch. Nothing is allocated per request beyond the future: no per-request consumers, no
polling per request.

A request is one Kafka message: a record larger than :attr:`KafkaBridge.max_record_bytes`
(the producer's ``message.max.bytes`` less room for the key and headers) is refused
before anything is queued (the routes answer 413). A ``produce()`` that raises (queue
full, message too large) fails that request alone, and its future is never left behind.

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
import itertools
import logging
import os
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
RECORD_OVERHEAD = 4_096  # key, headers (topic names, ids) and framing of one request record
_PROCESS = os.urandom(8).hex()  # nonces of two gateway processes never meet
_Pending = tuple[str, str, "asyncio.Future[Any]"]  # model, the caller's request id, future


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
    max_message_bytes: int = 1_000_000  # the producer's message.max.bytes (librdkafka's default)
    # read_committed (default): a reply is seen once its scorer transaction committed,
    # exactly once. False answers as soon as the scorer wrote the reply, a commit round
    # trip earlier; a reply of a batch that is then aborted may be seen, and the replayed
    # batch's reply is dropped as late (the HTTP client still gets one answer).
    read_committed: bool = True

    @property
    def reply_topic(self) -> str:
        return self.topics.model_topic(f"gateway-{self.instance_id}", "replies")

    @property
    def max_record_bytes(self) -> int:
        """The largest request record that can be produced: the message limit less room
        for the key, the headers and the record's framing."""
        return self.max_message_bytes - RECORD_OVERHEAD


class OneRequest:
    """``request`` (one record) for a serving backend built on ``request_many``."""

    async def request_many(
        self, model: str, requests: Sequence[tuple[str, bytes]], client_id: str, timeout: float
    ) -> list[Any]:
        raise NotImplementedError

    max_record_bytes: int = 1_000_000  # the largest request record a backend can take

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
        self.max_record_bytes = config.max_record_bytes
        self._producer = Producer(
            producer_config(
                kafka, message_timeout_ms=config.publish_timeout_ms,
                message_max_bytes=config.max_message_bytes,
                client_id=f"{kafka.client_id}-gateway",
            )
        )  # fmt: skip
        group = f"{config.topics.prefix}.gateway-{config.instance_id}"
        self._consumer = Consumer(
            reply_reader_config(kafka, group, read_committed=config.read_committed)
        )
        self._pending: dict[str, _Pending] = {}
        self._nonces = itertools.count()
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
        for _, _, future in self._pending.values():
            if not future.done():
                future.set_exception(BridgeClosedError("the gateway is shutting down"))

    # -- requests

    async def request_many(
        self, model: str, requests: Sequence[tuple[str, bytes]], client_id: str, timeout: float
    ) -> list[Any]:
        """Publish requests and wait up to ``timeout`` for all replies, in input order.

        Each item is the reply (a dict), :data:`TIMEOUT`, or the :class:`PublishError`
        Kafka (or the local producer) answered for that request. Whatever happens, no
        future of these requests is left in ``_pending``."""
        loop = self._loop
        if loop is None or self._stop.is_set():
            raise BridgeClosedError("the gateway's Kafka bridge is not running")
        topic = await self._requests_topic(model)
        sent: list[tuple[str, asyncio.Future[Any]]] = []
        try:
            for rid, value in requests:
                sent.append(self._publish(loop, topic, model, rid, value, client_id))
            if sent:
                await asyncio.wait([future for _, future in sent], timeout=timeout)
        finally:
            for nonce, future in sent:
                pending = self._pending.get(nonce)
                if pending is not None and pending[2] is future:
                    del self._pending[nonce]
        return [self._outcome(future) for _, future in sent]

    def _outcome(self, future: asyncio.Future[Any]) -> Any:
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
        return future.result()

    def _publish(
        self, loop: asyncio.AbstractEventLoop, topic: str, model: str, rid: str, value: bytes,
        client: str,
    ) -> tuple[str, asyncio.Future[Any]]:  # fmt: skip
        """Produce one request; its future, registered under a fresh nonce only once
        ``produce()`` took the message (a refusal resolves the future at once)."""
        nonce = f"{_PROCESS}-{next(self._nonces):x}"
        future: asyncio.Future[Any] = loop.create_future()
        if len(value) > self.max_record_bytes:
            future.set_exception(PublishError(too_large(len(value), self.max_record_bytes),
                                              "message_too_large"))  # fmt: skip
            return nonce, future
        headers = [
            ("content-type", b"application/json"),
            ("reply-to", self.config.reply_topic.encode()),
            ("client-id", client.encode()),
            ("request-id", rid.encode()),
        ]
        try:  # delivery reports run on the poller and reach the loop later: no race
            self._produce(topic, value, nonce.encode(), headers, partial(self._delivered, nonce))
        except PublishError as exc:
            future.set_exception(exc)
            self.stats["publish_failed"] += 1
            return nonce, future
        self._pending[nonce] = (model, rid, future)
        self.stats["sent"] += 1
        return nonce, future

    def publish_dlq(self, model: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Record a request the gateway refused on the model's DLQ (fire and forget)."""
        self._produce(self.config.topics.dlq(model), value, None, headers, self._dlq_delivered)

    def _produce(self, topic: str, value: bytes, key: bytes | None, headers: Any, cb: Any) -> None:
        """``produce()``, its failures as :class:`PublishError` (a full local queue is
        given one moment to drain)."""
        try:
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=cb)
            except BufferError:  # the local queue is full: give the poller a moment, once
                self._producer.poll(0.05)
                self._producer.produce(topic, value, key, headers=headers, on_delivery=cb)
        except BufferError as exc:
            raise PublishError(f"the gateway's Kafka queue is full ({exc}); retry shortly",
                               "queue_full") from exc  # fmt: skip
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            code = error.name().lower() if isinstance(error, KafkaError) else "publish_failed"
            raise PublishError(f"could not publish to {topic}: {exc}", code) from exc

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
            replies = [reply for m in messages if _ok(m) and (reply := _parse(m)) is not None]
            if replies:
                self._loop.call_soon_threadsafe(self._resolve, replies)

    def _resolve(self, replies: list[tuple[str, dict[str, Any]]]) -> None:
        """Hand each reply to the request it names: the nonce it is keyed by, and the
        same model and request id (a reply that names another is dropped, counted)."""
        for nonce, reply in replies:
            pending = self._pending.get(nonce)
            if pending is None or pending[2].done():
                self.stats["late"] += 1
            elif not _answers(reply, pending[0], pending[1]):
                self.stats["mismatched"] += 1
                log.warning("dropped a reply keyed %s: it names model %r request %r, not "
                            "the request sent", nonce, reply.get("model"),
                            reply.get("request_id"))  # fmt: skip
            else:
                pending[2].set_result(reply)

    def _deliver(self) -> None:
        """Poller thread: serve delivery reports (failures resolve their request)."""
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def _delivered(self, nonce: str, error: KafkaError | None, message: Message) -> None:
        if error is None or self._loop is None:
            return
        code = error.name().lower()
        failure = PublishError(f"Kafka did not accept the request: {error.str()}", code)
        self._loop.call_soon_threadsafe(self._fail, nonce, failure)

    def _fail(self, nonce: str, failure: PublishError) -> None:
        pending = self._pending.get(nonce)
        if pending is not None and not pending[2].done():
            pending[2].set_exception(failure)
        self.stats["publish_failed"] += 1

    def _dlq_delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            log.error("could not record a refused request on %s: %s", message.topic(), error)


def too_large(size: int, most: int) -> str:
    """Why a record of ``size`` bytes cannot be served.

    >>> too_large(2_000_000, 995_904)
    'a record of 2000000 bytes cannot be sent to Kafka: at most 995904 bytes per record'
    """
    return f"a record of {size} bytes cannot be sent to Kafka: at most {most} bytes per record"


def _parse(message: Message) -> tuple[str, dict[str, Any]] | None:
    """``(nonce, reply)`` of a reply message (reader thread), None for one that is not
    a JSON reply keyed by a nonce (logged)."""
    key, value = message.key(), message.value()
    try:
        reply = orjson.loads(value or b"null")
    except orjson.JSONDecodeError:
        reply = None
    if not key or not isinstance(reply, dict):
        log.warning("reply %s[%d]@%d is not a JSON reply keyed by a request; dropped",
                    message.topic(), message.partition(), message.offset())  # fmt: skip
        return None
    return key.decode("utf-8", "replace"), reply


def _answers(reply: dict[str, Any], model: str, rid: str) -> bool:
    """Whether ``reply`` answers the request of ``rid`` to ``model``.

    >>> _answers({"model": "m", "request_id": "r"}, "m", "r")
    True
    >>> _answers({"model": "other", "request_id": "r"}, "m", "r")
    False
    """
    return reply.get("model") == model and reply.get("request_id") == rid


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

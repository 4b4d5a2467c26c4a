"""Direct serving: the gateway scores in-process with the scorer's own core, and every
answer is durable in Kafka before it is sent.

Path of a request (``request_many`` on the event loop; one scoring thread; one delivery
poller; one journal writer)::

    handler ─► queue ─► scoring thread: take all that is queued (≤ max_batch), per model:
                 decode (the model's codec, as the scorer does) → champion (+ backup)
                 → the reply, and the prediction-log record less the challenger
                 → that record onto this gateway's journal (idempotent, acks=all)
                 → the sampled rows to the challenger's worker (never waited for)
    poller: journal acks ─► the waiting handlers (one hop to the loop per poll)
    journal writer (services.gateway.journal): journal ─► the model's prediction log,
                 each record completed with the challenger's outcome, in transactions
                 that also commit the journal offsets: exactly once

So an answered request is always in the journal, and every journal record lands in the
prediction log once, with the challenger's outcome (scored, failed, or timed out at its
deadline): the challenger never delays an answer and is never left out of the log. The
journal plays the part of the scorer's committed replies: after a crash, the next
gateway with the same ``--instance`` goes on from the committed journal offset and
scores the challenger again for the records it had not logged (``gateway_restarted``
when that challenger version is no longer deployed).

Models come from the registry, followed live by the scorer's own
:class:`~services.scorer.RegistryFollower`: a promotion reaches the gateway as fast as it
reaches a scorer, and is picked up at the next micro-batch.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schemas.codec import JSON, DecodeError
from services.gateway.bridge import (
    TIMEOUT,
    BridgeClosedError,
    OneRequest,
    PublishError,
    _topic_error,
)
from services.gateway.journal import SHADOW_HEADER, JournalWriter, WaitingShadows, parse_tag
from services.registry import RegistryView, Trust
from services.scorer import RegistryFollower
from streams.kafka import KafkaConfig, Topics, TopicSpec, ensure_topics, make_admin
from streams.kafka import producer_config as base_producer_config
from streams.scoring import Deployment, DeploymentTable, Frame, ServingPolicy, score, shadow
from streams.scoring.envelope import Request, dlq_headers
from streams.scoring.outcome import Outcome
from streams.scoring.records import error_reply, log_record, reply_record

__all__ = ["DirectConfig", "DirectServer"]

log = logging.getLogger(__name__)
JSON_HEADERS = [("content-type", b"application/json")]
# A model call costs the same for 1 row as for 30 (scikit-learn checks its input per
# call), and so do the thread hops around it. HTTP requests reach the scoring thread many
# at a time; gRPC calls one by one (its poller hands each call to the loop alone). So
# when the last batch ended less than BUSY_S ago and fewer than GATHER_BELOW wait, the
# thread waits GATHER_S for more first: never when idle, at most 1 ms when busy.
GATHER_BELOW, BUSY_S, GATHER_S = 8, 0.005, 0.001


@dataclass(frozen=True)
class DirectConfig:
    """How a direct-serving gateway scores and journals."""

    topics: Topics
    instance_id: str = "0"
    model_partitions: int = 3  # for a model's topic set, when the gateway creates it
    policy: ServingPolicy = field(default_factory=ServingPolicy)
    max_batch: int = 1_000  # requests scored together
    journal_retention_ms: int = 7 * 86_400_000  # how long a crashed gateway may stay down
    publish_timeout_ms: int = 10_000
    max_message_bytes: int = 1_000_000  # the journal producer's message.max.bytes

    @property
    def max_record_bytes(self) -> int:
        """The largest request record whose journal record can be produced: that record
        holds the decoded features and may copy them again (``sensitive``), plus the
        outputs, so half the message limit, less room for the rest."""
        return (self.max_message_bytes - 65_536) // 2

    @property
    def journal_topic(self) -> str:
        return self.topics.model_topic(f"gateway-{self.instance_id}", "journal")

    @property
    def source(self) -> str:
        """What the prediction log names as the source of a refused record."""
        return f"http:gateway-{self.instance_id}"


@dataclass(slots=True)
class _Item:
    """One request between its handler and its answer."""

    model: str
    rid: str
    raw: bytes
    client: str
    future: asyncio.Future[Any]
    queued: float  # perf_counter when it was queued
    reply: dict[str, Any] | None = None


class DirectServer(OneRequest):
    """Score in this process, journal before answering (see the module docstring)."""

    mode = "direct"  # services.gateway.context.DIRECT

    def __init__(
        self, kafka: KafkaConfig, config: DirectConfig, trust: Trust | None = None
    ) -> None:
        self.config = config
        self.topics = config.topics
        self.stats: Counter[str] = Counter()
        self._kafka = kafka
        self._admin = make_admin(kafka)
        self.table = DeploymentTable()
        self._follower = RegistryFollower(
            RegistryView(kafka, config.topics, trust=trust), self.table
        )
        self.max_record_bytes = config.max_record_bytes
        self._producer = Producer(
            base_producer_config(
                kafka, message_timeout_ms=config.publish_timeout_ms,
                message_max_bytes=config.max_message_bytes,
                client_id=f"{kafka.client_id}-gateway-journal",
            )
        )  # fmt: skip
        self._shadows = WaitingShadows(epoch=os.urandom(4).hex())
        self._writer = JournalWriter(kafka, config, self.table, self._shadows)
        self._queue: deque[_Item] = deque()
        self._wake = threading.Event()
        self._wake_due = False
        self._acked: list[tuple[_Item, KafkaError | None]] = []
        self._known_topics: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def kafka(self) -> KafkaConfig:
        return self._kafka

    # -- life cycle

    def ensure_topics(self, timeout: float = 30.0) -> None:
        """Create the journal and the clients topic when missing."""
        topics = self.config.topics
        journal = TopicSpec(
            self.config.journal_topic, 1, {"retention.ms": str(self.config.journal_retention_ms)},
            replication=topics.replication,
        )  # fmt: skip
        clients = [spec for spec in topics.global_specs(1) if spec.name == topics.clients]
        ensure_topics(self._admin, [journal, *clients], timeout)

    def start(self, loop: asyncio.AbstractEventLoop, timeout: float = 30.0) -> None:
        """Load every routed model, then start scoring, acknowledging and logging."""
        self._follower.sync(timeout)
        self._follower.start()
        gc.collect()
        gc.freeze()  # the loaded models live as long as the process (see run_scorer)
        self._writer.start(timeout)
        self._loop = loop
        for name, target in (("direct-scorer", self._score_loop), ("journal-acks", self._poll)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def ready(self) -> bool:
        alive = all(t.is_alive() for t in self._threads) and self._writer.is_alive()
        return self._loop is not None and alive and not self._stop.is_set()

    def close(self) -> None:
        """Answer what is queued, flush the journal, log what it holds, then stop."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(5.0)
        self._producer.flush(5.0)
        self._follower.stop_event.set()
        self._writer.close(self.config.policy.challenger_deadline + 5.0)
        for item in self._queue:
            self._settle(item, None, BridgeClosedError("the gateway is shutting down"))

    # -- requests (event loop)

    async def request_many(
        self, model: str, requests: Sequence[tuple[str, bytes]], client_id: str, timeout: float
    ) -> list[Any]:
        """Score ``requests`` (JSON records) together; per request, in input order: the
        reply (a dict), :data:`~services.gateway.bridge.TIMEOUT`, or a
        :class:`PublishError`."""
        loop = self._loop
        if loop is None or self._stop.is_set():
            raise BridgeClosedError("the gateway is not serving yet (or is stopping)")
        if model not in self._known_topics:
            await self._model_topics(model)
        queued = time.perf_counter()
        items = [_Item(model, rid, raw, client_id, loop.create_future(), queued)
                 for rid, raw in requests]  # fmt: skip
        self._queue.extend(items)
        if not self._wake_due:  # once per loop turn: the calls of one turn score together
            self._wake_due = True
            loop.call_soon(self._wake_scorer)
        futures = [item.future for item in items]
        if futures:
            await asyncio.wait(futures, timeout=timeout)
        return [self._outcome(item.future) for item in items]

    def _wake_scorer(self) -> None:
        self._wake_due = False
        self._wake.set()

    def _outcome(self, future: asyncio.Future[Any]) -> Any:
        if not future.done():
            future.cancel()
            self.stats["timeouts"] += 1
            return TIMEOUT
        failure = future.exception()
        if isinstance(failure, PublishError):
            return failure
        if failure is not None:
            return PublishError(str(failure), "not_ready")
        self.stats["answered"] += 1
        return future.result()

    async def _model_topics(self, model: str) -> None:
        """The model's topic set (predictions and DLQ are written here), made on first use."""
        specs = self.config.topics.model_specs(model, self.config.model_partitions)
        try:
            await asyncio.to_thread(ensure_topics, self._admin, specs, 10)
        except Exception as exc:  # any admin failure means: this gateway cannot log
            raise _topic_error(model, self.config.topics.predictions(model), exc) from exc
        self._known_topics.add(model)

    def publish_dlq(self, model: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Record a request the gateway refused on the model's DLQ (fire and forget)."""
        self._produce(self.config.topics.dlq(model), None, value, headers, _dlq_delivered)

    # -- scoring thread

    def _score_loop(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
            while self._queue:
                if len(self._queue) < GATHER_BELOW and time.perf_counter() - last < BUSY_S:
                    time.sleep(GATHER_S)  # busy, and calls arrive one by one (gRPC): gather
                batch = self._take()
                last = time.perf_counter()
                try:
                    self._score(batch)
                except Exception as exc:
                    log.exception("scoring a batch of %d failed", len(batch))
                    for item in batch:
                        self._settle(item, None, PublishError(f"scoring failed: {exc}", "internal"))

    def _take(self) -> list[_Item]:
        queue, most = self._queue, self.config.max_batch
        batch: list[_Item] = []
        while queue and len(batch) < most:
            batch.append(queue.popleft())
        return batch

    def _score(self, batch: list[_Item]) -> None:
        by_model: dict[str, list[_Item]] = {}
        for item in batch:
            by_model.setdefault(item.model, []).append(item)
        for model, items in by_model.items():
            deployment = self.table.get(model)
            if deployment is None:
                why = f"no model named {model!r} is deployed with a champion"
                for item in items:
                    reply = error_reply(item.rid, model, "unknown_model", why, "route")
                    self._settle(item, reply, None)
                continue
            self._score_model(deployment, items)

    def _score_model(self, dep: Deployment, items: list[_Item]) -> None:
        valid, rows = self._decode(dep, items)
        if not valid:
            return
        names = [f["name"] for f in dep.codec.schema["fields"]]
        frame = Frame(rows, names)
        results = score(dep, frame, self.config.policy)
        now_ms, done = int(time.time() * 1e3), time.perf_counter()
        ids = [item.rid for item in valid]
        shadowed = shadow(dep, frame, ids, self.config.policy)
        pending = self._shadows.add(shadowed, len(valid))
        sampled_out = Outcome.skip("sampled_out")
        journal, topic = self.config.journal_topic, self.config.source
        for i, (item, row, result) in enumerate(zip(valid, rows, results, strict=True)):
            latency = (done - item.queued) * 1e3
            item.reply = reply_record(dep, item.rid, result, latency, now_ms)
            request = Request(item.rid, None, item.raw, JSON, None, item.client, [], topic, -1, -1)
            headers = JSON_HEADERS
            challenger, tag = None, None
            if dep.challenger is not None:
                tag = pending(i)
                if tag is None:
                    challenger = sampled_out
                else:
                    headers = [*JSON_HEADERS, (SHADOW_HEADER, tag)]
            value = log_record(dep, request, row, result, challenger, latency, now_ms)
            try:  # one record's refusal (too large, queue full) fails that request alone
                self._produce(journal, item.rid.encode(), value, headers, partial(self._ack, item))
            except PublishError as exc:
                self._unjournaled(tag)
                self._settle(item, None, exc)
        self.stats["scored"] += len(valid)

    def _unjournaled(self, tag: bytes | None) -> None:
        """A row whose journal record was refused is never logged: its challenger ticket
        is let go here rather than waited for."""
        parsed = parse_tag(tag) if tag is not None else None
        if parsed is not None:
            self._shadows.release([parsed[1]])

    def _decode(self, dep: Deployment, items: list[_Item]) -> tuple[list[_Item], list[Any]]:
        """The items the model's codec accepts, and their rows; the rest are refused as
        the scorer refuses them (DLQ with the original bytes, an error reply)."""
        valid, rows = [], []
        decode = dep.codec.decode
        for item in items:
            try:
                rows.append(decode(item.raw, JSON))
            except DecodeError as exc:
                self._refuse(dep.model, item, exc)
                continue
            valid.append(item)
        return valid, rows

    def _refuse(self, model: str, item: _Item, exc: DecodeError) -> None:
        sent = [("content-type", b"application/json"), ("client-id", item.client.encode())]
        request = Request(item.rid, None, item.raw, JSON, None, item.client, sent,
                          self.config.source, -1, -1)  # fmt: skip
        self.publish_dlq(model, item.raw, dlq_headers(request, model, exc.reason, "decode",
                                                      str(exc)))  # fmt: skip
        self._settle(item, error_reply(item.rid, model, exc.reason, str(exc), "decode"), None)

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: Any, cb: Any) -> None:
        for _ in range(100):
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=cb)
                return
            except BufferError:  # the local queue is full: the poller is draining it
                time.sleep(0.01)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                code = error.name().lower() if isinstance(error, KafkaError) else "publish_failed"
                raise PublishError(f"could not write to {topic}: {exc}", code) from exc
        raise PublishError(f"the journal producer's queue stayed full ({topic})", "queue_full")

    # -- acknowledgements (poller thread; delivery callbacks run inside poll)

    def _ack(self, item: _Item, error: KafkaError | None, _message: Message) -> None:
        self._acked.append((item, error))

    def _poll(self) -> None:
        while not self._stop.is_set() or self._queue:
            self._producer.poll(0.05)
            if self._acked:
                acked, self._acked = self._acked, []
                self._answer(acked)

    def _answer(self, acked: list[tuple[_Item, KafkaError | None]]) -> None:
        """Hand one poll's acknowledged answers to the event loop in one hop."""
        settled: list[tuple[asyncio.Future[Any], Any, Exception | None]] = []
        for item, error in acked:
            if error is None:
                settled.append((item.future, item.reply, None))
            else:
                code = error.name().lower()
                failure = PublishError(f"Kafka did not take the answer's record: {error.str()}",
                                       code)  # fmt: skip
                settled.append((item.future, None, failure))
                self.stats["journal_failed"] += 1
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(_resolve, settled)

    def _settle(self, item: _Item, reply: Any, failure: Exception | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(_resolve, [(item.future, reply, failure)])


def _resolve(settled: list[tuple[asyncio.Future[Any], Any, Exception | None]]) -> None:
    for future, reply, failure in settled:
        if future.done():
            continue  # the handler stopped waiting (timeout)
        if failure is not None:
            future.set_exception(failure)
        else:
            future.set_result(reply)


def _dlq_delivered(error: KafkaError | None, message: Message) -> None:
    if error is not None:
        log.error("could not record a refused request on %s: %s", message.topic(), error)

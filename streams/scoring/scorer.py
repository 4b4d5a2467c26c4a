"""The scorer: consume requests, score them, produce replies, prediction logs and DLQ
entries, exactly once (transactions) or at least once (lowest latency).

Loop, per micro-batch::

    poll (blocks only until the first request) → drain what is queued (≤ max_batch)
    per model: decode + validate into a frame → champion (+ backup) → replies / DLQ
               → the sampled rows to the challenger's own worker (never waited for)
    log records of every earlier batch whose challenger has answered (or failed)
    exactly-once:  wait for the previous commit → begin → produce → hand the commit
                   (offsets + EndTxn) to the committer thread, score the next batch
    at-least-once: produce at once; commit offsets as the broker acknowledges

A request is done once its reply (or DLQ entry) and its log record are out; the committed
offset of a partition is its first request that is not (:mod:`streams.scoring.ledger`).
Replies leave before their log records, so in exactly-once mode each commit also records,
as the offset's metadata ``replied:<offset>``, the last request answered on that
partition. After a crash the next owner replays from the committed offset: requests up
to ``replied`` get their log record only (their replies are committed already), later
ones are served in full. Nothing is answered twice, and every answered request is logged
once (``read_committed``).

Errors (exactly-once): ``txn_requires_abort`` → abort, rewind every partition to its
committed offset and ``replied`` mark, drop what was pending; retriable → retry the commit;
fatal (fenced by a newer instance) → :class:`ScorerFencedError`, the process must stop.
At-least-once: a failed delivery rewinds the same way; what was delivered is sent again.

A stable ``instance_id`` is both the ``transactional.id`` suffix and the static
``group.instance.id``: a restarted instance aborts its predecessor's open transaction at
``init_transactions`` and takes its partitions back without waiting for a rebalance.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.codec import JSON, DecodeError
from schemas.contracts import load_schema
from streams.kafka import KafkaConfig, Topics, consumer_config, ensure_topics, make_admin
from streams.kafka import producer_config as base_producer_config
from streams.kafka_logs import ConsumerErrors
from streams.scoring.deployment import Deployment, DeploymentTable
from streams.scoring.envelope import Request, dlq_headers, parse_request
from streams.scoring.frame import Frame, Row
from streams.scoring.ledger import Ledger, TopicPartitionKey, Unit
from streams.scoring.policy import (
    Scored,
    ServingPolicy,
    Shadowed,
    challenger_outcomes,
    score,
    shadow,
)
from streams.scoring.records import encode_reply, error_reply, log_record, reply_record
from streams.scoring.replies import ReplyWriter

__all__ = ["AT_LEAST_ONCE", "EXACTLY_ONCE", "Scorer", "ScorerConfig", "ScorerError",
           "ScorerFencedError"]  # fmt: skip

log = logging.getLogger(__name__)
JSON_HEADERS = [("content-type", b"application/json")]
AVRO_BYTES = b"application/avro"
EXACTLY_ONCE, AT_LEAST_ONCE = "exactly-once", "at-least-once"
ALO_COMMIT_INTERVAL = 0.2  # seconds between offset commits in at-least-once mode
REPLIED = "replied:"  # committed-offset metadata: the last request answered on the partition


class ScorerError(Exception):
    """Root of the scorer's errors."""


class ScorerFencedError(ScorerError):
    """Another instance with the same transactional id took over; this one must stop."""


@dataclass(frozen=True)
class ScorerConfig:
    """Everything the scorer loop needs; built by the service from settings."""

    topics: Topics
    instance_id: str = "0"
    models: tuple[str, ...] | None = None  # None: every model's requests topic
    max_batch: int = 2_000
    max_wait: float = 0.05  # seconds to block for the first request of a batch
    policy: ServingPolicy = field(default_factory=ServingPolicy)
    guarantee: str = EXACTLY_ONCE
    transaction_timeout_ms: int = 15_000
    # the largest message the scorer writes; a DLQ entry over it keeps its first bytes
    # and says so in an ms-truncated header (the broker here accepts 8 MiB)
    max_output_bytes: int = 8 * 1024 * 1024 - 65_536

    def __post_init__(self) -> None:
        if self.guarantee not in (EXACTLY_ONCE, AT_LEAST_ONCE):
            raise ValueError(f"guarantee must be {EXACTLY_ONCE} or {AT_LEAST_ONCE}, "
                             f"got {self.guarantee!r}")  # fmt: skip

    @property
    def group_id(self) -> str:
        return f"{self.topics.prefix}.scorer"

    @property
    def transactional_id(self) -> str:
        return f"{self.group_id}.{self.instance_id}"

    @property
    def exactly_once(self) -> bool:
        return self.guarantee == EXACTLY_ONCE


Message_ = tuple[str, bytes | None, bytes, list[tuple[str, bytes]], Unit]


@dataclass
class Outputs:
    """What one cycle produces, before it is sent; each message names its unit."""

    messages: list[Message_] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, topic: str, key: bytes | None, value: bytes, headers: Any, kind: str,
            unit: Unit) -> None:  # fmt: skip
        self.messages.append((topic, key, value, headers, unit))
        self.counts[kind] += 1


@dataclass(slots=True)
class _Logs:
    """One model's share of a batch, waiting for its challenger before it is logged."""

    dep: Deployment
    requests: list[Request]
    rows: list[Row]
    results: list[Scored]
    shadowed: Shadowed | None
    latency_ms: float
    now_ms: int
    unit: Unit
    frame: Frame | None  # until handed to the challenger
    ids: list[str] | None
    submitted: bool = False  # the challenger has its rows (or there is none)
    dropped: set[int] = field(default_factory=set)  # rows of partitions revoked meanwhile


class Scorer:
    """One scorer process's consume-score-produce loop."""

    def __init__(self, kafka: KafkaConfig, config: ScorerConfig, table: DeploymentTable) -> None:
        self.config = config
        self.table = table
        self.topics = config.topics
        self.stats: Counter[str] = Counter()
        self._replies = ReplyWriter(_reply_fingerprint())
        self._known_topics: set[str] = set()
        self._consumer_error = ConsumerErrors(log, "serving it once it is created")
        self._admin = make_admin(kafka)
        self._consumer = Consumer(self._consumer_config(kafka))
        self._eos = config.exactly_once
        self._producer = Producer(self._producer_config(kafka))
        if self._eos:
            self._producer.init_transactions(30)
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="committer")
        self._inflight: tuple[Future[None], Counter[str]] | None = None
        self._ledger = Ledger()
        self._pending: list[_Logs] = []
        self._unshadowed: list[_Logs] = []  # this cycle's, for the challenger once sent
        self._replied: dict[TopicPartitionKey, int] = {}
        self._metadata: Any = None  # the consumer group metadata, refreshed on rebalance
        self._replaying = False  # this batch holds requests answered before a crash
        self._delivery_error: KafkaError | None = None
        self._committed_alo: dict[TopicPartitionKey, int] = {}
        self._next_alo_commit = 0.0
        self._subscribe()

    def _consumer_config(self, kafka: KafkaConfig) -> dict[str, Any]:
        return consumer_config(
            kafka,
            self.config.group_id,
            group_instance_id=self.config.transactional_id,
            topic_metadata_refresh_interval_ms=2_000,
            partition_assignment_strategy="cooperative-sticky",
        )

    def _producer_config(self, kafka: KafkaConfig) -> dict[str, Any]:
        max_bytes = self.config.max_output_bytes + 65_536
        if not self._eos:
            return base_producer_config(kafka, message_max_bytes=max_bytes)
        return base_producer_config(
            kafka,
            transactional_id=self.config.transactional_id,
            transaction_timeout_ms=self.config.transaction_timeout_ms,
            message_timeout_ms=min(30_000, self.config.transaction_timeout_ms - 1_000),
            message_max_bytes=max_bytes,
            retry_backoff_max_ms=5,
        )

    def _subscribe(self) -> None:
        if self.config.models:
            wanted = [self.topics.requests(m) for m in self.config.models]
        else:
            wanted = [f"^{re.escape(self.topics.prefix)}\\.[A-Za-z0-9_-]+\\.requests$"]
        self._consumer.subscribe(wanted, on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._metadata = None
        if partitions:
            log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.settle()  # the transaction in flight still holds offsets of these partitions
        lost = {(p.topic, p.partition) for p in partitions}
        if not self._eos:
            self._flush_alo(10.0)
        self._forget(lost)
        self._metadata = None

    def _forget(self, lost: set[TopicPartitionKey]) -> None:
        """Leave ``lost`` to their next owner, who replays from their committed offsets."""
        for logs in self._pending:
            for i, r in enumerate(logs.requests):
                if (r.topic, r.partition) in lost:
                    logs.dropped.add(i)
        self._ledger.forget(lost)
        for tp in lost:
            self._replied.pop(tp, None)
            self._committed_alo.pop(tp, None)

    # -- the loop -------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        on_batch: Callable[[Counter[str]], None] | None = None,
    ) -> None:
        """Serve until ``stop`` is set (or forever); then log what is pending and leave."""
        stop = stop or threading.Event()
        while not stop.is_set():
            wait = min(self.config.max_wait, 0.005) if self._pending else self.config.max_wait
            batch = self._next_batch(wait)
            if batch or self._logs_due():
                counts = self.process(batch)
                if on_batch is not None:
                    on_batch(counts)
            elif self._eos:
                self.settle()  # idle: finish the last commit now, not at the next request
            else:
                self._flush_alo(0)
        self.drain()

    def drain(self, timeout: float | None = None) -> None:
        """Write the log records still waiting for the challenger (at most its deadline)."""
        limit = time.monotonic() + (timeout or self.config.policy.challenger_deadline + 5.0)
        while self._pending and time.monotonic() < limit:
            if self._logs_due():
                self.process([])
            else:
                time.sleep(0.002)
        self.settle()
        if not self._eos:
            self._flush_alo(10.0)

    def _next_batch(self, wait: float) -> list[Message]:
        first = self._consumer.poll(wait)
        if first is None:
            return []
        return self._good([first, *self._consumer.consume(self.config.max_batch - 1, 0)])

    def _good(self, messages: list[Message]) -> list[Message]:
        """The requests among ``messages``; error events are logged (ConsumerErrors)."""
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            else:
                self._consumer_error(error)
        return good

    def _logs_due(self) -> bool:
        if not self._pending or not self._pending[0].submitted:
            return False
        first = self._pending[0].shadowed
        return (
            first is None
            or first.ticket is None
            or first.ticket.result(time.monotonic()) is not None
        )

    def process(self, batch: list[Message]) -> Counter[str]:
        """Score one batch, add the log records that are due, and send it all.

        Exactly-once: the commit of cycle N (send offsets + EndTxn, the broker's round
        trips) runs on the committer thread while batch N+1 is consumed and scored; once
        N has committed, what arrived meanwhile is scored too and joins N+1, so a request
        waits for at most the commit in flight and its own. Returns the cycle's counts.
        """
        started = time.perf_counter()
        outputs = Outputs()
        if batch:
            self._serve([parse_request(message) for message in batch], outputs, started)
        if not self._eos:
            self._send_alo(outputs)
            self._shadow_all()
            return outputs.counts
        if not self.settle():
            return Counter()  # the transaction in flight aborted: everything was rewound
        room = self.config.max_batch - len(batch)
        late = self._drain_queued(room) if batch and room > 0 else []
        if late:
            self._serve([parse_request(message) for message in late], outputs, time.perf_counter())
        counts = self._send_transaction(outputs)
        self._shadow_all()
        return counts

    def _shadow_all(self) -> None:
        """Hand this cycle's rows to the challengers, once the replies are on their way:
        the challenger's thread then never holds the GIL while the champion scores."""
        for logs in self._unshadowed:
            if logs.frame is not None and logs.ids is not None:
                logs.shadowed = shadow(logs.dep, logs.frame, logs.ids, self.config.policy)
            logs.frame = logs.ids = None
            logs.submitted = True
        self._unshadowed.clear()

    def _drain_queued(self, room: int) -> list[Message]:
        """What arrived while the previous commit was in flight (no waiting)."""
        return self._good(self._consumer.consume(room, 0))

    def _serve(self, requests: list[Request], outputs: Outputs, started: float) -> None:
        ranges: dict[TopicPartitionKey, tuple[int, int]] = {}
        by_topic: dict[str, list[Request]] = {}
        for request in requests:
            tp = (request.topic, request.partition)
            low, high = ranges.get(tp, (request.offset, request.offset))
            ranges[tp] = (min(low, request.offset), max(high, request.offset))
            by_topic.setdefault(request.topic, []).append(request)
        self._replaying = any(first <= self._replied_upto(tp) for tp, (first, _) in ranges.items())
        unit = self._ledger.open(ranges, waiting=1)  # held open until every topic is served
        for topic, group in by_topic.items():
            self._handle_topic(topic, group, outputs, started, unit)
        self._ledger.done(unit)
        replied = self._replied
        for tp, (_first, last) in ranges.items():
            if last > replied[tp]:
                replied[tp] = last  # answered (or refused) in this cycle's output

    # -- per model ------------------------------------------------------------------

    def _handle_topic(self, topic: str, requests: list[Request], out: Outputs, started: float,
                      unit: Unit) -> None:  # fmt: skip
        model = topic[len(self.topics.prefix) + 1 : -len(".requests")]
        self._ensure_model_topics(model)
        deployment = self.table.get(model)
        if deployment is None:
            why = f"no model named {model!r} is registered with a champion"
            for request in requests:
                self._reject(out, model, request, "unknown_model", "route", why, unit)
            return
        valid, rows = self._decode(deployment, requests, out, unit)
        if not valid:
            return
        frame = Frame(rows, [f["name"] for f in deployment.codec.schema["fields"]])
        ids = [request.request_id for request in valid]
        results = score(deployment, frame, self.config.policy)
        now_ms = int(time.time() * 1e3)
        latency = (time.perf_counter() - started) * 1e3
        self._reply_all(out, deployment, valid, results, latency, now_ms, unit)
        self._ledger.add(unit)
        logs = _Logs(deployment, valid, rows, results, None, latency, now_ms, unit, frame, ids)
        self._pending.append(logs)
        self._unshadowed.append(logs)

    def _reply_all(
        self, out: Outputs, dep: Deployment, requests: list[Request], results: list[Scored],
        latency: float, now_ms: int, unit: Unit,
    ) -> None:  # fmt: skip
        """The replies of one model's batch: champion-served Avro replies from the batch's
        shared head and tail (the common case), any other through the full record."""
        writer, model, replied = self._replies, dep.model, self._replied
        head = writer.head(model, dep.champion.version, dep.task)
        tail = writer.tail("champion", latency, None, now_ms)
        topic = self.topics.replies(model)
        replay = self._replaying
        for request, result in zip(requests, results, strict=True):
            if replay and request.offset <= replied[(request.topic, request.partition)]:
                continue  # answered before a crash: only its log record is missing
            if result.served_by == "champion" and request.content_type != JSON:
                served, rid = result.served, request.request_id
                value = writer.body(rid, head, served.output, served.probabilities, tail)
                headers = [("content-type", AVRO_BYTES), ("request-id", rid.encode())]
                out.add(request.reply_to or topic, request.key, value, headers, "replies", unit)
            else:
                reply = reply_record(dep, request.request_id, result, latency, now_ms)
                self._reply(out, model, request, reply, unit)

    def _decode(self, dep: Deployment, requests: list[Request], out: Outputs, unit: Unit
                ) -> tuple[list[Request], list[Row]]:  # fmt: skip
        valid, rows = [], []
        decode = dep.codec.decode
        for request in requests:
            reply_to = request.reply_to
            if reply_to is not None and not self._allowed_reply_to(reply_to):
                self._reject(out, dep.model, request, "bad_reply_to", "route",
                             f"reply-to topic {reply_to!r} does not exist or is not a reply "
                             "topic", unit)  # fmt: skip
                continue
            try:
                rows.append(decode(request.value, request.content_type))
            except DecodeError as exc:
                self._reject(out, dep.model, request, exc.reason, "decode", str(exc), unit)
                continue
            valid.append(request)
        return valid, rows

    def _reply(self, out: Outputs, model: str, request: Request, reply: dict[str, Any],
               unit: Unit) -> None:  # fmt: skip
        topic = request.reply_to or self.topics.replies(model)
        value, ctype = encode_reply(reply, request.content_type, self._replies)
        headers = [("content-type", ctype), ("request-id", request.request_id.encode())]
        kind = "replies" if reply["error"] is None else "errors"
        out.add(topic, request.key, value, headers, kind, unit)

    def _reject(self, out: Outputs, model: str, request: Request, reason: str, stage: str,
                message: str, unit: Unit) -> None:  # fmt: skip
        """DLQ with the original bytes; an error reply too when the client named a reply-to."""
        if request.offset <= self._replied[(request.topic, request.partition)]:
            return  # refused before a crash already
        headers = dlq_headers(request, model, reason, stage, message)
        value = request.value
        if len(value) > self.config.max_output_bytes:
            headers.append(("ms-truncated", str(len(value)).encode()))
            value = value[: self.config.max_output_bytes]
        out.add(self.topics.dlq(model), request.key, value, headers, "dlq", unit)
        if request.reply_to is not None and self._allowed_reply_to(request.reply_to):
            reply = error_reply(request.request_id, model, reason, message, stage)
            self._reply(out, model, request, reply, unit)

    def _release(self, out: Outputs) -> None:
        """Log records of the oldest batches whose challenger is done, in order."""
        now = time.monotonic()
        while self._pending:
            logs = self._pending[0]
            if not logs.submitted:
                return
            challengers = challenger_outcomes(logs.shadowed, len(logs.requests), now)
            if challengers is None:
                return
            self._pending.pop(0)
            dep, predictions = logs.dep, self.topics.predictions(logs.dep.model)
            dropped = logs.dropped
            for i, (request, row, result, challenger) in enumerate(
                zip(logs.requests, logs.rows, logs.results, challengers, strict=True)
            ):
                if dropped and i in dropped:
                    continue
                value = log_record(dep, request, row, result, challenger, logs.latency_ms,
                                   logs.now_ms)  # fmt: skip
                # keyed by request id, as labels are: one partition for both (the monitor)
                key = request.request_id.encode()
                out.add(predictions, key, value, JSON_HEADERS, "logged", logs.unit)
                if challenger is not None:
                    self.stats[_challenger_tally(challenger)] += 1
            self._ledger.done(logs.unit)

    # -- topics ---------------------------------------------------------------------

    def _ensure_model_topics(self, model: str) -> None:
        if model in self._known_topics:
            return
        ensure_topics(self._admin, self.topics.model_specs(model, 1))
        self._known_topics.add(model)

    def _allowed_reply_to(self, topic: str) -> bool:
        """Replies may go to existing, non-internal topics that are not request topics."""
        if topic.endswith(".requests") or "._" in topic or topic.startswith("__"):
            return False
        if topic in self._known_topics:
            return True
        metadata = self._consumer.list_topics(topic, timeout=5)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return False
        self._known_topics.add(topic)
        return True

    def _replied_upto(self, tp: TopicPartitionKey) -> int:
        """The last request answered on ``tp``: the ``replied`` mark of its committed offset."""
        found = self._replied.get(tp)
        if found is not None:
            return found
        (committed,) = self._consumer.committed([TopicPartition(*tp)], timeout=10)
        mark = committed.offset - 1 if committed.offset >= 0 else -1
        meta = committed.metadata or ""
        if meta.startswith(REPLIED):
            with contextlib.suppress(ValueError):
                mark = max(mark, int(meta[len(REPLIED) :]))
        self._replied[tp] = mark
        return mark

    # -- exactly-once ---------------------------------------------------------------

    def _send_transaction(self, outputs: Outputs) -> Counter[str]:
        self._release(outputs)
        if not outputs.messages:
            return outputs.counts  # nothing to say yet: the offsets move with the next output
        try:
            self._producer.begin_transaction()
            for topic, key, value, headers, _unit in outputs.messages:
                self._produce(topic, key, value, headers)
        except KafkaException as exc:
            self._failed(exc)
            return Counter()
        marks = self._marks()
        if self._metadata is None:
            self._metadata = self._consumer.consumer_group_metadata()
        future = self._committer.submit(self._finish, marks, self._metadata)
        self._inflight = (future, outputs.counts)
        return outputs.counts

    def _marks(self) -> dict[TopicPartitionKey, tuple[int, int]]:
        """Per partition: (offset to commit, last request answered), after this cycle."""
        replied = self._replied
        return {tp: (offset, replied.get(tp, offset - 1))
                for tp, offset in self._ledger.offsets().items()}  # fmt: skip

    def _finish(self, marks: dict[TopicPartitionKey, tuple[int, int]], metadata: Any) -> None:
        """Committer thread: offsets (and replied marks) into the transaction, commit it."""
        offsets = [TopicPartition(t, p, offset, metadata=f"{REPLIED}{mark}")
                   for (t, p), (offset, mark) in marks.items()]  # fmt: skip
        self._producer.send_offsets_to_transaction(offsets, metadata, 30)
        self._commit()

    def settle(self) -> bool:
        """Wait for the transaction in flight; False if it had to be aborted (and every
        partition was rewound). Called before the next transaction, on revoke, on close."""
        if self._inflight is None:
            return True
        future, counts = self._inflight
        self._inflight = None
        try:
            future.result()
        except KafkaException as exc:
            return self._failed(exc)
        self.stats.update(counts)
        self.stats["batches"] += 1
        return True

    def _failed(self, exc: KafkaException) -> bool:
        error: KafkaError = exc.args[0]
        if error.fatal():
            raise ScorerFencedError(f"transactional producer is fenced or broken: {error}") from exc
        if not error.txn_requires_abort():
            raise ScorerError(f"transaction failed: {error}") from exc
        log.warning("aborting the transaction: %s", error)
        self._producer.abort_transaction(30)
        self.stats["aborts"] += 1
        self._rewind()
        return False

    def _rewind(self) -> None:
        """Back to what the broker has committed: every assigned partition is read again
        from its committed offset, answered only past its ``replied`` mark."""
        for logs in self._pending:
            if logs.shadowed is not None and logs.shadowed.ticket is not None:
                logs.shadowed.ticket.result(float("inf"))  # the worker skips it if queued
        self._pending.clear()
        self._unshadowed.clear()
        self._ledger.clear()
        self._replied.clear()
        assigned = self._consumer.assignment()
        if not assigned:
            return
        for committed in self._consumer.committed(assigned, timeout=10):
            offset = committed.offset if committed.offset >= 0 else 0
            try:
                self._consumer.seek(TopicPartition(committed.topic, committed.partition, offset))
            except KafkaException as exc:  # revoked meanwhile: the new owner replays
                log.info("not rewinding %s[%d]: %s", committed.topic, committed.partition, exc)

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: Any,
                 on_delivery: Any = None) -> None:  # fmt: skip
        produce = self._producer.produce
        while True:
            try:
                if on_delivery is None:
                    produce(topic, value, key, headers=headers)
                else:
                    produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:
                self._producer.poll(0.05)  # let the queue drain, then once more

    def _commit(self) -> None:
        for attempt in range(5):
            try:
                self._producer.commit_transaction(30)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable() or attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))

    # -- at-least-once --------------------------------------------------------------

    def _send_alo(self, outputs: Outputs) -> None:
        if self._delivery_error is not None:
            log.warning("a delivery failed (%s): reading again from the committed offsets",
                        self._delivery_error)  # fmt: skip
            self._delivery_error = None
            self._producer.flush(10)
            self._rewind()
            return
        self._release(outputs)
        ledger = self._ledger
        for topic, key, value, headers, unit in outputs.messages:
            ledger.add(unit)
            self._produce(topic, key, value, headers, partial(self._delivered, unit))
        self.stats.update(outputs.counts)
        self.stats["batches"] += 1
        self._flush_alo(0)

    def _delivered(self, unit: Unit, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._delivery_error = error
            return  # the unit stays open: its offsets are not committed
        self._ledger.done(unit)

    def _flush_alo(self, timeout: float) -> None:
        """Serve delivery reports, then commit (asynchronously) the offsets now done."""
        if timeout:
            self._producer.flush(timeout)
        else:
            self._producer.poll(0)
        now = time.monotonic()
        if not timeout and now < self._next_alo_commit:
            return  # an offset commit is a broker round trip: a few a second are plenty
        self._next_alo_commit = now + ALO_COMMIT_INTERVAL
        moved = [TopicPartition(t, p, offset) for (t, p), offset in self._ledger.offsets().items()
                 if offset > self._committed_alo.get((t, p), -1)]  # fmt: skip
        if not moved or self._delivery_error is not None:
            return
        try:
            if timeout:
                self._consumer.commit(offsets=moved, asynchronous=False)
            else:
                self._consumer.commit(offsets=moved, asynchronous=True)
        except KafkaException as exc:
            log.warning("offset commit failed (the requests may be answered again): %s", exc)
            return
        for tp in moved:
            self._committed_alo[(tp.topic, tp.partition)] = tp.offset

    def close(self) -> None:
        """Finish the transaction in flight, leave the group; safe to call twice."""
        self.settle()
        self._committer.shutdown(wait=True)
        with contextlib.suppress(RuntimeError):  # already closed
            self._consumer.close()
        self._producer.flush(10)


def _challenger_tally(outcome: Any) -> str:
    if outcome.skipped is not None:
        return f"challenger:skipped:{outcome.skipped}"
    if outcome.error is not None:
        return f"challenger:failed:{outcome.error[0]}"
    return "challenger:scored"


def _reply_fingerprint() -> bytes:
    from schemas.codec import Codec

    return Codec(load_schema("reply")).fingerprint

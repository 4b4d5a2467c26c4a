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
committed offset and ``replied`` mark, drop what was pending; transient (a broker
restarting, a coordinator moving) → the same call again after a capped backoff, for at
most the transaction timeout (:mod:`streams.scoring.retry`); fatal → a new producer with
the same transactional id aborts the open transaction and every partition is rewound, at
most ``MAX_REPLACEMENTS`` times in ``REPLACEMENT_WINDOW`` seconds: a broker restarted
mid-transaction leaves the producer where no call is valid (``INVALID_TXN_STATE``), or
fenced, since the coordinator bumps the epoch of a transaction it timed out. A newer
instance with the same id is told apart by the consumer: static membership fences the
older member (:class:`ScorerFencedError`, the process must stop); so is a transactional
id this principal may not use.
At-least-once: a failed delivery rewinds the same way; what was delivered is sent again.

Outputs that can never be produced are kept out of transactions, where one would abort
every replay: a reply or log record over its topic's ``max.message.bytes``
(:mod:`~streams.scoring.limits`) becomes a DLQ entry (``reply_too_large`` with an error
reply, ``log_too_large``); a ``reply-to`` must name an existing reply topic of this
prefix (:mod:`~streams.scoring.reply_to`, else ``bad_reply_to``). For what no check can
foresee, two aborts in a row split the batches until the one request behind them is
alone (:mod:`~streams.scoring.isolate`); it goes to the DLQ (``unproducible``).

Stats count every request this process took in once: ``in`` = ``out`` (answered by a
model) + ``dlq`` (refused); ``log_dlq`` counts log records that went to the DLQ instead.

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
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.codec import JSON, DecodeError
from schemas.contracts import load_schema
from streams.kafka import KafkaConfig, Topics, consumer_config, ensure_topics, make_admin
from streams.kafka import producer_config as base_producer_config
from streams.kafka_logs import ConsumerErrors
from streams.scoring.committer import Committer
from streams.scoring.deployment import Deployment, DeploymentTable
from streams.scoring.envelope import Request, dlq_headers, parse_request
from streams.scoring.frame import Frame, Row
from streams.scoring.isolate import Isolation, IsolationError, Origin
from streams.scoring.ledger import Ledger, TopicPartitionKey, Unit
from streams.scoring.limits import TopicLimits, describe_max_message_bytes, record_size
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
from streams.scoring.reply_to import KnownTopics, reply_topic_pattern
from streams.scoring.retry import retrying

__all__ = ["AT_LEAST_ONCE", "EXACTLY_ONCE", "Scorer", "ScorerConfig", "ScorerError",
           "ScorerFencedError"]  # fmt: skip

log = logging.getLogger(__name__)
T = TypeVar("T")
JSON_HEADERS = [("content-type", b"application/json")]
AVRO_BYTES = b"application/avro"
EXACTLY_ONCE, AT_LEAST_ONCE = "exactly-once", "at-least-once"
ALO_COMMIT_INTERVAL = 0.2  # seconds between offset commits in at-least-once mode
REPLIED = "replied:"  # committed-offset metadata: the last request answered on the partition
SESSION_TIMEOUT_MS = 45_000  # how long a broker may be away before the group forgets us
STUCK_AFTER = 5.0  # seconds past the transaction timeout before a commit is deemed stuck
REPLY_TOPIC_TTL = 60.0  # seconds a reply-to topic is trusted to exist without looking again
FOCUS_DRY_S = 5.0  # seconds the bisection's partitions may give nothing before it ends
MAX_REPLACEMENTS, REPLACEMENT_WINDOW = 5, 300.0  # producer replacements before giving up
# fatal errors a new producer cannot cure: stop (a fenced producer is replaced, above)
UNRECOVERABLE = frozenset({KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                           KafkaError.CLUSTER_AUTHORIZATION_FAILED})  # fmt: skip


class ScorerError(Exception):
    """Root of the scorer's errors."""


class ScorerFencedError(ScorerError):
    """Another instance with the same transactional id took over; this one must stop."""


class _ProducerBrokenError(Exception):
    """A fatal producer error met while aborting: the producer must be replaced."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(error.str())
        self.error = error


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


Message_ = tuple[str, bytes | None, bytes, list[tuple[str, bytes]], Unit, Origin]


@dataclass
class Outputs:
    """What one cycle produces, before it is sent; each message names its unit and the
    request it is for."""

    messages: list[Message_] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    isolated: list[Origin] = field(default_factory=list)  # unproducible requests' DLQ entries

    def add(self, topic: str, key: bytes | None, value: bytes, headers: Any, kind: str,
            unit: Unit, request: Request) -> None:  # fmt: skip
        self.messages.append(
            (topic, key, value, headers, unit, (request.topic, request.partition, request.offset))
        )
        self.counts[kind] += 1

    def origins(self) -> set[Origin]:
        return {message[5] for message in self.messages}


@dataclass(slots=True)
class _Inflight:
    """A transaction handed to the committer thread."""

    future: Future[None]
    counts: Counter[str]
    origins: set[Origin]
    isolated: list[Origin]


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
        self._ensured: set[str] = set()  # models whose topic set exists
        self._consumer_error = ConsumerErrors(log, "serving it once it is created")
        self._admin = make_admin(kafka)
        self._limits = TopicLimits(partial(describe_max_message_bytes, self._admin),
                                   config.max_output_bytes)  # fmt: skip
        self._reply_topics = KnownTopics(self._topic_exists, ttl=REPLY_TOPIC_TTL)
        self._reply_pattern = reply_topic_pattern(self.topics.prefix)
        self._isolation = Isolation(config.max_batch)
        self._paused: list[TopicPartition] = []  # while bisecting: the partitions not read
        # how long broker trouble is ridden: within a transaction, its timeout (the broker
        # aborts it then); outside (abort, rewind, topic lookups), a group session
        self._budget = config.transaction_timeout_ms / 1e3
        self._outage_budget = SESSION_TIMEOUT_MS / 1e3
        self._refused: list[tuple[str, KafkaError]] = []  # failed deliveries since the last look
        self._committer_retries = 0  # written by the committer thread only
        self._replaced: list[float] = []  # when the producer was last replaced (monotonic)
        self._last_read = time.monotonic()  # when the consumer last gave a record
        self._consumer = Consumer(self._consumer_config(kafka))
        self._eos = config.exactly_once
        self._kafka = kafka
        self._producer = Producer(self._producer_config(kafka))
        if self._eos:
            self._producer.init_transactions(30)
        self._committer = Committer()
        self._inflight: _Inflight | None = None
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
            # a static member whose session times out on the client (a broker restart
            # longer than it) is fenced for good when it rejoins (librdkafka#3437); a
            # restarted scorer takes its partitions back at once whatever this is
            session_timeout_ms=SESSION_TIMEOUT_MS,
        )

    def _producer_config(self, kafka: KafkaConfig) -> dict[str, Any]:
        max_bytes = self.config.max_output_bytes + 65_536
        if not self._eos:
            return base_producer_config(kafka, message_max_bytes=max_bytes)
        conf = base_producer_config(
            kafka,
            transactional_id=self.config.transactional_id,
            transaction_timeout_ms=self.config.transaction_timeout_ms,
            message_timeout_ms=min(30_000, self.config.transaction_timeout_ms - 1_000),
            message_max_bytes=max_bytes,
            retry_backoff_max_ms=5,
            delivery_report_only_error=True,
        )
        # which topic refused a message, for the abort that follows (no callback at all
        # for the messages delivered)
        return conf | {"on_delivery": self._refusal}

    def _refusal(self, error: KafkaError | None, message: Message) -> None:
        """A message the broker refused (any thread): remembered until the next abort."""
        if error is not None:
            self._refused.append((message.topic() or "", error))

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
        self._paused = [tp for tp in self._paused if (tp.topic, tp.partition) not in lost]
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
                self._release_dry_focus()
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
        self._last_read = time.monotonic()
        rest = self._isolation.limit - 1
        return self._good([first, *self._consumer.consume(rest, 0)] if rest else [first])

    def _good(self, messages: list[Message]) -> list[Message]:
        """The requests among ``messages``; error events are logged (ConsumerErrors)."""
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.fatal():
                raise ScorerFencedError(
                    f"the consumer is fenced ({error.str()}): stop any other scorer running "
                    f"with instance id {self.config.instance_id!r}, then restart this one"
                )
            else:
                self._consumer_error(error)
        return good

    def _release_dry_focus(self) -> None:
        """While bisecting only the aborted transaction's partitions are read; when they
        have given nothing for ``FOCUS_DRY_S`` (their requests all committed before the
        clean count ended the bisection), every partition is read again."""
        if self._isolation.focus is None or self._inflight is not None:
            return
        if time.monotonic() - self._last_read < FOCUS_DRY_S:
            return
        log.warning("the partitions under bisection have nothing more to read: reading "
                    "every partition again, in full batches")  # fmt: skip
        self._isolation.release()
        self._refocus()

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
        room = self._isolation.limit - len(batch)
        late = self._drain_queued(room) if batch and room > 0 else []
        if late:
            self._serve([parse_request(message) for message in late], outputs, time.perf_counter())
        if self._isolation.splitting:
            # looking for an unproducible request: a transaction holds all of its
            # requests' outputs, log records included, and no one else's
            self._shadow_all()
            self._await_logs()
        counts = self._send_transaction(outputs)
        self._shadow_all()
        return counts

    def _await_logs(self) -> None:
        """Until every pending log record is due (the challenger answered, failed or is
        past its deadline)."""
        limit = time.monotonic() + self.config.policy.challenger_deadline + 5.0
        while self._pending and time.monotonic() < limit:
            last = self._pending[-1]
            if challenger_outcomes(last.shadowed, len(last.requests), time.monotonic()) is not None:
                return
            time.sleep(0.002)

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
        marks = {tp: self._replied_upto(tp) for tp in ranges}
        self._replaying = any(first <= marks[tp] for tp, (first, _) in ranges.items())
        outputs.counts["in"] += sum(
            r.offset > marks[(r.topic, r.partition)] for r in requests
        )  # answered before a crash: counted by the process that answered them
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
        if self._isolation.found:
            requests = self._screen(out, model, requests, unit)
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
        fits = self._limits.fits
        for request, result in zip(requests, results, strict=True):
            if replay and request.offset <= replied[(request.topic, request.partition)]:
                continue  # answered before a crash: only its log record is missing
            if result.served_by == "champion" and request.content_type != JSON:
                served, rid = result.served, request.request_id
                value = writer.body(rid, head, served.output, served.probabilities, tail)
                headers = [("content-type", AVRO_BYTES), ("request-id", rid.encode())]
                dest = request.reply_to or topic
                if fits(dest, request.key, value, headers):
                    out.add(dest, request.key, value, headers, "replies", unit, request)
                    out.counts["out"] += 1
                else:
                    self._too_large(out, model, request, dest, value, headers, unit)
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
                             f"reply-to topic {reply_to!r} is not an existing reply topic of "
                             f"this deployment ({self.topics.prefix}.<model>.replies or "
                             f"{self.topics.prefix}.gateway-<id>.replies)", unit)  # fmt: skip
                continue
            try:
                rows.append(decode(request.value, request.content_type))
            except DecodeError as exc:
                self._reject(out, dep.model, request, exc.reason, "decode", str(exc), unit)
                continue
            valid.append(request)
        return valid, rows

    def _reply(self, out: Outputs, model: str, request: Request, reply: dict[str, Any],
               unit: Unit, *, topic: str | None = None, answer: bool = True) -> None:  # fmt: skip
        """``reply`` to ``topic`` (the request's reply topic); ``answer``: a model's answer
        (else the error reply of a refusal, left out when it is too large itself)."""
        topic = topic or request.reply_to or self.topics.replies(model)
        value, ctype = encode_reply(reply, request.content_type, self._replies)
        headers = [("content-type", ctype), ("request-id", request.request_id.encode())]
        if not self._limits.fits(topic, request.key, value, headers):
            if answer:
                self._too_large(out, model, request, topic, value, headers, unit)
            return
        kind = "replies" if reply["error"] is None else "errors"
        out.add(topic, request.key, value, headers, kind, unit, request)
        if answer:
            out.counts["out"] += 1

    def _too_large(self, out: Outputs, model: str, request: Request, topic: str, value: bytes,
                   headers: Any, unit: Unit) -> None:  # fmt: skip
        size, limit = record_size(request.key, value, headers), self._limits.limit(topic)
        why = (f"the reply ({size} bytes) is larger than {topic} accepts ({limit} bytes): "
               "send a shorter request id or raise the topic's max.message.bytes")  # fmt: skip
        self._reject(out, model, request, "reply_too_large", "reply", why, unit, reply_to=topic)

    def _reject(self, out: Outputs, model: str, request: Request, reason: str, stage: str,
                message: str, unit: Unit, *, reply_to: str | None = None) -> None:  # fmt: skip
        """DLQ with the original bytes; an error reply too when the client named a reply-to
        (or to ``reply_to``)."""
        if request.offset <= self._replied[(request.topic, request.partition)]:
            return  # refused before a crash already
        self._dlq(out, model, request, dlq_headers(request, model, reason, stage, message),
                  "dlq", unit)  # fmt: skip
        if reply_to is None and request.reply_to is not None:
            reply_to = request.reply_to if self._allowed_reply_to(request.reply_to) else None
        if reply_to is not None:
            reply = error_reply(request.request_id, model, reason, message, stage)
            self._reply(out, model, request, reply, unit, topic=reply_to, answer=False)

    def _dlq(self, out: Outputs, model: str, request: Request, headers: list[tuple[str, bytes]],
             kind: str, unit: Unit, *, bare: bool = False) -> None:  # fmt: skip
        """A DLQ entry with the original bytes, cut to what the DLQ topic accepts (the
        ``ms-truncated`` header then says how long they were); ``bare``: only the
        scorer's headers, no bytes (a full entry was refused)."""
        topic, key, value = self.topics.dlq(model), request.key, request.value
        if bare:
            headers, value = [h for h in headers if h[0].startswith("ms-")], b""
        if not self._limits.fits(topic, key, value, headers):
            headers = [*headers, ("ms-truncated", str(len(value)).encode())]
            limit = self._limits.limit(topic)
            if record_size(key, b"", headers) > limit:  # the original headers alone are
                headers = [h for h in headers if h[0].startswith("ms-")]
            value = value[: max(0, limit - record_size(key, b"", headers))]
        out.add(topic, key, value, headers, kind, unit, request)

    def _screen(self, out: Outputs, model: str, requests: list[Request], unit: Unit
                ) -> list[Request]:  # fmt: skip
        """``requests`` less those found unproducible: their DLQ entry instead (once)."""
        kept = []
        for request in requests:
            origin = (request.topic, request.partition, request.offset)
            verdict = self._isolation.verdict(origin)
            if verdict is None:
                kept.append(request)
                continue
            if verdict.written:
                continue  # its DLQ entry is committed: a replay adds nothing
            logged_only = request.offset <= self._replied[(request.topic, request.partition)]
            what = "its prediction-log record" if logged_only else "its reply"
            why = (f"{what} could not be produced, in {verdict.attempts} transaction(s) "
                   f"aborted with it alone: {verdict.error}")  # fmt: skip
            stage = "log" if logged_only else "produce"
            headers = dlq_headers(request, model, "unproducible", stage, why)
            kind = "log_dlq" if logged_only else "dlq"
            self._dlq(out, model, request, headers, kind, unit, bare=verdict.bare)
            out.isolated.append(origin)
        return kept

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
                if self._limits.fits(predictions, key, value, JSON_HEADERS):
                    out.add(predictions, key, value, JSON_HEADERS, "logged", logs.unit, request)
                else:
                    self._log_too_large(out, dep.model, request, predictions, len(value), logs.unit)
                if challenger is not None:
                    self.stats[_challenger_tally(challenger)] += 1
            self._ledger.done(logs.unit)

    def _log_too_large(self, out: Outputs, model: str, request: Request, topic: str, size: int,
                       unit: Unit) -> None:  # fmt: skip
        limit = self._limits.limit(topic)
        why = (f"its prediction-log record ({size} bytes) is larger than {topic} accepts "
               f"({limit} bytes): raise the topic's max.message.bytes, or send shorter "
               "feature values")  # fmt: skip
        headers = dlq_headers(request, model, "log_too_large", "log", why)
        self._dlq(out, model, request, headers, "log_dlq", unit)

    # -- topics ---------------------------------------------------------------------

    def _ensure_model_topics(self, model: str) -> None:
        if model in self._ensured:
            return
        ensure_topics(self._admin, self.topics.model_specs(model, 1))
        self._ensured.add(model)

    def _allowed_reply_to(self, topic: str) -> bool:
        """Replies may go only to an existing reply topic of this prefix (a model's or a
        gateway's): :mod:`streams.scoring.reply_to`."""
        return self._reply_pattern.match(topic) is not None and self._reply_topics.exists(topic)

    def _topic_exists(self, topic: str) -> bool:
        metadata = self._retrying(lambda t: self._consumer.list_topics(topic, timeout=min(t, 5)),
                                  f"looking up topic {topic}")  # fmt: skip
        found = metadata.topics.get(topic)
        return found is not None and found.error is None

    def _learn(self) -> str | None:
        """Forget what each refused delivery may prove stale (its topic deleted or
        reconfigured since it was looked up: a missing topic can fail as a timeout);
        returns the first refusal's text."""
        refused, self._refused = self._refused, []
        prefix = len(self.topics.prefix) + 1
        for topic, _error in refused:
            self._reply_topics.forget(topic)
            self._limits.forget(topic)
            self._ensured.discard(topic[prefix:].rpartition(".")[0])
        return f"{refused[0][0]}: {refused[0][1].str()}" if refused else None

    def _replied_upto(self, tp: TopicPartitionKey) -> int:
        """The last request answered on ``tp``: the ``replied`` mark of its committed offset."""
        found = self._replied.get(tp)
        if found is not None:
            return found
        (committed,) = self._retrying(
            lambda t: self._consumer.committed([TopicPartition(*tp)], timeout=min(t, 10)),
            f"reading the committed offset of {tp[0]}[{tp[1]}]",
        )
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
        origins = outputs.origins()
        try:
            self._producer.begin_transaction()
        except KafkaException as exc:
            self._failed(exc, origins)
            return Counter()
        try:
            for topic, key, value, headers, _unit, _origin in outputs.messages:
                self._produce(topic, key, value, headers)
        except KafkaException as exc:  # refused at once (say, a topic known to be missing)
            self._refused.append((topic, exc.args[0]))
            self._failed(exc, origins, abortable=True)
            return Counter()
        marks = self._marks()
        if self._metadata is None:
            self._metadata = self._consumer.consumer_group_metadata()
        future = self._committer.submit(self._finish, marks, self._metadata)
        self._inflight = _Inflight(future, outputs.counts, origins, outputs.isolated)
        return outputs.counts

    def _marks(self) -> dict[TopicPartitionKey, tuple[int, int]]:
        """Per partition: (offset to commit, last request answered), after this cycle."""
        replied = self._replied
        return {tp: (offset, replied.get(tp, offset - 1))
                for tp, offset in self._ledger.offsets().items()}  # fmt: skip

    def _finish(self, marks: dict[TopicPartitionKey, tuple[int, int]], metadata: Any) -> None:
        """Committer thread: offsets (and replied marks) into the transaction, commit it;
        each call made again while the broker is away (for at most the transaction
        timeout)."""
        offsets = [TopicPartition(t, p, offset, metadata=f"{REPLIED}{mark}")
                   for (t, p), (offset, mark) in marks.items()]  # fmt: skip
        producer = self._producer
        retrying(lambda t: producer.send_offsets_to_transaction(offsets, metadata, t),
                 "sending the offsets to the transaction", self._budget,
                 on_retry=self._committer_retried)  # fmt: skip
        retrying(producer.commit_transaction, "committing the transaction", self._budget,
                 on_retry=self._committer_retried)  # fmt: skip

    def _committer_retried(self, _error: KafkaError) -> None:
        self._committer_retries += 1

    def settle(self) -> bool:
        """Wait for the transaction in flight; False if it had to be aborted (and every
        partition was rewound). Called before the next transaction, on revoke, on close."""
        if self._inflight is None:
            return True
        inflight, self._inflight = self._inflight, None
        try:
            # the committer gives up within about the budget, unless librdkafka hangs (and
            # were it only slow, replacing the producer is safe: the commit completes or
            # aborts, and the rewind reads which)
            inflight.future.result(timeout=self._budget + STUCK_AFTER)
        except KafkaException as exc:
            return self._failed(exc, inflight.origins)
        except FutureTimeout:
            return self._stuck(inflight.origins)
        finally:
            self.stats["retries"] += self._committer_retries
            self._committer_retries = 0
        self.stats.update(inflight.counts)
        self.stats["batches"] += 1
        self._isolation.committed(len(inflight.origins))
        if self._paused and not self._isolation.splitting:
            self._refocus()
        for origin in inflight.isolated:
            self._isolation.written(origin)
        return True

    def _failed(self, exc: KafkaException, origins: set[Origin], *, abortable: bool = False
                ) -> bool:  # fmt: skip
        """Abort the transaction and rewind (``abortable``: whatever Kafka's advice); a
        fatal error replaces the producer, unless it says a newer instance fenced it."""
        error: KafkaError = exc.args[0]
        if error.fatal():
            return self._replace(error, origins)
        if not (abortable or error.txn_requires_abort()):
            # a transient error that outlasted the transaction timeout: the broker has
            # aborted the transaction by now, or will; abort it here too and replay
            log.warning("the transaction did not complete in %.0f s (%s)", self._budget, error)
        log.warning("aborting the transaction: %s", error)
        try:
            self._retrying(self._producer.abort_transaction, "aborting the transaction",
                           replaceable=True)  # fmt: skip
        except _ProducerBrokenError as broken:
            return self._replace(broken.error, origins)
        self.stats["aborts"] += 1
        self._isolate(origins, self._learn() or error.str())
        self._rewind()
        self._refocus()
        return False

    def _replace(self, error: KafkaError, origins: set[Origin]) -> bool:
        """A fatal producer error: a new producer with the same transactional id aborts
        the open transaction, and every partition is rewound (see the module docstring:
        a newer instance is the consumer's to detect). Not allowed to use the id: stop."""
        if error.code() in UNRECOVERABLE:
            raise ScorerFencedError(f"the transactional producer cannot go on: {error}; "
                                    "check the scorer's ACLs (`modelstream kafka acls list`)"
                                    )  # fmt: skip
        now = time.monotonic()
        self._replaced = [t for t in self._replaced if now - t < REPLACEMENT_WINDOW]
        if len(self._replaced) >= MAX_REPLACEMENTS:
            raise ScorerFencedError(f"transactional producer broken {len(self._replaced) + 1} "
                                    f"times in {REPLACEMENT_WINDOW:.0f} s, last: {error}; "
                                    "check the broker's logs, then restart the scorer")  # fmt: skip
        self._replaced.append(now)
        log.error("the transactional producer failed fatally (%s): replacing it (the same "
                  "transactional id aborts its transaction) and reading again from the "
                  "committed offsets", error)  # fmt: skip
        return self._new_producer(origins, error.str())

    def _stuck(self, origins: set[Origin]) -> bool:
        """The commit never returned (librdkafka#5456: a group coordinator that went away
        mid-call): a new producer with the same transactional id fences the stuck one
        and aborts its transaction (or completes it, if its commit had begun); then every
        partition is rewound to what the broker has committed."""
        log.error("the transaction's commit has not returned in %.0f s: replacing the "
                  "producer (the same transactional id fences the stuck one)",
                  self._budget + STUCK_AFTER)  # fmt: skip
        self._committer = Committer()  # the old one's thread stays stuck, abandoned
        return self._new_producer(origins, "the commit did not return")

    def _new_producer(self, origins: set[Origin], reason: str) -> bool:
        self._refused.clear()
        self._producer = Producer(self._producer_config(self._kafka))
        self._retrying(self._producer.init_transactions, "starting a new transactional producer")
        self.stats["aborts"] += 1
        self.stats["producer_replaced"] += 1
        self._isolate(origins, reason)
        self._rewind()
        self._refocus()
        return False

    def _isolate(self, origins: set[Origin], error: str) -> None:
        try:
            found = self._isolation.aborted(origins, error)
        except IsolationError as exc:
            raise ScorerError(str(exc)) from exc
        if found is not None:
            self.stats["isolated"] += 1
            log.error("%s[%d]@%d cannot be produced (%s): it goes to the DLQ as unproducible",
                      *found, error)  # fmt: skip
        elif self._isolation.splitting:
            log.warning("aborted again: looking for the request behind it in batches of %d",
                        self._isolation.limit)  # fmt: skip

    def _refocus(self) -> None:
        """Read only the partitions :class:`Isolation` looks at (all when it looks at none)."""
        consumer, focus = self._consumer, self._isolation.focus
        with contextlib.suppress(KafkaException):  # revoked meanwhile
            if self._paused:
                consumer.resume(self._paused)
        self._paused = []
        if focus is not None:
            self._paused = [tp for tp in consumer.assignment()
                            if (tp.topic, tp.partition) not in focus]  # fmt: skip
            if self._paused:
                consumer.pause(self._paused)

    def _retrying(self, call: Callable[[float], T], what: str, *, replaceable: bool = False
                  ) -> T:  # fmt: skip
        """``call(timeout)``, made again while the broker is away (loop thread); its
        errors as the scorer's (a fatal one as :class:`_ProducerBrokenError` if the producer
        is ``replaceable``)."""
        try:
            return retrying(call, what, self._outage_budget, on_retry=self._retried)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.fatal():
                if replaceable and error.code() not in UNRECOVERABLE:
                    raise _ProducerBrokenError(error) from exc
                raise ScorerFencedError(f"{what}: the producer is fenced or broken: {error}"
                                        ) from exc  # fmt: skip
            raise ScorerError(f"{what} failed for {self._outage_budget:.0f} s: {error}; check that "
                              "the Kafka cluster is reachable, then restart the scorer"
                              ) from exc  # fmt: skip

    def _retried(self, _error: KafkaError) -> None:
        self.stats["retries"] += 1

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
        self._last_read = time.monotonic()  # a bisection's dry time counts from here
        assigned = self._consumer.assignment()
        if not assigned:
            return
        committed = self._retrying(
            lambda t: self._consumer.committed(assigned, timeout=min(t, 10)),
            "reading the committed offsets",
        )
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else 0
            try:
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:  # revoked meanwhile: the new owner replays
                log.info("not rewinding %s[%d]: %s", tp.topic, tp.partition, exc)

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

    # -- at-least-once --------------------------------------------------------------

    def _send_alo(self, outputs: Outputs) -> None:
        if self._delivery_error is not None:
            log.warning("a delivery failed (%s): reading again from the committed offsets",
                        self._delivery_error)  # fmt: skip
            self._delivery_error = None
            self._producer.flush(10)
            self._learn()
            self._rewind()
            return
        self._release(outputs)
        ledger = self._ledger
        for topic, key, value, headers, unit, _origin in outputs.messages:
            ledger.add(unit)
            self._produce(topic, key, value, headers, partial(self._delivered, unit))
        self.stats.update(outputs.counts)
        self.stats["batches"] += 1
        self._flush_alo(0)

    def _delivered(self, unit: Unit, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._delivery_error = error
            self._refused.append((message.topic() or "", error))
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
        self._committer.shutdown(timeout=10)
        with contextlib.suppress(RuntimeError):  # already closed
            self._consumer.close()
        with contextlib.suppress(KafkaException):  # a fatal producer has nothing to flush
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

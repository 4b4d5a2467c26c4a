"""The scorer: consume requests, score them, produce replies, prediction logs and DLQ
entries — all inside one Kafka transaction per micro-batch (exactly-once).

Loop, per micro-batch::

    poll (blocks only until the first request; no fixed wait) → drain what is queued
    begin_transaction
      per model: decode + validate → score (champion, backup, shadow challenger)
      produce replies, prediction logs, DLQ entries
      send_offsets_to_transaction(batch offsets + 1, group metadata)   (KIP-447)
    commit_transaction

Errors: ``txn_requires_abort`` → abort and rewind to the batch's first offsets (the batch
is scored again, nothing is answered twice: read_committed readers never saw the aborted
outputs); retriable → retry the commit; fatal (fenced by a newer instance) →
:class:`ScorerFencedError`, the process must stop.

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
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.codec import JSON, Codec, DecodeError
from schemas.contracts import load_schema
from streams.kafka import KafkaConfig, Topics, consumer_config, ensure_topics, make_admin
from streams.kafka import producer_config as base_producer_config
from streams.kafka_logs import ConsumerErrors
from streams.scoring.deployment import Deployment, DeploymentTable
from streams.scoring.envelope import Request, dlq_headers, parse_request
from streams.scoring.policy import Scored, ServingPolicy, score

__all__ = ["Scorer", "ScorerConfig", "ScorerError", "ScorerFencedError"]

log = logging.getLogger(__name__)
JSON_HEADERS = [("content-type", b"application/json")]


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
    max_batch: int = 500
    max_wait: float = 0.05  # seconds to block for the first request of a batch
    policy: ServingPolicy = field(default_factory=ServingPolicy)
    transaction_timeout_ms: int = 15_000
    # the largest message the scorer writes; a DLQ entry over it keeps its first bytes
    # and says so in an ms-truncated header (the broker here accepts 8 MiB)
    max_output_bytes: int = 8 * 1024 * 1024 - 65_536

    @property
    def group_id(self) -> str:
        return f"{self.topics.prefix}.scorer"

    @property
    def transactional_id(self) -> str:
        return f"{self.group_id}.{self.instance_id}"


@dataclass
class Outputs:
    """What one batch produces, before it is sent."""

    messages: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = field(
        default_factory=list
    )
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, topic: str, key: bytes | None, value: bytes, headers: Any, kind: str) -> None:
        self.messages.append((topic, key, value, headers))
        self.counts[kind] += 1


class Scorer:
    """One scorer process's consume-score-produce loop."""

    def __init__(self, kafka: KafkaConfig, config: ScorerConfig, table: DeploymentTable) -> None:
        self.config = config
        self.table = table
        self.topics = config.topics
        self.stats: Counter[str] = Counter()
        self._reply_codec = Codec(load_schema("reply"))
        self._known_topics: set[str] = set()
        self._consumer_error = ConsumerErrors(log, "serving it once it is created")
        self._kafka = kafka
        self._admin = make_admin(kafka)
        self._consumer = Consumer(self._consumer_config(kafka))
        self._producer = Producer(
            base_producer_config(
                kafka,
                transactional_id=config.transactional_id,
                transaction_timeout_ms=config.transaction_timeout_ms,
                message_timeout_ms=min(30_000, config.transaction_timeout_ms - 1_000),
                message_max_bytes=config.max_output_bytes + 65_536,
            )
        )
        self._producer.init_transactions(30)
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="committer")
        self._inflight: tuple[Future[None], list[Request], Counter[str]] | None = None
        self._aborted: list[Request] = []  # the last aborted batch, for a combined rewind
        self._subscribe()

    def _consumer_config(self, kafka: KafkaConfig) -> dict[str, Any]:
        return consumer_config(
            kafka,
            self.config.group_id,
            group_instance_id=self.config.transactional_id,
            topic_metadata_refresh_interval_ms=2_000,
            partition_assignment_strategy="cooperative-sticky",
        )

    def _subscribe(self) -> None:
        if self.config.models:
            wanted = [self.topics.requests(m) for m in self.config.models]
        else:
            wanted = [f"^{re.escape(self.topics.prefix)}\\.[A-Za-z0-9_-]+\\.requests$"]
        self._consumer.subscribe(wanted, on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.settle()  # the transaction in flight still holds offsets of these partitions

    # -- the loop -------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        on_batch: Callable[[Counter[str]], None] | None = None,
    ) -> None:
        """Serve until ``stop`` is set (or forever)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            batch = self._next_batch()
            if batch:
                counts = self.process(batch)
                if on_batch is not None:
                    on_batch(counts)
            else:
                self.settle()  # idle: finish the last commit now, not at the next request
        self.settle()

    def _next_batch(self) -> list[Message]:
        first = self._consumer.poll(self.config.max_wait)
        if first is None:
            return []
        batch = [first, *self._consumer.consume(self.config.max_batch - 1, 0)]
        good = []
        for message in batch:
            error = message.error()
            if error is None:
                good.append(message)
            else:
                self._consumer_error(error)
        return good

    def process(self, batch: list[Message]) -> Counter[str]:
        """Score one batch and hand its transaction to the committer thread.

        The commit of batch N (send offsets + EndTxn, ~10-40 ms of broker round trips)
        runs while batch N+1 is consumed and scored; batch N+1's outputs are produced only
        after N committed. Returns the batch's output counts (committed or on their way).
        """
        started = time.perf_counter()
        outputs = Outputs()
        requests = [parse_request(message) for message in batch]
        by_topic: dict[str, list[Request]] = {}
        for request in requests:
            by_topic.setdefault(request.topic, []).append(request)
        for topic, group in by_topic.items():
            self._handle_topic(topic, group, outputs, started)
        if not self.settle():
            # the batch in flight was aborted: read it AND this one again, from the
            # earliest offset of either per partition (this batch's own firsts come later)
            self._rewind(self._aborted + requests)
            return Counter()
        if not self._begin(outputs, requests):
            return Counter()
        metadata = self._consumer.consumer_group_metadata()
        future = self._committer.submit(self._finish, requests, metadata)
        self._inflight = (future, requests, outputs.counts)
        return outputs.counts

    # -- per model ------------------------------------------------------------------

    def _handle_topic(
        self, topic: str, requests: list[Request], out: Outputs, started: float
    ) -> None:
        model = topic[len(self.topics.prefix) + 1 : -len(".requests")]
        self._ensure_model_topics(model)
        deployment = self.table.get(model)
        if deployment is None:
            for request in requests:
                self._reject(out, model, request, "unknown_model", "route",
                             f"no model named {model!r} is registered with a champion")  # fmt: skip
            return
        valid, rows = self._decode(deployment, requests, out)
        if not valid:
            return
        ids = [request.request_id for request in valid]
        results = score(deployment, rows, ids, self.config.policy)
        now_ms = int(time.time() * 1e3)
        for request, row, result in zip(valid, rows, results, strict=True):
            self._emit(out, deployment, request, row, result, started, now_ms)

    def _decode(
        self, dep: Deployment, requests: list[Request], out: Outputs
    ) -> tuple[list[Request], list[dict[str, Any]]]:
        valid, rows = [], []
        decode = dep.codec.decode
        for request in requests:
            reply_to = request.reply_to
            if reply_to is not None and not self._allowed_reply_to(reply_to):
                self._reject(out, dep.model, request, "bad_reply_to", "route",
                             f"reply-to topic {reply_to!r} does not exist or is not a reply "
                             "topic")  # fmt: skip
                continue
            try:
                rows.append(decode(request.value, request.content_type))
            except DecodeError as exc:
                self._reject(out, dep.model, request, exc.reason, "decode", str(exc))
                continue
            valid.append(request)
        return valid, rows

    def _emit(
        self, out: Outputs, dep: Deployment, request: Request, row: dict[str, Any],
        result: Scored, started: float, now_ms: int,
    ) -> None:  # fmt: skip
        latency = (time.perf_counter() - started) * 1e3
        served = result.served
        version = dep.champion.version
        if result.served_by == "backup" and dep.backup is not None:
            version = dep.backup.version
        error = None
        if result.served_by == "none":
            code, message = served.error or ("model_failed", "no model could serve the request")
            error = {"code": code, "message": message, "stage": "score"}
        reply = {
            "request_id": request.request_id, "model": dep.model, "model_version": version,
            "task": dep.task, "prediction": served.output if error is None else None,
            "probabilities": served.probabilities if error is None else None,
            "served_by": result.served_by, "latency_ms": latency, "error": error,
            "created_at": now_ms,
        }  # fmt: skip
        self._reply(out, dep.model, request, reply)
        record = {
            "request_id": request.request_id, "model": dep.model, "ts": now_ms,
            "client_id": request.client_id, "source_topic": request.topic,
            "source_partition": request.partition, "source_offset": request.offset,
            "features": row, "champion": result.champion.as_log(dep.champion.version),
            "challenger": result.challenger.as_log(dep.challenger.version)
            if result.challenger is not None and dep.challenger is not None else None,
            "served_by": result.served_by,
            "backup": result.backup.as_log(dep.backup.version)
            if result.backup is not None and dep.backup is not None else None,
            "schema_fingerprint": dep.codec.fingerprint_hex,
            "training_data_fingerprint": dep.champion.training_data_fingerprint,
            "sensitive": {name: str(row.get(name)) for name in dep.sensitive},
            "latency_ms": latency,
        }  # fmt: skip
        # JSON (checked against the prediction_log schema by the contract tests): orjson
        # writes it in ~2 µs where an Avro writer needs 40-75 µs for its map of unions.
        out.add(self.topics.predictions(dep.model), request.key, orjson.dumps(record),
                JSON_HEADERS, "logged")  # fmt: skip

    def _reply(self, out: Outputs, model: str, request: Request, reply: dict[str, Any]) -> None:
        topic = request.reply_to or self.topics.replies(model)
        if request.content_type == JSON:
            value, ctype = orjson.dumps(reply), b"application/json"
        else:
            value, ctype = self._reply_codec.encode_avro_trusted(reply), b"application/avro"
        headers = [("content-type", ctype), ("request-id", request.request_id.encode())]
        out.add(
            topic, request.key, value, headers, "replies" if reply["error"] is None else "errors"
        )

    def _reject(
        self, out: Outputs, model: str, request: Request, reason: str, stage: str, message: str
    ) -> None:
        """DLQ with the original bytes; an error reply too when the client named a reply-to."""
        headers = dlq_headers(request, model, reason, stage, message)
        value = request.value
        if len(value) > self.config.max_output_bytes:
            headers.append(("ms-truncated", str(len(value)).encode()))
            value = value[: self.config.max_output_bytes]
        out.add(self.topics.dlq(model), request.key, value, headers, "dlq")
        if request.reply_to is not None and self._allowed_reply_to(request.reply_to):
            error = {"code": reason, "message": message, "stage": stage}
            reply = {
                "request_id": request.request_id, "model": model, "model_version": None,
                "task": "unknown", "prediction": None, "probabilities": None,
                "served_by": "none", "latency_ms": 0.0, "error": error,
                "created_at": int(time.time() * 1e3),
            }  # fmt: skip
            self._reply(out, model, request, reply)

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

    # -- transactions ---------------------------------------------------------------

    def _begin(self, outputs: Outputs, batch: list[Request]) -> bool:
        """Open the batch's transaction and enqueue its outputs."""
        try:
            self._producer.begin_transaction()
            for topic, key, value, headers in outputs.messages:
                self._produce(topic, key, value, headers)
        except KafkaException as exc:
            return self._failed(exc, batch)
        return True

    def _finish(self, batch: list[Request], metadata: Any) -> None:
        """Committer thread: offsets into the transaction, then commit it."""
        self._producer.send_offsets_to_transaction(_next_offsets(batch), metadata, 30)
        self._commit()

    def settle(self) -> bool:
        """Wait for the transaction in flight; False if it had to be aborted (its input
        was rewound). Called before the next transaction, on revoke, and on close."""
        if self._inflight is None:
            return True
        future, batch, counts = self._inflight
        self._inflight = None
        try:
            future.result()
        except KafkaException as exc:
            return self._failed(exc, batch)
        self.stats.update(counts)
        self.stats["batches"] += 1
        return True

    def _failed(self, exc: KafkaException, batch: list[Request]) -> bool:
        error: KafkaError = exc.args[0]
        if error.fatal():
            raise ScorerFencedError(f"transactional producer is fenced or broken: {error}") from exc
        if not error.txn_requires_abort():
            raise ScorerError(f"transaction failed: {error}") from exc
        log.warning("aborting batch of %d: %s", len(batch), error)
        self._producer.abort_transaction(30)
        self._aborted = batch
        self._rewind(batch)
        self.stats["aborts"] += 1
        return False

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: Any) -> None:
        try:
            self._producer.produce(topic, value, key, headers=headers)
        except BufferError:
            self._producer.poll(0.05)  # let the queue drain, then once more
            self._producer.produce(topic, value, key, headers=headers)

    def _commit(self) -> None:
        for attempt in range(5):
            try:
                self._producer.commit_transaction(30)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable() or attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def _rewind(self, batch: list[Request]) -> None:
        first: dict[tuple[str, int], int] = {}
        for request in batch:
            key = (request.topic, request.partition)
            first[key] = min(first.get(key, request.offset), request.offset)
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:  # partition revoked meanwhile: the new owner replays
                log.info("not rewinding %s[%d]: %s", topic, partition, exc)

    def close(self) -> None:
        """Finish the transaction in flight, leave the group; safe to call twice."""
        self.settle()
        self._committer.shutdown(wait=True)
        with contextlib.suppress(RuntimeError):  # already closed
            self._consumer.close()
        self._producer.flush(10)


def _next_offsets(batch: list[Request]) -> list[TopicPartition]:
    """Committed offsets are 'last processed + 1' per partition of the batch."""
    last: dict[tuple[str, int], int] = {}
    for request in batch:
        key = (request.topic, request.partition)
        last[key] = max(last.get(key, -1), request.offset)
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]

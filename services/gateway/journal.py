"""A direct-serving gateway's journal → the models' prediction logs, exactly once.

The gateway answers a request once its prediction-log record, less the challenger's
outcome, is acknowledged on the journal (``<prefix>.gateway-<instance>.journal``, one
partition). :class:`JournalWriter` reads the journal back, fills in each record's
challenger outcome as soon as the challenger's worker has it (or its deadline passed),
and writes the complete record to ``<prefix>.<model>.predictions`` in a transaction that
also commits the journal offset. A record therefore reaches the prediction log once,
whether the gateway crashes before, during or after the transaction: the next gateway
with the same instance id aborts the open transaction and goes on from the committed
offset (``transactional.id`` ``<prefix>.gateway-<instance>.journal``).

A journal record whose row went to the challenger carries a header
``ms-shadow: <version>:<epoch>:<batch>:<row>``; the epoch is random per process, so after
a restart the writer knows the outcome is gone and scores that row again with the same
challenger version (or records ``skipped: gateway_restarted`` when it is no longer the
challenger). The log record's ``source_topic``/``_partition``/``_offset`` name the
journal record, so every HTTP answer can be traced to its place in Kafka.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from streams.kafka import KafkaConfig, consumer_config, producer_config
from streams.scoring import DeploymentTable, Frame, Shadowed, challenger_outcomes
from streams.scoring.outcome import Outcome

if TYPE_CHECKING:
    from services.gateway.direct import DirectConfig

__all__ = ["SHADOW_HEADER", "JournalWriter", "WaitingShadows", "parse_tag"]

log = logging.getLogger(__name__)
SHADOW_HEADER = "ms-shadow"
MAX_RECORDS = 5_000  # journal records per transaction, at most
GATHER_S = 0.02  # how long a transaction waits for more records after the first
RESTARTED = "gateway_restarted"
_MISSING = object()


class WaitingShadows:
    """The challenger tickets of batches whose journal records are not logged yet,
    shared by the scoring thread (adds) and the journal writer (reads, releases)."""

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self._seq = itertools.count()
        self._batches: dict[str, tuple[Shadowed, int]] = {}
        self._left: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._batches)

    def add(self, shadowed: Shadowed | None, size: int) -> Callable[[int], bytes | None]:
        """Register one model batch; the result gives each row's ``ms-shadow`` header
        value, or None for a row the challenger does not see (sampled out)."""
        if shadowed is None or shadowed.ticket is None or not shadowed.rows:
            return _never
        key = f"{self.epoch}:{next(self._seq)}"
        with self._lock:
            self._batches[key] = (shadowed, size)
            self._left[key] = len(shadowed.rows)
        chosen = None if len(shadowed.rows) == size else frozenset(shadowed.rows)
        prefix = f"{shadowed.version}:{key}:"

        def tag(row: int) -> bytes | None:
            if chosen is not None and row not in chosen:
                return None
            return f"{prefix}{row}".encode()

        return tag

    def outcome(self, key: str, row: int, now: float) -> Any:
        """The challenger's outcome for ``row`` of batch ``key``; None while it may still
        come; :data:`_MISSING` when this process never had that batch."""
        entry = self._batches.get(key)
        if entry is None:
            return _MISSING
        shadowed, size = entry
        outcomes = challenger_outcomes(shadowed, size, now)
        return None if outcomes is None else outcomes[row]

    def release(self, keys: list[str]) -> None:
        """Forget a batch once each of its sampled rows is logged."""
        with self._lock:
            for key in keys:
                left = self._left.get(key)
                if left is None:
                    continue
                if left <= 1:
                    del self._left[key]
                    del self._batches[key]
                else:
                    self._left[key] = left - 1


def _never(row: int) -> bytes | None:
    return None


def parse_tag(raw: bytes) -> tuple[int, str, int] | None:
    """``(version, batch key, row)`` of an ``ms-shadow`` header value, None if malformed.

    >>> parse_tag(b"2:ab12cd34:7:3")
    (2, 'ab12cd34:7', 3)
    >>> parse_tag(b"junk") is None
    True
    """
    try:
        version, epoch, batch, row = raw.decode().split(":")
        return int(version), f"{epoch}:{batch}", int(row)
    except (UnicodeDecodeError, ValueError):
        return None


class JournalWriter(threading.Thread):
    """Journal → prediction logs (see the module docstring)."""

    def __init__(
        self, kafka: KafkaConfig, config: DirectConfig, table: DeploymentTable,
        shadows: WaitingShadows,
    ) -> None:  # fmt: skip
        super().__init__(name="journal-writer", daemon=True)
        self.config = config
        self.table = table
        self.shadows = shadows
        self.logged = 0
        self.topic = config.journal_topic
        self._group = f"{config.journal_topic}.writer"
        self._consumer = Consumer(
            consumer_config(kafka, self._group, fetch_wait_max_ms=10,
                            client_id=f"{kafka.client_id}-journal-reader")
        )  # fmt: skip
        self._producer = Producer(
            producer_config(
                kafka, transactional_id=self.config.journal_topic,
                client_id=f"{kafka.client_id}-journal-writer",
            )
        )  # fmt: skip
        # not `_stop`: threading.Thread has a _stop() method that join() calls
        self._closing = threading.Event()
        self._deadline = float("inf")  # when closing: how long to keep draining

    def start(self, timeout: float = 30.0) -> None:  # type: ignore[override]  # one more arg
        """Fence any earlier writer of this journal, go on from its committed offset."""
        self._producer.init_transactions(timeout)
        (committed,) = self._consumer.committed([TopicPartition(self.topic, 0)], timeout)
        offset = committed.offset if committed.offset >= 0 else 0
        self._consumer.assign([TopicPartition(self.topic, 0, offset)])
        super().start()

    def close(self, timeout: float) -> None:
        """Log what the journal holds (at most ``timeout`` seconds), then stop."""
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        self.join(timeout + 5.0)
        self._consumer.close()

    def run(self) -> None:
        idle_since = None
        while True:
            try:
                messages = self._gather()
            except KafkaException as exc:
                log.warning("journal reader: %s", exc)
                continue
            records = [m for m in messages if _ok(m)]
            if records:
                idle_since = None
                self._log(records)
            elif self._closing.is_set():
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 0.3 or time.monotonic() > self._deadline:
                    return
            if self._closing.is_set() and time.monotonic() > self._deadline:
                return

    def _gather(self) -> list[Message]:
        """What the journal holds now, and what comes within :data:`GATHER_S` of the first
        record: a transaction costs the broker the same for 1 record as for 1,000, and
        one per answered call (calls arriving one by one) cost more than the answers."""
        messages = self._consumer.consume(MAX_RECORDS, 0.05)
        if not messages:
            return messages
        until = time.monotonic() + GATHER_S
        while len(messages) < MAX_RECORDS and (left := until - time.monotonic()) > 0:
            messages += self._consumer.consume(MAX_RECORDS - len(messages), left)
        return messages

    def _log(self, messages: list[Message]) -> None:
        last = messages[-1]
        records, parsed = [], []
        for message in messages:
            record = _record(message)
            if record is not None:
                records.append(message)
                parsed.append(record)
        tags = [_tag(m) for m in records]
        outcomes = self._challengers(tags, parsed)
        out = []
        for message, record, (version, outcome) in zip(records, parsed, outcomes, strict=True):
            if outcome is not None:
                record["challenger"] = outcome.as_log(version)
            record["source_topic"] = self.topic
            record["source_partition"] = message.partition()
            record["source_offset"] = message.offset()
            model = record["model"]
            out.append((self.config.topics.predictions(model), message.key(), orjson.dumps(record)))
        if self._transaction(out, TopicPartition(self.topic, 0, (last.offset() or 0) + 1)):
            self.logged += len(out)
            self.shadows.release([tag[1] for tag in tags if tag is not None])

    def _challengers(
        self, tags: list[tuple[int, str, int] | None], parsed: list[dict[str, Any]]
    ) -> list[tuple[int, Outcome | None]]:
        """Per record (its ``ms-shadow`` tag): the challenger's version and outcome (None:
        already in the record), waiting for the worker up to each batch's deadline."""
        result: list[tuple[int, Outcome | None]] = [(0, None)] * len(tags)
        waiting = [i for i, tag in enumerate(tags) if tag is not None]
        again: dict[tuple[str, int], list[int]] = {}
        while waiting:
            now = time.monotonic()
            still = []
            for i in waiting:
                version, key, row = tags[i]  # type: ignore[misc]  # waiting holds tagged rows
                found = self.shadows.outcome(key, row, now)
                if found is _MISSING:
                    again.setdefault((parsed[i]["model"], version), []).append(i)
                elif found is None:
                    still.append(i)
                else:
                    result[i] = (version, found)
            waiting = still
            if waiting:
                time.sleep(0.002)
        for (model, version), rows in again.items():
            log.info("scoring %d journal records of an earlier process with %s's challenger "
                     "v%d", len(rows), model, version)  # fmt: skip
            features = [parsed[i].get("features") or {} for i in rows]
            for i, outcome in zip(rows, self._rescore(model, version, features), strict=True):
                result[i] = (version, outcome)
        return result

    def _rescore(self, model: str, version: int, features: list[dict[str, Any]]
                 ) -> list[Outcome]:  # fmt: skip
        """The challenger's outcomes for journal records of an earlier process."""
        dep = self.table.get(model)
        if dep is None or dep.challenger is None or dep.challenger.version != version:
            return [Outcome.skip(RESTARTED)] * len(features)
        challenger = dep.challenger
        names = [f["name"] for f in dep.codec.schema["fields"]]
        deadline = self.config.policy.challenger_deadline
        ticket = challenger.shadow.submit(Frame(features, names), deadline)
        while (outcomes := ticket.result(time.monotonic())) is None:
            time.sleep(0.002)
        return outcomes

    def _transaction(self, out: list[tuple[str, bytes | None, bytes]], offset: TopicPartition
                     ) -> bool:  # fmt: skip
        """Write ``out`` and commit the journal offset in one transaction; after a failure
        that needs an abort, read the journal again from the committed offset."""
        producer = self._producer
        try:
            producer.begin_transaction()
            for topic, key, value in out:
                _produce(producer, topic, key, value)
            metadata = self._consumer.consumer_group_metadata()
            producer.send_offsets_to_transaction([offset], metadata, 30)
            _commit(producer)
            return True
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.fatal():
                log.error("the journal writer was fenced or broke (%s): another gateway with "
                          "instance id %s is running?", error, self.config.instance_id)  # fmt: skip
                self._closing.set()
                self._deadline = 0.0
                return False
            log.warning("aborting the journal transaction (%s); reading it again", error)
            if error.txn_requires_abort():
                producer.abort_transaction(30)
            (committed,) = self._consumer.committed([TopicPartition(self.topic, 0)], 10)
            self._consumer.seek(TopicPartition(self.topic, 0, max(committed.offset, 0)))
            return False


def _tag(message: Message) -> tuple[int, str, int] | None:
    headers: Any = message.headers() or []
    for name, raw in headers:
        if name == SHADOW_HEADER and raw is not None:
            return parse_tag(raw if isinstance(raw, bytes) else str(raw).encode())
    return None


def _record(message: Message) -> dict[str, Any] | None:
    """The journal record's log record; None (logged, skipped) when it is not one: only
    this gateway writes its journal, so such a record is somebody else's mistake."""
    try:
        record = orjson.loads(message.value() or b"")
    except orjson.JSONDecodeError:
        record = None
    if isinstance(record, dict) and isinstance(record.get("model"), str):
        return record
    log.error("skipping %s[%d]@%d: not a journal record", message.topic(), message.partition(),
              message.offset())  # fmt: skip
    return None


def _produce(producer: Producer, topic: str, key: bytes | None, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key, headers=[("content-type", b"application/json")])
            return
        except BufferError:
            producer.poll(0.05)


def _commit(producer: Producer) -> None:
    for attempt in range(5):
        try:
            producer.commit_transaction(30)
            return
        except KafkaException as exc:
            if not exc.args[0].retriable() or attempt == 4:
                raise
            time.sleep(0.1 * (attempt + 1))


def _ok(message: Message) -> bool:
    error = message.error()
    if error is not None and error.code() != KafkaError._PARTITION_EOF:
        log.warning("journal reader error: %s", error)
    return error is None

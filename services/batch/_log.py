"""A batch run's prediction-log records and DLQ entries: exactly once, resumable.

Each scored row makes the scorer's prediction-log record (:func:`log_record`, with
``source = "batch"``), keyed by its request id (the murmur2 partitioner, as the scorer:
its labels land on the same partition); each refused row makes a DLQ entry with the
scorer's ``ms-*`` headers and, as payload, the JSON request the row would have been.

Protocol, one Kafka transaction per chunk (transactional id ``<prefix>._batch.<model>``)::

    begin → the chunk's records and DLQ entries → marker → commit

The marker is a committed offset of the consumer group ``<prefix>._batch.<model>.<run
key>`` on partition 0 of the prediction log: offset = rows of the input logged so far,
metadata = what the run was. It is written inside the transaction, so it and the
records are visible together or not at all. The run key names the input (its content
fingerprint) and the champion, challenger and backup versions: a rerun of the same
input with the same models logs only the rows past the marker (none after a complete
run; the rest after a killed one, whatever its ``--batch-size``); another champion is
another run key, and logs. ``init_transactions`` fences an older run of the same model
and aborts its open transaction. Markers last as long as the broker keeps an empty group's offsets
(``offsets.retention.minutes``, 7 days by default); a rerun after that logs again.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from schemas.codec import JSON
from services.batch._chunk import ScoredChunk
from services.batch._errors import UnreachableError
from streams.kafka import KafkaConfig, Topics, make_consumer, make_producer
from streams.scoring import Deployment
from streams.scoring.envelope import Request, dlq_headers
from streams.scoring.records import log_record

__all__ = ["PredictionLog", "Requests", "chunk_messages", "run_key", "served_versions"]

JSON_HEADERS = [("content-type", b"application/json")]
TIMEOUT = 30.0


def served_versions(dep: Deployment) -> str:
    """``champion/challenger/backup`` versions, ``-`` for a role no version fills."""
    challenger = dep.challenger.version if dep.challenger is not None else "-"
    backup = dep.backup.version if dep.backup is not None else "-"
    return f"{dep.champion.version}/{challenger}/{backup}"


def run_key(model: str, fingerprint: str, versions: str) -> str:
    """16 hex digits naming one run: the model, its input and the versions that score it.

    >>> run_key("churn", "0123456789abcdef", "3/-/-")
    'fff6f3c3a2316efa'
    >>> run_key("churn", "0123456789abcdef", "4/-/-") != run_key(
    ...     "churn", "0123456789abcdef", "3/-/-")
    True
    """
    text = f"{model}|{fingerprint}|{versions}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Requests:
    """The request each input row stands for: id ``batch-<fingerprint>-<row>``, topic
    ``batch:<source name>``, partition 0, offset = the row's index in the input.

    >>> r = Requests("daily.parquet", "0123456789abcdef").request(7, b"{}")
    >>> r.request_id, r.topic, r.partition, r.offset
    ('batch-0123456789abcdef-7', 'batch:daily.parquet', 0, 7)
    """

    def __init__(self, source_name: str, fingerprint: str) -> None:
        self.topic = f"batch:{' '.join(source_name.split())[:200]}"
        self.stem = f"batch-{fingerprint}-"

    def request(self, row: int, value: bytes) -> Request:
        rid = f"{self.stem}{row}"
        return Request(rid, rid.encode(), value, JSON, None, None, list(JSON_HEADERS),
                       self.topic, 0, row)  # fmt: skip


def chunk_messages(
    dep: Deployment,
    requests: Requests,
    start: int,
    chunk: ScoredChunk,
    dlq_topic: str,
    logged: int = 0,
) -> Iterator[tuple[str | None, bytes, bytes, list[tuple[str, bytes]]]]:
    """``(topic or None for the prediction log, key, value, headers)`` of the rows of one
    chunk (its first row is input row ``start``) that are not among the first ``logged``."""
    admitted = chunk.admitted
    for i, value, row, result, challenger in zip(
        admitted.indices, admitted.values, admitted.rows, chunk.results, chunk.challengers,
        strict=True,
    ):  # fmt: skip
        if start + i < logged:
            continue
        request = requests.request(start + i, value)
        record = log_record(dep, request, row, result, challenger, chunk.latency_ms,
                            chunk.now_ms, source="batch")  # fmt: skip
        yield None, request.key or b"", record, JSON_HEADERS
    for refusal in admitted.refused:
        if start + refusal.index < logged:
            continue
        request = requests.request(start + refusal.index, refusal.value)
        headers = dlq_headers(request, dep.model, refusal.reason, "decode", refusal.message)
        yield dlq_topic, request.key or b"", refusal.value, headers


class PredictionLog:
    """Writes one run's chunks, one transaction each, and remembers how far it got."""

    def __init__(self, kafka: KafkaConfig, topics: Topics, model: str, key: str) -> None:
        self.predictions = topics.predictions(model)
        self.dlq = topics.dlq(model)
        self.group = f"{topics.prefix}._batch.{model}.{key}"
        self._marker = TopicPartition(self.predictions, 0)
        try:
            self._producer: Producer = make_producer(
                kafka, transactional_id=f"{topics.prefix}._batch.{model}"
            )
            # never subscribes: it only carries the marker's group into the transaction
            self._group = make_consumer(kafka, self.group)
        except KafkaException as exc:
            raise _unreachable("start the prediction-log producer", exc) from exc

    def start(self) -> int:
        """Fence any older run of this model; how many input rows are logged already."""
        try:
            self._producer.init_transactions(TIMEOUT)
            (found,) = self._group.committed([self._marker], timeout=TIMEOUT)
        except KafkaException as exc:
            raise _unreachable("start a transaction on the prediction log", exc) from exc
        return max(found.offset, 0)

    def write(self, messages: Iterator[tuple[str | None, bytes, bytes, Any]], logged: int,
              about: dict[str, Any]) -> int:  # fmt: skip
        """One chunk's messages and the marker ``logged`` (rows of the input logged once
        this commits), in one transaction; returns how many messages it held."""
        producer, count = self._producer, 0
        try:
            producer.begin_transaction()
            for topic, key, value, headers in messages:
                self._produce(topic or self.predictions, key, value, headers)
                count += 1
            meta = orjson.dumps(about).decode()
            mark = TopicPartition(self.predictions, 0, logged, metadata=meta)
            group = self._group.consumer_group_metadata()
            producer.send_offsets_to_transaction([mark], group, TIMEOUT)
            producer.commit_transaction(TIMEOUT)
        except KafkaException as exc:
            self._abort()
            raise _unreachable(f"log rows up to {logged}", exc) from exc
        return count

    def _produce(self, topic: str, key: bytes, value: bytes, headers: Any) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)

    def _abort(self) -> None:
        with contextlib.suppress(KafkaException):  # else the next run's init aborts it
            self._producer.abort_transaction(TIMEOUT)

    def close(self) -> None:
        self._group.close()
        self._producer.flush(TIMEOUT)


def _unreachable(what: str, exc: KafkaException) -> UnreachableError:
    error: KafkaError = exc.args[0]
    if error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
        return UnreachableError(
            f"cannot {what}: another batch run of this model took over (fenced); one run "
            "per model at a time: rerun when it is done"
        )
    return UnreachableError(f"cannot {what}: {error.str()}; check that Kafka is up, then "
                            "rerun (what is logged stays logged once)")  # fmt: skip

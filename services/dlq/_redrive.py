"""Re-publishing DLQ entries to their model's requests topic, recorded exactly once.

Protocol, one Kafka transaction per chunk of entries::

    init_transactions (transactional id <prefix>._redrive: fences any other re-drive
                       of this deployment, and aborts what a crashed one left open)
    → read the re-drive records (only now: what a fenced re-drive committed is visible)
    per chunk: begin → produce each request (original key, value, headers minus ms-*)
               → flush (the delivery reports give the target offsets)
               → produce one record per entry to <prefix>._redrives → commit

A request and its record become visible together or not at all, so a crash or a
concurrent re-drive cannot send an entry twice nor record one that was not sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from services.dlq._entry import DlqEntry, Position, redrive_headers
from services.dlq._errors import RedriveError, RedriveFencedError
from services.dlq._records import RedriveRecord, records_topic
from streams.kafka import KafkaConfig, Topics, producer_config

__all__ = ["Redriver", "chunks"]

MAX_BYTES = 8 * 1024 * 1024  # the largest DLQ entry the scorer writes, plus headers
_FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def chunks(entries: Iterable[DlqEntry], size: int) -> Iterator[list[DlqEntry]]:
    """``entries`` in lists of at most ``size``.

    >>> [len(c) for c in chunks([None] * 5, 2)]  # type: ignore[list-item]
    [2, 2, 1]
    """
    chunk: list[DlqEntry] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Redriver:
    """The transactional producer of one ``dlq redrive`` run (see the module docstring)."""

    def __init__(self, kafka: KafkaConfig, topics: Topics, actor: str, *,
                 timeout: float = 30.0) -> None:  # fmt: skip
        self.topics = topics
        self.actor = actor
        self.timeout = timeout
        conf = producer_config(
            kafka, transactional_id=f"{topics.prefix}._redrive", message_max_bytes=MAX_BYTES
        )
        self._producer = Producer(conf)
        try:
            self._producer.init_transactions(timeout)
        except KafkaException as exc:
            raise RedriveError(f"could not start a re-drive transaction: {_text(exc)}") from exc

    def send(
        self,
        entries: Iterable[DlqEntry],
        previous: dict[Position, RedriveRecord],
        *,
        chunk: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> list[RedriveRecord]:
        """Re-publish ``entries`` (with their values) and record each; ``previous``: the
        records read after this producer started, to count repeated re-drives."""
        done: list[RedriveRecord] = []
        for part in chunks(entries, chunk):
            done += self._transaction(part, previous)
            if progress is not None:
                progress(len(part))
        return done

    def _transaction(
        self, entries: list[DlqEntry], previous: dict[Position, RedriveRecord]
    ) -> list[RedriveRecord]:
        producer = self._producer
        targets: list[str | None] = [None] * len(entries)
        try:
            producer.begin_transaction()
            for i, entry in enumerate(entries):
                headers: list[tuple[str, str | bytes | None]] = [*redrive_headers(entry)]
                producer.produce(
                    self.topics.requests(entry.model), entry.value, entry.key,
                    headers=headers, on_delivery=_delivered(targets, i),
                )  # fmt: skip
            producer.flush(self.timeout)
            records = self._records(entries, targets, previous)
            for record in records:
                producer.produce(records_topic(self.topics), record.to_bytes(), record.key)
            producer.commit_transaction(self.timeout)
        except KafkaException as exc:
            raise self._failed(exc, entries[0].position) from exc
        return records

    def _records(self, entries: list[DlqEntry], targets: list[str | None],
                 previous: dict[Position, RedriveRecord]) -> list[RedriveRecord]:  # fmt: skip
        missing = [str(e.position) for e, target in zip(entries, targets, strict=True)
                   if target is None]  # fmt: skip
        if missing:
            self._producer.abort_transaction(self.timeout)
            raise RedriveError(
                f"the broker did not take the requests of {', '.join(missing[:5])}"
                f"{' and more' if len(missing) > 5 else ''}; nothing of this chunk was sent: "
                "check the broker, then run the command again"
            )
        now = datetime.now(tz=UTC).isoformat(timespec="milliseconds")
        return [
            RedriveRecord(
                e.position,
                e.request_id,
                str(target),
                now,
                self.actor,
                previous[e.position].times + 1 if e.position in previous else 1,
            )
            for e, target in zip(entries, targets, strict=True)
        ]

    def _failed(self, exc: KafkaException, first: Position) -> RedriveError:
        error: KafkaError = exc.args[0]
        where = f"the chunk starting at {first}"
        if error.code() in _FENCED or error.fatal():
            return RedriveFencedError(
                f"another `modelstream dlq redrive` of this deployment took over; {where} was "
                "not sent: run the command again (entries already re-driven are skipped)"
            )
        if error.txn_requires_abort():
            # if the abort fails too, the next run's init_transactions aborts it
            with contextlib.suppress(KafkaException):
                self._producer.abort_transaction(self.timeout)
        return RedriveError(f"{where} was not sent ({error.str()}): run the command again")

    def close(self) -> None:
        self._producer.flush(self.timeout)

    def __enter__(self) -> Redriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _delivered(targets: list[str | None], i: int) -> Callable[[Any, Message], None]:
    def record(error: KafkaError | None, message: Message) -> None:
        if error is None:
            targets[i] = f"{message.topic()}[{message.partition()}]@{message.offset()}"

    return record


def _text(exc: KafkaException) -> str:
    error = exc.args[0]
    return error.str() if isinstance(error, KafkaError) else str(error)

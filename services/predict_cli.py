"""``modelstream predict MODEL``: requests over Kafka from the shell, replies printed.

The Kafka side's ``curl``: it checks the name against the registry first (a misspelt
model is refused with the known names, where a plain producer would only fail after
librdkafka's 30 s metadata wait), sends each record as a JSON request on
``<prefix>.<model>.requests`` with ``reply-to: <prefix>.<model>.replies``, and prints
the replies as JSON lines, in input order, read ``read_committed`` from the end the
reply topic had before the first request went out. Error replies (a record that does
not fit the schema) are printed like the others and make the exit code 1.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from confluent_kafka import Consumer, KafkaException, TopicPartition

from services.clikit import err, friendly_errors, settings_or_exit
from services.registry import RegistryError, RegistryView, not_registered
from services.runtime import kafka_config, topics
from streams.kafka import KafkaConfig, Topics, make_producer, reply_reader_config

__all__ = ["predict"]


def predict(
    model: Annotated[str, typer.Argument(help="A registered model")],
    record: Annotated[
        str | None, typer.Argument(help="One JSON record; without it, JSON lines from --file")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="JSON lines, one record each ('-': standard input)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every reply")] = 30.0,
) -> None:
    """Send records to MODEL over Kafka and print its replies (one JSON line each)."""
    settings = settings_or_exit()
    records = _records(record, file)
    with friendly_errors(RegistryError, KafkaException):
        kafka = kafka_config(settings, client_id="modelstream-predict")
        names = topics(settings)
        _check_registered(kafka, names, model)
        replies = _send_and_wait(kafka, names, model, records, timeout)
    failed = 0
    for rid in replies.order:
        reply = replies.got.get(rid)
        if reply is None or reply.get("error"):
            failed += 1
        print(orjson.dumps(reply or {"request_id": rid, "error": "no reply"}).decode())
    if len(replies.got) < len(replies.order):
        err.print(
            f"[bold red]error:[/] {len(replies.order) - len(replies.got)} of "
            f"{len(replies.order)} requests got no reply within {timeout:g}s: is a scorer "
            "running? (`modelstream up`, or `modelstream run scorer`)"
        )
    if failed:
        raise typer.Exit(1)


def _records(record: str | None, file: Path | None) -> list[bytes]:
    """Each record re-encoded as compact JSON (a record that is not JSON stops here)."""
    if record is not None:
        lines = [record]
    elif file is not None:
        text = sys.stdin.read() if str(file) == "-" else file.read_text()
        lines = [line for line in text.splitlines() if line.strip()]
    else:
        err.print("[bold red]error:[/] give one JSON record, or --file FILE (JSON lines)")
        raise typer.Exit(2)
    out = []
    for number, line in enumerate(lines, 1):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            err.print(f"[bold red]error:[/] record {number} is not JSON: {exc}")
            raise typer.Exit(2) from exc
        if not isinstance(value, dict):
            err.print(f"[bold red]error:[/] record {number} must be a JSON object")
            raise typer.Exit(2)
        out.append(orjson.dumps(value))
    return out


def _check_registered(kafka: KafkaConfig, names: Topics, model: str) -> None:
    with RegistryView(kafka, names) as view:
        view.sync()
        known = view.models()
    if model not in known:
        raise RegistryError(f"{not_registered(model, known)}: nothing was sent")


class _Replies:
    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.got: dict[str, dict[str, Any]] = {}


def _send_and_wait(
    kafka: KafkaConfig, names: Topics, model: str, records: list[bytes], timeout: float
) -> _Replies:
    reply_topic = names.replies(model)
    reader = Consumer(reply_reader_config(kafka, f"{names.prefix}.predict-cli"))
    try:
        _assign_at_end(reader, reply_topic)
        replies = _Replies([f"cli-{uuid.uuid4().hex[:12]}-{i}" for i in range(len(records))])
        producer = make_producer(kafka)
        headers: list[tuple[str, str | bytes | None]] = [
            ("content-type", b"application/json"),
            ("reply-to", reply_topic.encode()),
            ("client-id", b"modelstream-predict"),
        ]
        for rid, value in zip(replies.order, records, strict=True):
            producer.produce(names.requests(model), value, rid.encode(), headers=headers)
        if producer.flush(timeout) > 0:
            raise KafkaException(f"the requests could not be written within {timeout:g}s")
        wanted, deadline = set(replies.order), time.monotonic() + timeout
        while wanted - replies.got.keys() and time.monotonic() < deadline:
            for message in reader.consume(500, 0.2):
                key = (message.key() or b"").decode(errors="replace")
                if message.error() is None and key in wanted:
                    replies.got[key] = orjson.loads(message.value() or b"{}")
        return replies
    finally:
        reader.close()


def _assign_at_end(reader: Consumer, topic: str) -> None:
    """Read ``topic`` from its current end: only replies to what is sent next."""
    metadata = reader.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        raise KafkaException(f"cannot read {topic}: {metadata.error}")
    ends = [
        TopicPartition(topic, p, reader.get_watermark_offsets(TopicPartition(topic, p), 10)[1])
        for p in metadata.partitions
    ]
    reader.assign(ends)

"""The Kafka phases of ``modelstream bench --gateway``: the modelstream scorer and
MLServer's Kafka server (``kafka_enabled``), serving the same scikit-learn model on the
same broker, N requests each.

- **scorer**: ``modelstream run scorer --model <sklearn model>``, champion only, the N
  Avro requests produced before it started; timed like the main bench's scorer
  (earliest reply CreateTime → N-th reply read back ``read_committed``). The process
  stays up afterwards: the ``--via-kafka`` gateway phase needs it (:func:`sklearn_scorer`).
- **MLServer Kafka**: with adaptive batching on (the issue compares the scorer with
  MLServer's Kafka mode at its batching best). Its consumer has no group and starts at
  the *latest* offset, so requests cannot wait for it: one probe per partition is sent
  until each is answered, then the N JSON requests are produced; timed from just before
  the first of them is produced to the N-th response read. If MLServer does not answer
  all N within its budget, the rate is over those it answered.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from schemas.codec import Codec
from services.bench._errors import ServiceError
from services.bench._load import encode_requests, preload
from services.bench._mlserver import (
    KafkaMode,
    ServerPorts,
    free_port,
    kafka_request,
    mlserver_service,
    server_settings,
    write_repository,
)
from services.bench._mlserver_grid import MLServerConfig
from services.bench._progress import Display
from services.bench._service import Service
from services.bench._sklearn import SklearnModel
from services.bench._stack import SCHEMA, BenchStack
from services.bench._throughput import ReadBack, Throughput, assigned_reader, read_back
from streams.kafka import KafkaConfig, make_consumer, make_producer

__all__ = ["KafkaRun", "run_mlserver_kafka", "scorer_throughput", "sklearn_scorer"]

PROBE_EVERY = 0.5  # seconds between probes while MLServer's consumer finds its offsets


@dataclass(frozen=True)
class KafkaRun:
    """N requests through one Kafka-native server."""

    throughput: Throughput
    replies: int  # messages read, duplicates included
    budget: float


@contextlib.contextmanager
def sklearn_scorer(
    stack: BenchStack, model: SklearnModel, display: Display, *, events: int
) -> Iterator[Service]:
    """Pre-produce ``events`` requests, then start the scorer for ``model`` (stopped on
    exit)."""
    values = encode_requests(Codec(SCHEMA), events, seed=23)
    with display.phase(f"pre-producing requests for {model.name}", events) as advance:
        preload(stack.kafka, [model.requests], values, on_progress=advance)
    argv = stack.scorer_argv("--model", model.name, "--instance", "bench-gw")
    service = Service("scorer", argv, stack.child_env(), stack.workdir / "scorer-sklearn.log",
                      b" ready: ")  # fmt: skip
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(service.stop)
        with display.step(f"scorer ({model.name}) ready"):
            service.start(timeout=120)
        yield service


def scorer_throughput(
    stack: BenchStack, model: SklearnModel, scorer: Service, display: Display, *, events: int,
    timeout: float,
) -> KafkaRun:  # fmt: skip
    """The scorer's rate over the pre-produced requests (see the module docstring)."""
    reader = assigned_reader(stack.kafka, model.replies, f"{stack.names.prefix}.bench.sk-replies")
    try:
        with display.phase(f"scorer ({model.name}): throughput", events) as advance:
            back = read_back(reader, events, timeout, on_progress=advance,
                             alive=scorer.check_alive)  # fmt: skip
    finally:
        reader.close()
    return KafkaRun(back.throughput(), back.received, timeout)


def run_mlserver_kafka(
    stack: BenchStack, model: SklearnModel, venv: Path, display: Display, *,
    rows: Sequence[Sequence[float]], events: int, budget: float, config: MLServerConfig,
) -> KafkaRun:  # fmt: skip
    """MLServer with ``kafka_enabled`` on the bench's broker, its ``parallel_workers`` and
    batching as ``config`` says; N requests, N responses."""
    topic_in, topic_out = model.mlserver_topics()
    root = stack.workdir / "mlserver-kafka"
    mode = KafkaMode(stack.kafka.bootstrap, topic_in, topic_out)
    settings = server_settings(root, ServerPorts(free_port(), free_port()),
                               workers=config.workers, kafka=mode)  # fmt: skip
    write_repository(root, model.name, model.artifact, settings, batch=config.batch)
    service = mlserver_service(venv, root, stack.workdir / "mlserver-kafka.log")
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(service.stop)
        with display.step(f"MLServer (Kafka mode, {config.label}) consuming"):
            service.start(timeout=120)
            _probe(stack.kafka, model.name, mode, stack.names.partitions, service, rows[0])
        reader = reader_at_end(stack.kafka, topic_out, f"{stack.names.prefix}.bench.mls-out")
        cleanup.callback(reader.close)
        with display.phase("MLServer Kafka mode: throughput", events) as advance:
            started = time.time()
            _produce_requests(stack.kafka, model.name, topic_in, rows, events)
            back = read_back(reader, events, budget, on_progress=advance,
                             alive=service.check_alive)  # fmt: skip
    return KafkaRun(_since(back, started), back.received, budget)


def _since(back: ReadBack, started: float) -> Throughput:
    """Distinct responses over ``started`` (wall clock) → the last one read."""
    if back.last_received is None:
        return Throughput(back.expected, 0, 0.0)
    seconds = max(back.last_received - started, 1e-3)
    return Throughput(back.expected, min(back.unique, back.expected), seconds)


def _produce_requests(
    kafka: KafkaConfig, model: str, topic: str, rows: Sequence[Sequence[float]], events: int
) -> None:
    producer = make_producer(kafka)
    for i in range(events):
        key, value, headers = kafka_request(f"m{i}", rows[i % len(rows)], model)
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:  # local queue full: serve deliveries, then retry
                producer.poll(0.05)
    if producer.flush(60):
        raise ServiceError(f"not every request to {topic} was acknowledged within 60 s")


def _probe(
    kafka: KafkaConfig, model: str, mode: KafkaMode, partitions: int, service: Service,
    row: Sequence[float], timeout: float = 120.0,
) -> None:  # fmt: skip
    """Send one request to each input partition every :data:`PROBE_EVERY` s until each
    partition has been answered at least once: MLServer's consumer then reads them all."""
    producer = make_producer(kafka)
    reader = assigned_reader(kafka, mode.output_topic, f"{mode.output_topic}.probe")
    answered: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(answered) < partitions:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"MLServer answered no probe on {mode.input_topic} within {timeout:.0f}s; "
                    f"last log lines:\n{service.tail()}"
                )
            service.check_alive()
            for p in set(range(partitions)) - answered:
                key, value, headers = kafka_request(f"probe-{p}", row, model)
                producer.produce(mode.input_topic, value, key, partition=p, headers=headers)
            producer.flush(10)
            answered |= _answered_probes(reader, PROBE_EVERY)
    finally:
        reader.close()


def _answered_probes(reader: Consumer, seconds: float) -> set[int]:
    found: set[int] = set()
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        message = reader.poll(0.05)
        if message is not None and message.error() is None:
            key = (message.key() or b"").decode()
            if key.startswith("probe-"):
                found.add(int(key.removeprefix("probe-")))
    return found


def reader_at_end(kafka: KafkaConfig, topic: str, group: str) -> Consumer:
    """A consumer assigned to every partition of ``topic`` at its current end: it reads
    only what is produced from now on."""
    consumer = make_consumer(kafka, group)
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = []
    for p in metadata.partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends.append(TopicPartition(topic, p, high))
    consumer.assign(ends)
    return consumer

"""Load generation: requests produced ahead of time (throughput), or paced open-loop at a
fixed rate (latency).

Throughput runs read requests that were all produced *before* the consumer under test
started, so the rate measured is the consumer's processing rate, not the producer's.
Latency runs send at scheduled times and never wait for replies (open loop): a request's
latency is counted from when it was *due*, so a sender that falls behind adds to the
measured latency instead of hiding it (no coordinated omission).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaException, Producer

from schemas.codec import Codec
from services.bench._errors import LoadError
from services.synthetic import rows
from streams.kafka import KafkaConfig, make_producer

__all__ = ["PacedSender", "due_count", "encode_requests", "preload"]

Headers = list[tuple[str, str | bytes | None]]


def encode_requests(
    codec: Codec, count: int, *, n_features: int = 10, seed: int = 11
) -> list[bytes]:
    """``count`` synthetic rows as Avro single-object values."""
    encode = codec.encode_avro
    return [encode(row) for row in rows(count, n_features=n_features, seed=seed, sensitive=False)]


def preload(
    kafka: KafkaConfig, topics: Sequence[str], values: Sequence[bytes], *, key_prefix: str = "b",
    on_progress: Callable[[int], None] | None = None, transactional_id: str | None = None,
) -> int:  # fmt: skip
    """Produce ``values`` keyed ``{key_prefix}{i}`` to each topic; waits until all are acked.

    With ``transactional_id`` all of them go in one transaction: a ``read_committed``
    consumer already running (a scorer) sees none of them, then all at once, as if they had
    been produced before it started.
    """
    producer = make_producer(kafka, transactional_id=transactional_id)
    if transactional_id:
        producer.init_transactions(30)
        producer.begin_transaction()
    failed: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(str(err))

    sent = 0
    for topic in topics:
        for i, value in enumerate(values):
            _produce(producer, topic, value, f"{key_prefix}{i}".encode(), None, delivered)
            sent += 1
            if sent % 10_000 == 0:
                producer.poll(0)
                if on_progress is not None:
                    on_progress(10_000)
    if on_progress is not None:
        on_progress(sent % 10_000)
    if producer.flush(60) or failed:
        why = "; ".join(failed[:3]) or "not every request was acknowledged within 60 s"
        raise LoadError(f"could not pre-produce {sent} requests to {', '.join(topics)}: {why}")
    if transactional_id:
        try:
            producer.commit_transaction(60)
        except KafkaException as exc:
            raise LoadError(f"could not commit the {sent} requests to {', '.join(topics)}: "
                            f"{exc}") from exc  # fmt: skip
    return sent


def _produce(
    producer: Producer, topic: str, value: bytes, key: bytes, headers: Headers | None,
    on_delivery: Callable[[object, object], None] | None = None,
) -> None:  # fmt: skip
    while True:
        try:
            producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
            return
        except BufferError:  # local queue full: serve deliveries, then retry
            producer.poll(0.05)


def due_count(elapsed: float, rate: float, total: int) -> int:
    """How many requests of a ``rate``-per-second schedule are due ``elapsed`` seconds in.

    Request ``i`` is due at ``i / rate``; the first is due at once.

    >>> [due_count(t, 1000.0, 10) for t in (-0.1, 0.0, 0.0005, 0.001, 0.0042, 1.0)]
    [0, 1, 1, 2, 5, 10]
    """
    if elapsed < 0:
        return 0
    return min(total, math.floor(elapsed * rate + 1e-9) + 1)


class PacedSender(threading.Thread):
    """Sends ``values`` to ``topic`` at ``rate`` per second, open loop, on its own thread.

    Request ``i`` is keyed ``{key_prefix}{i}`` and due at ``started + i / rate``
    (``time.perf_counter`` seconds); :attr:`late` says how late each send really left.
    """

    def __init__(
        self, kafka: KafkaConfig, topic: str, values: Sequence[bytes], rate: float, *,
        key_prefix: str = "l", headers: Headers | None = None,
    ) -> None:  # fmt: skip
        super().__init__(name="paced-sender", daemon=True)
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.topic, self.values, self.rate = topic, values, rate
        self.key_prefix, self.headers = key_prefix, headers
        self.producer = make_producer(kafka)
        self.started = 0.0
        self.sent = 0
        self.late = [0.0] * len(values)  # seconds each send left after it was due
        self.ready = threading.Event()
        self._stop_event = threading.Event()

    def due_at(self, index: int) -> float:
        """When request ``index`` was due (``perf_counter`` seconds)."""
        return self.started + index / self.rate

    def run(self) -> None:
        total, clock = len(self.values), time.perf_counter
        self.started = clock()
        self.ready.set()
        while self.sent < total and not self._stop_event.is_set():
            due = due_count(clock() - self.started, self.rate, total)
            while self.sent < due:
                i = self.sent
                _produce(self.producer, self.topic, self.values[i],
                         f"{self.key_prefix}{i}".encode(), self.headers)  # fmt: skip
                self.late[i] = clock() - self.due_at(i)
                self.sent += 1
            self.producer.poll(0)
            wait = self.due_at(self.sent) - clock()
            if wait > 0:
                time.sleep(wait)
        self.producer.flush(30)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(35)

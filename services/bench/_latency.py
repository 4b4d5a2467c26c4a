"""Request → reply latency under a fixed offered load (open loop).

A :class:`~services.bench._load.PacedSender` thread sends requests at their scheduled
times with a ``reply-to`` header; this thread reads the replies with a reply reader
(``read_committed``, so a reply counts once its transaction committed; 10 ms fetch wait)
and notes when each one arrived. A request's
latency is its reply's arrival minus the time the request was *due*, both on this
process's ``perf_counter``. The first ``warmup`` seconds of the schedule are left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer

from services.bench._load import PacedSender
from services.bench._throughput import assigned_reader
from streams.kafka import KafkaConfig

__all__ = ["LatencyResult", "LatencySummary", "measure_latency", "percentile", "summarize"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted values, interpolated linearly between
    the two nearest ranks (numpy's default method).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    >>> percentile([1.0, 2.0, 3.0, 4.0], 100), percentile([7.0], 99)
    (4.0, 7.0)
    >>> round(percentile(list(range(1, 101)), 99), 2)
    99.01
    """
    if not ordered:
        raise ValueError("no values to take a percentile of")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of a set of latencies, in milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float


def summarize(latencies_ms: Sequence[float]) -> LatencySummary:
    """p50 / p95 / p99 / max of ``latencies_ms``.

    >>> s = summarize([float(v) for v in range(1, 1001)])
    >>> s.count, s.p50, round(s.p99, 2), s.max
    (1000, 500.5, 990.01, 1000.0)
    """
    ordered = sorted(latencies_ms)
    return LatencySummary(
        count=len(ordered),
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
    )


@dataclass(frozen=True)
class LatencyResult:
    """One latency run: what was offered, what came back, and how fast.

    ``summary`` is due → reply read. It splits at the reply's CreateTime (ms clock):
    ``produced`` is due → reply produced by the scorer (queueing, scoring), ``visible`` is
    reply produced → read here (transaction commit, fetch). Percentiles do not add up.
    """

    offered_rps: float
    sent: int
    replies: int
    summary: LatencySummary
    produced: LatencySummary
    visible: LatencySummary
    sender_late_ms: LatencySummary  # how late sends left after warm-up (counted in latencies)
    seconds: float


@dataclass
class _Arrivals:
    """Per request index: when its reply was read (perf_counter) and produced (epoch ms)."""

    read: list[float | None]
    produced_ms: list[int]
    count: int = 0


def measure_latency(
    kafka: KafkaConfig, requests: str, replies: str, values: Sequence[bytes], *,
    rate: float, warmup: float, group: str, timeout: float = 30.0,
    on_progress: Callable[[int], None] | None = None,
) -> LatencyResult:  # fmt: skip
    """Send ``values`` to ``requests`` at ``rate``/s asking for replies on ``replies``."""
    reader = assigned_reader(kafka, replies, group)
    arrivals = _Arrivals([None] * len(values), [0] * len(values))
    sender = PacedSender(kafka, requests, values, rate, headers=[("reply-to", replies.encode())])
    try:
        sender.start()
        sender.ready.wait(10)
        _collect(reader, sender, arrivals, timeout, on_progress)
    finally:
        sender.stop()
        reader.close()
    return _result(sender, arrivals, rate, warmup)


def _result(sender: PacedSender, arrivals: _Arrivals, rate: float, warmup: float) -> LatencyResult:
    # perf_counter → epoch seconds, to compare with the replies' CreateTime
    to_epoch = time.time() - time.perf_counter()
    steady = [i for i in range(sender.sent) if i / rate >= warmup and arrivals.read[i] is not None]
    if not steady:
        raise ValueError(
            f"no reply to a request sent after the {warmup:.0f}s warm-up arrived "
            f"({arrivals.count} of {sender.sent} replies in all)"
        )
    total, produced, visible = [], [], []
    for i in steady:
        read, due = arrivals.read[i] or 0.0, sender.due_at(i)
        made = arrivals.produced_ms[i] / 1e3 - to_epoch
        total.append((read - due) * 1e3)
        produced.append((made - due) * 1e3)
        visible.append((read - made) * 1e3)
    return LatencyResult(
        offered_rps=rate, sent=sender.sent, replies=arrivals.count, summary=summarize(total),
        produced=summarize(produced), visible=summarize(visible),
        sender_late_ms=summarize([sender.late[i] * 1e3 for i in steady]),
        seconds=sender.sent / rate,
    )  # fmt: skip


def _collect(
    reader: Consumer, sender: PacedSender, arrivals: _Arrivals, timeout: float,
    on_progress: Callable[[int], None] | None,
) -> None:  # fmt: skip
    """Note each reply's arrival until all came, or ``timeout`` after the last send."""
    total, clock = len(arrivals.read), time.perf_counter
    prefix = sender.key_prefix.encode()
    deadline = math.inf
    while arrivals.count < total and clock() < deadline:
        first = reader.poll(0.05)
        if first is not None:
            batch = [first, *reader.consume(1000, 0)]
            now = clock()
            for message in batch:
                key = message.key()
                # replies to other requests (a probe) may share the topic
                if message.error() is None and key and key.startswith(prefix):
                    index = int(key[len(prefix) :])
                    if arrivals.read[index] is None:
                        arrivals.read[index] = now
                        arrivals.produced_ms[index] = message.timestamp()[1]
                        arrivals.count += 1
            if on_progress is not None:
                on_progress(len(batch))
        if deadline == math.inf and not sender.is_alive():
            deadline = clock() + timeout

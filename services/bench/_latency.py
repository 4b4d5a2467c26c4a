"""Request → reply latency under a fixed offered load (open loop).

A :class:`~services.bench._load.PacedSender` thread sends requests at their scheduled
times with a ``reply-to`` header; this thread reads the replies (``read_committed``, so a
reply counts once its transaction committed) and notes when each one arrived. A request's
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
    """One latency run: what was offered, what came back, and how fast."""

    offered_rps: float
    sent: int
    replies: int
    summary: LatencySummary
    sender_lag_ms: float  # how late the worst send left (counted in the latencies)
    seconds: float


def measure_latency(
    kafka: KafkaConfig, requests: str, replies: str, values: Sequence[bytes], *,
    rate: float, warmup: float, group: str, timeout: float = 30.0,
    on_progress: Callable[[int], None] | None = None,
) -> LatencyResult:  # fmt: skip
    """Send ``values`` to ``requests`` at ``rate``/s asking for replies on ``replies``."""
    reader = assigned_reader(kafka, replies, group)
    arrived: list[float | None] = [None] * len(values)
    sender = PacedSender(kafka, requests, values, rate, headers=[("reply-to", replies.encode())])
    try:
        sender.start()
        sender.ready.wait(10)
        got = _collect(reader, sender, arrived, timeout, on_progress)
    finally:
        sender.stop()
        reader.close()
    latencies = [
        (at - sender.due_at(i)) * 1e3
        for i, at in enumerate(arrived)
        if at is not None and i / rate >= warmup
    ]
    if not latencies:
        raise ValueError(
            f"no reply to a request sent after the {warmup:.0f}s warm-up arrived "
            f"({got} of {len(values)} replies in all)"
        )
    return LatencyResult(
        offered_rps=rate, sent=sender.sent, replies=got, summary=summarize(latencies),
        sender_lag_ms=sender.lag * 1e3, seconds=len(values) / rate,
    )  # fmt: skip


def _collect(
    reader: Consumer, sender: PacedSender, arrived: list[float | None], timeout: float,
    on_progress: Callable[[int], None] | None,
) -> int:  # fmt: skip
    """Note each reply's arrival until all came, or ``timeout`` after the last send."""
    got, total, clock = 0, len(arrived), time.perf_counter
    prefix = len(sender.key_prefix)
    deadline = math.inf
    while got < total and clock() < deadline:
        first = reader.poll(0.05)
        if first is not None:
            batch = [first, *reader.consume(1000, 0)]
            now = clock()
            for message in batch:
                key = message.key()
                if message.error() is None and key:
                    index = int(key[prefix:])
                    if arrived[index] is None:
                        arrived[index] = now
                        got += 1
            if on_progress is not None:
                on_progress(len(batch))
        if deadline == math.inf and not sender.is_alive():
            deadline = clock() + timeout
    return got

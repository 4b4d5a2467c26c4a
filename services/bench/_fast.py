"""The scorer at-least-once: the same open-loop latency measurement as the exactly-once
scorer's, against ``modelstream run scorer --guarantee at-least-once``, whose replies are
produced by an idempotent producer outside any transaction and are visible at once.

It runs after the exactly-once scorer has stopped, as a second process
(``--model bench --instance bench-fast``) in the same consumer group, so it starts from the
offsets the first one committed. It joins as a new static member, and a stopped static
member may keep its partitions until its session times out: one probe request per
partition, answered on the phase's reply topic, says when it serves them all
(``handover_s``, not part of any latency). Then the latency phase's requests are sent
again at the offered rate, replies asked for on a fresh topic (the probes' replies there
are not counted).

A scorer without the option (or failing otherwise) is a finding, not a lost run: the
phase returns what went wrong and the report says ``null``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException

from services.bench._errors import BenchError, ServiceError
from services.bench._latency import LatencyResult, measure_latency
from services.bench._progress import Display
from services.bench._scorer import scorer_stats
from services.bench._service import Service
from services.bench._stack import MODEL, BenchStack
from services.bench._throughput import assigned_reader
from streams.kafka import make_producer

__all__ = ["INSTANCE", "FastRun", "run_fast_phase"]

INSTANCE = "bench-fast"
HANDOVER_TIMEOUT = 60.0  # seconds for the new member to serve every partition


@dataclass(frozen=True)
class FastRun:
    latency: LatencyResult
    handover_s: float  # process ready → every partition answered a probe
    stats: dict[str, Any]


def run_fast_phase(
    stack: BenchStack, display: Display, values: Sequence[bytes], *, rate: float, warmup: float
) -> FastRun | str:
    """Measure the at-least-once scorer's latency, or say why it could not be."""
    try:
        return _measure(stack, display, values, rate=rate, warmup=warmup)
    except (BenchError, KafkaException, ValueError) as exc:
        display.say(f"[red]at-least-once scorer could not be measured:[/] {exc}")
        return str(exc)


def _measure(
    stack: BenchStack, display: Display, values: Sequence[bytes], *, rate: float, warmup: float
) -> FastRun:
    names = stack.names
    argv = stack.scorer_argv("--guarantee", "at-least-once", "--model", MODEL,
                             "--instance", INSTANCE)  # fmt: skip
    service = Service("at-least-once scorer", argv, stack.child_env(),
                      stack.workdir / "scorer-fast.log", b" ready: ")  # fmt: skip
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(service.stop)
        with display.step("at-least-once scorer subprocess ready, serving every partition"):
            service.start(timeout=120)
            handover = _await_partitions(stack, service, values[0])
        with display.phase(f"scorer at-least-once: latency at {rate:,.0f} req/s",
                           len(values)) as step:  # fmt: skip
            latency = measure_latency(
                stack.kafka, names.requests, names.fast_replies, values, rate=rate,
                warmup=warmup, group=f"{names.prefix}.bench.fast-reader", on_progress=step,
            )  # fmt: skip
        service.check_alive()
    return FastRun(latency, handover, scorer_stats(service))


def _await_partitions(stack: BenchStack, service: Service, value: bytes) -> float:
    """Send one request per partition (``reply-to`` the phase's topic) and wait until each
    is answered; seconds it took."""
    names, started = stack.names, time.monotonic()
    producer = make_producer(stack.kafka)
    headers: list[tuple[str, str | bytes | None]] = [("reply-to", names.fast_replies.encode())]
    for p in range(names.partitions):
        producer.produce(names.requests, value, f"probe-{p}".encode(), partition=p,
                         headers=headers)  # fmt: skip
    producer.flush(10)
    reader = assigned_reader(stack.kafka, names.fast_replies, f"{names.prefix}.bench.fast-probe")
    answered: set[bytes] = set()
    try:
        while len(answered) < names.partitions:
            if time.monotonic() - started > HANDOVER_TIMEOUT:
                raise ServiceError(
                    f"the at-least-once scorer answered {len(answered)} of {names.partitions} "
                    f"probes within {HANDOVER_TIMEOUT:.0f}s; last log lines:\n{service.tail()}"
                )
            service.check_alive()
            message = reader.poll(0.1)
            if message is not None and message.error() is None:
                answered.add(message.key() or b"")
    finally:
        reader.close()
    return time.monotonic() - started

"""The scorer under test: ``modelstream run scorer`` as a real subprocess, as in
production, with the challenger on and transactions on.

One process serves three phases, its RSS sampled every half second through the first two:

1. throughput: the requests were produced before it started; the clock runs from the
   earliest reply's CreateTime to the N-th reply read back ``read_committed``;
2. latency: open-loop requests at the offered rate on the same requests topic, replies
   asked for on a topic of their own (``reply-to``);
3. swap: open-loop requests at the offered rate for the swap model, whose challenger is
   promoted under that load (:mod:`services.bench._swap`).

Then it is stopped with SIGTERM and the replies and prediction logs of the first two
phases are audited.
"""

from __future__ import annotations

import ast
import contextlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.bench._audit import log_tally, reply_tally
from services.bench._latency import LatencyResult, measure_latency
from services.bench._progress import Display
from services.bench._rss import RssSampler, RssSummary
from services.bench._service import Service
from services.bench._stack import MODEL, SWAP_MODEL, BenchStack
from services.bench._swap import SwapResult, measure_swap
from services.bench._throughput import ReadBack, assigned_reader, read_back
from services.registry import Registry

__all__ = ["ScorerRun", "SwapPlan", "run_scorer_phases"]

STOPPED = re.compile(r"scorer \S+ stopped: (\{.*\})")


@dataclass(frozen=True)
class ScorerRun:
    """Everything measured on one scorer process."""

    throughput: ReadBack
    latency: LatencyResult
    rss: RssSummary
    replies: Counter[str]
    logged: Counter[str]  # served_by and challenger outcomes, throughput and latency phases
    stats: dict[str, Any]  # the scorer's own counters: every phase, both models
    exit_code: int | None
    swap: SwapResult


@dataclass(frozen=True)
class SwapPlan:
    """When the swap phase promotes (seconds into its load), and its least duration."""

    promote_at: float
    seconds: float


def run_scorer_phases(
    stack: BenchStack, display: Display, *, events: int, latency_values: Sequence[bytes],
    rate: float, warmup: float, swap: SwapPlan,
) -> ScorerRun:  # fmt: skip
    """Start the scorer, measure the phases, stop it (always), audit what it wrote."""
    names, kafka = stack.names, stack.kafka
    argv = stack.scorer_argv("--model", MODEL, "--model", SWAP_MODEL, "--instance", "bench")
    service = Service("scorer", argv, stack.child_env(), stack.workdir / "scorer.log", b" ready: ")
    reader = assigned_reader(kafka, names.replies, f"{names.prefix}.bench.replies-reader")
    with contextlib.ExitStack() as cleanup:  # runs backwards: sampler, process, reader
        cleanup.callback(reader.close)
        cleanup.callback(service.stop)
        with display.step("scorer subprocess ready"):
            service.start(timeout=120)
        sampler = RssSampler(service.pid)
        sampler.start()
        cleanup.callback(sampler.stop)
        sampler.mark("ready")
        with display.phase("scorer: throughput", events) as advance:
            back = read_back(reader, events, _timeout(events), on_progress=advance,
                             alive=service.check_alive)  # fmt: skip
        sampler.mark("warm")
        with display.phase(f"scorer: latency at {rate:,.0f} req/s", len(latency_values)) as step:
            latency = measure_latency(
                kafka, names.requests, names.latency_replies, latency_values, rate=rate,
                warmup=warmup, group=f"{names.prefix}.bench.latency-reader", on_progress=step,
            )  # fmt: skip
        service.check_alive()
        sampler.mark("end")
        sampler.stop()  # the RSS figures are the throughput and latency phases'
        swapped = _swap_phase(stack, display, latency_values, rate, swap)
        service.check_alive()
    with display.step("auditing replies and prediction logs"):
        replies = reply_tally(back.values)
        logged = log_tally(kafka, names.predictions, events + latency.sent,
                           group=f"{names.prefix}.bench.audit")  # fmt: skip
    return ScorerRun(back, latency, sampler.summary(), replies, logged,
                     _stats(service), service.stop(), swapped)  # fmt: skip


def _swap_phase(
    stack: BenchStack, display: Display, values: Sequence[bytes], rate: float, plan: SwapPlan
) -> SwapResult:
    names = stack.names
    with (
        display.step(f"scorer: champion swap under load at {rate:,.0f} req/s"),
        Registry(stack.kafka, names.topics, actor="bench") as registry,
    ):
        return measure_swap(
            stack.kafka, registry, values, model=SWAP_MODEL, requests=names.swap_requests,
            replies=names.swap_replies, rate=rate, promote_at=plan.promote_at,
            seconds=plan.seconds, group=f"{names.prefix}.bench.swap-reader",
        )  # fmt: skip


def _timeout(events: int) -> float:
    """Generous: a scorer ten times slower than the target still finishes."""
    return 60.0 + events / 1_500


def _stats(service: Service) -> dict[str, Any]:
    """The counters the scorer logs when it stops (``replies``, ``logged``, ``batches``)."""
    found = STOPPED.findall(service.log.read_text(errors="replace"))
    if not found:
        return {}
    try:
        stats = ast.literal_eval(found[-1])
    except (ValueError, SyntaxError):
        return {}
    return dict(stats) if isinstance(stats, dict) else {}

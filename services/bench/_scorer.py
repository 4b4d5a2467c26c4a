"""The scorer under test: ``modelstream run scorer`` as a real subprocess, as in
production, with the challenger on and transactions on.

One process serves four phases, its RSS sampled every half second through the first three:

1. throughput: the requests were produced before it started; the clock runs from the
   earliest reply's CreateTime to the N-th reply read back by a reply reader;
2. scikit-learn throughput: N requests for the scikit-learn model
   (:mod:`services.bench._sklearn`, champion + challenger), produced in one transaction
   while the scorer idles (it sees none, then all), timed the same way;
3. latency: open-loop requests at the offered rate on the first phase's requests topic,
   replies asked for on a topic of their own (``reply-to``);
4. swap: open-loop requests at the offered rate for the swap model, whose challenger is
   promoted under that load (:mod:`services.bench._swap`).

Then it is stopped with SIGTERM and the replies and prediction logs of the first and third
phases are audited. Each reply reader is closed when its phase ends: an open consumer
keeps fetching in the background and would load the broker under the next phase.
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
from services.bench._load import preload
from services.bench._progress import Display
from services.bench._rss import RssSampler, RssSummary
from services.bench._service import Service
from services.bench._sklearn import MODEL as SKLEARN_MODEL
from services.bench._stack import MODEL, SLEEPY_MODEL, SWAP_MODEL, BenchStack, bench_signer
from services.bench._swap import SwapResult, measure_swap
from services.bench._throughput import ReadBack, assigned_reader, read_back
from services.registry import Registry

__all__ = ["ScorerLoad", "ScorerRun", "SwapPlan", "run_scorer_phases", "scorer_stats"]

STOPPED = re.compile(r"scorer \S+ stopped: (\{.*\})")


@dataclass(frozen=True)
class ScorerRun:
    """Everything measured on one scorer process."""

    throughput: ReadBack
    sklearn: ReadBack
    latency: LatencyResult
    rss: RssSummary
    replies: Counter[str]
    sklearn_replies: Counter[str]
    logged: Counter[str]  # served_by and challenger outcomes: throughput, latency, impact
    stats: dict[str, Any]  # the scorer's own counters: every phase, every model
    exit_code: int | None
    swap: SwapResult
    impact: dict[str, LatencyResult]  # reply latency: "ordinary" vs "sleepy" challenger


@dataclass(frozen=True)
class SwapPlan:
    """When the swap phase promotes (seconds into its load), and its least duration."""

    promote_at: float
    seconds: float


@dataclass(frozen=True)
class ScorerLoad:
    """What the phases send: the latency phase's requests (the swap phase cycles them),
    the scikit-learn phase's, and the open-loop rate."""

    latency_values: Sequence[bytes]
    sklearn_values: Sequence[bytes]
    rate: float
    warmup: float
    swap: SwapPlan
    impact_seconds: float = 6.0  # per model, at IMPACT_RATE


def run_scorer_phases(
    stack: BenchStack, display: Display, *, events: int, load: ScorerLoad
) -> ScorerRun:
    """Start the scorer, measure the phases, stop it (always), audit what it wrote."""
    names, kafka = stack.names, stack.kafka
    argv = stack.scorer_argv("--model", MODEL, "--model", SWAP_MODEL, "--model", SKLEARN_MODEL,
                             "--model", SLEEPY_MODEL, "--instance", "bench")  # fmt: skip
    service = Service("scorer", argv, stack.child_env(), stack.workdir / "scorer.log", b" ready: ")
    rate = load.rate
    with contextlib.ExitStack() as cleanup:  # runs backwards: sampler, process
        cleanup.callback(service.stop)
        with display.step("scorer subprocess ready"):
            service.start(timeout=120)
        sampler = RssSampler(service.pid)
        sampler.start()
        cleanup.callback(sampler.stop)
        sampler.mark("ready")
        back = _read_replies(stack, names.replies, events, service, display, "scorer: throughput")
        sklearn = _sklearn_phase(stack, service, display, load.sklearn_values)
        sampler.mark("warm")
        with display.phase(f"scorer: latency at {rate:,.0f} req/s",
                           len(load.latency_values)) as step:  # fmt: skip
            latency = measure_latency(
                kafka, names.requests, names.latency_replies, load.latency_values, rate=rate,
                warmup=load.warmup, group=f"{names.prefix}.bench.latency-reader",
                on_progress=step,
            )  # fmt: skip
        service.check_alive()
        sampler.mark("end")
        sampler.stop()  # the RSS figures are the throughput and latency phases'
        impact = _impact_phase(stack, display, load.latency_values, load.impact_seconds)
        service.check_alive()
        swapped = _swap_phase(stack, display, load.latency_values, rate, load.swap)
        service.check_alive()
    with display.step("auditing replies and prediction logs"):
        replies, sklearn_replies = reply_tally(back.values), reply_tally(sklearn.values)
        # the model's log: the throughput, latency and ordinary-challenger impact requests
        expected = events + latency.sent + impact["ordinary"].sent
        logged = log_tally(kafka, names.predictions, expected, group=f"{names.prefix}.bench.audit")
    return ScorerRun(back, sklearn, latency, sampler.summary(), replies, sklearn_replies, logged,
                     scorer_stats(service), service.stop(), swapped, impact)  # fmt: skip


def _read_replies(
    stack: BenchStack, topic: str, events: int, service: Service, display: Display, label: str
) -> ReadBack:
    """Read back ``events`` replies from ``topic`` (see :mod:`services.bench._throughput`)."""
    reader = assigned_reader(stack.kafka, topic, f"{topic}.bench-reader")
    try:
        with display.phase(label, events) as advance:
            return read_back(reader, events, _timeout(events), on_progress=advance,
                             alive=service.check_alive)  # fmt: skip
    finally:
        reader.close()


def _sklearn_phase(
    stack: BenchStack, service: Service, display: Display, values: Sequence[bytes]
) -> ReadBack:
    topics, n = stack.names.topics, len(values)
    with display.phase(f"pre-producing requests for {SKLEARN_MODEL} (one transaction)",
                       n) as advance:  # fmt: skip
        preload(stack.kafka, [topics.requests(SKLEARN_MODEL)], values, key_prefix="k",
                on_progress=advance, transactional_id=f"{topics.prefix}.bench.sk-load")  # fmt: skip
    return _read_replies(stack, topics.replies(SKLEARN_MODEL), n, service, display,
                         "scorer: throughput, scikit-learn")  # fmt: skip


IMPACT_RATE = 500.0  # req/s: the shadow-impact phase's offered load


def _impact_phase(
    stack: BenchStack, display: Display, values: Sequence[bytes], seconds: float
) -> dict[str, LatencyResult]:
    """Reply latency of the same champion with an ordinary challenger (``MODEL``) and with
    one that sleeps 50 ms per batch (``SLEEPY_MODEL``), one after the other."""
    names, n = stack.names, min(len(values), round(IMPACT_RATE * seconds))
    out = {}
    for label, model in (("ordinary", MODEL), ("sleepy", SLEEPY_MODEL)):
        with display.phase(f"scorer: {label} challenger at {IMPACT_RATE:,.0f} req/s", n) as step:
            result = measure_latency(
                stack.kafka, names.topics.requests(model), names.impact_replies(model),
                values[:n], rate=IMPACT_RATE, warmup=1.0,
                group=f"{names.prefix}.bench.impact-{label}", on_progress=step,
            )  # fmt: skip
        out[label] = result
    return out


def _swap_phase(
    stack: BenchStack, display: Display, values: Sequence[bytes], rate: float, plan: SwapPlan
) -> SwapResult:
    names = stack.names
    with (
        display.step(f"scorer: champion swap under load at {rate:,.0f} req/s"),
        Registry(
            stack.kafka, names.topics, actor="bench", signer=bench_signer(stack.workdir)
        ) as registry,
    ):
        return measure_swap(
            stack.kafka, registry, values, model=SWAP_MODEL, requests=names.swap_requests,
            replies=names.swap_replies, rate=rate, promote_at=plan.promote_at,
            seconds=plan.seconds, group=f"{names.prefix}.bench.swap-reader",
        )  # fmt: skip


def _timeout(events: int) -> float:
    """Generous: a scorer ten times slower than the target still finishes."""
    return 60.0 + events / 1_500


def scorer_stats(service: Service) -> dict[str, Any]:
    """The counters a scorer logs when it stops (``replies``, ``logged``, ``batches``)."""
    found = STOPPED.findall(service.log.read_text(errors="replace"))
    if not found:
        return {}
    try:
        stats = ast.literal_eval(found[-1])
    except (ValueError, SyntaxError):
        return {}
    return dict(stats) if isinstance(stats, dict) else {}

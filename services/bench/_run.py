"""One bench run: set up, measure every variant in turn on the same broker, report."""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from schemas.codec import Codec
from services.bench._errors import BenchError
from services.bench._faust import FaustRun, run_faust_phase
from services.bench._latency import LatencySummary
from services.bench._load import encode_requests, preload
from services.bench._passthrough import run_passthrough
from services.bench._pipeline import Downstream, run_downstream
from services.bench._progress import Display
from services.bench._report import evaluate_targets, ratio, render, write_json
from services.bench._scorer import ScorerRun, SwapPlan, run_scorer_phases
from services.bench._stack import SCHEMA, BenchStack, bench_stack
from services.bench._swap import GIVE_UP, SwapResult
from services.bench._throughput import Throughput
from services.settings import Settings

__all__ = ["METHOD", "BenchConfig", "run_bench"]

METHOD = {
    "passthrough": "in-process; first request consumed → last output acknowledged",
    "scorer": "subprocess; earliest reply CreateTime → N-th reply read (read_committed)",
    "faust": "subprocess; earliest reply CreateTime → N-th reply read",
    "latency": "open loop; reply read (read_committed) - request due time; first second dropped",
    "latency_split": "split at the reply's Kafka CreateTime (ms resolution)",
    "rss": "VmRSS every 0.5 s: ready, after throughput (warm), peak, end of latency",
    "swap": "open loop at the offered rate, the challenger promoted under it: promote() "
    "returned → first reply by the new version (its created_at); longest gap between "
    "consecutive replies (created_at) from then to 1 s past that first reply",
    "monitor": "in-process MonitorLoop over the scorer's prediction logs; steady state "
    "(records after the first transaction / time from its end to the last)",
    "sink": "in-process Sink into embedded ClickHouse; steady state after the first insert",
}


@dataclass(frozen=True)
class BenchConfig:
    """How much load each phase gets.

    >>> BenchConfig.choose(quick=True).events, BenchConfig.choose(quick=False).events
    (20000, 200000)
    >>> BenchConfig.choose(quick=True, events=3000, rate=500).latency_values
    2500
    >>> BenchConfig.choose(quick=True).swap
    SwapPlan(promote_at=2.0, seconds=5.0)
    """

    events: int
    rate: float = 2_000.0
    latency_seconds: float = 20.0
    warmup_seconds: float = 1.0
    max_batch: int = 500  # the passthrough batches like the scorer's default
    faust_budget: float = 300.0
    swap_promote_at: float = 3.0  # seconds into the swap phase's load
    swap_seconds: float = 10.0  # the swap phase's load, at least

    def __post_init__(self) -> None:
        if self.events < 1:
            raise ValueError(f"events must be at least 1, got {self.events}")
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {self.rate}")
        if self.latency_seconds <= self.warmup_seconds:
            raise ValueError("the latency run must last longer than its warm-up")
        if not 0 < self.swap_promote_at < self.swap_seconds:
            raise ValueError(
                "the swap must be promoted after its load started and before it ends, got "
                f"{self.swap_promote_at} of {self.swap_seconds} s"
            )

    @classmethod
    def choose(
        cls, *, quick: bool, events: int | None = None, rate: float = 2_000.0
    ) -> BenchConfig:
        """``quick``: 20k events, 5 s of latency load, a swap 2 s into 5 s of load (whole
        run under 2 minutes); else 200k events, 20 s, 3 s into 10 s. ``events`` overrides
        the count."""
        if quick:
            return cls(events or 20_000, rate, latency_seconds=5.0, faust_budget=60.0,
                       swap_promote_at=2.0, swap_seconds=5.0)  # fmt: skip
        return cls(events or 200_000, rate, latency_seconds=20.0, faust_budget=300.0)

    @property
    def latency_values(self) -> int:
        return round(self.rate * self.latency_seconds)

    @property
    def swap(self) -> SwapPlan:
        return SwapPlan(self.swap_promote_at, self.swap_seconds)


@dataclass(frozen=True)
class Measured:
    passthrough: Throughput
    passthrough_txn: Throughput
    scorer: ScorerRun
    faust: FaustRun | str  # what went wrong when the faust baseline could not run
    downstream: Downstream | None = None


def run_bench(
    settings: Settings, *, quick: bool, events: int | None, rate: float,
    json_path: Path | None, console: Console,
) -> dict[str, Any]:  # fmt: skip
    """Measure passthrough, scorer, faust, latency and RSS in one run; print and return
    the report (and write it to ``json_path``). Leaves no broker or process running."""
    config = BenchConfig.choose(quick=quick, events=events, rate=rate)
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as exits:
        workdir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="ms-bench-")))
        display = exits.enter_context(Display(console))
        with display.step("broker, topics and registered models"):
            stack = exits.enter_context(
                bench_stack(
                    settings, workdir, partitions=settings.topic_partitions, swap_model=True
                )
            )
        measured = _measure(stack, config, display)
        report = build_report(
            config, measured, external=bool(settings.kafka),
            partitions=stack.names.partitions, load_before=load_before,
        )  # fmt: skip
    render(report, console)
    if json_path is not None:
        write_json(report, json_path)
        console.print(f"report written to {json_path}")
    return report


def _measure(stack: BenchStack, config: BenchConfig, display: Display) -> Measured:
    names, n = stack.names, config.events
    codec = Codec(SCHEMA)
    with display.step(f"encoding {n + config.latency_values:,} requests"):
        values = encode_requests(codec, n)
        latency_values = encode_requests(codec, config.latency_values, seed=13)
    topics = [names.passthrough_in, names.requests, names.faust_requests]
    with display.phase("pre-producing requests", n * len(topics)) as advance:
        preload(stack.kafka, topics, values, on_progress=advance)
    del values
    plain, transactional = (_passthrough(stack, config, display, txn) for txn in (False, True))
    scorer = run_scorer_phases(stack, display, events=n, latency_values=latency_values,
                               rate=config.rate, warmup=config.warmup_seconds,
                               swap=config.swap)  # fmt: skip
    try:
        faust: FaustRun | str = run_faust_phase(stack, display, events=n,
                                                budget=config.faust_budget)  # fmt: skip
    except BenchError as exc:  # a broken baseline is a finding, not a reason to lose the run
        display.say(f"[red]faust baseline failed:[/] {exc}")
        faust = str(exc)
    downstream = run_downstream(stack, display)
    return Measured(plain, transactional, scorer, faust, downstream)


def _passthrough(
    stack: BenchStack, config: BenchConfig, display: Display, transactional: bool
) -> Throughput:
    names = stack.names
    sink = names.passthrough_txn_out if transactional else names.passthrough_out
    label = "passthrough" + (", transactional" if transactional else "")
    with display.phase(label, config.events) as advance:
        return run_passthrough(
            stack.kafka, names.passthrough_in, sink, group=f"{sink}.group", events=config.events,
            transactional=transactional, max_batch=config.max_batch, on_progress=advance,
        )  # fmt: skip


def build_report(
    config: BenchConfig, m: Measured, *, external: bool, partitions: int, load_before: float
) -> dict[str, Any]:
    """The JSON-ready report: rates, latency, RSS, swap, ratios, targets, counts, notes."""
    scorer, latency, rss, swap = m.scorer, m.scorer.latency, m.scorer.rss, m.scorer.swap
    scorer_tp = scorer.throughput.throughput()
    faust = m.faust if isinstance(m.faust, FaustRun) else None
    faust_eps = faust.throughput.throughput().eps if faust else None
    report: dict[str, Any] = {
        "events": config.events,
        "passthrough_eps": m.passthrough.eps,
        "passthrough_txn_eps": m.passthrough_txn.eps,
        "scorer_eps": scorer_tp.eps,
        "faust_eps": faust_eps,
        "offered_rps": config.rate,
        "monitor_eps": m.downstream.monitor_eps if m.downstream else None,
        "sink_rows_per_s": m.downstream.sink_rows_per_s if m.downstream else None,
        "latency_ms": _percentiles(latency.summary),
        "latency_detail_ms": {
            "due_to_reply_produced": _percentiles(latency.produced),
            "reply_produced_to_read": _percentiles(latency.visible),
            "sender_late": _percentiles(latency.sender_late_ms),
        },
        "scorer_rss_mb": rss.peak_mb,
        "rss_mb": {
            "start": rss.start_mb,
            "warm": rss.warm_mb,
            "peak": rss.peak_mb,
            "end": rss.end_mb,
            "growth": rss.growth_mb,
        },
        "faust_rss_mb": faust.rss.peak_mb if faust else None,
        "swap_gap_ms": swap.timing.gap_ms,
        "swap_max_reply_gap_ms": swap.timing.max_reply_gap_ms,
        "swap_detail": {
            "from_version": swap.from_version,
            "to_version": swap.to_version,
            "offered_rps": swap.offered_rps,
            "promote_call_ms": swap.promote_call_ms,
            "max_reply_gap_after_promotion_ms": swap.timing.max_gap_after_ms,
        },
        "ratios": {
            "scorer_vs_passthrough": ratio(scorer_tp.eps, m.passthrough.eps),
            "scorer_vs_passthrough_txn": ratio(scorer_tp.eps, m.passthrough_txn.eps),
            "scorer_vs_faust": ratio(scorer_tp.eps, faust_eps),
        },
        "seconds": {
            "passthrough": m.passthrough.seconds,
            "scorer": scorer_tp.seconds,
            "passthrough_txn": m.passthrough_txn.seconds,
            "faust": faust.throughput.throughput().seconds if faust else None,
            "latency_load": latency.seconds,
            "swap_load": swap.seconds,
        },
        "counts": _counts(config, m),
        "scorer_stats": scorer.stats,
        "method": METHOD,
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "broker": "MODELSTREAM_KAFKA" if external else "local, for this run",
            "partitions": partitions,
            "load_average_before": load_before,
        },
    }
    report["targets"] = evaluate_targets(report)
    report["notes"] = _notes(config, m, load_before)
    return report


def _percentiles(summary: LatencySummary) -> dict[str, float]:
    return {"p50": summary.p50, "p95": summary.p95, "p99": summary.p99, "max": summary.max}


def _counts(config: BenchConfig, m: Measured) -> dict[str, Any]:
    scorer, latency = m.scorer, m.scorer.latency
    faust: dict[str, Any] = {"sent": config.events, "replies": 0, "unique": 0}
    if isinstance(m.faust, FaustRun):
        faust |= {"replies": m.faust.throughput.received, "unique": m.faust.throughput.unique}
    else:
        faust["error"] = m.faust
    return {
        "passthrough": {"sent": config.events, "forwarded": m.passthrough.done},
        "passthrough_txn": {"sent": config.events, "forwarded": m.passthrough_txn.done},
        "scorer": {"sent": config.events, "replies": scorer.throughput.received,
                   "unique": scorer.throughput.unique, "served": dict(scorer.replies)},
        "latency": {"sent": latency.sent, "replies": latency.replies,
                    "measured": latency.summary.count},
        "logged": _prefixed(scorer.logged, "served_by:"),
        "challenger": _prefixed(scorer.logged, "challenger:"),
        "swap": _swap_counts(scorer.swap),
        "faust": faust,
    }  # fmt: skip


def _swap_counts(swap: SwapResult) -> dict[str, Any]:
    return {"sent": swap.sent, "answered": swap.answered, "duplicates": swap.duplicates,
            "errors": swap.errors, "by_version": swap.by_version,
            "one_switch": swap.timing.one_switch}  # fmt: skip


def _prefixed(tally: Counter[str], prefix: str) -> dict[str, int]:
    """The entries of ``tally`` under ``prefix``, without it.

    >>> _prefixed(Counter({"challenger:scored": 3, "served_by:champion": 3}), "challenger:")
    {'scored': 3}
    """
    return {key[len(prefix) :]: n for key, n in tally.items() if key.startswith(prefix)}


def _notes(config: BenchConfig, m: Measured, load_before: float) -> list[str]:
    """Everything a reader of the numbers should know that the table does not say."""
    notes = []
    if load_before > 0.5:
        notes.append(f"the machine was already busy when the run started (load average "
                     f"{load_before:.1f} on {os.cpu_count()} cores): rates are lower than on "
                     "an idle machine")  # fmt: skip
    for name, tp in (("passthrough", m.passthrough), ("transactional passthrough",
                                                      m.passthrough_txn)):  # fmt: skip
        if not tp.complete:
            notes.append(f"{name} forwarded only {tp.done:,} of {tp.expected:,} events")
    return [*notes, *_scorer_notes(config.events, m.scorer), *_swap_notes(m.scorer.swap),
            *_faust_notes(config.events, m.faust)]  # fmt: skip


def _scorer_notes(n: int, scorer: ScorerRun) -> list[str]:
    notes = []
    if scorer.throughput.unique < n:
        notes.append(f"the scorer answered only {scorer.throughput.unique:,} of {n:,} requests")
    served = _prefixed(scorer.logged, "served_by:")
    if served.get("champion", 0) < sum(served.values()):
        notes.append(f"not every request was answered by the champion (both phases): {served} "
                     f"(throughput-phase replies: {dict(scorer.replies)})")  # fmt: skip
    challenger = _prefixed(scorer.logged, "challenger:")
    total, scored = sum(challenger.values()), challenger.get("scored", 0)
    if total and scored < total:
        rest = {k: v for k, v in challenger.items() if k != "scored"}
        notes.append(f"the challenger scored {scored:,} of {total:,} logged requests "
                     f"({100 * scored / total:.1f} %); the rest: {rest}")  # fmt: skip
    latency = scorer.latency
    if latency.replies < latency.sent:
        notes.append(f"latency run: {latency.replies:,} replies to {latency.sent:,} requests")
    late = latency.sender_late_ms
    if late.p99 > 1.0:
        notes.append(f"the paced sender left late (p50 {late.p50:.1f} / p99 {late.p99:.1f} / "
                     f"max {late.max:.1f} ms; counted in the latencies): the machine is "
                     "saturated")  # fmt: skip
    return notes


def _swap_notes(swap: SwapResult) -> list[str]:
    notes = []
    new = f"v{swap.to_version}"
    if swap.timing.gap_ms is None:
        notes.append(f"swap: {new} answered no request within {GIVE_UP:.0f} s of its promotion")
    elif not swap.timing.one_switch:
        notes.append(f"swap: the old version answered after {new}'s first reply "
                     f"({swap.by_version})")  # fmt: skip
    if swap.answered < swap.sent or swap.duplicates or swap.errors:
        notes.append(f"swap: {swap.answered:,} of {swap.sent:,} requests answered, "
                     f"{swap.duplicates:,} twice, {swap.errors:,} with an error")  # fmt: skip
    return notes


def _faust_notes(n: int, faust: FaustRun | str) -> list[str]:
    if isinstance(faust, str):
        return [f"the faust baseline could not be measured: {faust.splitlines()[0]}"]
    notes = []
    if faust.throughput.unique < n:
        notes.append(
            f"faust answered {faust.throughput.unique:,} of {n:,} requests within its "
            f"{faust.budget:.0f} s budget; its rate is over those it answered"
        )
    notes.append("faust runs at-least-once without transactions and writes no prediction log: "
                 "it does less work per request than the scorer")  # fmt: skip
    return notes

"""The report of one run: every measurement as JSON-ready numbers, the counts that say
whether those numbers mean anything (every request answered, by whom, the challenger's
coverage), how each was timed (:data:`METHOD`), the targets and the notes a reader needs.

A measurement that could not be taken (the faust baseline, the at-least-once scorer, the
floor) is ``null`` with its reason in ``notes`` and ``counts``: one missing baseline does not
lose the run.
"""

from __future__ import annotations

import os
import platform
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.bench._audit import Coverage, challenger_coverage
from services.bench._fast import FastRun
from services.bench._faust import FaustRun
from services.bench._faust_variants import VARIANTS
from services.bench._floor import FloorResult
from services.bench._latency import LatencyResult, LatencySummary
from services.bench._monitor_group import MonitorGroup
from services.bench._pipeline import Downstream
from services.bench._report import evaluate_targets, ratio
from services.bench._scorer import ScorerRun
from services.bench._swap import GIVE_UP, SwapResult
from services.bench._throughput import ReadBack, Throughput

if TYPE_CHECKING:
    from services.bench._run import BenchConfig

__all__ = ["METHOD", "Measured", "build_report"]

METHOD = {
    "warmup": "before anything is timed: small transactions back to back for "
    "broker_warmup_seconds (a new broker JVM runs its transaction code cold)",
    "shadow_impact": "open loop at 500 req/s, 6 s per model, first second dropped: the same "
    "champion with the ordinary challenger, then with one sleeping 50 ms per batch call",
    "readers": "every reply reader (throughput read-back, latency, swap, floor): "
    "streams.kafka.reply_reader_config (read_committed, fetch.wait.max.ms 10)",
    "passthrough": "in-process; first request consumed → last output acknowledged",
    "passthrough_txn": "in-process, the scorer's max_batch; batch N committed on a thread "
    "while N+1 is consumed; first consumed → last committed",
    "floor": "one at a time: begin, produce 1, send offsets, commit → read by a reply "
    "reader; no other load",
    "scorer": "subprocess; earliest reply CreateTime → N-th reply read (reply reader)",
    "scorer_sklearn": "same process; N requests in one transaction while it idled; timed "
    "as the scorer",
    "faust": "a subprocess per variant; earliest reply CreateTime → N-th reply read; the "
    "best variant",
    "latency": "open loop; reply read (read_committed) - request due time; first second dropped",
    "latency_split": "split at the reply's Kafka CreateTime (ms resolution)",
    "fast_latency": "scorer --guarantee at-least-once, a second process once the first "
    "stopped; as the latency above",
    "coverage": "(scored + failed) / requests in the shadow sample; prediction logs of the "
    "throughput, latency and ordinary-challenger impact phases",
    "rss": "VmRSS every 0.5 s: ready, after both throughput phases (warm), peak, end of latency",
    "swap": "open loop at the offered rate, the challenger promoted under it: promote() "
    "returned → first reply by the new version (its created_at); longest gap between "
    "consecutive replies (created_at) from then to 1 s past that first reply",
    "monitor": "one MonitorLoop in-process over the run's prediction logs (feedback, dlq too), "
    "MonitorConfig's own max_batch / max_interval (as `run monitor`); steady state: records "
    "of its steps after the first / their summed duration",
    "monitor3": "3 MonitorLoop instances, a process each, MonitorConfig's defaults, one "
    "group and state topic of their own (after the sink); their group starts at the end of "
    "the monitor's input; once it is Stable with all 3, the input's committed records are "
    "appended again in one transaction; records / (last step's commit - that commit), "
    "wall clock across the processes",
    "monitor_ratios": "monitor_eps / scorer_eps (target ≥ 1.5); monitor3_eps / monitor_eps",
    "sink": "in-process Sink into embedded ClickHouse; steady state after the first insert",
}


@dataclass(frozen=True)
class Measured:
    passthrough: Throughput
    passthrough_txn: Throughput
    floor: FloorResult | str  # what went wrong when it could not be measured
    scorer: ScorerRun
    fast: FastRun | str
    faust: dict[str, FaustRun | str]  # by variant
    downstream: Downstream | None = None

    def faust_eps(self) -> dict[str, float | None]:
        return {name: run.throughput.throughput().eps if isinstance(run, FaustRun) else None
                for name, run in self.faust.items()}  # fmt: skip

    def best_faust(self) -> FaustRun | None:
        runs = [run for run in self.faust.values() if isinstance(run, FaustRun)]
        return max(runs, key=lambda run: run.throughput.throughput().eps, default=None)


def build_report(
    config: BenchConfig, m: Measured, *, external: bool, partitions: int, load_before: float
) -> dict[str, Any]:
    """The JSON-ready report: rates, latency, RSS, swap, ratios, targets, counts, notes."""
    scorer_eps = m.scorer.throughput.throughput().eps
    best = m.best_faust()
    group = _group(m)
    faust_eps = best.throughput.throughput().eps if best else None
    report: dict[str, Any] = {
        "events": config.events,
        "passthrough_eps": m.passthrough.eps,
        "passthrough_txn_eps": m.passthrough_txn.eps,
        "scorer_eps": scorer_eps,
        "scorer_sklearn_eps": m.scorer.sklearn.throughput().eps,
        "faust_eps": faust_eps,
        "faust_best_variant": best.variant if best else None,
        "faust_variants": m.faust_eps(),
        "offered_rps": config.rate,
        "monitor_eps": m.downstream.monitor_eps if m.downstream else None,
        "monitor3_eps": group.eps if group else None,
        "sink_rows_per_s": m.downstream.sink_rows_per_s if m.downstream else None,
        **_latencies(m),
        "challenger_coverage": _coverage(m.scorer).share,
        "shadow_impact_ms": _impact(m.scorer),
        **_memory(m.scorer, best),
        **_swap(m.scorer.swap),
    }
    floor_p99 = (report["txn_floor_ms"] or {}).get("p99")
    report["ratios"] = {
        "scorer_vs_passthrough": ratio(scorer_eps, m.passthrough.eps),
        "scorer_vs_passthrough_txn": ratio(scorer_eps, m.passthrough_txn.eps),
        "scorer_vs_faust": ratio(scorer_eps, faust_eps),
        "latency_p99_vs_floor": ratio(report["latency_ms"]["p99"], floor_p99),
        "monitor_vs_scorer": ratio(report["monitor_eps"], scorer_eps),
        "monitor3_vs_monitor": ratio(report["monitor3_eps"], report["monitor_eps"]),
    }
    report |= {
        "seconds": _seconds(m),
        "counts": _counts(config, m),
        "scorer_stats": m.scorer.stats,
        "fast_scorer_stats": m.fast.stats if isinstance(m.fast, FastRun) else None,
        "method": METHOD,
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "broker": "MODELSTREAM_KAFKA" if external else "local, for this run",
            "partitions": partitions,
            "load_average_before": load_before,
            "scorer_max_batch": config.max_batch,
            "faust_events_per_variant": config.faust_events,
            "floor_iterations": config.floor_iterations,
            "broker_warmup_seconds": config.broker_warmup_seconds,
        },
    }
    report["targets"] = evaluate_targets(report)
    report["notes"] = _notes(config, m, load_before, partitions)
    return report


def _percentiles(summary: LatencySummary) -> dict[str, float]:
    return {"p50": summary.p50, "p95": summary.p95, "p99": summary.p99, "max": summary.max}


def _split(latency: LatencyResult) -> dict[str, dict[str, float]]:
    return {
        "due_to_reply_produced": _percentiles(latency.produced),
        "reply_produced_to_read": _percentiles(latency.visible),
        "sender_late": _percentiles(latency.sender_late_ms),
    }


def _latencies(m: Measured) -> dict[str, Any]:
    latency = m.scorer.latency
    floor = m.floor if isinstance(m.floor, FloorResult) else None
    fast = m.fast.latency if isinstance(m.fast, FastRun) else None
    return {
        "txn_floor_ms": _percentiles(floor.total) if floor else None,
        "txn_floor_detail_ms": {
            "send_offsets": _percentiles(floor.send_offsets),
            "commit": _percentiles(floor.commit),
            "commit_to_read": _percentiles(floor.commit_to_read),
        } if floor else None,
        "latency_ms": _percentiles(latency.summary),
        "latency_detail_ms": _split(latency),
        "fast_latency_ms": _percentiles(fast.summary) if fast else None,
        "fast_latency_detail_ms": _split(fast) if fast else None,
    }  # fmt: skip


def _memory(scorer: ScorerRun, faust: FaustRun | None) -> dict[str, Any]:
    rss = scorer.rss
    return {
        "scorer_rss_mb": rss.peak_mb,
        "rss_mb": {"start": rss.start_mb, "warm": rss.warm_mb, "peak": rss.peak_mb,
                   "end": rss.end_mb, "growth": rss.growth_mb},
        "faust_rss_mb": faust.rss.peak_mb if faust else None,
    }  # fmt: skip


def _swap(swap: SwapResult) -> dict[str, Any]:
    return {
        "swap_gap_ms": swap.timing.gap_ms,
        "swap_max_reply_gap_ms": swap.timing.max_reply_gap_ms,
        "swap_detail": {
            "from_version": swap.from_version,
            "to_version": swap.to_version,
            "offered_rps": swap.offered_rps,
            "promote_call_ms": swap.promote_call_ms,
            "max_reply_gap_after_promotion_ms": swap.timing.max_gap_after_ms,
        },
    }


def _group(m: Measured) -> MonitorGroup | None:
    group = m.downstream.monitor3 if m.downstream else None
    return group if isinstance(group, MonitorGroup) else None


def _seconds(m: Measured) -> dict[str, Any]:
    fast = m.fast if isinstance(m.fast, FastRun) else None
    group = _group(m)
    return {
        "passthrough": m.passthrough.seconds,
        "passthrough_txn": m.passthrough_txn.seconds,
        "floor": m.floor.seconds if isinstance(m.floor, FloorResult) else None,
        "scorer": m.scorer.throughput.throughput().seconds,
        "scorer_sklearn": m.scorer.sklearn.throughput().seconds,
        "faust": {name: run.throughput.throughput().seconds if isinstance(run, FaustRun)
                  else None for name, run in m.faust.items()},
        "latency_load": m.scorer.latency.seconds,
        "swap_load": m.scorer.swap.seconds,
        "fast_handover": fast.handover_s if fast else None,
        "fast_latency_load": fast.latency.seconds if fast else None,
        "monitor": m.downstream.monitor_seconds if m.downstream else None,
        "monitor3": group.seconds if group else None,
    }  # fmt: skip


def _coverage_counts(scorer: ScorerRun) -> dict[str, int]:
    c = _coverage(scorer)
    return {"logged": c.logged, "sampled_out": c.sampled_out, "covered": c.covered,
            "missing": c.missing}  # fmt: skip


def _impact(scorer: ScorerRun) -> dict[str, float] | None:
    """Reply latency of one champion with an ordinary and with a 50 ms-per-batch
    challenger at 500 req/s, and what the sleepy one added at p99 (negative: nothing)."""
    if "ordinary" not in scorer.impact or "sleepy" not in scorer.impact:
        return None
    ordinary, sleepy = scorer.impact["ordinary"].summary, scorer.impact["sleepy"].summary
    return {"ordinary_p50": ordinary.p50, "ordinary_p99": ordinary.p99,
            "sleepy_p50": sleepy.p50, "sleepy_p99": sleepy.p99,
            "p99_added": sleepy.p99 - ordinary.p99}  # fmt: skip


def _coverage(scorer: ScorerRun) -> Coverage:
    return challenger_coverage(_prefixed(scorer.logged, "challenger:"))


def _counts(config: BenchConfig, m: Measured) -> dict[str, Any]:
    scorer, latency = m.scorer, m.scorer.latency
    return {
        "passthrough": {"sent": config.events, "forwarded": m.passthrough.done},
        "passthrough_txn": {"sent": config.events, "forwarded": m.passthrough_txn.done},
        "floor": _floor_counts(config, m.floor),
        "scorer": _read_counts(config.events, scorer.throughput, scorer.replies),
        "scorer_sklearn": _read_counts(config.events, scorer.sklearn, scorer.sklearn_replies),
        "latency": _latency_counts(latency),
        "fast_latency": _latency_counts(m.fast.latency) if isinstance(m.fast, FastRun)
        else {"error": m.fast},
        "logged": _prefixed(scorer.logged, "served_by:"),
        "challenger": _prefixed(scorer.logged, "challenger:"),
        "challenger_coverage": _coverage_counts(scorer),
        "swap": _swap_counts(scorer.swap),
        "shadow_impact": {label: _latency_counts(run) for label, run in scorer.impact.items()},
        "faust": {name: _faust_counts(config.faust_events, run) for name, run in m.faust.items()},
        **(m.downstream.counts() if m.downstream else {}),
    }  # fmt: skip


def _read_counts(sent: int, back: ReadBack, served: Counter[str]) -> dict[str, Any]:
    return {"sent": sent, "replies": back.received, "unique": back.unique,
            "served": dict(served)}  # fmt: skip


def _latency_counts(latency: LatencyResult) -> dict[str, int]:
    return {"sent": latency.sent, "replies": latency.replies, "measured": latency.summary.count}


def _floor_counts(config: BenchConfig, floor: FloorResult | str) -> dict[str, Any]:
    if isinstance(floor, str):
        return {"transactions": config.floor_iterations, "error": floor}
    return {"transactions": config.floor_iterations, "measured": floor.count, "lost": floor.lost}


def _faust_counts(timed: int, run: FaustRun | str) -> dict[str, Any]:
    if isinstance(run, str):
        return {"timed": timed, "replies": 0, "unique": 0, "error": run}
    back = run.throughput
    return {"timed": timed, "replies": back.received, "unique": back.unique, "loop": run.loop}


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


def _notes(config: BenchConfig, m: Measured, load_before: float, partitions: int) -> list[str]:
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
    return [*notes, *_floor_notes(m.floor), *_scorer_notes(config.events, m.scorer),
            *_swap_notes(m.scorer.swap), *_fast_notes(m.fast),
            *_faust_notes(config, m.faust),
            *(m.downstream.notes(partitions) if m.downstream else [])]  # fmt: skip


def _floor_notes(floor: FloorResult | str) -> list[str]:
    if isinstance(floor, str):
        return [f"the transaction floor could not be measured: {reason(floor)}"]
    if floor.lost:
        return [f"the floor's reader missed {floor.lost} of its records (10 s each)"]
    return []


def _scorer_notes(n: int, scorer: ScorerRun) -> list[str]:
    notes = []
    for what, back in (
        ("the scorer", scorer.throughput),
        ("the scikit-learn model", scorer.sklearn),
    ):
        if back.unique < n:
            notes.append(f"{what} answered only {back.unique:,} of {n:,} requests")
    served = _prefixed(scorer.logged, "served_by:")
    if served.get("champion", 0) < sum(served.values()):
        notes.append(f"not every request was answered by the champion (both phases): {served} "
                     f"(throughput-phase replies: {dict(scorer.replies)})")  # fmt: skip
    outcomes = _prefixed(scorer.logged, "challenger:")
    coverage = challenger_coverage(outcomes)
    if coverage.missing:
        rest = {k: v for k, v in outcomes.items() if k.startswith("skipped:") or k == "none"}
        rest.pop("skipped:sampled_out", None)
        in_sample = coverage.covered + coverage.missing
        notes.append(f"the challenger has no entry for {coverage.missing:,} of {in_sample:,} "
                     f"requests in its sample: {rest}")  # fmt: skip
    failed = {k: v for k, v in outcomes.items() if k.startswith("failed:")}
    if failed:
        notes.append(f"the challenger failed on {sum(failed.values()):,} requests ({failed}); "
                     "a failure is its outcome and counts as covered")  # fmt: skip
    return [*notes, *_latency_notes("latency run", scorer.latency)]


def _latency_notes(label: str, latency: LatencyResult) -> list[str]:
    notes = []
    if latency.replies < latency.sent:
        notes.append(f"{label}: {latency.replies:,} replies to {latency.sent:,} requests")
    late = latency.sender_late_ms
    if late.p99 > 1.0:
        notes.append(f"{label}: the paced sender left late (p50 {late.p50:.1f} / p99 "
                     f"{late.p99:.1f} / max {late.max:.1f} ms; counted in the latencies): "
                     "the machine is saturated")  # fmt: skip
    return notes


def _fast_notes(fast: FastRun | str) -> list[str]:
    if isinstance(fast, str):
        return [f"the at-least-once scorer could not be measured: {reason(fast)}"]
    return _latency_notes("at-least-once latency run", fast.latency)


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


def _faust_notes(config: BenchConfig, runs: dict[str, FaustRun | str]) -> list[str]:
    notes = []
    timed = config.faust_events
    for name, run in runs.items():
        if isinstance(run, str):
            notes.append(f"faust {name} could not be measured: {reason(run)}")
        elif run.throughput.unique < timed:
            notes.append(f"faust {name} answered {run.throughput.unique:,} of {timed:,} "
                         f"requests within its {run.budget:.0f} s budget; its rate is over "
                         "those it answered")  # fmt: skip
    if timed < config.events:
        notes.append(f"each faust variant was timed over its first {timed:,} replies "
                     f"({config.faust_share:.0%} of the {config.events:,} requests)")  # fmt: skip
    skipped = [v.name for v in VARIANTS if v.name not in runs]
    if skipped:
        notes.append(f"faust variants not measured in this run: {', '.join(skipped)} "
                     "(--quick runs the take() variants only; the full run all)")  # fmt: skip
    notes.append("faust runs at-least-once without transactions and writes no prediction log: "
                 "it does less work per request than the scorer")  # fmt: skip
    return notes


ERROR_LINE = re.compile(r"(Error|Exception|No such option|error:)")


def reason(error: str) -> str:
    """A failure's first line, and the line of its log tail that names the error.

    >>> reason("the scorer exited with code 2; last log lines:\\nUsage: x\\n"
    ...        "│ No such option: --guarantee   │\\n╰──────╯")
    'the scorer exited with code 2; last log lines: … No such option: --guarantee'
    >>> reason("the floor read none of its 300 records back")
    'the floor read none of its 300 records back'
    """
    lines = [line.strip(" │╭╰─╮╯") for line in error.splitlines()]
    named = [line for line in lines[1:] if ERROR_LINE.search(line)]
    return f"{lines[0]} … {named[-1]}" if named else lines[0]

"""The bench report: the measurements, the issue's targets met or missed, a rich table
and a JSON file. A missed target is shown as missed, in red, with its number.

Targets (2-core machine, from the issue "Scoring at the broker's speed")::

    scorer ≥ 25,000 events/s
    scorer ≥ 80 % of the transactional      scorer_eps / passthrough_txn_eps ≥ 0.8 (the
      passthrough                           passthrough overlaps its commits as the scorer)
    scorer ≥ 5x faust                       scorer_eps / faust_eps ≥ 5 (faust's best variant)
    exactly-once p50 ≤ 25 ms                at the offered rate (2,000 req/s by default)
    exactly-once p99 ≤ 2x the floor         latency_ms.p99 / txn_floor_ms.p99 ≤ 2, the floor
                                            measured in the same run
    at-least-once p99 ≤ 10 ms               fast_latency_ms.p99, same offered rate
    challenger coverage ≥ 99.9 %            of the logged requests in the shadow sample
    a 50 ms challenger adds ≤ 5 ms to       shadow_impact_ms.p99_added: the same champion's
      reply p99 at 500 req/s                reply p99 with a challenger sleeping 50 ms per
                                            batch minus with an ordinary one
    scorer RSS flat                         end - warm ≤ max(5 MB, 5 % of warm)
    swap gap ≤ 1,000 ms                     promotion committed → first reply by the new
                                            champion, under load at the offered rate
    monitor ≥ 1.5x scorer                   monitor_eps / scorer_eps ≥ 1.5, a process each,
      (issue 10)                            same run; monitor3_eps / monitor_eps (three
                                            instances) is shown, without a target

``--gateway`` (same model, same machine, same broker; MLServer's figures are the best
of its configurations, per metric)::

    gateway ≥ 2x MLServer REST req/s at ≤ p99   gateway_rps / mlserver_rps ≥ 2 and
                                                gateway_p99_ms ≤ mlserver_p99_ms (the direct
                                                gateway, scoring in-process)
    gRPC ≥ 1.5x MLServer gRPC req/s             grpc_rps / mlserver_grpc_rps ≥ 1.5
    every direct answer logged                  logged_ratio = 1: prediction-log records /
                                                answers the bench got
    scorer ≥ 3x MLServer Kafka mode             scorer_sklearn_eps / mlserver_kafka_eps ≥ 3,
                                                MLServer's adaptive batching on

A report gets the targets of the numbers it has: the main run's, ``--gateway``'s, or both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from services.bench._format import fmt, ms
from services.bench._gateway_table import gateway_rows

__all__ = ["evaluate_targets", "ratio", "render", "write_json"]

MIN_SCORER_EPS = 25_000.0
MIN_PASSTHROUGH_TXN_SHARE = 0.8
MIN_FAUST_MULTIPLE = 5.0
MAX_P50_MS = 25.0
MAX_P99_FLOOR_MULTIPLE = 2.0
MAX_FAST_P99_MS = 10.0
MIN_CHALLENGER_COVERAGE = 0.999
MAX_SHADOW_IMPACT_MS = 5.0  # a challenger sleeping 50 ms per batch, at 500 req/s
MAX_SWAP_GAP_MS = 1_000.0
MIN_MONITOR_MULTIPLE = 1.5  # monitor_eps / scorer_eps: the monitor keeps up with a scorer
TARGET_RPS = 2_000.0
MIN_GATEWAY_MULTIPLE = 2.0
MIN_GRPC_MULTIPLE = 1.5
LOGGED_RATIO = 1.0
MIN_MLSERVER_KAFKA_MULTIPLE = 3.0
GATEWAY_TARGET = "gateway ≥ 2x MLServer REST req/s at ≤ p99"
GRPC_TARGET = "gateway gRPC ≥ 1.5x MLServer gRPC req/s"
LOGGED_TARGET = "every direct gateway answer logged"
KAFKA_TARGET = "scorer ≥ 3x MLServer Kafka mode"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or zero.

    >>> ratio(15_000, 30_000), ratio(1.0, 0.0), ratio(None, 2.0)
    (0.5, None, None)
    """
    if not numerator or not denominator:
        return None
    return numerator / denominator


def rss_allowance_mb(warm_mb: float) -> float:
    """How much RSS may grow under steady load and still count as flat.

    >>> rss_allowance_mb(80.0), rss_allowance_mb(300.0)
    (5.0, 15.0)
    """
    return max(5.0, 0.05 * warm_mb)


def _target(op: str, target: float, measured: float | None, unit: str) -> dict[str, Any]:
    """``measured`` against ``target``; ``op`` is ``>=``, ``<=`` or ``==``."""
    checks = {">=": float.__ge__, "<=": float.__le__, "==": float.__eq__}
    met = measured is not None and bool(checks[op](float(measured), float(target)))
    return {"target": target, "measured": measured, "met": met, "op": op, "unit": unit}


def evaluate_targets(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The targets of the numbers ``report`` has: the main run's (``scorer_eps``) and
    ``--gateway``'s (``gateway_rps``). A missing number misses."""
    targets = _core_targets(report) if "scorer_eps" in report else {}
    if "gateway_rps" in report:
        targets |= gateway_targets(report)
    return targets


def gateway_targets(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Gateway against MLServer REST (throughput *and* tail latency) and gRPC, the
    prediction log against the answers, scorer against MLServer's Kafka mode.

    >>> t = gateway_targets({"gateway_rps": 5_000, "gateway_p99_ms": 12.0,
    ...     "mlserver_rps": 2_000, "mlserver_p99_ms": 15.0, "scorer_sklearn_eps": 20_000,
    ...     "mlserver_kafka_eps": 8_000, "grpc_rps": 3_100, "mlserver_grpc_rps": 2_000,
    ...     "logged_ratio": 1.0, "logged": {"logged": 9_000, "answered": 9_000}})
    >>> {name: (v["measured"], v["met"]) for name, v in t.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'gateway ≥ 2x MLServer REST req/s at ≤ p99': (2.5, True),
     'gateway gRPC ≥ 1.5x MLServer gRPC req/s': (1.55, True),
     'every direct gateway answer logged': (1.0, True),
     'scorer ≥ 3x MLServer Kafka mode': (2.5, False)}
    >>> slow_tail = gateway_targets({"gateway_rps": 5_000, "gateway_p99_ms": 16.0,
    ...     "mlserver_rps": 2_000, "mlserver_p99_ms": 15.0, "logged_ratio": 0.9999})
    >>> slow_tail[GATEWAY_TARGET]["met"], slow_tail[GATEWAY_TARGET]["detail"]
    (False, 'p99 16.00 vs 15.00 ms')
    >>> slow_tail[LOGGED_TARGET]["met"]
    False
    """
    gw_p99, mls_p99 = report.get("gateway_p99_ms"), report.get("mlserver_p99_ms")
    rps = ratio(report.get("gateway_rps"), report.get("mlserver_rps"))
    gateway = _target(">=", MIN_GATEWAY_MULTIPLE, rps, "ratio")
    tail_ok = gw_p99 is not None and mls_p99 is not None and gw_p99 <= mls_p99
    gateway |= {"met": gateway["met"] and tail_ok,
                "detail": f"p99 {fmt(gw_p99, 'ms')} vs {fmt(mls_p99, 'ms')} ms"}  # fmt: skip
    grpc = ratio(report.get("grpc_rps"), report.get("mlserver_grpc_rps"))
    kafka = ratio(report.get("scorer_sklearn_eps"), report.get("mlserver_kafka_eps"))
    return {GATEWAY_TARGET: gateway,
            GRPC_TARGET: _target(">=", MIN_GRPC_MULTIPLE, grpc, "ratio"),
            LOGGED_TARGET: _logged_target(report),
            KAFKA_TARGET: _target(">=", MIN_MLSERVER_KAFKA_MULTIPLE, kafka, "ratio")}  # fmt: skip


def _logged_target(report: Mapping[str, Any]) -> dict[str, Any]:
    """``logged_ratio`` = 1 exactly, with the counts: two decimals cannot show a miss.

    >>> _logged_target({"logged_ratio": 0.9995, "logged": {"logged": 1999, "answered": 2000}})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'target': 1.0, 'measured': 0.9995, 'met': False, 'op': '==', 'unit': 'ratio',
     'detail': '1,999 records for 2,000 answers'}
    """
    target = _target("==", LOGGED_RATIO, report.get("logged_ratio"), "ratio")
    counts = report.get("logged") or {}
    if "logged" in counts and "answered" in counts:
        target["detail"] = f"{counts['logged']:,} records for {counts['answered']:,} answers"
    return target


def _core_targets(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's targets against a report's numbers (a missing number misses).

    >>> t = _core_targets({"scorer_eps": 26_000, "passthrough_txn_eps": 30_000,
    ...     "faust_eps": 4_000, "offered_rps": 2_000, "latency_ms": {"p50": 12.0, "p99": 30.0},
    ...     "txn_floor_ms": {"p99": 18.0}, "fast_latency_ms": {"p99": 9.0},
    ...     "challenger_coverage": 0.9995, "rss_mb": {"warm": 200.0, "end": 203.0},
    ...     "swap_gap_ms": 420.0, "shadow_impact_ms": {"p99_added": 1.5}, "monitor_eps": 40_000})
    >>> {name: v["met"] for name, v in t.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'scorer ≥ 25,000 events/s': True, 'scorer ≥ 80 % of transactional passthrough': True,
     'scorer ≥ 5x faust': True, 'exactly-once p50 ≤ 25 ms at 2,000 req/s': True,
     'exactly-once p99 ≤ 2x transaction floor p99': True,
     'at-least-once p99 ≤ 10 ms at 2,000 req/s': True, 'challenger coverage ≥ 99.9 %': True,
     'a 50 ms challenger adds ≤ 5 ms to reply p99 at 500 req/s': True,
     'scorer RSS flat': True, 'swap gap ≤ 1,000 ms': True, 'monitor ≥ 1.5x scorer': True}
    """
    scorer = report.get("scorer_eps")
    latency = report.get("latency_ms") or {}
    floor_p99 = (report.get("txn_floor_ms") or {}).get("p99")
    rss = report.get("rss_mb") or {}
    impact = report.get("shadow_impact_ms") or {}
    growth = rss["end"] - rss["warm"] if "end" in rss and "warm" in rss else None
    at = _at_rate(report.get("offered_rps") or 0.0)
    p99 = _target("<=", MAX_P99_FLOOR_MULTIPLE, ratio(latency.get("p99"), floor_p99), "ratio")
    p99["detail"] = f"p99 {fmt(latency.get('p99'), 'ms')} vs floor {fmt(floor_p99, 'ms')} ms"
    return {
        "scorer ≥ 25,000 events/s": _target(">=", MIN_SCORER_EPS, scorer, "events/s"),
        "scorer ≥ 80 % of transactional passthrough": _target(
            ">=",
            MIN_PASSTHROUGH_TXN_SHARE,
            ratio(scorer, report.get("passthrough_txn_eps")),
            "ratio",
        ),
        "scorer ≥ 5x faust": _target(
            ">=", MIN_FAUST_MULTIPLE, ratio(scorer, report.get("faust_eps")), "ratio"
        ),
        f"exactly-once p50 ≤ {MAX_P50_MS:g} ms{at}": _target(
            "<=", MAX_P50_MS, latency.get("p50"), "ms"
        ),
        "exactly-once p99 ≤ 2x transaction floor p99": p99,
        f"at-least-once p99 ≤ {MAX_FAST_P99_MS:g} ms{at}": _target(
            "<=", MAX_FAST_P99_MS, (report.get("fast_latency_ms") or {}).get("p99"), "ms"
        ),
        "challenger coverage ≥ 99.9 %": _target(
            ">=", MIN_CHALLENGER_COVERAGE, report.get("challenger_coverage"), "share"
        ),
        "a 50 ms challenger adds ≤ 5 ms to reply p99 at 500 req/s": _target(
            "<=", MAX_SHADOW_IMPACT_MS, impact.get("p99_added"), "ms"
        ),
        "scorer RSS flat": _target(
            "<=", rss_allowance_mb(rss.get("warm", 0.0)), growth, "MB growth"
        ),
        f"swap gap ≤ {MAX_SWAP_GAP_MS:,.0f} ms": _target(
            "<=", MAX_SWAP_GAP_MS, report.get("swap_gap_ms"), "ms"
        ),
        f"monitor ≥ {MIN_MONITOR_MULTIPLE:g}x scorer": _target(
            ">=", MIN_MONITOR_MULTIPLE, ratio(report.get("monitor_eps"), scorer), "ratio"
        ),
    }


def _at_rate(rate: float) -> str:
    """The latency targets' rate, and the run's when it was another.

    >>> _at_rate(2_000.0), _at_rate(500.0)
    (' at 2,000 req/s', ' at 2,000 req/s (measured at 500 req/s)')
    """
    text = f" at {TARGET_RPS:,.0f} req/s"
    if rate and not math.isclose(rate, TARGET_RPS):
        text += f" (measured at {rate:,.0f} req/s)"
    return text


def render(report: Mapping[str, Any], console: Console) -> None:
    """The measurements, the targets (met / missed) and any notes."""
    console.print(_measurements(report))
    console.print(_targets(report["targets"]))
    for note in report.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")


def _measurements(report: Mapping[str, Any]) -> Table:
    if report.get("mode") == "gateway":
        title = (f"modelstream bench --gateway — one scikit-learn model, "
                 f"{report.get('concurrency')} requests in flight")  # fmt: skip
        rows = gateway_rows(report)
    else:
        title, rows = f"modelstream bench — {report['events']:,} events", _rows(report)
    table = Table(title=title, title_justify="left")
    table.add_column("measurement")
    table.add_column("value", justify="right")
    table.add_column("how it was timed", style="dim")
    method = report.get("method", {})
    for name, value, key in rows:
        table.add_row(name, value, method.get(key, ""))
    return table


def _rows(report: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    def eps(key: str) -> str:
        return fmt(report.get(key), "events/s") + " ev/s"

    detail = report.get("latency_detail_ms") or {}
    rss = report.get("rss_mb") or {}
    impact = report.get("shadow_impact_ms") or {}
    rate = report.get("offered_rps") or 0.0
    best = report.get("faust_best_variant")
    return [
        ("passthrough", eps("passthrough_eps"), "passthrough"),
        ("passthrough, transactional (commits overlapped)", eps("passthrough_txn_eps"),
         "passthrough_txn"),
        ("scorer (champion + challenger, EOS)", eps("scorer_eps"), "scorer"),
        ("scorer, scikit-learn champion + challenger", eps("scorer_sklearn_eps"),
         "scorer_sklearn"),
        (f"faust agent, best variant ({best or '—'})", eps("faust_eps"), "faust"),
        *_faust_rows(report),
        ("monitor, 1 instance (all estimators, EOS)", eps("monitor_eps"), "monitor"),
        ("monitor, 3 instances (a process each)", eps("monitor3_eps"), "monitor3"),
        *_monitor_ratios(report),
        ("sink → ClickHouse", fmt(report.get("sink_rows_per_s"), "events/s") + " rows/s",
         "sink"),
        ("exactly-once floor  p50 / p99", ms(report.get("txn_floor_ms"), ("p50", "p99")),
         "floor"),
        ("  commit_transaction  p50 / p99",
         ms((report.get("txn_floor_detail_ms") or {}).get("commit"), ("p50", "p99")), ""),
        (f"latency, exactly-once, at {rate:,.0f} req/s  p50 / p95 / p99",
         ms(report.get("latency_ms"), ("p50", "p95", "p99")), "latency"),
        ("  due → reply produced  p50 / p99",
         ms(detail.get("due_to_reply_produced"), ("p50", "p99")), "latency_split"),
        ("  reply produced → read  p50 / p99",
         ms(detail.get("reply_produced_to_read"), ("p50", "p99")), ""),
        (f"latency, at-least-once, at {rate:,.0f} req/s  p50 / p95 / p99",
         ms(report.get("fast_latency_ms"), ("p50", "p95", "p99")), "fast_latency"),
        ("challenger coverage", fmt(report.get("challenger_coverage"), "share"), "coverage"),
        ("reply p50 / p99 at 500 req/s, ordinary challenger",
         ms(impact, ("ordinary_p50", "ordinary_p99")), "shadow_impact"),
        ("  challenger sleeping 50 ms per batch", ms(impact, ("sleepy_p50", "sleepy_p99")), ""),
        ("scorer RSS  start / warm / peak / end",
         " / ".join(fmt(rss.get(k), "MB") for k in ("start", "warm", "peak", "end")) + " MB",
         "rss"),
        (f"champion swap at {rate:,.0f} req/s  gap / longest reply gap",
         " / ".join(fmt(report.get(k), "ms") for k in ("swap_gap_ms", "swap_max_reply_gap_ms"))
         + " ms", "swap"),
    ]  # fmt: skip


def _monitor_ratios(report: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """monitor / scorer (its target) and 3 instances / 1.

    >>> rows = _monitor_ratios({"monitor_eps": 45_000, "scorer_eps": 30_000,
    ...                         "monitor3_eps": 63_000})
    >>> [(name.strip(), value) for name, value, _ in rows]
    [('monitor / scorer (target ≥ 1.5x)', '1.50x'), ('3 instances / 1', '1.40x')]
    """
    one = report.get("monitor_eps")
    return [
        (f"  monitor / scorer (target ≥ {MIN_MONITOR_MULTIPLE:g}x)",
         fmt(ratio(one, report.get("scorer_eps")), "ratio") + "x", "monitor_ratios"),
        ("  3 instances / 1", fmt(ratio(report.get("monitor3_eps"), one), "ratio") + "x", ""),
    ]  # fmt: skip


def _faust_rows(report: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    variants = report.get("faust_variants") or {}
    return [(f"  faust {name}", fmt(eps, "events/s") + " ev/s", "")
            for name, eps in variants.items()]  # fmt: skip


def _targets(targets: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title="targets", title_justify="left")
    for column in ("target", "wanted", "measured", ""):
        table.add_column(column, justify="left" if column == "target" else "right")
    for name, t in targets.items():
        op = {">=": "≥", "<=": "≤", "==": "="}[t["op"]]
        verdict = "[green]met[/]" if t["met"] else "[bold red]MISSED[/]"
        measured = fmt(t["measured"], t["unit"])
        if t.get("detail"):
            measured += f" ({t['detail']})"
        table.add_row(name, f"{op} {fmt(t['target'], t['unit'])}", measured, verdict)
    return table


def write_json(report: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

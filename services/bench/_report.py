"""The bench report: the measurements, the issue's targets met or missed, a rich table
and a JSON file. A missed target is shown as missed, in red, with its number.

Targets (2-core machine, from the issue)::

    scorer ≥ 50 % of the passthrough        scorer_eps / passthrough_eps ≥ 0.5
    scorer ≥ 15,000 events/s
    scorer ≥ 3x the faust agent             scorer_eps / faust_eps ≥ 3
    p99 ≤ 10 ms at 2,000 req/s              (measured at the offered rate of the run)
    scorer RSS flat                         end - warm ≤ max(5 MB, 5 % of warm)
    swap gap ≤ 1,000 ms                     promotion committed → first reply by the new
                                            champion, under load at the offered rate

``--gateway`` (same model, same machine, same broker)::

    gateway ≥ 2x MLServer REST req/s at ≤ p99   gateway_rps / mlserver_rps ≥ 2 and
                                                gateway_p99_ms ≤ mlserver_p99_ms
    scorer ≥ 3x MLServer Kafka mode             scorer_sklearn_eps / mlserver_kafka_eps ≥ 3

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

__all__ = ["evaluate_targets", "ratio", "render", "write_json"]

MIN_PASSTHROUGH_SHARE = 0.5
MIN_SCORER_EPS = 15_000.0
MIN_FAUST_MULTIPLE = 3.0
MAX_P99_MS = 10.0
MAX_SWAP_GAP_MS = 1_000.0
TARGET_RPS = 2_000.0
MIN_GATEWAY_MULTIPLE = 2.0
MIN_MLSERVER_KAFKA_MULTIPLE = 3.0
GATEWAY_TARGET = "gateway ≥ 2x MLServer REST req/s at ≤ p99"
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
    met = measured is not None and (measured >= target if op == ">=" else measured <= target)
    return {"target": target, "measured": measured, "met": met, "op": op, "unit": unit}


def evaluate_targets(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The targets of the numbers ``report`` has: the main run's (``scorer_eps``) and
    ``--gateway``'s (``gateway_rps``). A missing number misses."""
    targets = _core_targets(report) if "scorer_eps" in report else {}
    if "gateway_rps" in report:
        targets |= gateway_targets(report)
    return targets


def gateway_targets(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Gateway against MLServer REST (throughput *and* tail latency), scorer against
    MLServer's Kafka mode.

    >>> t = gateway_targets({"gateway_rps": 5_000, "gateway_p99_ms": 12.0,
    ...     "mlserver_rps": 2_000, "mlserver_p99_ms": 15.0, "scorer_sklearn_eps": 20_000,
    ...     "mlserver_kafka_eps": 8_000})
    >>> {name: (v["measured"], v["met"]) for name, v in t.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'gateway ≥ 2x MLServer REST req/s at ≤ p99': (2.5, True),
     'scorer ≥ 3x MLServer Kafka mode': (2.5, False)}
    >>> slow_tail = gateway_targets({"gateway_rps": 5_000, "gateway_p99_ms": 16.0,
    ...     "mlserver_rps": 2_000, "mlserver_p99_ms": 15.0})
    >>> slow_tail[GATEWAY_TARGET]["met"], slow_tail[GATEWAY_TARGET]["detail"]
    (False, 'p99 16.00 vs 15.00 ms')
    """
    gw_p99, mls_p99 = report.get("gateway_p99_ms"), report.get("mlserver_p99_ms")
    rps = ratio(report.get("gateway_rps"), report.get("mlserver_rps"))
    gateway = _target(">=", MIN_GATEWAY_MULTIPLE, rps, "ratio")
    tail_ok = gw_p99 is not None and mls_p99 is not None and gw_p99 <= mls_p99
    gateway |= {"met": gateway["met"] and tail_ok,
                "detail": f"p99 {_fmt(gw_p99, 'ms')} vs {_fmt(mls_p99, 'ms')} ms"}  # fmt: skip
    kafka = ratio(report.get("scorer_sklearn_eps"), report.get("mlserver_kafka_eps"))
    return {GATEWAY_TARGET: gateway,
            KAFKA_TARGET: _target(">=", MIN_MLSERVER_KAFKA_MULTIPLE, kafka, "ratio")}  # fmt: skip


def _core_targets(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's targets against a report's numbers (a missing number misses).

    >>> t = _core_targets({"scorer_eps": 16_000, "passthrough_eps": 40_000,
    ...     "faust_eps": 1_000, "offered_rps": 2_000, "latency_ms": {"p99": 12.5},
    ...     "rss_mb": {"warm": 200.0, "end": 203.0}, "swap_gap_ms": 420.0})
    >>> {name: v["met"] for name, v in t.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'scorer ≥ 50 % of passthrough': False, 'scorer ≥ 15,000 events/s': True,
     'scorer ≥ 3x faust': True, 'p99 ≤ 10 ms at 2,000 req/s': False, 'scorer RSS flat': True,
     'swap gap ≤ 1,000 ms': True}
    """
    scorer = report.get("scorer_eps")
    p99 = (report.get("latency_ms") or {}).get("p99")
    rate = report.get("offered_rps") or 0.0
    rss = report.get("rss_mb") or {}
    growth = rss["end"] - rss["warm"] if "end" in rss and "warm" in rss else None
    latency_name = f"p99 ≤ {MAX_P99_MS:g} ms at {TARGET_RPS:,.0f} req/s"
    if rate and not math.isclose(rate, TARGET_RPS):
        latency_name += f" (measured at {rate:,.0f} req/s)"
    return {
        "scorer ≥ 50 % of passthrough": _target(
            ">=", MIN_PASSTHROUGH_SHARE, ratio(scorer, report.get("passthrough_eps")), "ratio"
        ),
        "scorer ≥ 15,000 events/s": _target(">=", MIN_SCORER_EPS, scorer, "events/s"),
        "scorer ≥ 3x faust": _target(
            ">=", MIN_FAUST_MULTIPLE, ratio(scorer, report.get("faust_eps")), "ratio"
        ),
        latency_name: _target("<=", MAX_P99_MS, p99, "ms"),
        "scorer RSS flat": _target(
            "<=", rss_allowance_mb(rss.get("warm", 0.0)), growth, "MB growth"
        ),
        f"swap gap ≤ {MAX_SWAP_GAP_MS:,.0f} ms": _target(
            "<=", MAX_SWAP_GAP_MS, report.get("swap_gap_ms"), "ms"
        ),
    }


def _fmt(value: float | None, unit: str) -> str:
    """A number for the table.

    >>> _fmt(0.4312, "ratio"), _fmt(15234.2, "events/s"), _fmt(None, "ms"), _fmt(3.14159, "ms")
    ('0.43', '15,234', '—', '3.14')
    """
    if value is None:
        return "—"
    if unit == "events/s":
        return f"{value:,.0f}"
    return f"{value:.2f}"


def render(report: Mapping[str, Any], console: Console) -> None:
    """The measurements, the targets (met / missed) and any notes."""
    console.print(_measurements(report))
    console.print(_targets(report["targets"]))
    for note in report.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")


def _measurements(report: Mapping[str, Any]) -> Table:
    if report.get("mode") == "gateway":
        title = (f"modelstream bench --gateway — one scikit-learn model, "
                 f"{report.get('concurrency')} connections")  # fmt: skip
        rows = _gateway_rows(report)
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


def _gateway_rows(report: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    def rate(key: str, unit: str) -> str:
        return f"{_fmt(report.get(key), 'events/s')} {unit}"

    def ms(system: str) -> str:
        p50, p99 = report.get(f"{system}_p50_ms"), report.get(f"{system}_p99_ms")
        return f"{_fmt(p50, 'ms')} / {_fmt(p99, 'ms')} ms"

    workers = report.get("mlserver_workers")
    return [
        ("gateway → Kafka → scorer → gateway", rate("gateway_rps", "req/s"), "http"),
        ("  latency p50 / p99", ms("gateway"), "http_latency"),
        ("    in the gateway / in the scorer, p50", _inside(report), "gateway_inside"),
        (f"MLServer REST (parallel_workers={workers})", rate("mlserver_rps", "req/s"), ""),
        ("  latency p50 / p99", ms("mlserver"), ""),
        ("server CPU per request: gateway + scorer / MLServer", _server_cpu(report),
         "server_cpu"),
        ("scorer, sklearn champion (Kafka, EOS)", rate("scorer_sklearn_eps", "ev/s"),
         "scorer_sklearn"),
        ("MLServer Kafka mode", rate("mlserver_kafka_eps", "ev/s"), "mlserver_kafka"),
    ]  # fmt: skip


def _rows(report: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    def eps(key: str) -> str:
        return _fmt(report.get(key), "events/s") + " ev/s"

    def ms(values: Mapping[str, float] | None, keys: tuple[str, ...]) -> str:
        return " / ".join(_fmt((values or {}).get(k), "ms") for k in keys) + " ms"

    detail = report.get("latency_detail_ms") or {}
    rss = report.get("rss_mb") or {}
    rate = report.get("offered_rps") or 0.0
    return [
        ("passthrough", eps("passthrough_eps"), "passthrough"),
        ("passthrough, transactional", eps("passthrough_txn_eps"), "passthrough"),
        ("scorer (champion + challenger, EOS)", eps("scorer_eps"), "scorer"),
        ("faust agent", eps("faust_eps"), "faust"),
        ("monitor (all estimators, EOS)", eps("monitor_eps"), "monitor"),
        ("sink → ClickHouse", _fmt(report.get("sink_rows_per_s"), "events/s") + " rows/s",
         "sink"),
        (f"latency at {rate:,.0f} req/s  p50 / p95 / p99",
         ms(report.get("latency_ms"), ("p50", "p95", "p99")), "latency"),
        ("  due → reply produced  p50 / p99",
         ms(detail.get("due_to_reply_produced"), ("p50", "p99")), "latency_split"),
        ("  reply produced → read  p50 / p99",
         ms(detail.get("reply_produced_to_read"), ("p50", "p99")), ""),
        ("scorer RSS  start / warm / peak / end",
         " / ".join(_fmt(rss.get(k), "MB") for k in ("start", "warm", "peak", "end")) + " MB",
         "rss"),
        (f"champion swap at {rate:,.0f} req/s  gap / longest reply gap",
         " / ".join(_fmt(report.get(k), "ms") for k in ("swap_gap_ms", "swap_max_reply_gap_ms"))
         + " ms", "swap"),
    ]  # fmt: skip


def _inside(report: Mapping[str, Any]) -> str:
    inside = report.get("gateway_inside_ms") or {}
    p50 = [(inside.get(part) or {}).get("p50") for part in ("gateway", "scorer")]
    return " / ".join(_fmt(v, "ms") for v in p50) + " ms"


def _server_cpu(report: Mapping[str, Any]) -> str:
    """``gateway + scorer / mlserver`` CPU ms per request.

    >>> _server_cpu({"server_cpu_ms_per_request": {"gateway": 1.25, "scorer": 0.5,
    ...                                            "mlserver": 1.0}})
    '1.25 + 0.50 / 1.00 ms'
    """
    cpu = report.get("server_cpu_ms_per_request") or {}
    return (f"{_fmt(cpu.get('gateway'), 'ms')} + {_fmt(cpu.get('scorer'), 'ms')} / "
            f"{_fmt(cpu.get('mlserver'), 'ms')} ms")  # fmt: skip


def _targets(targets: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title="targets", title_justify="left")
    for column in ("target", "wanted", "measured", ""):
        table.add_column(column, justify="left" if column == "target" else "right")
    for name, t in targets.items():
        op = "≥" if t["op"] == ">=" else "≤"
        verdict = "[green]met[/]" if t["met"] else "[bold red]MISSED[/]"
        measured = _fmt(t["measured"], t["unit"])
        if t.get("detail"):
            measured += f" ({t['detail']})"
        table.add_row(name, f"{op} {_fmt(t['target'], t['unit'])}", measured, verdict)
    return table


def write_json(report: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

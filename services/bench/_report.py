"""The bench report: the measurements, the issue's targets met or missed, a rich table
and a JSON file. A missed target is shown as missed, in red, with its number.

Targets (2-core machine, from the issue)::

    scorer ≥ 50 % of the passthrough        scorer_eps / passthrough_eps ≥ 0.5
    scorer ≥ 15,000 events/s
    scorer ≥ 3x the faust agent             scorer_eps / faust_eps ≥ 3
    p99 ≤ 10 ms at 2,000 req/s              (measured at the offered rate of the run)
    scorer RSS flat                         end - warm ≤ max(5 MB, 5 % of warm)
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
TARGET_RPS = 2_000.0


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
    """The issue's targets against a report's numbers (a missing number misses).

    >>> t = evaluate_targets({"scorer_eps": 16_000, "passthrough_eps": 40_000,
    ...     "faust_eps": 1_000, "offered_rps": 2_000, "latency_ms": {"p99": 12.5},
    ...     "rss_mb": {"warm": 200.0, "end": 203.0}})
    >>> {name: v["met"] for name, v in t.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'scorer ≥ 50 % of passthrough': False, 'scorer ≥ 15,000 events/s': True,
     'scorer ≥ 3x faust': True, 'p99 ≤ 10 ms at 2,000 req/s': False, 'scorer RSS flat': True}
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
    table = Table(title=f"modelstream bench — {report['events']:,} events", title_justify="left")
    table.add_column("measurement")
    table.add_column("value", justify="right")
    table.add_column("how it was timed", style="dim")
    method = report.get("method", {})
    for name, value, key in _rows(report):
        table.add_row(name, value, method.get(key, ""))
    return table


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
    ]  # fmt: skip


def _targets(targets: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title="targets", title_justify="left")
    for column in ("target", "wanted", "measured", ""):
        table.add_column(column, justify="left" if column == "target" else "right")
    for name, t in targets.items():
        op = "≥" if t["op"] == ">=" else "≤"
        verdict = "[green]met[/]" if t["met"] else "[bold red]MISSED[/]"
        table.add_row(name, f"{op} {_fmt(t['target'], t['unit'])}",
                      _fmt(t["measured"], t["unit"]), verdict)  # fmt: skip
    return table


def write_json(report: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

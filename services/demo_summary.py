"""What ``modelstream demo`` measured, read back from the warehouse, and how it is shown.

The demo injects one change: from request ``events // 2`` on, :data:`DRIFT_FEATURE` is
shifted by :data:`DRIFT_SD` standard deviations. An alert says when it fired as
``at_event``: how many predictions its monitor task (model, input partition) had seen;
DLQ'd requests are not among them. The demo's model topics have one partition, so one
task sees every scored request in request order: event ``k`` is the ``k``-th scored
request. :func:`detections` maps each alert to its request that way, and
``injected.at_event`` counts the scored requests before the first shifted one, so
``at_event - injected.at_event`` is how many shifted events a detector saw before it fired.
(Alerts do not say which partition's task raised them: with several partitions an
``at_event`` could not be mapped to a request.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from services.demo_model import MODEL
from services.warehouse import Warehouse

__all__ = ["DRIFT_FEATURE", "DRIFT_SD", "LOOK_FURTHER", "DemoResult", "detections", "summarise"]

DRIFT_FEATURE = "x3"
DRIFT_SD = 1.0

LOOK_FURTHER = (
    "SELECT * FROM champion_vs_challenger WHERE model='churn' ORDER BY hour",
    "SELECT feature, method, window_end, value FROM drift_by_feature "
    "WHERE model='churn' AND drifted ORDER BY window_end",
    f"SELECT reason, count() FROM dlq WHERE model='{MODEL}' GROUP BY reason",
    "SELECT ts, model, version, action, actor FROM model_events ORDER BY ts DESC LIMIT 10",
)


@dataclass
class DemoResult:
    """What the demo measured (also the ``--json`` summary)."""

    events: int
    run: str = ""
    replies: int = 0
    dlq: int = 0
    elapsed_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    served_by: dict[str, int] = field(default_factory=dict)
    challenger_agreement: float | None = None
    labels_sent: int = 0
    warehouse: dict[str, int] = field(default_factory=dict)
    #: scored requests before the first shifted one: the injection, in monitor events
    shifted_at_event: int | None = None
    detected: list[dict[str, Any]] = field(default_factory=list)
    performance: dict[str, dict[str, float]] = field(default_factory=dict)
    fairness: dict[str, Any] = field(default_factory=dict)
    gateway: dict[str, Any] = field(default_factory=dict)
    loop: dict[str, Any] = field(default_factory=dict)
    report: str = ""  # the run's monitoring report (HTML), once written
    attention: list[str] = field(default_factory=list)  # what its first screen flags

    def first_detection(self) -> dict[str, Any] | None:
        """The earliest drift alert on the shifted feature."""
        drift = [d for d in self.detected if d["kind"] == "drift" and d["at_event"] is not None
                 and d["feature"] == DRIFT_FEATURE]  # fmt: skip
        return min(drift, key=lambda d: int(d["at_event"]), default=None)

    def injected(self) -> dict[str, Any]:
        """The injected shift, where it began, and how many events later it was detected."""
        first, at = self.first_detection(), self.shifted_at_event
        found = None if first is None else int(first["at_event"])
        return {
            "feature": DRIFT_FEATURE,
            "shift_sd": DRIFT_SD,
            "at_request": self.events // 2,
            "at_event": at,
            "detected_at_event": found,
            "delay_events": None if found is None or at is None else found - at,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "replies": self.replies,
            "dlq": self.dlq,
            "replies_per_s": round(self.replies / self.elapsed_s, 1) if self.elapsed_s else 0,
            "latency_ms": self.latency_ms,
            "served_by": self.served_by,
            "challenger_agreement": self.challenger_agreement,
            "labels_sent": self.labels_sent,
            "warehouse_rows": self.warehouse,
            "injected": self.injected(),
            "detected": self.detected,
            "performance": self.performance,
            "fairness": self.fairness,
            "gateway": self.gateway,
            "loop": self.loop,
            "report": self.report,
            "attention": self.attention,
        }


def detections(
    alerts: Iterable[tuple[str, str, int | None, str]], scored: Sequence[int]
) -> list[dict[str, Any]]:
    """Alerts ``(kind, feature, at_event, message)`` with the request of their event:
    ``scored`` lists the scored requests' indices in the order the monitor counted them;
    events past its end (the HTTP leg) and alerts without an event map to None.

    >>> detections([("drift", "x3", 3, "m"), ("fairness", "", None, "g")], [0, 2, 3])
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'kind': 'drift', 'feature': 'x3', 'at_event': 3, 'request': 3, 'message': 'm'},
     {'kind': 'fairness', 'feature': None, 'at_event': None, 'request': None, 'message': 'g'}]
    """
    return [
        {
            "kind": kind,
            "feature": feature or None,
            "at_event": at,
            "request": scored[at - 1] if at is not None and 0 < at <= len(scored) else None,
            "message": message,
        }
        for kind, feature, at, message in alerts
    ]


def summarise(warehouse: Warehouse, result: DemoResult, since: int) -> None:
    """Fill ``result`` from the warehouse rows of this run (written since ``since``, ms)."""
    q = warehouse.query
    run = {"m": MODEL, "r": f"{result.run}-%", "t": since}
    result.served_by = dict(
        q(
            "SELECT served_by, count() FROM predictions WHERE model = %(m)s "
            "AND request_id LIKE %(r)s GROUP BY served_by",
            run,
        ).rows
    )
    agree = q(
        "SELECT avg(champion_output = challenger_output) FROM predictions WHERE model = "
        "%(m)s AND request_id LIKE %(r)s AND challenger_output IS NOT NULL",
        run,
    ).rows
    if agree and agree[0][0] is not None:
        result.challenger_agreement = round(float(agree[0][0]), 4)
    _detected(warehouse, result, since)
    recent = "model = %(m)s AND ts >= fromUnixTimestamp64Milli(%(t)s)"
    for role, name, value in q(
        f"SELECT role, name, argMax(value, window_end) FROM metrics WHERE {recent} AND "
        "kind = 'performance' AND role != '' GROUP BY role, name",
        run,
    ).rows:
        result.performance.setdefault(role, {})[name] = round(float(value), 4)
    gaps = dict(
        q(
            f"SELECT name, argMax(value, window_end) FROM metrics WHERE {recent} AND "
            "kind = 'fairness' AND labels['basis'] = 'labelled' AND `group` = '' "
            "GROUP BY name",
            run,
        ).rows
    )
    result.fairness = {"attribute": "group"} | {
        name: round(float(gaps[name]), 4)
        for name in (
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equal_opportunity_difference",
            "equalized_odds_difference",
        )
        if name in gaps
    }
    for table in ("predictions", "feedback", "dlq", "metrics", "alerts", "model_events"):
        result.warehouse[table] = q(f"SELECT count() FROM {table}").rows[0][0]


def _detected(warehouse: Warehouse, result: DemoResult, since: int) -> None:
    """The run's alerts, each with its request, and the injection in monitor events."""
    run = {"m": MODEL, "r": f"{result.run}-%", "t": since}
    ids = warehouse.query(  # the requests topic's one partition: the monitor's order
        "SELECT request_id FROM predictions WHERE model = %(m)s AND request_id LIKE %(r)s "
        "ORDER BY source_offset",
        run,
    ).rows
    scored = [int(rid.rsplit("-", 1)[1]) for (rid,) in ids]
    shifted = result.events // 2
    result.shifted_at_event = sum(1 for i in scored if i < shifted)
    alerts = warehouse.query(
        "SELECT kind, feature, toInt64OrNull(labels['at_event']), message FROM alerts "
        "WHERE model = %(m)s AND ts >= fromUnixTimestamp64Milli(%(t)s) "
        "ORDER BY toInt64OrZero(labels['at_event']), ts",
        run,
    ).rows
    result.detected = detections(alerts, scored)


def report(result: DemoResult, console: Console) -> None:
    summary = result.as_json()
    table = Table(title="modelstream demo", show_header=False)
    for key in (
        "events",
        "replies",
        "dlq",
        "replies_per_s",
        "latency_ms",
        "served_by",
        "challenger_agreement",
        "labels_sent",
        "warehouse_rows",
    ):
        table.add_row(key, str(summary[key]))
    console.print(table)
    _report_drift(result, console)
    perf = Table(title="champion vs challenger (latest window, delayed labels)")
    names = sorted({n for role in result.performance.values() for n in role})
    perf.add_column("metric")
    for role in sorted(result.performance):
        perf.add_column(role)
    for name in names:
        perf.add_row(
            name, *(str(result.performance[r].get(name, "")) for r in sorted(result.performance))
        )
    console.print(perf)
    console.print(f"[bold]fairness[/] {result.fairness}")
    _report_loop(result.loop, console)
    if result.report:
        console.print(f"[bold]report[/] {result.report} (open it in a browser; it works offline)",
                      soft_wrap=True)  # fmt: skip
        for line in result.attention:
            console.print(f"  needs attention: {line}", soft_wrap=True, markup=False)
    console.print("Look further with SQL (more in docs/queries.md), e.g.:")
    for sql in LOOK_FURTHER:
        console.print(f'  [cyan]modelstream sql "{sql}"[/]', soft_wrap=True)


def _report_loop(loop: dict[str, Any], console: Console) -> None:
    """The closed loop: each step the lifecycle took, and the accuracies around it."""
    if not loop:
        return
    state = "closed" if loop.get("closed") else "NOT closed in time (see the steps)"
    console.print(f"[bold]closed loop[/] (concept change → drift alert → retrain → shadow → "
                  f"gated promotion): {state} in {loop.get('elapsed_s')} s; policy "
                  f"{loop.get('policy')}", soft_wrap=True)  # fmt: skip
    first = loop.get("first_verdict") or {}
    if first:
        line = f"  the gate on the hand-registered challenger v{first['version']}: "
        console.print(line + f"{first['action']} - {first['reason']}", soft_wrap=True,
                      markup=False)  # fmt: skip
    table = Table("at (s)", "step", "version", "why", title="lifecycle steps (model events)")
    for step in loop.get("steps", []):
        if step["action"] in ("wait", "retrain_waiting") and step is not loop["steps"][-1]:
            continue  # waits are in model_events; the table shows what moved
        table.add_row(str(step["at_s"]), step["action"], f"v{step['version']}", step["reason"])
    console.print(table)
    for name, numbers in (loop.get("accuracy") or {}).items():
        console.print(f"  champion accuracy {name}: {numbers['accuracy']:.3f} "
                      f"({numbers['requests']:,} labelled requests)")  # fmt: skip


def _report_drift(result: DemoResult, console: Console) -> None:
    """Injected vs detected, in the monitor's events (scored requests)."""
    injected, first = result.injected(), result.first_detection()
    console.print(
        f"[bold]drift injected[/] {injected['feature']} +{injected['shift_sd']:g} sd from "
        f"request {injected['at_request']} (monitor event {injected['at_event']}; the "
        "monitor counts scored requests, DLQ'd ones are not among them)"
    )
    if first is None:
        console.print("[bold red]drift detected[/] not on the shifted feature")
    else:
        console.print(
            f"[bold]drift detected[/] {first['feature']} at event {first['at_event']} "
            f"(request {first['request']}), {injected['delay_events']} events after the "
            f"injection: {first['message']}"
        )
    drift = Counter(d["feature"] for d in result.detected if d["kind"] == "drift")
    console.print(
        "[bold]drift alerts[/] "
        + (", ".join(f"{f}: {n}" for f, n in sorted(drift.items(), key=str)) or "none")
    )
    concept = [d for d in result.detected if d["kind"] == "concept_drift"]
    if concept:
        console.print(
            f"[bold]concept drift[/] alerts: {len(concept)}, first at event "
            f"{concept[0]['at_event']}"
        )

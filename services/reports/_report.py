"""The report: resolve the window, read and draw every section, write one document."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import pandas as pd

from services.reports import _queries as q
from services.reports._charts import Marker, markers, traffic_figures
from services.reports._html import Section, document
from services.reports._sections import (
    Scope,
    challenger_section,
    drift_section,
    fairness_section,
    performance_section,
)
from services.reports._summary import Facts, attention_lines
from services.reports._window import resolve, step_for
from services.sink.reader import Reader

__all__ = ["Report", "render_report"]

TRAFFIC_POINTS: Final = 1440  # a day at one point a minute
MAX_EVENT_ROWS: Final = 200


@dataclass(frozen=True)
class Report:
    """What :func:`render_report` made."""

    html: str  # one self-contained HTML document (plotly.js embedded, no CDN)
    attention: list[str]  # the summary's "needs attention" lines (empty: all fine)
    sections: dict[str, str]  # section name -> "ok" | "empty: <why>"


def render_report(reader: Reader, model: str, *, start: datetime | None = None,
                  end: datetime | None = None, now: datetime | None = None) -> Report:  # fmt: skip
    """The monitoring report of ``model`` over ``[start, end)`` (default: the last 24 h
    that hold its predictions, else the 24 h before ``now``), read through ``reader``."""
    latest = q.latest_prediction(reader, model)
    window = resolve(start, end, latest, now or datetime.now(UTC))
    alerts, events = q.alerts(reader, model, window), q.model_events(reader, model, window)
    found = markers(alerts, events)
    served = q.serving(reader, model, window)
    opened = q.open_alerts(reader, model, window)
    drifting = sorted(set(opened.loc[opened["kind"] == "drift", "feature"]) - {""})
    scope = Scope(reader, model, window, served, found, events, drifting)
    facts = Facts(window=window, open_alerts=_open_lines(opened))
    sections = [
        _traffic(scope, facts),
        drift_section(scope),
        performance_section(scope, facts),
        challenger_section(scope, facts),
        fairness_section(scope, facts),
        _events(alerts, events),
    ]
    attention = attention_lines(facts)
    html = document(f"Model report: {model}", _meta(scope, latest), attention, sections)
    return Report(html, attention, {s.key: s.status for s in sections})


def _traffic(scope: Scope, facts: Facts) -> Section:
    step = step_for(scope.window, TRAFFIC_POINTS)
    frame = q.traffic(scope.reader, scope.model, scope.window, step)
    title = "Traffic"
    if frame.empty:
        return Section(
            "traffic",
            title,
            empty="no request was scored or dead-lettered in "
            "this window: is the scorer running, and is the model's name right?",
        )
    facts.requests = int(frame["requests"].sum())
    facts.errors = int(frame["errors"].sum())
    facts.backups = int(frame["backups"].sum())
    facts.dlq = int(frame["dlq"].sum())
    note = (f"{facts.requests} requests scored, {facts.dlq} dead-lettered, "
            f"{facts.backups} answered by the backup. Latency is the scorer's, from "
            "consuming a request to producing its reply.")  # fmt: skip
    return Section("traffic", title, traffic_figures(frame, scope.found, step), notes=[note])


def _events(alerts: pd.DataFrame, events: pd.DataFrame) -> Section:
    title = "Alerts and model events"
    if alerts.empty and events.empty:
        return Section(
            "events",
            title,
            empty="no alert changed state and no model event "
            "(register, promote, retire, rollback, ...) happened in this window",
        )
    rows = [(f"{pd.Timestamp(r['ts']):%Y-%m-%d %H:%M:%S}", "alert",
             f"{r['kind']} {r['status']} ({r['severity']})", r["message"])
            for r in alerts.to_dict("records")]  # fmt: skip
    rows += [(f"{pd.Timestamp(r['ts']):%Y-%m-%d %H:%M:%S}", "model event",
              f"{r['action']} v{r['version']} by {r['actor']}", r["reason"])
             for r in events.to_dict("records")]  # fmt: skip
    rows.sort()
    note = (
        f"{len(alerts)} alert state changes and {len(events)} model events; each is "
        "marked on the time axes above (red: alerts, green: model events)."
    )
    shown = rows[-MAX_EVENT_ROWS:]
    if len(rows) > len(shown):
        note += f" The table lists the latest {len(shown)}."
    return Section("events", title, notes=[note], header=("time (UTC)", "type", "what", "detail"),
                   rows=shown)  # fmt: skip


def _open_lines(opened: pd.DataFrame) -> list[str]:
    """One line per kind and input of the open alerts (a drifted input raises one alert
    per window and statistic: dozens in a day), with how many, since when, and the
    latest one's message.

    >>> import pandas as pd
    >>> t = pd.Timestamp("2026-12-01 10:35", tz="UTC")
    >>> rows = [{"kind": "drift", "feature": "age", "message": f"age: psi {v} > 0.2",
    ...          "ts": t + pd.Timedelta(minutes=i)} for i, v in enumerate((0.35, 0.41))]
    >>> rows.append({"kind": "concept_drift", "feature": "", "ts": t,
    ...              "message": "error: adwin detected drift"})
    >>> _open_lines(pd.DataFrame(rows))  # doctest: +NORMALIZE_WHITESPACE
    ['drift on age: 2 alerts open since 2026-12-01 10:35; latest: age: psi 0.41 > 0.2',
     'concept drift: 1 alert open since 2026-12-01 10:35; latest: error: adwin detected drift']
    """
    lines: list[str] = []
    if opened.empty:
        return lines
    frame = opened.assign(ts=pd.to_datetime(opened["ts"], utc=True)).sort_values("ts")
    for (kind, feature), group in frame.groupby(["kind", "feature"], sort=False):
        what = str(kind).replace("_", " ") + (f" on {feature}" if feature else "")
        count = len(group)
        lines.append(f"{what}: {count} alert{'s' if count > 1 else ''} open since "
                     f"{group['ts'].iloc[0]:%Y-%m-%d %H:%M}; latest: "
                     f"{group['message'].iloc[-1]}")  # fmt: skip
    return lines


def _meta(scope: Scope, latest: object) -> str:
    when = ("no prediction yet" if latest is None else
            f"latest prediction {pd.Timestamp(str(latest)):%Y-%m-%d %H:%M:%S} UTC")  # fmt: skip
    versions = f"champion v{scope.champion}" if scope.champion else "no champion answered"
    if scope.challenger == scope.champion and scope.champion:
        versions += " (it shadowed as the challenger earlier in the window)"
    elif scope.challenger:
        versions += f", challenger v{scope.challenger}"
    return f"Window {scope.window.label()} ({when}; {versions}). Built from the warehouse."


__all__ += ["Marker"]

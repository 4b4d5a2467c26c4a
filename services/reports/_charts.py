"""Frames -> figures: one plotly figure per chart, all drawn the same way.

Every chart has a title, axis titles with their units and a legend, a fixed height and
the page's width (one column, readable at ~1280 px). Every chart over time carries the
window's alerts (red triangles) and model events (green diamonds) as markers on a hidden
axis at its top, with a dotted line down the plot: hovering one says what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "HEIGHT",
    "Marker",
    "figure",
    "markers",
    "step_label",
    "traffic_figures",
    "with_markers",
]

HEIGHT: Final = 340
TIME_AXIS: Final = "time (UTC)"
_MARKER_STYLE: Final = {
    "alert": {"color": "#d62728", "symbol": "triangle-down", "name": "alerts"},
    "event": {"color": "#2ca02c", "symbol": "diamond", "name": "model events"},
}
MAX_LINES: Final = 200  # beyond this many events the dotted lines hide the data

Marker = tuple[pd.Timestamp, str, str]  # (when, "alert" | "event", hover text)


def figure(title: str, y_title: str, *, x_title: str = TIME_AXIS,
           height: int = HEIGHT) -> go.Figure:  # fmt: skip
    """An empty figure in the report's style."""
    fig = go.Figure()
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        xaxis_title=x_title,
        yaxis_title=y_title,
        yaxis_rangemode="tozero",
        showlegend=True,
        height=height,
        template="plotly_white",
        margin={"l": 70, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        hovermode="x unified",
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13},
    )
    return fig


def markers(alerts: pd.DataFrame, events: pd.DataFrame) -> list[Marker]:
    """The alerts' and model events' markers, oldest first.

    >>> t = pd.Timestamp("2026-12-01 10:00", tz="UTC")
    >>> a = pd.DataFrame({"ts": [t], "kind": ["drift"], "status": ["firing"],
    ...                   "severity": ["warning"], "message": ["age: psi 0.3 > 0.2"]})
    >>> e = pd.DataFrame({"ts": [t], "version": ["2"], "action": ["promote"],
    ...                   "reason": ["better"]})
    >>> [(m[1], m[2]) for m in markers(a, e)]
    [('alert', 'drift alert firing (warning): age: psi 0.3 > 0.2'), ('event', 'promote v2: better')]
    """
    found: list[Marker] = []
    for row in alerts.itertuples(index=False):
        text = f"{row.kind} alert {row.status} ({row.severity}): {row.message}"
        found.append((pd.Timestamp(row.ts), "alert", text))
    for row in events.itertuples(index=False):
        found.append((pd.Timestamp(row.ts), "event", f"{row.action} v{row.version}: {row.reason}"))
    return sorted(found, key=lambda marker: (marker[0], marker[1]))


def with_markers(fig: go.Figure, found: Sequence[Marker]) -> go.Figure:
    """Draw the markers on a time-axis figure (in place; returned for chaining)."""
    if not found:
        return fig
    fig.update_layout(yaxis2={"overlaying": "y", "range": [0, 1.08], "visible": False,
                              "fixedrange": True})  # fmt: skip
    for kind, style in _MARKER_STYLE.items():
        mine = [m for m in found if m[1] == kind]
        if not mine:
            continue
        fig.add_trace(go.Scatter(
            x=[m[0] for m in mine], y=[1.0] * len(mine), yaxis="y2", mode="markers",
            name=style["name"], text=[m[2] for m in mine], hovertemplate="%{text}<extra></extra>",
            marker={"color": style["color"], "symbol": style["symbol"], "size": 11},
        ))  # fmt: skip
        for when, _, _ in mine[:MAX_LINES]:
            fig.add_shape(type="line", xref="x", yref="paper", x0=when, x1=when, y0=0, y1=1,
                          line={"color": style["color"], "width": 1, "dash": "dot"},
                          opacity=0.5, layer="below")  # fmt: skip
    return fig


def traffic_figures(frame: pd.DataFrame, found: Sequence[Marker], step: int) -> list[go.Figure]:
    """Requests per second, latency p50/p99 and the error, backup and DLQ rates."""
    per = step_label(step)
    rps = figure(f"Requests per second (mean per {per})", "requests / s")
    rps.add_trace(_line(frame["bucket"], frame["rps"], "requests/s", "%{y:.3g} req/s"))
    latency = figure(f"Scoring latency per {per}", "latency (ms)")
    latency.add_trace(_line(frame["bucket"], frame["p50_ms"], "p50", "p50 %{y:.3g} ms"))
    latency.add_trace(_line(frame["bucket"], frame["p99_ms"], "p99", "p99 %{y:.3g} ms"))
    rates = figure(f"Error, backup and DLQ rates per {per}", "share of requests (%)")
    for column, name in (("error_rate", "champion errors"), ("backup_rate", "served by backup"),
                         ("dlq_rate", "dead-lettered")):  # fmt: skip
        rates.add_trace(_line(frame["bucket"], 100 * frame[column], name, name + " %{y:.2f} %"))
    rates.update_yaxes(rangemode="tozero")
    return [with_markers(fig, found) for fig in (rps, latency, rates)]


def _line(x: Any, y: Any, name: str, hover: str, **style: Any) -> go.Scatter:
    return go.Scatter(x=x, y=y, name=name, mode="lines+markers", marker={"size": 4},
                      hovertemplate=hover + "<extra></extra>", **style)  # fmt: skip


def step_label(step: int) -> str:
    """A bucket's length as a reader says it.

    >>> step_label(60), step_label(300), step_label(7200)
    ('minute', '5 min', '2 h')
    """
    if step == 60:
        return "minute"
    if step < 3600:
        return f"{step // 60} min"
    return "hour" if step == 3600 else f"{step // 3600} h"

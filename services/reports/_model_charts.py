"""Frames -> figures for the model's quality: drift, performance and fairness."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from services.reports._charts import Marker, figure, with_markers
from services.reports._stats import mean_interval, wilson

__all__ = [
    "RATE_TITLES",
    "bin_labels",
    "distribution_figure",
    "drift_heatmap",
    "fairness_figures",
    "limit_lines",
    "performance_figure",
    "performance_points",
]

PALETTE: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
ROLE_COLORS: Final = {"champion": "#1f77b4", "challenger": "#ff7f0e"}
RATE_TITLES: Final = {"selection_rate": "Selection rate", "tpr": "True positive rate",
                      "fpr": "False positive rate"}  # fmt: skip


def drift_heatmap(frame: pd.DataFrame, method: str, found: Sequence[Marker]) -> go.Figure:
    """Feature x time: the drift statistic per monitor window, red past the threshold."""
    grid = frame.pivot_table(index="feature", columns="window_end", values="value", aggfunc="max")
    threshold = float(frame["threshold"].max()) or 0.2
    top = max(2 * threshold, float(np.nanmax(grid.to_numpy())))
    at = min(threshold / top, 1.0)
    height = 160 + 28 * len(grid.index)
    fig = figure(f"Data drift: {method} per input and window (threshold {threshold:g})",
                 "input", height=max(height, 300))  # fmt: skip
    fig.add_trace(go.Heatmap(
        x=list(grid.columns), y=list(grid.index), z=grid.to_numpy(), zmin=0, zmax=top,
        colorscale=[[0, "#f7fbff"], [at * 0.999, "#c6dbef"], [at, "#fdae61"], [1, "#b2182b"]],
        colorbar={"title": {"text": method}}, name=method,
        hovertemplate="%{y} at %{x}: " + method + " %{z:.3g}<extra></extra>",
    ))  # fmt: skip
    fig.update_layout(hovermode="closest")
    return with_markers(fig, found)


def bin_labels(edges: Sequence[float]) -> list[str]:
    """One label per histogram bin; the outer bins also hold what lies beyond the edges.

    >>> bin_labels([0.0, 10.0, 20.5])
    ['≤ 10', '[10, 20.5]+']
    >>> bin_labels([1.0, 2.0, 3.0, 4.0])
    ['≤ 2', '[2, 3)', '[3, 4]+']
    """
    labels = [f"[{lo:.4g}, {hi:.4g})" for lo, hi in itertools.pairwise(edges)]
    if len(labels) >= 2:
        labels[0] = f"≤ {edges[1]:.4g}"
        labels[-1] = f"[{edges[-2]:.4g}, {edges[-1]:.4g}]+"
    return labels


def distribution_figure(feature: str, labels: Sequence[str], reference: Sequence[float],
                        current: Sequence[float], x_title: str) -> go.Figure:  # fmt: skip
    """Reference (training) vs current share of values per bin or category."""
    ref, cur = _shares(reference), _shares(current)
    fig = figure(f"{feature}: training reference vs this window", "share of values (%)",
                 x_title=x_title)  # fmt: skip
    fig.add_trace(
        go.Bar(
            x=list(labels),
            y=ref,
            name=f"reference (n={int(sum(reference))})",
            marker_color="#9ecae1",
            hovertemplate="%{x}: %{y:.1f} %<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            x=list(labels),
            y=cur,
            name=f"current (n={int(sum(current))})",
            marker_color="#d6604d",
            hovertemplate="%{x}: %{y:.1f} %<extra></extra>",
        )
    )
    fig.update_layout(barmode="group", hovermode="closest")
    return fig


def performance_points(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Long form: bucket, role, value, low, high, n, versions (accuracy in %, or MAE).

    >>> f = pd.DataFrame({"bucket": [1], "champion_n": [100], "champion_hits": [81],
    ...                   "challenger_n": [0], "challenger_hits": [0], "champions": ["1"],
    ...                   "challengers": [""]})
    >>> performance_points(f, "classification")[["role", "value", "low", "high"]].round(2)
           role  value    low   high
    0  champion   81.0  72.22  87.49
    """
    rows = []
    for row in frame.to_dict("records"):
        for role in ("champion", "challenger"):
            n = int(row[f"{role}_n"])
            if n == 0:
                continue
            if kind == "classification":
                low, high = wilson(int(row[f"{role}_hits"]), n)
                value, low, high = 100 * row[f"{role}_hits"] / n, 100 * low, 100 * high
            else:
                value = float(row[f"{role}_mean"])
                low, high = mean_interval(value, float(row[f"{role}_sd"]), n)
            rows.append({"bucket": row["bucket"], "role": role, "value": value, "low": low,
                         "high": high, "n": n, "versions": row[f"{role}s"]})  # fmt: skip
    return pd.DataFrame(rows, columns=["bucket", "role", "value", "low", "high", "n", "versions"])


def performance_figure(points: pd.DataFrame, kind: str, step_label: str,
                       found: Sequence[Marker]) -> go.Figure:  # fmt: skip
    """Champion vs challenger per bucket, with 95 % intervals as error bars."""
    if kind == "classification":
        title, y_title = f"Accuracy per {step_label}, 95 % Wilson intervals", "accuracy (%)"
    else:
        title = f"Mean absolute error per {step_label}, 95 % intervals"
        y_title = "mean absolute error (label units)"
    fig = figure(title, y_title)
    for role, mine in points.groupby("role", sort=False):
        fig.add_trace(go.Scatter(
            x=mine["bucket"], y=mine["value"], name=str(role), mode="lines+markers",
            line={"color": ROLE_COLORS[str(role)]},
            error_y={"type": "data", "symmetric": False, "array": mine["high"] - mine["value"],
                     "arrayminus": mine["value"] - mine["low"]},
            customdata=np.stack([mine["n"], mine["versions"], mine["low"], mine["high"]], axis=-1),
            hovertemplate=(f"{role} v%{{customdata[1]}}: %{{y:.3g}} "
                           "[%{customdata[2]:.3g}, %{customdata[3]:.3g}] "
                           "on %{customdata[0]} labels<extra></extra>"),
        ))  # fmt: skip
    return with_markers(fig, found)


def fairness_figures(frame: pd.DataFrame, limits: Mapping[str, float],
                     found: Sequence[Marker]) -> list[go.Figure]:  # fmt: skip
    """Per attribute: each group's selection rate, TPR and FPR over time, then the gaps
    between groups against their limits (dashed lines)."""
    figures = []
    for attribute, rows in frame.groupby("attribute", sort=True):
        groups = rows[rows["grp"] != ""]
        for metric, title in RATE_TITLES.items():
            mine = groups[groups["metric"] == metric]
            if mine.empty:
                continue
            fig = figure(f"{title} by {attribute}", f"{title.lower()} (%)")
            for group, line in mine.groupby("grp", sort=True):
                fig.add_trace(go.Scatter(
                    x=line["window_end"], y=100 * line["value"], name=f"{attribute}={group}",
                    mode="lines+markers", marker={"size": 4},
                    hovertemplate=f"{attribute}={group}: %{{y:.1f}} %<extra></extra>",
                ))  # fmt: skip
            figures.append(with_markers(fig, found))
        gaps = rows[(rows["grp"] == "") & rows["metric"].isin(list(limits))]
        if not gaps.empty:
            figures.append(with_markers(_gap_figure(str(attribute), gaps, limits), found))
    return figures


def _gap_figure(attribute: str, gaps: pd.DataFrame, limits: Mapping[str, float]) -> go.Figure:
    fig = figure(f"Fairness gaps between {attribute} groups, and their limits",
                 "gap (difference or ratio)")  # fmt: skip
    colors: dict[str, str] = {}
    for index, (metric, line) in enumerate(gaps.groupby("metric", sort=True)):
        colors[str(metric)] = PALETTE[index % len(PALETTE)]
        fig.add_trace(go.Scatter(
            x=line["window_end"], y=line["value"], name=str(metric).replace("_", " "),
            mode="lines+markers", marker={"size": 4}, line={"color": colors[str(metric)]},
            hovertemplate=f"{metric}: %{{y:.3f}}<extra></extra>",
        ))  # fmt: skip
    for limit, names in limit_lines({m: limits[m] for m in colors}).items():
        color = colors[names[0]] if len(names) == 1 else "#555"
        text = f"limit {limit:g}: " + ", ".join(name.replace("_", " ") for name in names)
        fig.add_hline(y=limit, line_dash="dash", line_color=color, opacity=0.7,
                      annotation_text=text, annotation_position="top left",
                      annotation_font_size=11)  # fmt: skip
    return fig


def limit_lines(limits: Mapping[str, float]) -> dict[float, list[str]]:
    """One dashed line per distinct limit, naming every gap it bounds.

    >>> limit_lines({"a_difference": 0.1, "b_ratio": 0.8, "c_difference": 0.1})
    {0.1: ['a_difference', 'c_difference'], 0.8: ['b_ratio']}
    """
    lines: dict[float, list[str]] = {}
    for name, limit in sorted(limits.items(), key=lambda item: (item[1], item[0])):
        lines.setdefault(limit, []).append(name)
    return lines


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [100 * c / total if total else 0.0 for c in counts]

"""Frames -> figures: what each chart draws from synthetic frames (no warehouse)."""

from __future__ import annotations

import pandas as pd
import pytest

from services.reports._charts import figure, markers, traffic_figures, with_markers
from services.reports._model_charts import (
    distribution_figure,
    drift_heatmap,
    fairness_figures,
    performance_figure,
    performance_points,
)
from services.reports._stats import wilson
from streams.monitoring.fairness import DEFAULT_LIMITS

T0 = pd.Timestamp("2026-12-01 10:00", tz="UTC")


def minutes(n: int) -> list[pd.Timestamp]:
    return [T0 + pd.Timedelta(minutes=i) for i in range(n)]


def traffic_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "bucket": minutes(3), "requests": [60.0, 120.0, 30.0], "rps": [1.0, 2.0, 0.5],
        "p50_ms": [3.0, 4.0, 5.0], "p99_ms": [9.0, 12.0, 30.0], "errors": [0.0, 6.0, 0.0],
        "backups": [0.0, 6.0, 0.0], "dlq": [0.0, 0.0, 10.0], "error_rate": [0.0, 0.05, 0.0],
        "backup_rate": [0.0, 0.05, 0.0], "dlq_rate": [0.0, 0.0, 0.25],
    })  # fmt: skip


def found() -> list:
    alerts = pd.DataFrame({"ts": [T0 + pd.Timedelta(minutes=1)], "kind": ["drift"],
                           "status": ["firing"], "severity": ["warning"],
                           "message": ["age: psi 0.3 > 0.2"]})  # fmt: skip
    events = pd.DataFrame({"ts": [T0], "version": ["2"], "action": ["promote"],
                           "reason": ["better"]})  # fmt: skip
    return markers(alerts, events)


def test_traffic_charts_draw_the_frame_with_units() -> None:
    rps, latency, rates = traffic_figures(traffic_frame(), [], 60)
    assert rps.layout.title.text == "Requests per second (mean per minute)"
    assert rps.layout.yaxis.title.text == "requests / s"
    assert rps.layout.xaxis.title.text == "time (UTC)"
    assert list(rps.data[0].y) == [1.0, 2.0, 0.5]
    assert [t.name for t in latency.data] == ["p50", "p99"]
    assert list(latency.data[1].y) == [9.0, 12.0, 30.0]
    assert latency.layout.yaxis.title.text == "latency (ms)"
    assert [t.name for t in rates.data] == ["champion errors", "served by backup", "dead-lettered"]
    assert list(rates.data[2].y) == [0.0, 0.0, 25.0]  # percent
    assert all(fig.layout.height == 340 for fig in (rps, latency, rates))


def test_markers_sit_on_a_hidden_axis_with_a_line_each() -> None:
    fig = with_markers(figure("t", "y"), found())
    alerts, events = fig.data
    assert (alerts.name, events.name) == ("alerts", "model events")
    assert alerts.yaxis == "y2" and not fig.layout.yaxis2.visible
    assert list(alerts.text) == ["drift alert firing (warning): age: psi 0.3 > 0.2"]
    assert list(events.text) == ["promote v2: better"]
    assert len(fig.layout.shapes) == 2
    assert {s.line.dash for s in fig.layout.shapes} == {"dot"}
    assert with_markers(figure("t", "y"), []).data == ()  # nothing to mark: untouched


def test_every_time_chart_carries_the_markers() -> None:
    for fig in traffic_figures(traffic_frame(), found(), 60):
        assert {t.name for t in fig.data} >= {"alerts", "model events"}


def test_drift_heatmap_is_feature_by_window() -> None:
    frame = pd.DataFrame({
        "window_end": minutes(2) * 2, "feature": ["age", "age", "plan", "plan"],
        "method": ["psi"] * 4, "value": [0.1, 0.5, 0.0, 0.02], "threshold": [0.2] * 4,
        "drifted": [0, 1, 0, 0],
    })  # fmt: skip
    fig = drift_heatmap(frame, "psi", found())
    heat = fig.data[0]
    assert list(heat.y) == ["age", "plan"] and len(heat.x) == 2
    assert heat.z.tolist() == [[0.1, 0.5], [0.0, 0.02]]
    assert heat.zmin == 0 and heat.zmax == pytest.approx(0.5)
    assert fig.layout.title.text == "Data drift: psi per input and window (threshold 0.2)"
    assert heat.colorbar.title.text == "psi"


def test_distribution_compares_shares() -> None:
    fig = distribution_figure("age", ["≤ 30", "[30, 50]+"], [500, 500], [10, 30], "age (bins)")
    reference, current = fig.data
    assert list(reference.y) == [50.0, 50.0] and list(current.y) == [25.0, 75.0]
    assert current.name == "current (n=40)"
    assert fig.layout.yaxis.title.text == "share of values (%)"


def test_performance_points_and_chart_with_wilson_intervals() -> None:
    frame = pd.DataFrame({
        "bucket": minutes(2), "champion_n": [100, 50], "champion_hits": [80, 25],
        "challenger_n": [100, 0], "challenger_hits": [90, 0], "champions": ["1", "1"],
        "challengers": ["2", ""],
    })  # fmt: skip
    points = performance_points(frame, "classification")
    assert list(points["role"]) == ["champion", "challenger", "champion"]  # no empty bucket
    row = points.iloc[1]
    low, high = wilson(90, 100)
    assert (row["value"], row["low"], row["high"]) == pytest.approx((90, 100 * low, 100 * high))
    fig = performance_figure(points, "classification", "5 min", [])
    champion, challenger = fig.data
    assert list(champion.y) == [80.0, 50.0] and list(challenger.y) == [90.0]
    assert list(challenger.error_y.array) == pytest.approx([100 * high - 90])
    assert fig.layout.yaxis.title.text == "accuracy (%)"


def test_regression_points_use_the_mean_error() -> None:
    frame = pd.DataFrame({
        "bucket": minutes(1), "champion_n": [100], "champion_mean": [2.0], "champion_sd": [1.0],
        "challenger_n": [0], "challenger_mean": [None], "challenger_sd": [None],
        "champions": ["1"], "challengers": [""],
    })  # fmt: skip
    points = performance_points(frame, "regression")
    assert points[["value", "low", "high"]].round(3).values.tolist() == [[2.0, 1.804, 2.196]]
    assert (
        "mean absolute error"
        in performance_figure(points, "regression", "hour", []).layout.yaxis.title.text
    )


def fairness_frame() -> pd.DataFrame:
    rows = []
    for end in minutes(2):
        for grp, (sel, tpr, fpr) in {"f": (0.6, 0.8, 0.3), "m": (0.4, 0.7, 0.1)}.items():
            rows += [(end, "sex", grp, "selection_rate", sel), (end, "sex", grp, "tpr", tpr),
                     (end, "sex", grp, "fpr", fpr)]  # fmt: skip
        rows += [(end, "sex", "", "demographic_parity_difference", 0.2),
                 (end, "sex", "", "demographic_parity_ratio", 0.67),
                 (end, "sex", "", "equal_opportunity_difference", 0.1)]  # fmt: skip
    return pd.DataFrame(rows, columns=["window_end", "attribute", "grp", "metric", "value"])


def test_fairness_rates_per_group_and_gaps_against_limits() -> None:
    figures = fairness_figures(fairness_frame(), DEFAULT_LIMITS, found())
    titles = [fig.layout.title.text for fig in figures]
    assert titles == ["Selection rate by sex", "True positive rate by sex",
                      "False positive rate by sex",
                      "Fairness gaps between sex groups, and their limits"]  # fmt: skip
    selection = figures[0]
    assert [t.name for t in selection.data[:2]] == ["sex=f", "sex=m"]
    assert list(selection.data[0].y) == [60.0, 60.0]  # percent
    gaps = figures[3]
    limits = sorted((shape.y0, shape.line.dash) for shape in gaps.layout.shapes
                    if shape.line.dash == "dash")  # fmt: skip
    assert limits == [(0.1, "dash"), (0.8, "dash")]  # two differences share the 0.1 line
    notes = sorted(a.text for a in gaps.layout.annotations)
    assert notes == ["limit 0.1: demographic parity difference, equal opportunity difference",
                     "limit 0.8: demographic parity ratio"]  # fmt: skip

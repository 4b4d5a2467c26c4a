"""The document: self-contained, one plotly.js, nothing to fetch, empty sections explained."""

from __future__ import annotations

import re

import plotly.offline

from services.reports._charts import figure
from services.reports._html import Section, document


def page(*sections: Section, attention: tuple[str, ...] = ()) -> str:
    return document("Model report: churn", "Window ...", list(attention), list(sections))


def chart() -> Section:
    fig = figure("Requests per second", "requests / s")
    fig.add_scatter(x=[1, 2], y=[3, 4], name="requests/s")
    return Section("traffic", "Traffic", [fig, fig], notes=["12 requests <scored>"])


def test_plotly_js_is_embedded_once_and_nothing_is_loaded() -> None:
    html = page(chart())
    library = plotly.offline.get_plotlyjs()
    assert html.count(library) == 1
    outside = html.replace(library, "")
    # the library's own strings (licence links, map tile templates it never requests here)
    # are the only addresses in the file
    assert re.findall(r"https?://", outside) == []
    assert not re.search(r"<(link|img|iframe)\b|\bsrc\s*=|@import|url\(", outside)
    assert "cdn" not in outside.lower() and "mathjax" not in outside.lower()
    assert outside.count("Plotly.newPlot(") == 2
    assert '"displaylogo": false' in outside


def test_attention_and_text_are_escaped() -> None:
    html = page(chart(), attention=("DLQ rate 3 % <40 of 1240>",))
    assert "Needs attention (1)" in html and "<li>DLQ rate 3 % &lt;40 of 1240&gt;</li>" in html
    assert "12 requests &lt;scored&gt;" in html
    assert "Nothing needs attention" in page(chart())


def test_an_empty_section_says_why_and_draws_nothing() -> None:
    empty = Section("fairness", "Fairness", empty="the predictions carry no sensitive attribute")
    assert empty.status == "empty: the predictions carry no sensitive attribute"
    assert chart().status == "ok"
    html = page(empty)
    assert '<p class="empty">the predictions carry no sensitive attribute</p>' in html
    assert "Plotly.newPlot(" not in html.replace(plotly.offline.get_plotlyjs(), "")


def test_tables_and_chart_ids() -> None:
    events = Section("events", "Alerts", header=("time", "what"), rows=[("10:00", "promote v2")])
    html = page(chart(), events)
    assert '<div id="traffic-0"' in html and '<div id="traffic-1"' in html
    assert "<tr><td>10:00</td><td>promote v2</td></tr>" in html

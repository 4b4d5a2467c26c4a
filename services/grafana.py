"""The Grafana dashboard's SQL as the ClickHouse data source plugin runs it.

``deploy/grafana/dashboards/modelstream.json`` holds SQL with the plugin's macros and a
``model`` template variable. Grafana replaces the variable in the browser, the plugin
(``grafana-clickhouse-datasource``, ``pkg/macros/macros.go``) replaces the macros on the
server, then ClickHouse runs the result. :func:`expand` does both the same way, so a test
can run every panel's query against the warehouse without a Grafana:

    $__timeFilter(col)     col >= toDateTime(<from>) AND col <= toDateTime(<to>)  (Unix s)
    $__timeInterval(col)   toStartOfInterval(toDateTime(col), INTERVAL <n> second)
    $__interval_s          <n>, the panel's interval in seconds (at least 1)
    $__fromTime $__toTime  toDateTime(<from>), toDateTime(<to>)
    ${var:sqlstring}       the value quoted as a SQL string ('' doubles a quote)
    ${var} $var            the value as is (a single value: Grafana does not quote it)

The dashboard writes ``${model:sqlstring}``: a model name is always a quoted literal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DASHBOARD",
    "DATASOURCE_UID",
    "Query",
    "TimeRange",
    "dashboard_queries",
    "expand",
    "load_dashboard",
]

DASHBOARD: Final = (
    Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards" / "modelstream.json"
)
DATASOURCE_UID: Final = "modelstream-clickhouse"  # deploy/grafana/provisioning/datasources
_MACRO: Final = re.compile(r"\$__(timeFilter|timeInterval)\(\s*([^()]*?)\s*\)")
_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A dashboard's time range and a panel's interval, as the plugin receives them."""

    start: datetime
    end: datetime
    interval_s: int = 60


@dataclass(frozen=True, slots=True)
class Query:
    """One query of the dashboard: where it is (panel title or annotation name) and SQL."""

    where: str
    sql: str


def _seconds(at: datetime) -> int:
    return int(at.timestamp())


def _macros(sql: str, span: TimeRange) -> str:
    start, end, step = _seconds(span.start), _seconds(span.end), max(span.interval_s, 1)

    def one(found: re.Match[str]) -> str:
        name, column = found.group(1), found.group(2)
        if name == "timeFilter":
            return f"{column} >= toDateTime({start}) AND {column} <= toDateTime({end})"
        return f"toStartOfInterval(toDateTime({column}), INTERVAL {step} second)"

    sql = _MACRO.sub(one, sql)
    sql = sql.replace("$__interval_s", str(step))
    return sql.replace("$__fromTime", f"toDateTime({start})").replace(
        "$__toTime", f"toDateTime({end})"
    )


def _variables(sql: str, values: Mapping[str, str]) -> str:
    def one(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(3)
        if name.startswith("__") or name not in values:
            return found.group(0)  # a macro, or not a variable of this dashboard
        value, fmt = values[name], found.group(2)
        if fmt == "sqlstring":
            return "'" + value.replace("'", "''") + "'"
        if fmt is not None:
            raise ValueError(f"variable format {fmt!r} of ${{{name}}}: expected sqlstring")
        return value

    return _VARIABLE.sub(one, sql)


def expand(sql: str, span: TimeRange, variables: Mapping[str, str]) -> str:
    """``sql`` with the template variables, then the plugin's macros, replaced.

    >>> from datetime import UTC
    >>> hour = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 1, 1, tzinfo=UTC)
    >>> span = TimeRange(*hour, interval_s=30)
    >>> print(expand("SELECT $__timeInterval(ts) AS time, count() / $__interval_s FROM t "
    ...              "WHERE model = ${model:sqlstring} AND $__timeFilter(ts)", span,
    ...              {"model": "it's"}))  # doctest: +NORMALIZE_WHITESPACE
    SELECT toStartOfInterval(toDateTime(ts), INTERVAL 30 second) AS time, count() / 30 FROM t
    WHERE model = 'it''s' AND ts >= toDateTime(1796083200) AND ts <= toDateTime(1796086800)
    >>> expand("$model = ${model}, $__fromTime", span, {"model": "churn"})
    'churn = churn, toDateTime(1796083200)'
    >>> expand("${model:csv}", span, {"model": "churn"})
    Traceback (most recent call last):
    ...
    ValueError: variable format 'csv' of ${model}: expected sqlstring
    """
    return _macros(_variables(sql, variables), span)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[Query]:
    """Every SQL query of a dashboard: its panels' targets, its annotations, its
    query variables (a variable's query as Grafana stores it: text, or ``rawSql``)."""
    found = [
        Query(panel.get("title", "?"), target["rawSql"])
        for panel in _panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
    ]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        target = annotation.get("target") or {}
        if "rawSql" in target:
            found.append(Query(f"annotation {annotation['name']}", target["rawSql"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            sql = query if isinstance(query, str) else query["rawSql"]
            found.append(Query(f"variable {variable['name']}", sql))
    return found


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    """The dashboard JSON (``deploy/grafana/dashboards/modelstream.json`` by default)."""
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded

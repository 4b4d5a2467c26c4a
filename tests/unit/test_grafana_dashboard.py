"""The provisioned Grafana dashboard is well formed: every panel reads the provisioned
ClickHouse data source, has a title and a unit, filters on the dashboard's time range and
model, and quotes the model as a SQL string. Its SQL runs in
tests/integration/test_grafana_dashboard.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from services.grafana import DASHBOARD, DATASOURCE_UID, dashboard_queries, load_dashboard

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PLUGIN = "grafana-clickhouse-datasource"


def panels() -> list[dict[str, Any]]:
    return [p for p in load_dashboard()["panels"] if p["type"] != "row"]


def test_the_provisioned_data_source_is_the_one_the_panels_name() -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "clickhouse.yml").read_text())
    (source,) = provisioned["datasources"]
    assert (source["uid"], source["type"]) == (DATASOURCE_UID, PLUGIN)
    expected = {
        "host": "clickhouse", "port": 8123, "protocol": "http", "username": "modelstream",
        "defaultDatabase": "modelstream",
    }  # fmt: skip
    assert source["jsonData"].items() >= expected.items()
    assert source["editable"] is False  # the UI cannot repoint it


def test_the_dashboard_provider_loads_the_mounted_directory() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "modelstream.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(m.split(":")[:2] for m in compose["services"]["grafana"]["volumes"])
    (entry,) = provider["providers"]
    assert mounts["./deploy/grafana/dashboards"] == entry["options"]["path"]
    assert (ROOT / "deploy/grafana/dashboards" / DASHBOARD.name).exists()


def test_every_panel_reads_clickhouse_with_a_title_and_a_unit() -> None:
    assert len(panels()) >= 10
    for panel in panels():
        title = panel.get("title", "")
        assert title.strip(), f"panel {panel['id']} has no title"
        assert panel["datasource"] == {"type": PLUGIN, "uid": DATASOURCE_UID}, title
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        assert panel.get("description"), f"{title}: say what it shows"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID, title
            assert target["editorType"] == "sql", title
    ids = [p["id"] for p in load_dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_the_report_sections_each_have_panels() -> None:
    text = " ".join(p["title"].lower() for p in panels())
    for needed in ("requests per second", "p50", "p99", "dlq", "backup", "drift",
                   "champion vs challenger", "fairness", "alerts", "model events"):  # fmt: skip
        assert needed in text, needed
    names = {a["name"] for a in load_dashboard()["annotations"]["list"]}
    assert {"Alerts firing", "Model events"} <= names


def test_thresholds_are_drawn_where_the_monitor_alerts() -> None:
    by_title = {p["title"]: p["fieldConfig"]["defaults"] for p in panels()}
    gaps = by_title["Fairness gaps between groups"]
    assert gaps["custom"]["thresholdsStyle"]["mode"] != "off"
    assert [s["value"] for s in gaps["thresholds"]["steps"]] == [None, 0.1]
    ratio = by_title["Demographic parity ratio"]["thresholds"]["steps"]
    assert [s["value"] for s in ratio] == [None, 0.8]


def test_every_query_is_scoped_to_the_model_and_the_time_range() -> None:
    queries = dashboard_queries(load_dashboard())
    assert len(queries) == len(panels()) + 2 + 1  # panels, two annotations, the variable
    for query in queries:
        if query.where == "variable model":
            assert "FROM predictions" in query.sql
            continue
        assert "${model:sqlstring}" in query.sql, f"{query.where}: quote the model"
        bare = re.sub(r"\$\{model:sqlstring\}", "", query.sql)
        assert "$model" not in bare and "${model}" not in bare, query.where
        assert "$__timeFilter(" in query.sql, f"{query.where}: not limited to the time range"


def test_the_model_variable_lists_the_models_that_served() -> None:
    (variable,) = load_dashboard()["templating"]["list"]
    assert variable["name"] == "model" and variable["type"] == "query"
    assert variable["datasource"]["uid"] == DATASOURCE_UID
    assert variable["query"] == "SELECT DISTINCT model FROM predictions ORDER BY model"

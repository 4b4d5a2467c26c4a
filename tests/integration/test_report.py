"""``modelstream report`` on real ClickHouse, and the written file in a real browser.

One hour of a model's life is inserted straight into the warehouse: 1200 scored
requests (champion v1, challenger v2 shadowing it and right more often), labels for most,
an input (``age``) that drifts in the second half-hour with the monitor's drift metrics
and a drift alert, per-group fairness metrics whose parity gap passes its limit, a few
answers served by the backup, 40 dead-lettered messages and the registry's events.
The report is rendered once; its charts' numbers are compared with direct SQL, its
sections and summary with what was inserted, and headless Chromium opens the file.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from services.reports import Report, render_report
from services.reports.cli import report, write_atomically
from services.warehouse import Warehouse, connect
from streams.monitoring.drift.psi import psi
from streams.monitoring.performance import mcnemar
from tests.integration.fixtures_warehouse import as_insert, sample_row
from tests.integration.test_gateway_pages import SHOTS, Browser

pytestmark = pytest.mark.integration

MODEL = "churn"
PLAIN = "plain"
GHOST = "ghost"  # dead letters only: nothing was ever scored
SUMMARISED = "summarised"  # window summaries, no drift metric
SUMMARY_COUNTS = ([0.0, 4.0, 11.0, 9.0, 3.0, 1.0], [2.0, 2.0, 1.0, 9.0, 13.0, 1.0])
START = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
MINUTES = 60
PER_MINUTE = 20
DLQ_ROWS = 40
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Built:
    warehouse: Warehouse
    report: Report
    path: Path


def _prediction(i: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any] | None]:
    ts = START + timedelta(seconds=i * 60 / PER_MINUTE, milliseconds=rng.randint(0, 50))
    late = ts >= START + timedelta(minutes=30)
    age = rng.gauss(60 if late else 40, 8)
    sex = "f" if i % 2 else "m"
    truth = "yes" if rng.random() < 0.4 else "no"
    flip = {"yes": "no", "no": "yes"}
    champion = truth if rng.random() < 0.7 else flip[truth]
    challenger = truth if rng.random() < 0.9 else flip[truth]
    if sex == "f" and rng.random() < 0.3:  # selects more women: a parity gap
        champion = "yes"
    backup = i % 50 == 7  # 2 %: the champion failed, the backup answered
    row = sample_row(
        "predictions", request_id=f"r-{i}", model=MODEL, ts=ts, client_id="app",
        features={"age": f"{age:.1f}", "plan": rng.choice(["basic", "pro"])},
        champion_version="1", champion_output="" if backup else champion,
        champion_error="timeout" if backup else "", champion_probabilities={},
        challenger_version="2", challenger_output=challenger, challenger_probabilities={},
        served_by="backup" if backup else "champion", backup_version="0" if backup else None,
        backup_output=champion if backup else None, sensitive={"sex": sex},
        latency_ms=round(rng.uniform(2, 8) + (30 if i % 97 == 0 else 0), 3),
    )  # fmt: skip
    label = None
    if i % 5:  # four requests in five are labelled
        label = sample_row("feedback", request_id=f"r-{i}", model=MODEL, ts=ts + timedelta(
            seconds=30), label_string=truth, label_number=None)  # fmt: skip
    return row, label


def _metrics() -> list[dict[str, Any]]:
    rows = []
    for minute in range(MINUTES):
        start = START + timedelta(minutes=minute)
        end = start + timedelta(minutes=1)
        psi = {"age": 0.05 if minute < 30 else 0.2 + minute / 100, "plan": 0.01}
        for feature, value in psi.items():
            rows.append(sample_row(
                "metrics", ts=end, model=MODEL, model_version="1", role="", kind="drift",
                name="psi", feature=feature, group="", window_start=start, window_end=end,
                value=value, count=PER_MINUTE,
                labels={"threshold": "0.2", "drifted": "true" if value > 0.2 else "false"},
            ))  # fmt: skip
        rates = {"f": (0.55, 0.8, 0.4), "m": (0.35, 0.7, 0.15)}
        for group, values in rates.items():
            for name, value in zip(("selection_rate", "tpr", "fpr"), values, strict=True):
                rows.append(_fairness(end, name, value + minute / 1000, group=f"sex={group}"))
        rows.append(_fairness(end, "demographic_parity_difference", 0.2 + minute / 1000))
        rows.append(_fairness(end, "demographic_parity_ratio", 0.64))
        rows.append(_fairness(end, "equal_opportunity_difference", 0.1 - minute / 1000))
    return rows


def _fairness(end: datetime, name: str, value: float, group: str = "") -> dict[str, Any]:
    return sample_row(
        "metrics", ts=end, model=MODEL, model_version="1", role="", kind="fairness", name=name,
        feature="", group=group, window_start=end - timedelta(minutes=1), window_end=end,
        value=value, count=PER_MINUTE // 2, labels={"attribute": "sex"} if not group else {},
    )  # fmt: skip


def _others() -> dict[str, list[dict[str, Any]]]:
    at = START + timedelta(minutes=35)
    alert = dict(alert_id="churn/drift/psi/age", model=MODEL, model_version="1", role="",
                 kind="drift", name="psi", feature="age", value=0.35, threshold=0.2)  # fmt: skip
    return {
        "alerts": [
            sample_row("alerts", ts=at, status="firing", message="age: psi 0.35 > 0.2", **alert),
            sample_row(
                "alerts",
                ts=START + timedelta(minutes=5),
                status="resolved",
                **(alert | {"alert_id": "old", "feature": "plan"}),
            ),
        ],
        "dlq": [
            sample_row(
                "dlq", model=MODEL, ts=START + timedelta(seconds=90 * i), request_id=f"d-{i}"
            )
            for i in range(DLQ_ROWS)
        ],
        "model_events": [
            sample_row(
                "model_events",
                model=MODEL,
                ts=START + timedelta(minutes=1),
                version="2",
                action="set_challenger",
                reason="retrained on November data",
            ),
            sample_row(
                "model_events",
                model=MODEL,
                ts=START + timedelta(minutes=45),
                version="2",
                action="wait",
                actor="lifecycle",
                reason="480 of 2000 labels",
            ),
        ],
        "reference_profiles": [
            sample_row(
                "reference_profiles",
                model=MODEL,
                version="1",
                feature="age",
                edges=[20.0, 35.0, 40.0, 45.0, 60.0],
                ref_counts=[250, 250, 250, 250],
            ),
            sample_row(
                "reference_profiles",
                model=MODEL,
                version="1",
                feature="plan",
                kind="categorical",
                edges=[],
                ref_counts=[500, 500, 0],
                points=[],
                cdf=[],
                ref_fine=[],
                starts=[],
                categories=["basic", "pro", "other"],
                std=None,
                wasserstein_scale=1.0,
            ),
        ],
    }


def _plain() -> list[dict[str, Any]]:
    """A model with no label, no challenger and no sensitive attribute."""
    return [
        sample_row(
            "predictions",
            request_id=f"p-{i}",
            model=PLAIN,
            ts=START + timedelta(seconds=i),
            challenger_version=None,
            challenger_output=None,
            challenger_latency_ms=None,
            sensitive={},
            latency_ms=3.0,
        )
        for i in range(100)
    ]


def _summaries() -> list[dict[str, Any]]:
    """Two minutes of ``age`` counts per cut-point interval of v7's reference profile."""
    return [
        sample_row(
            "window_summaries",
            model=SUMMARISED,
            window_start=START + timedelta(minutes=m),
            window_end=START + timedelta(minutes=m + 1),
            counts=counts,
        )
        for m, counts in enumerate(SUMMARY_COUNTS)
    ]


def fill(warehouse: Warehouse) -> None:
    rng = random.Random(7)
    pairs = [_prediction(i, rng) for i in range(MINUTES * PER_MINUTE)]
    tables = {
        "predictions": [p for p, _ in pairs] + _plain(),
        "feedback": [f for _, f in pairs if f],
        "metrics": _metrics(),
        **_others(),
    }
    tables["window_summaries"] = _summaries()
    tables["dlq"] += [
        sample_row("dlq", model=GHOST, ts=START, request_id=f"g-{i}") for i in range(3)
    ]
    tables["reference_profiles"] += [sample_row("reference_profiles", model=SUMMARISED)]
    for table, rows in tables.items():
        warehouse.insert(table, *as_insert(rows))


@pytest.fixture(scope="module")
def built(warehouse_dsn: str, warehouse_engine: Warehouse,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:  # fmt: skip
    database = f"test_report_{uuid.uuid4().hex[:8]}"
    with connect(warehouse_dsn, database=database) as warehouse:
        warehouse.migrate()
        fill(warehouse)
        report = render_report(warehouse, MODEL, now=START + timedelta(days=3))
        path = write_atomically(tmp_path_factory.mktemp("report") / "report.html", report.html)
        yield Built(warehouse, report, path)
    warehouse_engine.command(f"DROP DATABASE IF EXISTS {database} SYNC")


def figure_data(html: str, div_id: str) -> list[dict[str, Any]]:
    """The traces of one chart, as plotly.js receives them (typed arrays decoded)."""
    found = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*', html)
    assert found, f"no chart {div_id} in the report"
    start = found.end()
    traces, _ = json.JSONDecoder().raw_decode(html, start)
    return [{key: _decode(value) for key, value in trace.items()} for trace in traces]


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return value


def test_requests_per_second_match_sql(built: Built) -> None:
    (rps, *_) = figure_data(built.report.html, "traffic-0")
    assert rps["name"] == "requests/s"
    expected = built.warehouse.query(
        "SELECT formatDateTime(toStartOfMinute(ts), '%Y-%m-%dT%H:%i:%S'), count() / 60 "
        "FROM predictions WHERE model = {m:String} GROUP BY 1 ORDER BY 1", {"m": MODEL},
    ).rows  # fmt: skip
    assert len(expected) == MINUTES
    assert [x[:19] for x in rps["x"]] == [row[0] for row in expected]
    assert rps["y"] == pytest.approx([row[1] for row in expected])


def test_sections_and_what_needs_attention(built: Built) -> None:
    assert built.report.sections == dict.fromkeys(
        ("traffic", "drift", "performance", "challenger", "fairness", "events"), "ok"
    )
    drift, parity, ratio, challenger, dlq, backup, errors = built.report.attention
    assert drift == "drift on age: 1 alert open since 2026-11-30 10:35; latest: age: psi 0.35 > 0.2"
    assert parity.startswith("Fairness gap sex demographic_parity_difference 0.259 > 0.1")
    assert ratio.startswith("Fairness gap sex demographic_parity_ratio 0.64 < 0.8")
    assert challenger.startswith("Challenger v2 is better than champion v1 (accuracy ")
    assert challenger.endswith("the gate would promote it once its other checks pass")
    assert dlq == "DLQ rate 3.23 % (40 of 1240 messages dead-lettered; over 1 %)"
    assert backup == "Backup rate 2.00 % (24 of 1200 requests answered by the backup; over 1 %)"
    assert errors.startswith("Champion error rate 2.00 % (24 of 1200")


def test_mcnemar_verdict_matches_the_paired_counts(built: Built) -> None:
    ((n, b, c),) = built.warehouse.query(
        "SELECT count(), countIf(champion_output = label_string AND challenger_output != "
        "label_string), countIf(champion_output != label_string AND challenger_output = "
        "label_string) FROM predictions AS p INNER JOIN feedback AS f USING (model, request_id) "
        "WHERE model = {m:String} AND champion_output != ''", {"m": MODEL},
    ).rows  # fmt: skip
    p = mcnemar(b, c).p_value
    assert n > 800 and c > b and p < 1e-6
    assert f"McNemar b={b}, c={c}, p={p:.3g}" in built.report.attention[3]


def test_drift_heatmap_and_distribution(built: Built) -> None:
    (heat, *markers) = figure_data(built.report.html, "drift-0")
    assert heat["type"] == "heatmap" and heat["y"] == ["age", "plan"]
    z = np.asarray(heat["z"], dtype=float).reshape(2, MINUTES)
    assert z[0].tolist() == pytest.approx([0.05] * 30 + [0.2 + m / 100 for m in range(30, 60)])
    assert {m["name"] for m in markers} == {"alerts", "model events"}
    (reference, current) = figure_data(built.report.html, "drift-1")[:2]
    assert reference["name"] == "reference (n=1000)" and reference["y"] == [25.0] * 4
    (live,) = built.warehouse.query(
        "SELECT countIf(toFloat64(features['age']) >= 45) / count() * 100 FROM predictions "
        "WHERE model = {m:String}", {"m": MODEL},
    ).rows[0]  # fmt: skip
    assert current["y"][-1] == pytest.approx(live)  # the top bin holds what lies above it


def test_a_model_without_labels_challenger_or_sensitive_says_why(built: Built) -> None:
    report = render_report(built.warehouse, PLAIN)
    assert report.sections["traffic"] == "ok"
    why = {key: status for key, status in report.sections.items() if key != "traffic"}
    assert why["performance"].startswith("empty: no prediction of this window has a label yet")
    assert why["challenger"].startswith("empty: no challenger shadowed the champion")
    assert why["fairness"].startswith("empty: the predictions of this window carry no sensitive")
    assert why["drift"].startswith("empty: no drift statistic in this window")
    assert why["events"].startswith("empty: no alert changed state")
    assert report.attention == []
    for status in why.values():
        assert escape(status.removeprefix("empty: ")) in report.html
    assert 'id="performance-0"' not in report.html and 'id="traffic-2"' in report.html


def test_cli_writes_the_file_and_prints_what_needs_attention(
    built: Built, warehouse_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = built.warehouse.database
    dsn = (f"{warehouse_dsn}?database={database}" if warehouse_dsn.startswith("chdb://")
           else f"{warehouse_dsn.rstrip('/')}/{database}")  # fmt: skip
    monkeypatch.setenv("MODELSTREAM_CLICKHOUSE", dsn)
    monkeypatch.setenv("MODELSTREAM_DATA_DIR", str(tmp_path / "data"))
    app = typer.Typer()
    app.command()(report)
    out = tmp_path / "out" / "churn.html"
    args = [MODEL, "--from", "2026-11-30T10:30", "--to", "2026-11-30T11:00", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    path, *lines = result.output.splitlines()
    assert path == str(out) and out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["churn.html"]  # nothing left aside
    assert lines[0] == (
        "attention: drift on age: 1 alert open since 2026-11-30 10:35; latest: age: psi 0.35 > 0.2"
    )
    assert "Window 2026-11-30 10:30 to 2026-11-30 11:00 UTC" in out.read_text()
    bad = CliRunner().invoke(app, [MODEL, "--from", "2026-11-30T11:00", "--to", "2026-11-30T10:00",
                                   "--out", str(out)])  # fmt: skip
    assert bad.exit_code == 1
    assert "must be before its end" in bad.output


def test_the_file_renders_offline_in_chromium(built: Built, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "chromium-profile")
    try:
        browser.call("Runtime.enable")
        browser.call("Log.enable")
        browser.goto(built.path.as_uri())
        charts = browser.wait_for(
            "(() => { const c = [...document.querySelectorAll('.chart > div > .plotly-graph-div')];"
            " return c.length && c.every(d => d.querySelector('.main-svg')) && c.length; })()"
        )  # fmt: skip
        boxes = browser.eval(
            "[...document.querySelectorAll('.plotly-graph-div')].map(d => { const r ="
            " d.querySelector('.main-svg').getBoundingClientRect(); return [d.id, r.width,"
            " r.height, d.querySelectorAll('.trace path, .hm image').length]; })"
        )  # fmt: skip
        shot = browser.screenshot(tmp_path / "report.png")
        first = browser.call("Page.captureScreenshot", format="png")["data"]
        (tmp_path / "report-first-screen.png").write_bytes(base64.b64decode(first))
    finally:
        browser.close()
    ids = re.findall(r'<div id="([a-z]+-[0-9]+)" class="plotly-graph-div"', built.report.html)
    assert charts == len(ids) >= 10
    assert [box[0] for box in boxes] == ids
    assert all(w > 600 and h >= 300 and drawn > 0 for _, w, h, drawn in boxes), boxes
    errors = [
        e
        for e in browser.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert errors == []
    requested = [e["params"]["request"]["url"] for e in browser.events
                 if e.get("method") == "Network.requestWillBeSent"]  # fmt: skip
    assert requested and all(url.startswith(("file://", "data:")) for url in requested), requested
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SHOTS / "report.png")
    shutil.copy(tmp_path / "report-first-screen.png", SHOTS / "report-first-screen.png")
    print(f"report screenshot: {shot} (copied to {SHOTS / 'report.png'})")


def test_drift_from_the_window_summaries_when_the_monitor_wrote_no_metric(built: Built) -> None:
    report = render_report(built.warehouse, SUMMARISED, start=START, end=START + HOUR)
    assert report.sections["drift"] == "ok"
    (heat, *_) = figure_data(report.html, "drift-0")
    profile = sample_row("reference_profiles")
    expected = []
    for counts in SUMMARY_COUNTS:  # fine intervals -> histogram bins (starts 0, 2, 3, 4)
        coarse = [sum(counts[a:b]) for a, b in itertools.pairwise([*profile["starts"], 6])]
        expected.append(psi(profile["ref_counts"], coarse))
    assert heat["y"] == ["age"]
    assert np.asarray(heat["z"], dtype=float).ravel().tolist() == pytest.approx(expected, rel=1e-9)


def test_a_model_with_only_dead_letters_or_nothing_at_all(built: Built) -> None:
    ghost = render_report(built.warehouse, GHOST, start=START, end=START + HOUR)
    assert ghost.sections["traffic"] == "ok"
    (rps, *_) = figure_data(ghost.html, "traffic-0")
    assert rps["y"] == [0.0]
    assert ghost.attention == ["DLQ rate 100.00 % (3 of 3 messages dead-lettered; over 1 %)"]
    nobody = render_report(built.warehouse, "nobody", now=START)
    assert all(status.startswith("empty: ") for status in nobody.sections.values())
    assert "Window 2026-11-29 10:00 to 2026-11-30 10:00 UTC (no prediction yet" in nobody.html

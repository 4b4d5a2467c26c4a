"""Targets, ratios and the rendered report of ``modelstream bench``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from services.bench import evaluate_targets, render
from services.bench._report import ratio, write_json


def report(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "events": 20_000,
        "passthrough_eps": 40_000.0,
        "passthrough_txn_eps": 30_000.0,
        "scorer_eps": 26_000.0,
        "scorer_sklearn_eps": 24_000.0,
        "faust_eps": 4_000.0,
        "faust_best_variant": "take-uvloop",
        "faust_variants": {"event": 2_500.0, "take-uvloop": 4_000.0},
        "offered_rps": 2_000.0,
        "txn_floor_ms": {"p50": 7.8, "p95": 14.0, "p99": 18.8, "max": 30.0},
        "txn_floor_detail_ms": {"commit": {"p50": 3.0, "p99": 9.0}},
        "latency_ms": {"p50": 12.0, "p95": 20.0, "p99": 30.0, "max": 40.0},
        "latency_detail_ms": {
            "due_to_reply_produced": {"p50": 1.0, "p99": 3.0},
            "reply_produced_to_read": {"p50": 2.0, "p99": 6.0},
        },
        "fast_latency_ms": {"p50": 3.0, "p95": 6.0, "p99": 9.0, "max": 20.0},
        "challenger_coverage": 0.9995,
        "shadow_impact_ms": {
            "ordinary_p50": 4.0,
            "ordinary_p99": 12.0,
            "sleepy_p50": 4.2,
            "sleepy_p99": 13.0,
            "p99_added": 1.0,
        },
        "rss_mb": {"start": 200.0, "warm": 220.0, "peak": 225.0, "end": 221.0},
        "swap_gap_ms": 420.0,
        "swap_max_reply_gap_ms": 180.0,
        "monitor_eps": 40_000.0,
        "monitor3_eps": 56_000.0,
        "method": {"scorer": "subprocess; earliest reply CreateTime → N-th reply read"},
        "notes": [],
    }
    base.update(changes)
    base["targets"] = evaluate_targets(base)
    return base


def test_every_target_met() -> None:
    targets = report()["targets"]
    assert len(targets) == 11
    assert all(t["met"] for t in targets.values()), targets


FLOOR = "exactly-once p99 ≤ 2x transaction floor p99"
FAST = "at-least-once p99 ≤ 10 ms at 2,000 req/s"


@pytest.mark.parametrize(
    ("changes", "missed"),
    [
        ({"scorer_eps": 24_500.0, "faust_eps": 1_000.0}, "scorer ≥ 25,000 events/s"),
        ({"passthrough_txn_eps": 33_000.0}, "scorer ≥ 80 % of transactional passthrough"),
        ({"faust_eps": 5_300.0}, "scorer ≥ 5x faust"),
        ({"latency_ms": {"p50": 26.0, "p99": 30.0}}, "exactly-once p50 ≤ 25 ms at 2,000 req/s"),
        ({"latency_ms": {"p50": 12.0, "p99": 38.0}}, FLOOR),
        ({"txn_floor_ms": None}, FLOOR),
        ({"fast_latency_ms": {"p50": 3.0, "p99": 10.5}}, FAST),
        ({"fast_latency_ms": None}, FAST),
        ({"challenger_coverage": 0.998}, "challenger coverage ≥ 99.9 %"),
        ({"rss_mb": {"warm": 220.0, "end": 236.0}}, "scorer RSS flat"),
        ({"swap_gap_ms": 1_112.8}, "swap gap ≤ 1,000 ms"),
        ({"swap_gap_ms": None}, "swap gap ≤ 1,000 ms"),
        ({"monitor_eps": 38_000.0}, "monitor ≥ 1.5x scorer"),
        ({"monitor_eps": None}, "monitor ≥ 1.5x scorer"),
    ],
)
def test_each_miss_is_reported_as_missed(changes: dict[str, Any], missed: str) -> None:
    targets = report(**changes)["targets"]
    assert [name for name, t in targets.items() if not t["met"]] == [missed]


def test_a_missing_number_is_a_miss_not_a_pass() -> None:
    targets = report(faust_eps=0.0)["targets"]
    assert targets["scorer ≥ 5x faust"] == {
        "target": 5.0, "measured": None, "met": False, "op": ">=", "unit": "ratio",
    }  # fmt: skip


def test_the_p99_target_is_against_the_floor_of_the_same_run() -> None:
    target = report()["targets"][FLOOR]
    assert target["measured"] == pytest.approx(30.0 / 18.8)
    assert target["detail"] == "p99 30.00 vs floor 18.80 ms"


def test_latency_measured_at_another_rate_says_so() -> None:
    names = list(report(offered_rps=500.0)["targets"])
    assert "exactly-once p50 ≤ 25 ms at 2,000 req/s (measured at 500 req/s)" in names
    assert "at-least-once p99 ≤ 10 ms at 2,000 req/s (measured at 500 req/s)" in names


def test_rss_may_grow_five_percent_of_warm() -> None:
    assert report(rss_mb={"warm": 400.0, "end": 419.0})["targets"]["scorer RSS flat"]["met"]
    assert not report(rss_mb={"warm": 400.0, "end": 421.0})["targets"]["scorer RSS flat"]["met"]


def test_ratio_guards_against_zero_and_missing() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(3.0, 0.0) is None
    assert ratio(None, 2.0) is None


def rendered(data: dict[str, Any]) -> str:
    out = io.StringIO()
    render(data, Console(file=out, width=200, color_system=None))
    return out.getvalue()


def test_render_shows_numbers_verdicts_and_notes() -> None:
    text = rendered(report(scorer_eps=9_000.0, notes=["faust answered 10 of 20"]))
    assert "9,000 ev/s" in text
    assert "40,000 ev/s" in text
    assert "12.00 / 20.00 / 30.00 ms" in text  # exactly-once latency
    assert "3.00 / 6.00 / 9.00 ms" in text  # at-least-once latency
    assert "7.80 / 18.80 ms" in text  # the floor
    assert "faust agent, best variant (take-uvloop)" in text
    assert "faust event" in text and "2,500 ev/s" in text
    assert "99.95 %" in text  # challenger coverage
    assert "200.00 / 220.00 / 225.00 / 221.00 MB" in text
    assert "420.00 / 180.00 ms" in text  # the swap: gap / longest reply gap
    assert "40,000 ev/s" in text and "56,000 ev/s" in text  # the monitor: 1 and 3 instances
    assert "4.44x" in text and "1.40x" in text  # monitor / scorer, 3 instances / 1
    assert text.count("MISSED") == 3  # 25k events/s, 80 % of passthrough, 5x faust
    assert "note: faust answered 10 of 20" in text
    assert "earliest reply CreateTime" in text


def test_render_copes_with_missing_measurements() -> None:
    text = rendered(report(faust_eps=None, faust_variants=None, faust_best_variant=None,
                           latency_ms=None, fast_latency_ms=None, txn_floor_ms=None))  # fmt: skip
    assert "— ev/s" in text
    assert "— / — / — ms" in text
    assert "MISSED" in text


def test_write_json_round_trips(tmp_path: Path) -> None:
    data = report()
    path = tmp_path / "out" / "bench.json"
    write_json(data, path)
    assert json.loads(path.read_text()) == json.loads(json.dumps(data))

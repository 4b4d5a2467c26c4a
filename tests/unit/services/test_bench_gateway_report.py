"""The ``--gateway`` report: headline keys, ratios, targets, a missing system, rendering."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from services.bench import GatewayConfig, evaluate_targets, render
from services.bench._gateway import HttpRun
from services.bench._gateway_report import build_gateway_report
from services.bench._gateway_run import GatewayMeasured
from services.bench._http_load import LoadResult
from services.bench._kafka_baseline import KafkaRun
from services.bench._latency import summarize
from services.bench._report import GATEWAY_TARGET, KAFKA_TARGET
from services.bench._throughput import Throughput

CONFIG = GatewayConfig.choose(quick=True)
ENVIRONMENT = {"cpus": 2, "python": "3.11", "load_average_before": 0.1}


def http(rps: float, p99_ms: float, probabilities: list[list[float]] | None = None) -> HttpRun:
    latencies = [p99_ms / 2] * 98 + [p99_ms, p99_ms]
    load = LoadResult(32, round(rps * 8), {}, 8.0, summarize(latencies), 0.4, ['{"ok":1}'])
    inside = {"gateway": {"p50": 4.0, "p99": 9.0, "count": 100},
              "scorer": {"p50": 1.5, "p99": 3.0, "count": 100}}  # fmt: skip
    cpu = {"gateway": 1.2, "scorer": 0.3} if rps > 2_000 else {"mlserver": 0.9}
    return HttpRun(load, probabilities or [[0.25, 0.75]], inside, cpu)


def kafka(eps: float, sent: int, answered: int | None = None) -> KafkaRun:
    done = sent if answered is None else answered
    return KafkaRun(Throughput(sent, done, done / eps), done, 60.0)


def measured(**changes: Any) -> GatewayMeasured:
    base: dict[str, Any] = {
        "scorer": kafka(12_000.0, CONFIG.events),
        "gateway": http(3_000.0, 20.0),
        "mlserver": http(1_000.0, 40.0),
        "mlserver_kafka": kafka(1_500.0, CONFIG.mlserver_events),
    }
    return GatewayMeasured(**(base | changes))


def report(**changes: Any) -> dict[str, Any]:
    return build_gateway_report(CONFIG, measured(**changes), ENVIRONMENT)


def test_headline_keys_ratios_and_both_targets_met() -> None:
    r = report()
    assert r["gateway_rps"] == 3_000.0 and r["mlserver_rps"] == 1_000.0
    assert (r["gateway_p99_ms"], r["mlserver_p99_ms"]) == (20.0, 40.0)
    assert (r["gateway_p50_ms"], r["mlserver_p50_ms"]) == (10.0, 20.0)
    assert r["scorer_sklearn_eps"] == 12_000.0 and r["mlserver_kafka_eps"] == 1_500.0
    assert r["ratios"] == {"gateway_vs_mlserver_rps": 3.0, "gateway_vs_mlserver_p99": 0.5,
                           "scorer_vs_mlserver_kafka": 8.0}  # fmt: skip
    assert {name: t["met"] for name, t in r["targets"].items()} == {
        GATEWAY_TARGET: True, KAFKA_TARGET: True,
    }  # fmt: skip
    assert r["agreement"] == {"rows": 1, "max_probability_difference": 0.0}
    assert r["server_cpu_ms_per_request"] == {"gateway": 1.2, "scorer": 0.3, "mlserver": 0.9}
    assert (r["concurrency"], r["mlserver_workers"], r["errors"]) == (32, 0, {})
    assert json.loads(json.dumps(r)) == r  # JSON-ready as it is


def test_twice_the_rate_with_a_worse_tail_misses() -> None:
    targets = report(gateway=http(5_000.0, 45.0))["targets"]
    assert targets[GATEWAY_TARGET]["measured"] == 5.0
    assert not targets[GATEWAY_TARGET]["met"]
    assert targets[GATEWAY_TARGET]["detail"] == "p99 45.00 vs 40.00 ms"


def test_scorer_under_three_times_mlserver_kafka_misses() -> None:
    assert not report(mlserver_kafka=kafka(5_000.0, 5_000))["targets"][KAFKA_TARGET]["met"]


def test_missing_mlserver_is_reported_with_its_reason_not_as_a_crash() -> None:
    why = "MLServer virtualenv: could not pip install mlserver==1.7.1 (exit 1):\nno network"
    r = report(mlserver=why, mlserver_kafka=why)
    assert r["mlserver_rps"] is None and r["mlserver_p99_ms"] is None
    assert r["mlserver_kafka_eps"] is None
    assert r["gateway_rps"] == 3_000.0  # the rest is still measured
    assert r["errors"] == {"mlserver": why, "mlserver_kafka": why}
    assert not any(t["met"] for t in r["targets"].values())
    assert any("mlserver missing: MLServer virtualenv: could not pip" in n for n in r["notes"])
    assert r["agreement"] is None


def test_partial_answers_and_disagreement_are_noted() -> None:
    r = report(mlserver_kafka=kafka(1_000.0, 5_000, answered=3_000),
               mlserver=http(1_000.0, 40.0, [[0.3, 0.7]]))  # fmt: skip
    notes = " | ".join(r["notes"])
    assert "mlserver (Kafka) answered 3,000 of 5,000 requests" in notes
    assert "disagree on the check rows by up to 0.05" in notes


def test_the_main_run_keeps_its_eleven_targets_and_gets_none_of_these() -> None:
    main = {"scorer_eps": 20_000.0, "passthrough_eps": 30_000.0, "faust_eps": 1_000.0,
            "offered_rps": 2_000.0, "latency_ms": {"p99": 5.0},
            "rss_mb": {"warm": 100.0, "end": 100.0}, "swap_gap_ms": 300.0}  # fmt: skip
    assert len(evaluate_targets(main)) == 11
    assert GATEWAY_TARGET not in evaluate_targets(main)
    assert len(evaluate_targets(main | report())) == 13


def test_render_shows_every_system_and_the_verdicts() -> None:
    out = io.StringIO()
    render(report(gateway=http(1_500.0, 20.0)), Console(file=out, width=220, color_system=None))
    text = out.getvalue()
    assert "gateway → Kafka → scorer → gateway" in text and "1,500 req/s" in text
    assert "MLServer REST (parallel_workers=0)" in text and "1,000 req/s" in text
    assert "10.00 / 20.00 ms" in text and "20.00 / 40.00 ms" in text
    assert "12,000 ev/s" in text and "1,500 ev/s" in text
    assert "1.50 (p99 20.00 vs 40.00 ms)" in text
    assert "in the gateway / in the scorer, p50" in text and "4.00 / 1.50 ms" in text
    assert text.count("MISSED") == 1

"""The ``--gateway`` report: headline keys, MLServer's best configuration per metric,
logged_ratio, ratios, targets, missing systems, rendering."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from services.bench import GatewayConfig, evaluate_targets, render
from services.bench._gateway import GrpcRun, HttpRun
from services.bench._gateway_direct import DirectRun
from services.bench._gateway_report import build_gateway_report
from services.bench._gateway_run import GatewayMeasured
from services.bench._http_load import LoadResult
from services.bench._kafka_baseline import KafkaRun
from services.bench._latency import summarize
from services.bench._logged import Logged
from services.bench._mlserver_grid import MLServerConfig
from services.bench._mlserver_serve import ConfigRun
from services.bench._report import GATEWAY_TARGET, GRPC_TARGET, KAFKA_TARGET, LOGGED_TARGET
from services.bench._throughput import Throughput

CONFIG = GatewayConfig.choose(quick=True)
ENVIRONMENT = {"cpus": 2, "python": "3.11", "load_average_before": 0.1}


def load(rps: float, p99_ms: float) -> LoadResult:
    latencies = [p99_ms / 2] * 98 + [p99_ms, p99_ms]
    ok = round(rps * 5)
    return LoadResult(32, ok, {}, 5.0, summarize(latencies), 0.4, ['{"ok":1}'], ok + 40, ok + 30)


def http(rps: float, p99_ms: float, probabilities: list[list[float]] | None = None,
         cpu: dict[str, float | None] | None = None) -> HttpRun:  # fmt: skip
    inside = {"gateway": {"p50": 4.0, "p99": 9.0, "count": 100},
              "scorer": {"p50": 1.5, "p99": 3.0, "count": 100}}  # fmt: skip
    return HttpRun(load(rps, p99_ms), probabilities or [[0.25, 0.75]], inside, cpu or {})


def grpc(rps: float, p99_ms: float, cpu: dict[str, float | None] | None = None) -> GrpcRun:
    return GrpcRun(load(rps, p99_ms), cpu or {}, probes=1)


def kafka(eps: float, sent: int, answered: int | None = None) -> KafkaRun:
    done = sent if answered is None else answered
    return KafkaRun(Throughput(sent, done, done / eps), done, 60.0)


def grid(**changes: ConfigRun) -> list[ConfigRun]:
    """Six configurations; ``w1_on`` has the best REST rate, ``w0_off`` the best REST p99,
    ``w2_on`` the best gRPC rate and p99."""
    runs = {
        "w0_off": ConfigRun(MLServerConfig(0, False), http(900.0, 30.0, cpu={"mlserver": 0.9}),
                            grpc(1_000.0, 35.0)),
        "w0_on": ConfigRun(MLServerConfig(0, True), http(950.0, 45.0), grpc(1_100.0, 40.0)),
        "w1_off": ConfigRun(MLServerConfig(1, False), http(600.0, 80.0), grpc(700.0, 70.0)),
        "w1_on": ConfigRun(MLServerConfig(1, True), http(1_000.0, 40.0, cpu={"mlserver": 1.1}),
                           grpc(1_200.0, 38.0)),
        "w2_off": ConfigRun(MLServerConfig(2, False), http(500.0, 90.0), "MLServer gRPC: died"),
        "w2_on": ConfigRun(MLServerConfig(2, True), http(800.0, 50.0),
                           grpc(1_300.0, 20.0, cpu={"mlserver_grpc": 0.7})),
    }  # fmt: skip
    return list((runs | changes).values())


def logged(answered: int = 15_075, records: int | None = None) -> Logged:
    return Logged(answered, answered if records is None else records, 0, 2.1, True)


def measured(**changes: Any) -> GatewayMeasured:
    direct = DirectRun(
        changes.pop("rest", http(3_000.0, 20.0, cpu={"gateway": 1.0})),
        changes.pop("grpc", grpc(2_000.0, 15.0, cpu={"gateway_grpc": 0.8})),
        changes.pop("logged", logged()),
    )
    base: dict[str, Any] = {
        "scorer": kafka(12_000.0, CONFIG.events),
        "gateway_kafka": http(150.0, 500.0, cpu={"gateway_kafka": 1.5, "scorer": 0.6}),
        "direct": direct,
        "mlserver": grid(),
        "mlserver_kafka": kafka(1_500.0, CONFIG.mlserver_events),
        "mlserver_kafka_config": MLServerConfig(1, True),
    }
    return GatewayMeasured(**(base | changes))


def report(**changes: Any) -> dict[str, Any]:
    return build_gateway_report(CONFIG, measured(**changes), ENVIRONMENT)


def test_headline_keys_of_every_system() -> None:
    r = report()
    assert (r["gateway_rps"], r["gateway_p50_ms"], r["gateway_p99_ms"]) == (3_000.0, 10.0, 20.0)
    assert (r["grpc_rps"], r["grpc_p99_ms"]) == (2_000.0, 15.0)
    assert (r["gateway_kafka_rps"], r["gateway_kafka_p99_ms"]) == (150.0, 500.0)
    assert r["scorer_sklearn_eps"] == 12_000.0 and r["mlserver_kafka_eps"] == 1_500.0
    assert r["mlserver_kafka_config"] == "workers=1, batching on"
    assert r["logged_ratio"] == 1.0
    assert r["logged"] == {"answered": 15_075, "logged": 15_075, "other_clients": 0,
                           "waited_s": 2.1, "settled": True, "ratio": 1.0}  # fmt: skip
    assert (r["concurrency"], r["errors"]) == (32, {"mlserver grpc (workers=2, batching off)":
                                                    "MLServer gRPC: died"})  # fmt: skip
    inside = {"gateway": {"p50": 4.0, "p99": 9.0, "count": 100},
              "scorer": {"p50": 1.5, "p99": 3.0, "count": 100}}  # fmt: skip
    assert r["gateway_kafka_inside_ms"] == r["gateway_inside_ms"] == inside
    assert r["load"]["mlserver_grid"] == {"parallel_workers": [0, 1, 2], "batching": [False, True]}
    assert json.loads(json.dumps(r)) == r  # JSON-ready as it is


def test_mlserver_figures_are_the_best_configuration_per_metric() -> None:
    r = report()
    assert (r["mlserver_rps"], r["mlserver_p99_ms"], r["mlserver_p50_ms"]) == (1_000.0, 30.0, 15.0)
    assert (r["mlserver_grpc_rps"], r["mlserver_grpc_p99_ms"]) == (1_300.0, 20.0)
    assert r["mlserver_best"] == {
        "mlserver_rps": "workers=1, batching on",
        "mlserver_p50_ms": "workers=0, batching off",
        "mlserver_p99_ms": "workers=0, batching off",
        "mlserver_grpc_rps": "workers=2, batching on",
        "mlserver_grpc_p50_ms": "workers=2, batching on",
        "mlserver_grpc_p99_ms": "workers=2, batching on",
    }
    configs = r["mlserver_configs"]
    assert [c["label"] for c in configs[:2]] == ["workers=0, batching off",
                                                 "workers=0, batching on"]  # fmt: skip
    assert configs[1] | {"rest": None, "grpc": None} == {
        "parallel_workers": 0, "batching": True, "max_batch_size": 32, "max_batch_time": 0.005,
        "label": "workers=0, batching on", "rest": None, "grpc": None,
        "server_cpu_ms_per_request": {}, "errors": {},
    }  # fmt: skip
    assert configs[4]["grpc"] is None and configs[4]["errors"] == {"grpc": "MLServer gRPC: died"}
    # CPU of the configurations with the best REST and gRPC rates
    assert r["server_cpu_ms_per_request"] == {
        "gateway": 1.0, "gateway_grpc": 0.8, "gateway_kafka": 1.5, "scorer": 0.6,
        "mlserver": 1.1, "mlserver_grpc": 0.7,
    }  # fmt: skip


def test_ratios_and_every_target_met() -> None:
    r = report()
    assert r["ratios"]["gateway_vs_mlserver_rps"] == 3.0
    assert r["ratios"]["gateway_vs_mlserver_p99"] == 20.0 / 30.0
    assert r["ratios"]["grpc_vs_mlserver_grpc_rps"] == 2_000.0 / 1_300.0
    assert r["ratios"]["gateway_vs_gateway_kafka_rps"] == 20.0
    assert r["ratios"]["scorer_vs_mlserver_kafka"] == 8.0
    assert {name: t["met"] for name, t in r["targets"].items()} == {
        GATEWAY_TARGET: True, GRPC_TARGET: True, LOGGED_TARGET: True, KAFKA_TARGET: True,
    }  # fmt: skip


def test_the_gateway_must_beat_the_best_rate_and_the_best_tail() -> None:
    # 2x the best rate, but a p99 worse than the best configuration's (30 ms)
    targets = report(rest=http(2_000.0, 35.0))["targets"]
    assert targets[GATEWAY_TARGET]["measured"] == 2.0
    assert not targets[GATEWAY_TARGET]["met"]
    assert targets[GATEWAY_TARGET]["detail"] == "p99 35.00 vs 30.00 ms"


def test_grpc_under_one_and_a_half_times_mlserver_grpc_misses() -> None:
    assert not report(grpc=grpc(1_900.0, 15.0))["targets"][GRPC_TARGET]["met"]


def test_one_answer_missing_from_the_log_misses_and_says_the_counts() -> None:
    r = report(logged=logged(15_075, 15_074))
    target = r["targets"][LOGGED_TARGET]
    assert not target["met"] and target["op"] == "=="
    assert target["detail"] == "15,074 records for 15,075 answers"
    over = report(logged=logged(15_075, 15_076))["targets"][LOGGED_TARGET]
    assert not over["met"]  # a record the bench got no answer for: not "every answer logged"


def test_a_log_still_growing_when_read_is_noted() -> None:
    r = report(logged=Logged(100, 90, 0, 30.0, False))
    assert r["logged_ratio"] == 0.9
    assert any("still growing after 30 s" in n for n in r["notes"])


def test_a_log_that_could_not_be_read_is_an_error_not_a_ratio() -> None:
    why = "prediction log: KafkaError{code=_TRANSPORT}"
    r = report(logged=why)
    assert r["logged_ratio"] is None and r["logged"] is None
    assert r["errors"] == {"logged": why, "mlserver grpc (workers=2, batching off)":
                           "MLServer gRPC: died"}  # fmt: skip
    assert not r["targets"][LOGGED_TARGET]["met"]


def test_scorer_under_three_times_mlserver_kafka_misses() -> None:
    assert not report(mlserver_kafka=kafka(5_000.0, 5_000))["targets"][KAFKA_TARGET]["met"]


def test_missing_mlserver_is_reported_with_its_reason_not_as_a_crash() -> None:
    why = "MLServer virtualenv: could not pip install mlserver==1.7.1 (exit 1):\nno network"
    r = report(mlserver=why, mlserver_kafka=why, mlserver_kafka_config=None)
    for key in ("mlserver_rps", "mlserver_p99_ms", "mlserver_grpc_rps", "mlserver_kafka_eps"):
        assert r[key] is None, key
    assert r["mlserver_configs"] == [] and r["mlserver_kafka_config"] is None
    assert set(r["mlserver_best"].values()) == {None}
    assert r["gateway_rps"] == 3_000.0 and r["logged_ratio"] == 1.0  # the rest is measured
    assert r["errors"] == {"mlserver": why, "mlserver_kafka": why}
    assert [t["met"] for t in r["targets"].values()] == [False, False, True, False]
    assert any("mlserver missing: MLServer virtualenv: could not pip" in n for n in r["notes"])
    assert r["agreement"]["mlserver_config"] is None
    assert r["agreement"]["gateway_vs_gateway_kafka"] == {
        "rows": 1,
        "max_probability_difference": 0.0,
    }


def test_missing_direct_gateway_leaves_via_kafka_and_mlserver_measured() -> None:
    why = "gateway (direct): the gateway (bench-direct) process died with code 1"
    r = report(rest=why, grpc=why, logged=None)
    assert (r["gateway_rps"], r["grpc_rps"], r["logged_ratio"]) == (None, None, None)
    assert r["gateway_kafka_rps"] == 150.0 and r["mlserver_rps"] == 1_000.0
    assert r["errors"]["gateway"] == r["errors"]["grpc"] == why
    met = {name: t["met"] for name, t in r["targets"].items()}
    assert met == {GATEWAY_TARGET: False, GRPC_TARGET: False, LOGGED_TARGET: False,
                   KAFKA_TARGET: True}  # fmt: skip


def test_failed_requests_and_disagreement_are_noted() -> None:
    failing = http(1_000.0, 40.0, [[0.3, 0.7]])
    failing = HttpRun(LoadResult(32, 10, {"503": 4}, 5.0, summarize([1.0]), 0.1),
                      failing.probabilities)  # fmt: skip
    r = report(mlserver=grid(w0_off=ConfigRun(MLServerConfig(0, False), failing, "no gRPC")),
               mlserver_kafka=kafka(1_000.0, 5_000, answered=3_000))  # fmt: skip
    notes = " | ".join(r["notes"])
    assert "mlserver (Kafka) answered 3,000 of 5,000 requests" in notes
    assert "MLServer rest (workers=0, batching off): failed requests during the load" in notes
    assert "gateway and mlserver disagree on the check rows by up to 0.05" in notes
    assert r["agreement"]["mlserver_config"] == "workers=0, batching off"


def test_the_main_run_keeps_its_eleven_targets_and_gets_none_of_these() -> None:
    main = {"scorer_eps": 20_000.0, "passthrough_eps": 30_000.0, "faust_eps": 1_000.0,
            "offered_rps": 2_000.0, "latency_ms": {"p99": 5.0},
            "rss_mb": {"warm": 100.0, "end": 100.0}, "swap_gap_ms": 300.0}  # fmt: skip
    assert len(evaluate_targets(main)) == 11
    assert GATEWAY_TARGET not in evaluate_targets(main)
    assert len(evaluate_targets(main | report())) == 15


def test_render_shows_every_system_the_grid_and_the_verdicts() -> None:
    out = io.StringIO()
    render(report(rest=http(1_500.0, 20.0)), Console(file=out, width=240, color_system=None))
    text = out.getvalue()
    assert "gateway, direct: REST (scoring in-process)" in text and "1,500 req/s" in text
    assert "gateway, direct: gRPC ModelInfer" in text and "2,000 calls/s" in text
    assert "gateway --via-kafka → scorer → gateway" in text and "150 req/s" in text
    assert "1.0000 (15,075 / 15,075)" in text
    assert "MLServer REST, best of 6 configurations" in text
    assert "1,000 req/s (workers=1, batching on)" in text
    assert "1,300 calls/s (workers=2, batching on)" in text
    assert "workers=0, batching off / workers=0, batching off" in text  # where p50, p99 came from
    assert "workers=2, batching off: REST / gRPC" in text and "500 / — per s" in text
    assert "12,000 ev/s" in text and "MLServer Kafka mode (workers=1, batching on)" in text
    assert "in the gateway / in the scorer, p50" in text and "4.00 / 1.50 ms" in text
    assert "in the gateway / queued and scored, p50" in text
    assert "15,075 records for 15,075 answers" in text
    assert text.count("MISSED") == 1  # 1,500 req/s is not 2x MLServer's best 1,000

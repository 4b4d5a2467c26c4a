"""MLServer's grid in ``bench --gateway``: the configurations run, what each writes for
MLServer, which one wins each metric, and which one serves the Kafka run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.bench import GatewayConfig
from services.bench._mlserver import ServerPorts, server_settings, write_repository
from services.bench._mlserver_grid import (
    METRICS,
    MLServerConfig,
    best_per_metric,
    grid,
    kafka_config,
)


def door(rps: float | None, p50: float | None, p99: float | None) -> dict[str, Any]:
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def test_the_default_grid_is_every_worker_count_with_and_without_batching() -> None:
    configs = GatewayConfig.choose(quick=True).grid
    assert [(c.workers, c.batching) for c in configs] == [
        (0, False), (0, True), (1, False), (1, True), (2, False), (2, True),
    ]  # fmt: skip
    assert len({c.key for c in configs}) == 6  # a folder and a log each


def test_a_smaller_grid_can_be_asked_for_and_a_bad_one_is_refused() -> None:
    one = GatewayConfig.choose(quick=True, mlserver_workers=(0,), mlserver_batching=(True,))
    assert one.grid == [MLServerConfig(0, True)]
    with pytest.raises(ValueError, match="≥ 0"):
        GatewayConfig.choose(quick=True, mlserver_workers=(-1,))
    with pytest.raises(ValueError, match="at least one"):
        GatewayConfig.choose(quick=True, mlserver_batching=())
    assert grid([1, 0, 1], [True, True]) == [MLServerConfig(1, True), MLServerConfig(0, True)]


def test_quick_windows_are_short_and_the_full_run_keeps_long_ones() -> None:
    quick, full = GatewayConfig.choose(quick=True), GatewayConfig.choose(quick=False)
    assert (quick.warmup, quick.seconds) == (1.0, 5.0)
    assert (full.warmup, full.seconds) == (3.0, 30.0)


def test_batching_writes_max_batch_size_and_time_into_model_settings(tmp_path: Path) -> None:
    on, off = MLServerConfig(1, True), MLServerConfig(1, False)
    for config in (on, off):
        root = tmp_path / config.key
        settings = server_settings(root, ServerPorts(1, 2), workers=config.workers)
        write_repository(root, "m", b"joblib", settings, batch=config.batch)
    written = json.loads((tmp_path / on.key / "m" / "model-settings.json").read_text())
    assert (written["max_batch_size"], written["max_batch_time"]) == (32, 0.005)
    plain = json.loads((tmp_path / off.key / "m" / "model-settings.json").read_text())
    assert "max_batch_size" not in plain and "max_batch_time" not in plain
    server = json.loads((tmp_path / on.key / "settings.json").read_text())
    assert (server["parallel_workers"], server["grpc_port"]) == (1, 2)


def test_each_metric_takes_its_own_best_configuration() -> None:
    configs = [
        {"label": "a", "rest": door(400.0, 50.0, 70.0), "grpc": door(450.0, 40.0, 90.0)},
        {"label": "b", "rest": door(520.0, 45.0, 140.0), "grpc": door(610.0, 35.0, 60.0)},
        {"label": "c", "rest": door(480.0, 60.0, 65.0), "grpc": None},  # gRPC not measured
    ]
    best = best_per_metric(configs)
    assert best["mlserver_rps"] == {"value": 520.0, "config": "b"}  # the highest rate
    assert best["mlserver_p50_ms"] == {"value": 45.0, "config": "b"}
    assert best["mlserver_p99_ms"] == {"value": 65.0, "config": "c"}  # the lowest tail
    assert best["mlserver_grpc_rps"] == {"value": 610.0, "config": "b"}
    assert best["mlserver_grpc_p99_ms"] == {"value": 60.0, "config": "b"}
    assert set(best) == set(METRICS)


def test_a_missing_number_never_wins_and_nothing_measured_is_none() -> None:
    configs = [{"label": "a", "rest": door(None, None, None), "grpc": None},
               {"label": "b", "rest": door(300.0, 80.0, 120.0), "grpc": None}]  # fmt: skip
    best = best_per_metric(configs)
    assert best["mlserver_p99_ms"] == {"value": 120.0, "config": "b"}
    assert best["mlserver_grpc_rps"] == {"value": None, "config": None}
    assert all(v == {"value": None, "config": None} for v in best_per_metric([]).values())


def test_kafka_mode_runs_batching_with_the_best_batching_workers() -> None:
    rates = {MLServerConfig(0, False): 900.0, MLServerConfig(0, True): 500.0,
             MLServerConfig(2, True): 640.0, MLServerConfig(1, True): None}  # fmt: skip
    assert kafka_config(rates) == MLServerConfig(2, True)
    assert kafka_config({}) == MLServerConfig(0, True)
    assert kafka_config({MLServerConfig(1, False): 700.0}).batching

"""``modelstream bench --gateway``: modelstream against MLServer, serving the same
scikit-learn model on the same machine and broker, in one run.

Phases, one after the other (never two systems under load at once)::

    scorer (Kafka)          N pre-produced Avro requests      → scorer_sklearn_eps
    gateway --via-kafka     REST, in front of that scorer     → gateway_kafka_rps, p50, p99
    gateway (direct)        REST, scoring in-process          → gateway_rps, p50, p99
                            gRPC ModelInfer, one row a call   → grpc_rps, p50, p99
                            its prediction log, read back     → logged_ratio
    MLServer, per config    REST, then gRPC                   → mlserver_configs; the best
      (workers x batching)                                      per metric: mlserver_rps, ...
    MLServer Kafka mode     M JSON requests, batching on      → mlserver_kafka_eps

Every served phase is the same closed loop: C requests in flight, the same rows, a
warm-up then a timed window. A system that cannot be measured (MLServer not installable,
the direct gateway or its gRPC server missing, a process dying) is reported missing with
the reason; the other numbers are still measured.
"""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from services.bench._gateway import GatewayClient, HttpRun, Load, attempt, create_client
from services.bench._gateway_direct import DirectRun, run_gateway_direct
from services.bench._gateway_kafka import run_gateway_kafka
from services.bench._gateway_report import build_gateway_report
from services.bench._kafka_baseline import (
    KafkaRun,
    run_mlserver_kafka,
    scorer_throughput,
    sklearn_scorer,
)
from services.bench._logged import QUIET
from services.bench._mlserver_env import (
    MLSERVER_VERSION,
    ensure_environment,
    is_installed,
    requirements,
    venv_dir,
)
from services.bench._mlserver_grid import MLServerConfig, grid, kafka_config
from services.bench._mlserver_serve import ConfigRun, run_mlserver_config
from services.bench._progress import Display
from services.bench._report import render, write_json
from services.bench._sklearn import SklearnModel, feature_rows, sklearn_model
from services.bench._stack import BenchStack, bench_signer, bench_stack
from services.settings import Settings

__all__ = ["GatewayConfig", "GatewayMeasured", "run_gateway_bench"]
ROWS = 1_000  # distinct feature rows, cycled by every system


@dataclass(frozen=True)
class GatewayConfig:
    """How hard each phase of ``--gateway`` pushes, and MLServer's grid.

    >>> q = GatewayConfig.choose(quick=True)
    >>> q.events, q.mlserver_events, q.concurrency, q.warmup, q.seconds, len(q.grid)
    (20000, 5000, 32, 1.0, 5.0, 6)
    >>> GatewayConfig.choose(quick=False, events=3000).mlserver_events
    3000
    >>> [c.label for c in GatewayConfig.choose(quick=True, mlserver_workers=(0,),
    ...                                        mlserver_batching=(True,)).grid]
    ['workers=0, batching on']
    """

    events: int  # scorer, Kafka
    mlserver_events: int  # MLServer, Kafka
    concurrency: int = 32
    seconds: float = 5.0
    warmup: float = 1.0
    mlserver_workers: tuple[int, ...] = (0, 1, 2)  # parallel_workers of the grid
    mlserver_batching: tuple[bool, ...] = (False, True)  # adaptive batching of the grid
    mlserver_budget: float = 60.0
    log_quiet: float = QUIET  # s without a new prediction-log record before it is counted

    def __post_init__(self) -> None:
        if min(self.events, self.mlserver_events, self.concurrency) < 1:
            raise ValueError("events, MLServer events and concurrency must be at least 1")
        if not self.mlserver_workers or not self.mlserver_batching:
            raise ValueError("MLServer's grid needs at least one workers and one batching value")
        if min(self.mlserver_workers) < 0:
            raise ValueError(f"MLServer workers must be ≥ 0, got {min(self.mlserver_workers)}")

    @property
    def grid(self) -> list[MLServerConfig]:
        return grid(self.mlserver_workers, self.mlserver_batching)

    @classmethod
    def choose(
        cls, *, quick: bool, events: int | None = None, concurrency: int = 32,
        mlserver_workers: Sequence[int] = (0, 1, 2),
        mlserver_batching: Sequence[bool] = (False, True),
    ) -> GatewayConfig:  # fmt: skip
        """``quick``: 20k scorer events, 5k MLServer events, 1 + 5 s of load per served
        phase; else 100k, 20k, 3 + 30 s. ``events`` caps both Kafka counts."""
        n, m, seconds, warmup, budget = ((20_000, 5_000, 5.0, 1.0, 60.0) if quick
                                         else (100_000, 20_000, 30.0, 3.0, 300.0))  # fmt: skip
        return cls(events or n, min(m, events or m), concurrency, seconds, warmup,
                   tuple(mlserver_workers), tuple(mlserver_batching), budget)  # fmt: skip


@dataclass(frozen=True)
class GatewayMeasured:
    """What each phase measured, or why it could not."""

    scorer: KafkaRun
    gateway_kafka: HttpRun | str
    direct: DirectRun
    mlserver: list[ConfigRun] | str  # the grid, or why MLServer could not run at all
    mlserver_kafka: KafkaRun | str
    mlserver_kafka_config: MLServerConfig | None = None


def run_gateway_bench(
    settings: Settings, config: GatewayConfig, *, json_path: Path | None, console: Console
) -> dict[str, Any]:
    """Measure every phase, print the report (and write it); leaves nothing running."""
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as exits:
        workdir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="ms-bench-gw-")))
        display = exits.enter_context(Display(console))
        with display.step("broker, topics and registered models"):
            stack = exits.enter_context(
                bench_stack(settings, workdir, partitions=settings.topic_partitions)
            )
        with display.step("scikit-learn LogisticRegression fitted and registered"):
            model = exits.enter_context(sklearn_model(
                stack.kafka, stack.names.topics, partitions=stack.names.partitions,
                delete_topics=bool(settings.kafka), signer=bench_signer(workdir),
            ))  # fmt: skip
        measured = _measure(stack, model, config, display)
        environment = {
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "broker": "MODELSTREAM_KAFKA" if settings.kafka else "local, for this run",
            "partitions": stack.names.partitions, "load_average_before": load_before,
            "mlserver": MLSERVER_VERSION,
        }  # fmt: skip
        report = build_gateway_report(config, measured, environment)
    render(report, console)
    if json_path is not None:
        write_json(report, json_path)
        console.print(f"report written to {json_path}")
    return report


def _measure(
    stack: BenchStack, model: SklearnModel, config: GatewayConfig, display: Display
) -> GatewayMeasured:
    load = Load(config.concurrency, config.seconds, config.warmup, feature_rows(ROWS))
    venv = attempt(display, "MLServer virtualenv", lambda: _environment(stack, display))
    client = attempt(display, "gateway client", lambda: create_client(stack, model.name))
    with sklearn_scorer(stack, model, display, events=config.events) as scorer:
        kafka = scorer_throughput(stack, model, scorer, display, events=config.events,
                                  timeout=60.0 + config.events / 1_500)  # fmt: skip
        via_kafka = client if isinstance(client, str) else attempt(
            display, "gateway --via-kafka", lambda: run_gateway_kafka(
                stack, model, load, display, client=client, scorer_pid=scorer.pid))  # fmt: skip
    direct = _direct(stack, model, load, display, client, config)
    if isinstance(venv, str):
        return GatewayMeasured(kafka, via_kafka, direct, venv, venv)
    runs = [run_mlserver_config(stack, model, venv, load, display, c) for c in config.grid]
    chosen = kafka_config({run.config: _rps(run.rest) for run in runs})
    mls_kafka = attempt(display, "MLServer Kafka mode", lambda: run_mlserver_kafka(
        stack, model, venv, display, rows=load.rows, events=config.mlserver_events,
        budget=config.mlserver_budget, config=chosen))  # fmt: skip
    return GatewayMeasured(kafka, via_kafka, direct, runs, mls_kafka, chosen)


def _direct(
    stack: BenchStack, model: SklearnModel, load: Load, display: Display,
    client: GatewayClient | str, config: GatewayConfig,
) -> DirectRun:  # fmt: skip
    if isinstance(client, str):
        return DirectRun(client, client, None)
    run = attempt(display, "gateway (direct)", lambda: run_gateway_direct(
        stack, model, load, display, client=client, log_quiet=config.log_quiet))  # fmt: skip
    return run if isinstance(run, DirectRun) else DirectRun(run, run, None)


def _rps(run: HttpRun | str) -> float | None:
    return run.load.rps if isinstance(run, HttpRun) else None


def _environment(stack: BenchStack, display: Display) -> Path:
    cache = stack.settings.cache_dir
    venv = venv_dir(cache)
    label = f"MLServer {MLSERVER_VERSION} virtualenv at {venv}"
    if not is_installed(venv, requirements()):
        label = f"installing MLServer {MLSERVER_VERSION} into {venv} (once; 1-3 min)"
    with display.step(label):
        return ensure_environment(cache)

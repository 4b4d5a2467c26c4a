"""``modelstream bench --gateway``: modelstream against MLServer, serving the same
scikit-learn model on the same machine and broker, in one run.

Phases, one after the other (never two systems under load at once)::

    scorer (Kafka)      N pre-produced Avro requests           → scorer_sklearn_eps
    gateway (HTTP)      closed loop, C connections, T seconds  → gateway_rps, p50, p99
    MLServer REST       the same load generator and rows       → mlserver_rps, p50, p99
    MLServer Kafka      M JSON requests on its input topic     → mlserver_kafka_eps

A system that cannot be measured (MLServer not installable, the gateway missing or
dying) is reported missing with the reason; the other numbers are still measured.
"""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import KafkaException
from rich.console import Console

from services.bench._errors import BenchError
from services.bench._gateway import HttpLoad, HttpRun, run_gateway_http, run_mlserver_rest
from services.bench._gateway_report import build_gateway_report
from services.bench._kafka_baseline import (
    KafkaRun,
    run_mlserver_kafka,
    scorer_throughput,
    sklearn_scorer,
)
from services.bench._mlserver_env import (
    MLSERVER_VERSION,
    ensure_environment,
    is_installed,
    requirements,
    venv_dir,
)
from services.bench._progress import Display
from services.bench._report import render, write_json
from services.bench._sklearn import SklearnModel, feature_rows, sklearn_model
from services.bench._stack import BenchStack, bench_stack
from services.settings import Settings

__all__ = ["GatewayConfig", "GatewayMeasured", "run_gateway_bench"]

T = TypeVar("T")
ROWS = 1_000  # distinct feature rows, cycled by every system


@dataclass(frozen=True)
class GatewayConfig:
    """How hard each phase of ``--gateway`` pushes.

    >>> q = GatewayConfig.choose(quick=True)
    >>> q.events, q.mlserver_events, q.concurrency, q.seconds
    (20000, 5000, 32, 8.0)
    >>> GatewayConfig.choose(quick=False, events=3000).mlserver_events
    3000
    """

    events: int  # scorer, Kafka
    mlserver_events: int  # MLServer, Kafka
    concurrency: int = 32
    seconds: float = 8.0
    warmup: float = 2.0
    mlserver_workers: int = 0  # in-process inference: MLServer's fastest on 2 cores
    mlserver_budget: float = 60.0

    def __post_init__(self) -> None:
        if min(self.events, self.mlserver_events, self.concurrency) < 1:
            raise ValueError("events, MLServer events and concurrency must be at least 1")
        if self.mlserver_workers < 0:
            raise ValueError(f"MLServer workers must be ≥ 0, got {self.mlserver_workers}")

    @classmethod
    def choose(
        cls, *, quick: bool, events: int | None = None, concurrency: int = 32,
        mlserver_workers: int = 0,
    ) -> GatewayConfig:  # fmt: skip
        """``quick``: 20k scorer events, 5k MLServer events, 2 + 8 s of HTTP load each;
        else 100k, 20k, 3 + 30 s. ``events`` caps both Kafka counts."""
        n, m, seconds, warmup, budget = ((20_000, 5_000, 8.0, 2.0, 60.0) if quick
                                         else (100_000, 20_000, 30.0, 3.0, 300.0))  # fmt: skip
        return cls(events or n, min(m, events or m), concurrency, seconds, warmup,
                   mlserver_workers, budget)  # fmt: skip


@dataclass(frozen=True)
class GatewayMeasured:
    """What each phase measured, or why it could not."""

    scorer: KafkaRun
    gateway: HttpRun | str
    mlserver: HttpRun | str
    mlserver_kafka: KafkaRun | str


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
                delete_topics=bool(settings.kafka),
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
    rows = feature_rows(ROWS)
    load = HttpLoad(config.concurrency, config.seconds, config.warmup, rows)
    venv = _attempt(display, "MLServer virtualenv", lambda: _environment(stack, display))
    with sklearn_scorer(stack, model, display, events=config.events) as scorer:
        kafka = scorer_throughput(stack, model, scorer, display, events=config.events,
                                  timeout=60.0 + config.events / 1_500)  # fmt: skip
        gateway = _attempt(display, "gateway", lambda: run_gateway_http(
            stack, model, load, display, scorer_pid=scorer.pid))  # fmt: skip
    if isinstance(venv, str):
        return GatewayMeasured(kafka, gateway, venv, venv)
    workers = config.mlserver_workers
    rest = _attempt(display, "MLServer REST", lambda: run_mlserver_rest(
        stack, model, venv, load, display, workers=workers))  # fmt: skip
    mls_kafka = _attempt(display, "MLServer Kafka mode", lambda: run_mlserver_kafka(
        stack, model, venv, display, rows=rows, events=config.mlserver_events,
        budget=config.mlserver_budget, workers=workers))  # fmt: skip
    return GatewayMeasured(kafka, gateway, rest, mls_kafka)


def _environment(stack: BenchStack, display: Display) -> Path:
    cache = stack.settings.cache_dir
    venv = venv_dir(cache)
    label = f"MLServer {MLSERVER_VERSION} virtualenv at {venv}"
    if not is_installed(venv, requirements()):
        label = f"installing MLServer {MLSERVER_VERSION} into {venv} (once; 1-3 min)"
    with display.step(label):
        return ensure_environment(cache)


def _attempt(display: Display, what: str, action: Callable[[], T]) -> T | str:
    """``action()``, or the reason it failed: one missing system is a finding, not a
    reason to lose the other measurements."""
    try:
        return action()
    except (BenchError, KafkaException, OSError) as exc:
        display.say(f"[red]{what} could not be measured:[/] {exc}")
        return f"{what}: {exc}"

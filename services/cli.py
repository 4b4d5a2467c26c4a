"""The ``modelstream`` command: local stack, warehouse, topics, demo.

Every command reads :class:`~services.settings.Settings` once and hands plain config to
library code. Failures print what went wrong and what to do next, and exit non-zero.
"""

from __future__ import annotations

import csv
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from services.bench import BenchError
from services.gateway.cli import clients_app
from services.localstack import LocalStackError
from services.registry.cli import models_app
from services.runtime import kafka_config, local_broker, topics
from services.security.cli import acls_app, users_app
from services.settings import Settings
from services.warehouse import WarehouseError
from streams.kafka import KafkaSetupError, ensure_topics, make_admin

app = typer.Typer(
    no_args_is_help=True,
    help="Kafka-native model serving and monitoring.",
    pretty_exceptions_enable=False,
)
kafka_app = typer.Typer(no_args_is_help=True, help="The local single-node Kafka broker.")
db_app = typer.Typer(no_args_is_help=True, help="The ClickHouse warehouse.")
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics of this deployment.")
run_app = typer.Typer(
    no_args_is_help=True, help="Run one part of modelstream (a long-lived process)."
)
app.add_typer(kafka_app, name="kafka")
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(run_app, name="run")
app.add_typer(models_app, name="models")
app.add_typer(clients_app, name="clients")

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Known failures become one readable line and exit code 1, not a traceback."""
    try:
        yield
    except (LocalStackError, KafkaSetupError, WarehouseError, BenchError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        err.print(f"[bold red]error:[/] invalid MODELSTREAM_* setting:\n{exc}")
        raise typer.Exit(2) from exc


def _timed(label: str, action: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = action()
    console.print(f"{label} [dim]({time.perf_counter() - started:.1f}s)[/]")
    return result


@kafka_app.command("jars")
def kafka_jars() -> None:
    """Resolve the Kafka broker jars from Maven Central into the cache (idempotent)."""
    settings = _settings()
    from services.localstack import resolve_jars

    with _friendly_errors():
        libs = _timed(
            "kafka jars ready", lambda: resolve_jars(settings.kafka_version, settings.cache_dir)
        )
    console.print(f"jars={libs}")


@kafka_app.command("start")
def kafka_start(
    port: Annotated[int | None, typer.Option(help="Broker port (default: free port)")] = None,
    controller_port: Annotated[int | None, typer.Option(help="KRaft controller port")] = None,
    heap_mb: Annotated[int, typer.Option(help="Broker JVM heap in MB")] = 512,
    timeout: Annotated[float, typer.Option(help="Seconds to wait until ready")] = 90.0,
    secure: Annotated[
        bool, typer.Option("--secure", help="SASL/SCRAM + ACLs; prints the admin's credentials")
    ] = False,
) -> None:
    """Start the local single-node Kafka broker (KRaft) and print its bootstrap address."""
    settings = _settings()
    with _friendly_errors():
        broker = local_broker(
            settings, port=port, controller_port=controller_port, heap_mb=heap_mb, secure=secure
        )
        bootstrap = _timed("kafka broker started", lambda: broker.start(timeout))
        admin = broker.admin_credentials() if secure else None
    console.print(f"logs: {broker.log_file}")
    print(f"bootstrap={bootstrap}")
    if admin is not None:
        print(
            f"# SASL/SCRAM + ACLs. {admin.username} is a SUPER USER (no ACL check applies): "
            "give each service its own user, `modelstream kafka users add NAME --role ROLE`"
        )
        print(admin.exports())


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker (SIGTERM, SIGKILL after 30 s)."""
    settings = _settings()
    with _friendly_errors():
        stopped = local_broker(settings).stop()
    console.print("kafka broker stopped" if stopped else "no local broker was running")


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the local broker runs; exit code 0 if it does, 3 if not."""
    settings = _settings()
    with _friendly_errors():
        status = local_broker(settings).status()
    if status.running:
        security = "SASL_PLAINTEXT" if status.secure else "PLAINTEXT"
        print(f"running pid={status.pid} bootstrap={status.bootstrap} security={security}")
        return
    print(f"not running (state dir {status.state_dir})")
    raise typer.Exit(3)


kafka_app.add_typer(users_app, name="users")
kafka_app.add_typer(acls_app, name="acls")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the ClickHouse migrations not applied yet (idempotent)."""
    from services.warehouse import connect

    settings = _settings()
    with _friendly_errors(), connect(settings.clickhouse_dsn) as warehouse:
        applied = warehouse.migrate(ttl_days=settings.clickhouse_ttl_days)
    for name in applied:
        console.print(f"applied {name}")
    console.print(f"warehouse up to date ({len(applied)} applied) at {settings.clickhouse_dsn}")


@topics_app.command("create")
def topics_create(
    model: Annotated[list[str] | None, typer.Option(help="Create this model's topic set")] = None,
) -> None:
    """Create the global topics and, for each --model, its topic set (idempotent)."""
    settings = _settings()
    names = topics(settings)
    with _friendly_errors():
        specs = names.global_specs(settings.topic_partitions)
        for name in model or []:
            specs += names.model_specs(name, settings.topic_partitions)
        created = ensure_topics(make_admin(kafka_config(settings)), specs)
    for name in created:
        console.print(f"created {name}")
    console.print(f"{len(specs)} topics present ({len(created)} new)")


@app.command("demo")
def demo(
    events: Annotated[int, typer.Option(help="How many requests to stream")] = 20_000,
    rate: Annotated[float, typer.Option(help="Offered load, requests per second")] = 1_000.0,
    json: Annotated[Path | None, typer.Option("--json", help="Write the summary as JSON")] = None,
) -> None:
    """Run the end-to-end demo on the local stack."""
    from services.demo import run_demo

    with _friendly_errors():
        run_demo(_settings(), events=events, rate=rate, console=console, json_path=json)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@run_app.command("scorer")
def run_scorer_cmd(
    model: Annotated[list[str] | None, typer.Option(help="Serve only these models")] = None,
    instance: Annotated[
        str, typer.Option(help="Stable instance id: transactional id and static group member")
    ] = "0",
    max_batch: Annotated[int, typer.Option(help="Most requests per transaction")] = 500,
    max_wait_ms: Annotated[float, typer.Option(help="Longest wait for a first request")] = 50.0,
    champion_deadline_ms: Annotated[
        float, typer.Option(help="Champion deadline per batch; then the backup answers")
    ] = 1000.0,
    challenger_grace_ms: Annotated[float, typer.Option(help="Extra wait for the challenger")] = 2.0,
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Score requests of every model (or --model ...) with exactly-once replies."""
    from services.scorer import run_scorer
    from streams.scoring import ScorerConfig, ServingPolicy

    _logging(log_level)
    settings = _settings()
    policy = ServingPolicy(
        champion_deadline=champion_deadline_ms / 1e3,
        backup_deadline=champion_deadline_ms / 1e3,
        challenger_grace=challenger_grace_ms / 1e3,
    )
    config = ScorerConfig(
        topics=topics(settings), instance_id=instance, models=tuple(model) if model else None,
        max_batch=max_batch, max_wait=max_wait_ms / 1e3, policy=policy,
    )  # fmt: skip
    with _friendly_errors():
        run_scorer(kafka_config(settings, client_id=f"scorer-{instance}"), config)


@run_app.command("sink")
def run_sink_cmd(
    max_rows: Annotated[int, typer.Option(help="Rows per insert (per topic-partition)")] = 10_000,
    max_age_ms: Annotated[float, typer.Option(help="Longest a row waits for its insert")] = 1000.0,
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Land predictions, feedback, metrics, alerts, DLQ and model events in ClickHouse."""
    from services.sink import SinkConfig
    from services.sink.service import chaos_exit, run_sink
    from services.warehouse import connect

    _logging(log_level)
    settings = _settings()
    config = SinkConfig(topics(settings), max_rows=max_rows, max_age=max_age_ms / 1e3)
    with _friendly_errors(), connect(settings.clickhouse_dsn) as warehouse:
        warehouse.migrate(ttl_days=settings.clickhouse_ttl_days)
        run_sink(
            kafka_config(settings, client_id="sink"),
            config,
            warehouse,
            _sql_state(settings),
            chaos_exit(settings.chaos_sink_exit),
        )


def _sql_state(settings: Settings) -> Path:
    return settings.data_dir / "sink.json"


@app.command("sql")
def sql_cmd(
    query: Annotated[str, typer.Argument(help="A read statement, e.g. SELECT ...")],
    output: Annotated[str, typer.Option(help="table | csv | json")] = "table",
) -> None:
    """Run read-only SQL on the warehouse (through the sink when it owns the embedded one)."""
    from services.sink.sqlserver import SqlRejectedError, is_read_only, remote_query
    from services.warehouse import connect

    settings = _settings()
    if not is_read_only(query):
        err.print("[bold red]error:[/] only one read statement (SELECT, WITH, SHOW, ...) is run")
        raise typer.Exit(2)
    with _friendly_errors():
        try:
            answer = remote_query(_sql_state(settings), query)
        except SqlRejectedError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from exc
        if answer is None:  # no sink serves it: open the warehouse ourselves
            with connect(settings.clickhouse_dsn) as warehouse:
                result = warehouse.query(query)
            answer = {"columns": list(result.columns), "rows": [list(r) for r in result.rows]}
    _print_result(answer["columns"], answer["rows"], output)


def _print_result(columns: list[str], rows: list[list[object]], output: str) -> None:
    if output == "json":
        print(
            orjson.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str).decode()
        )
        return
    if output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
        return
    table = Table(*columns, show_lines=False)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    console.print(f"[dim]{len(rows)} row(s)[/]")


@app.command("bench")
def bench_cmd(
    quick: Annotated[bool, typer.Option("--quick", help="Keep the run short (2-3 min)")] = False,
    events: Annotated[int | None, typer.Option(help="Requests per throughput phase")] = None,
    rate: Annotated[float, typer.Option(help="Offered load of the latency phase, req/s")] = 2_000.0,
    json: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON")] = None,
    gateway: Annotated[
        bool, typer.Option("--gateway", help="Gateway and scorer against MLServer instead")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="--gateway: HTTP connections")] = 32,
    mlserver_workers: Annotated[
        int, typer.Option(help="--gateway: MLServer parallel_workers (0: in-process)")
    ] = 0,
) -> None:
    """Measure the scorer against a raw passthrough and a faust agent, in one run; with
    --gateway, the gateway and the scorer against MLServer (REST and Kafka mode)."""
    from services.bench import GatewayConfig, run_bench, run_gateway_bench

    with _friendly_errors():
        if gateway:
            config = GatewayConfig.choose(quick=quick, events=events, concurrency=concurrency,
                                          mlserver_workers=mlserver_workers)  # fmt: skip
            run_gateway_bench(_settings(), config, json_path=json, console=console)
            return
        run_bench(
            _settings(), quick=quick, events=events, rate=rate, json_path=json, console=console
        )


@run_app.command("monitor")
def run_monitor_cmd(
    instance: Annotated[str, typer.Option(help="Stable instance id (transactional id)")] = "0",
    interval_ms: Annotated[float, typer.Option(help="Longest time between commits")] = 1000.0,
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Drift, concept drift, performance, fairness, anomalies and ops → metrics and alerts."""
    from services.monitor import run_monitor
    from streams.monitoring.stream import MonitorConfig

    _logging(log_level)
    settings = _settings()
    config = MonitorConfig(topics(settings), instance_id=instance, max_interval=interval_ms / 1e3)
    with _friendly_errors():
        run_monitor(kafka_config(settings, client_id=f"monitor-{instance}"), config)


@run_app.command("gateway")
def run_gateway_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    instance: Annotated[
        str, typer.Option(help="Instance id: names this gateway's reply topic")
    ] = "0",
    timeout_ms: Annotated[float, typer.Option(help="How long predict waits for a reply")] = 5000.0,
    max_batch: Annotated[int, typer.Option(help="Most records in one batch call")] = 1000,
    public_catalogue: Annotated[
        bool, typer.Option(help="Serve the catalogue and portal without a token")
    ] = False,
    access_log: Annotated[bool, typer.Option(help="Log every request (never tokens)")] = True,
    fast_replies: Annotated[
        bool,
        typer.Option(
            help="Read replies before their scorer transaction commits (a commit round trip "
            "sooner; an aborted batch's reply may be the one answered)"
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Serve REST, batch and Open Inference Protocol v2 over the Kafka topics."""
    from services.gateway.context import GatewayConfig
    from services.gateway.service import build_context, run_gateway
    from services.gateway.stats import warehouse_stats

    _logging(log_level)
    settings = _settings()
    config = GatewayConfig(
        instance_id=instance, request_timeout=timeout_ms / 1e3, max_batch=max_batch,
        public_catalogue=public_catalogue, read_committed=not fast_replies,
        topic_partitions=settings.topic_partitions,
    )  # fmt: skip
    with _friendly_errors():
        kafka = kafka_config(settings, client_id=f"gateway-{instance}")
        ctx = build_context(kafka, topics(settings), config, warehouse_stats(settings))
        run_gateway(ctx, host, port, access_log=access_log, log_level=log_level.lower())

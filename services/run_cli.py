"""``modelstream run <part>``: one long-running part in the foreground.

Each part starts on an empty deployment: it creates the global topics it needs
(:mod:`services.deployment`) and serves models as they are registered. SIGTERM or
Ctrl-C finishes the batch in flight and leaves the consumer group.
"""

from __future__ import annotations

from typing import Annotated

import typer

from services.clikit import (
    configure_logging,
    friendly_errors,
    settings_or_exit,
    sql_limits,
    sql_state_file,
)
from services.deployment import prepare
from services.registry.cli import trust_from
from services.runtime import kafka_config, topics
from services.settings import Settings
from streams.kafka import KafkaConfig

__all__ = ["run_app"]

run_app = typer.Typer(
    no_args_is_help=True, help="Run one part of modelstream (a long-lived process)."
)


def _prepared(part: str, settings: Settings, client_id: str) -> KafkaConfig:
    """The part's Kafka connection, once the global topics it needs exist."""
    kafka = kafka_config(settings, client_id=client_id)
    prepare(part, kafka, topics(settings), settings.topic_partitions)
    return kafka


@run_app.command("scorer")
def run_scorer_cmd(
    model: Annotated[list[str] | None, typer.Option(help="Serve only these models")] = None,
    instance: Annotated[
        str, typer.Option(help="Stable instance id: transactional id and static group member")
    ] = "0",
    guarantee: Annotated[
        str,
        typer.Option(
            help="exactly-once (transactions; replies visible at commit) or "
            "at-least-once (replies visible at once; a crash may answer twice)"
        ),
    ] = "exactly-once",
    max_batch: Annotated[int, typer.Option(help="Most requests per batch")] = 2_000,
    max_wait_ms: Annotated[float, typer.Option(help="Longest wait for a first request")] = 50.0,
    champion_deadline_ms: Annotated[
        float, typer.Option(help="Champion deadline per batch; then the backup answers")
    ] = 1000.0,
    challenger_deadline_ms: Annotated[
        float,
        typer.Option(
            help="Challenger deadline per batch; then its outcome is logged as "
            "timeout (the reply never waits for it)"
        ),
    ] = 1000.0,
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Score requests of every model (or --model ...): exactly-once replies by default."""
    from services.scorer import run_scorer
    from streams.scoring import AT_LEAST_ONCE, EXACTLY_ONCE, ScorerConfig, ServingPolicy

    if guarantee not in (EXACTLY_ONCE, AT_LEAST_ONCE):
        raise typer.BadParameter(f"use {EXACTLY_ONCE} or {AT_LEAST_ONCE}, not {guarantee!r}",
                                 param_hint="--guarantee")  # fmt: skip
    configure_logging(log_level)
    settings = settings_or_exit()
    policy = ServingPolicy(
        champion_deadline=champion_deadline_ms / 1e3,
        backup_deadline=champion_deadline_ms / 1e3,
        challenger_deadline=challenger_deadline_ms / 1e3,
    )
    config = ScorerConfig(
        topics=topics(settings), instance_id=instance, models=tuple(model) if model else None,
        max_batch=max_batch, max_wait=max_wait_ms / 1e3, policy=policy, guarantee=guarantee,
    )  # fmt: skip
    with friendly_errors():
        run_scorer(
            _prepared("scorer", settings, f"scorer-{instance}"), config, trust_from(settings)
        )


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

    configure_logging(log_level)
    settings = settings_or_exit()
    config = SinkConfig(topics(settings), max_rows=max_rows, max_age=max_age_ms / 1e3)
    with friendly_errors():
        kafka = kafka_config(settings, client_id="sink")  # Kafka answers before the warehouse opens
        with connect(settings.clickhouse_dsn) as warehouse:
            warehouse.migrate(ttl_days=settings.clickhouse_ttl_days)
            run_sink(
                kafka, config, warehouse, sql_state_file(settings),
                chaos_exit(settings.chaos_sink_exit), sql_limits=sql_limits(settings),
            )  # fmt: skip


@run_app.command("monitor")
def run_monitor_cmd(
    instance: Annotated[str, typer.Option(help="Stable instance id (transactional id)")] = "0",
    interval_ms: Annotated[float, typer.Option(help="Longest time between commits")] = 1000.0,
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Drift, concept drift, performance, fairness, anomalies and ops → metrics and alerts."""
    from services.monitor import run_monitor
    from streams.monitoring.stream import MonitorConfig

    configure_logging(log_level)
    settings = settings_or_exit()
    config = MonitorConfig(topics(settings), instance_id=instance, max_interval=interval_ms / 1e3)
    with friendly_errors():
        run_monitor(_prepared("monitor", settings, f"monitor-{instance}"), config, settings)


@run_app.command("merger")
def run_merger_cmd(
    instance: Annotated[str, typer.Option(help="Instance id (names its log lines)")] = "0",
    keep_windows: Annotated[
        int, typer.Option(help="Windows per model kept in the merger's table")
    ] = 1_440,
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Per-model statistics and alerts from the monitors' per-partition window summaries."""
    from services.merger import MergerConfig, run_merger

    configure_logging(log_level)
    settings = settings_or_exit()
    config = MergerConfig(
        topics(settings), instance_id=instance, partitions=settings.topic_partitions,
        data_dir=settings.data_dir / f"merger-{instance}", keep_windows=keep_windows,
    )  # fmt: skip
    with friendly_errors():
        run_merger(_prepared("merger", settings, f"merger-{instance}"), config)


@run_app.command("lifecycle")
def run_lifecycle_cmd(
    interval: Annotated[str, typer.Option(help="Time between two ticks (30s, 5m)")] = "30s",
    once: Annotated[bool, typer.Option(help="One tick, print its steps, exit")] = False,
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Judge every challenger by its model's policy (promote, retire, wait), and retrain
    a champion a drift alert fires on (for models whose loop is on)."""
    from services.lifecycle import PolicyError, parse_duration
    from services.lifecycle.service import run_lifecycle

    configure_logging(log_level)
    settings = settings_or_exit()
    try:
        seconds = parse_duration(interval)
    except PolicyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--interval") from exc
    with friendly_errors():
        run_lifecycle(settings, _prepared("lifecycle", settings, "lifecycle"), seconds, once=once)


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
    via_kafka: Annotated[
        bool,
        typer.Option(
            "--via-kafka",
            help="Publish requests to the model's requests topic and answer with the "
            "scorer's replies (exactly once), instead of scoring in this process",
        ),
    ] = False,
    grpc_port: Annotated[
        int | None,
        typer.Option(help="Also serve the Open Inference Protocol over gRPC on this port"),
    ] = None,
    max_in_flight: Annotated[
        int, typer.Option(help="Requests served at once (HTTP + gRPC); past it 503")
    ] = 1024,
    body_timeout_s: Annotated[
        float, typer.Option(help="Seconds a request body may take to arrive; past it 408")
    ] = 10.0,
    keep_alive_timeout_s: Annotated[
        float, typer.Option(help="Seconds an idle HTTP connection is kept open")
    ] = 5.0,
    forwarded_allow_ips: Annotated[
        str, typer.Option(help="Proxies whose X-Forwarded-Proto/-For are believed")
    ] = "127.0.0.1",
    log_level: Annotated[str, typer.Option(help="Python log level")] = "INFO",
) -> None:
    """Serve REST, batch and Open Inference Protocol v2 (HTTP, and gRPC with --grpc-port):
    scoring in-process from the live registry, or through the scorer with --via-kafka."""
    from services.gateway.context import DIRECT, VIA_KAFKA, GatewayConfig
    from services.gateway.reporting import live_reports
    from services.gateway.service import build_context, run_gateway
    from services.gateway.stats import warehouse_stats

    configure_logging(log_level)
    settings = settings_or_exit()
    config = GatewayConfig(
        instance_id=instance, request_timeout=timeout_ms / 1e3, max_batch=max_batch,
        public_catalogue=public_catalogue, read_committed=not fast_replies,
        topic_partitions=settings.topic_partitions, mode=VIA_KAFKA if via_kafka else DIRECT,
        grpc_port=grpc_port, grpc_host=host, max_in_flight=max_in_flight,
        body_timeout=body_timeout_s, keep_alive_timeout=keep_alive_timeout_s,
        forwarded_allow_ips=forwarded_allow_ips,
    )  # fmt: skip
    with friendly_errors():
        kafka = _prepared("gateway", settings, f"gateway-{instance}")
        ctx = build_context(
            kafka, topics(settings), config, warehouse_stats(settings), trust_from(settings)
        )
        run_gateway(ctx, host, port, access_log=access_log, log_level=log_level.lower(),
                    reports=live_reports(settings))  # fmt: skip

"""``modelstream run gateway``: settings → the shared parts → uvicorn."""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Any

import httpx
import uvicorn

from services.gateway.app import create_app
from services.gateway.bridge import BridgeConfig, KafkaBridge
from services.gateway.clients import ClientDirectory
from services.gateway.context import VIA_KAFKA, GatewayConfig, GatewayContext, Serving
from services.gateway.direct import DirectConfig, DirectServer
from services.gateway.directory import ModelDirectory
from services.gateway.policy import PolicyManager
from services.gateway.reporting import LiveReports
from services.registry import RegistryView, Trust
from streams.kafka import KafkaConfig, Topics

__all__ = ["build_context", "describe", "run_gateway", "uvicorn_config", "wait_ready"]

log = logging.getLogger("modelstream.gateway")


def build_context(
    kafka: KafkaConfig,
    topics: Topics,
    config: GatewayConfig,
    stats: object = None,
    trust: Trust | None = None,
) -> GatewayContext:
    """The parts of one gateway process, not started yet (the app's lifespan starts them)."""
    serving: Serving
    if config.mode == VIA_KAFKA:
        bridge_config = BridgeConfig(
            topics, instance_id=config.instance_id, read_committed=config.read_committed,
            model_partitions=config.topic_partitions,
        )  # fmt: skip
        serving = KafkaBridge(kafka, bridge_config)
    else:
        direct = DirectConfig(
            topics, instance_id=config.instance_id, model_partitions=config.topic_partitions
        )
        serving = DirectServer(kafka, direct, trust)
    return GatewayContext(
        config=config,
        serving=serving,
        models=ModelDirectory(RegistryView(kafka, topics)),
        clients=ClientDirectory(kafka, topics),
        policy=PolicyManager(),
        stats=stats,
    )


def run_gateway(
    ctx: GatewayContext,
    host: str,
    port: int,
    *,
    access_log: bool = True,
    log_level: str = "info",
    reports: LiveReports | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn's handlers; the lifespan closes the bridge).
    ``reports`` renders the ``/reports/{model}`` pages."""
    app = create_app(ctx, reports=reports)
    log.info("gateway %s on http://%s:%d (%s)", ctx.config.instance_id, host, port,
             describe(ctx.serving))  # fmt: skip
    server = uvicorn.Server(uvicorn_config(app, ctx.config, host, port, access_log, log_level))
    server.run()


def uvicorn_config(
    app: Any, config: GatewayConfig, host: str, port: int, access_log: bool = True,
    log_level: str = "info",
) -> uvicorn.Config:  # fmt: skip
    """uvicorn's settings for the gateway: its connection limit is a backstop above the
    app's own in-flight limit (which answers 503 with ``Retry-After``; uvicorn's own 503
    has none), idle connections close after ``keep_alive_timeout``, and
    ``X-Forwarded-Proto``/``-For`` count only from ``forwarded_allow_ips``."""
    return uvicorn.Config(
        app, host=host, port=port, access_log=access_log, log_level=log_level,
        timeout_graceful_shutdown=10, server_header=False, loop="uvloop", http="httptools",
        limit_concurrency=2 * config.max_in_flight + 64,
        timeout_keep_alive=max(1, round(config.keep_alive_timeout)),
        proxy_headers=True, forwarded_allow_ips=config.forwarded_allow_ips,
    )  # fmt: skip


def describe(serving: Serving) -> str:
    """One phrase for the log: how this gateway answers."""
    if isinstance(serving, KafkaBridge):
        return f"via Kafka: requests to the scorer, replies on {serving.config.reply_topic}"
    if isinstance(serving, DirectServer):
        return f"direct: scoring in-process, answers journaled on {serving.config.journal_topic}"
    return serving.mode


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> bool:
    """Whether the gateway at ``url`` (run by ``process``) said ready within ``timeout``;
    False as soon as the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False

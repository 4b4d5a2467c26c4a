"""What every request handler of one gateway process shares, and its configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from fastapi import Depends, Request

from services.gateway.admission import InFlight
from services.gateway.policy import Limits, PolicyManager
from services.gateway.sessions import Sessions

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence

    from services.gateway.clients import ClientDirectory
    from services.gateway.directory import ModelDirectory
    from streams.kafka import KafkaConfig, Topics

__all__ = ["DIRECT", "VIA_KAFKA", "Ctx", "GatewayConfig", "GatewayContext", "Serving", "context"]

DIRECT: Literal["direct"] = "direct"
VIA_KAFKA: Literal["kafka"] = "kafka"


class Serving(Protocol):
    """How a gateway answers: in-process from the registry (:class:`~services.gateway.
    direct.DirectServer`, the default) or through the requests topic and the scorer
    (:class:`~services.gateway.bridge.KafkaBridge`, ``--via-kafka``)."""

    mode: str
    topics: Topics
    max_record_bytes: int  # the largest request record it can take (one Kafka message)

    @property
    def kafka(self) -> KafkaConfig: ...

    @property
    def ready(self) -> bool: ...

    def ensure_topics(self, timeout: float = 30.0) -> None: ...

    def start(self, loop: asyncio.AbstractEventLoop, timeout: float = 30.0) -> None: ...

    def close(self) -> None: ...

    async def request(
        self, model: str, value: bytes, request_id: str, client_id: str, timeout: float
    ) -> dict[str, Any] | None: ...

    async def request_many(
        self, model: str, requests: Sequence[tuple[str, bytes]], client_id: str, timeout: float
    ) -> list[Any]: ...

    def publish_dlq(self, model: str, value: bytes, headers: list[tuple[str, bytes]]) -> None: ...


@dataclass(frozen=True)
class GatewayConfig:
    """How the gateway serves; built by the service from settings and flags."""

    instance_id: str = "0"
    request_timeout: float = 5.0  # seconds a predict call waits for its reply
    batch_timeout: float = 30.0
    max_batch: int = 1_000  # records per batch call, for every client (clients may have less)
    default_limits: Limits = field(default_factory=Limits)
    public_catalogue: bool = False  # let anyone read the catalogue and portal pages
    read_committed: bool = True  # replies only once their scorer transaction committed
    topic_partitions: int = 3  # partitions of a model topic set the gateway creates
    version: str = "0.1.0"
    mode: str = DIRECT  # DIRECT: score in-process; VIA_KAFKA: through the scorer
    grpc_port: int | None = None  # Open Inference Protocol over gRPC, when set
    grpc_host: str = "127.0.0.1"
    max_in_flight: int = 1_024  # requests served at once (HTTP + gRPC); past it 503
    body_timeout: float = 10.0  # seconds a request body may take to arrive; past it 408
    keep_alive_timeout: float = 5.0  # seconds an idle connection is kept open
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-Proto/-For count


@dataclass
class GatewayContext:
    """The shared parts: how requests are served, live model directory, clients, policy,
    stats."""

    config: GatewayConfig
    serving: Serving
    models: ModelDirectory
    clients: ClientDirectory
    policy: PolicyManager
    stats: Any = None  # the catalogue's warehouse statistics (services.gateway.stats)
    grpc: Any = None  # the running gRPC server (grpc.aio.Server), with --grpc-port
    in_flight: InFlight = field(init=False)
    sessions: Sessions = field(init=False)

    def __post_init__(self) -> None:
        self.in_flight = InFlight(self.config.max_in_flight)
        self.sessions = Sessions()


async def context(request: Request) -> GatewayContext:
    """FastAPI dependency: this process's :class:`GatewayContext` (async: a sync
    dependency costs a worker-thread hop per request)."""
    ctx: GatewayContext = request.app.state.ctx
    return ctx


Ctx = Annotated[GatewayContext, Depends(context)]

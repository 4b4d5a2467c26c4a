"""What every request handler of one gateway process shares, and its configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from services.gateway.policy import Limits, PolicyManager

if TYPE_CHECKING:
    from services.gateway.bridge import KafkaBridge
    from services.gateway.clients import ClientDirectory
    from services.gateway.directory import ModelDirectory

__all__ = ["Ctx", "GatewayConfig", "GatewayContext", "context"]


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


@dataclass
class GatewayContext:
    """The shared parts: Kafka bridge, live model directory, clients, policy, stats."""

    config: GatewayConfig
    bridge: KafkaBridge
    models: ModelDirectory
    clients: ClientDirectory
    policy: PolicyManager
    stats: Any = None  # the catalogue's warehouse statistics (services.gateway.stats)


def context(request: Request) -> GatewayContext:
    """FastAPI dependency: this process's :class:`GatewayContext`."""
    ctx: GatewayContext = request.app.state.ctx
    return ctx


Ctx = Annotated[GatewayContext, Depends(context)]

"""The gRPC server: ``grpc.aio`` on the gateway's own event loop (the serving backends
resolve their asyncio futures there), started and stopped by the app's lifespan."""

from __future__ import annotations

import logging
from typing import Final

import grpc

from services.gateway.context import GatewayContext
from services.gateway.grpc._servicer import InferenceServicer
from services.gateway.grpc.inference_pb2_grpc import add_GRPCInferenceServiceServicer_to_server

__all__ = ["MAX_MESSAGE_BYTES", "GrpcStartError", "start_grpc"]

log = logging.getLogger(__name__)

# gRPC refuses larger requests itself (RESOURCE_EXHAUSTED); each client's max_body_bytes,
# checked per call, is usually smaller
MAX_MESSAGE_BYTES: Final = 8 * 1024 * 1024
_OPTIONS: Final = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),  # a second gateway on the same port must fail, not share it
)


class GrpcStartError(RuntimeError):
    """The gRPC server could not listen on its address."""


async def start_grpc(ctx: GatewayContext, host: str, port: int) -> grpc.aio.Server:
    """A started server for ``ctx`` on ``host:port`` (port 0: any free port); stop it
    with ``await server.stop(grace)``."""
    # a backstop only: ModelInfer refuses past ctx.in_flight first, with retry-after
    backstop = 2 * ctx.config.max_in_flight + 64
    server = grpc.aio.server(options=_OPTIONS, maximum_concurrent_rpcs=backstop)
    add_GRPCInferenceServiceServicer_to_server(InferenceServicer(ctx), server)  # type: ignore[no-untyped-call]  # generated
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpcio ≥ 1.60 raises; older versions return 0
        raise GrpcStartError(_cannot_listen(address, str(exc))) from exc
    if not bound:
        raise GrpcStartError(_cannot_listen(address, "bind failed"))
    await server.start()
    log.info("Open Inference Protocol over gRPC on %s:%d", host, bound)
    return server


def _cannot_listen(address: str, why: str) -> str:
    return (f"cannot serve gRPC on {address} ({why}): another process may hold the port; "
            "choose another --grpc-port, or stop that process")  # fmt: skip

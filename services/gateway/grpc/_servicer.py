"""``inference.GRPCInferenceService``: the six RPCs, each answering what its REST route
answers (:mod:`services.gateway.routes.oip`).

ServerLive, ServerReady and ServerMetadata need no token (like ``/v2/health/*`` and
``/v2``); ModelReady and ModelMetadata need ``predict:<model>`` or ``catalogue:read``;
ModelInfer needs ``predict:<model>`` (and ``batch:<model>`` for more than one row;
:mod:`services.gateway.grpc._infer`) and a slot of the process's in-flight limit, shared
with HTTP (past it ``UNAVAILABLE``, ``retry-after`` in the trailers). A failed call
ends with the status :mod:`services.gateway.grpc._status` maps its error to; a bug ends
``INTERNAL`` with a traceback in the gateway's log, never in the status.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import grpc
from typing_extensions import override

from services.gateway.admission import overloaded
from services.gateway.auth import CATALOGUE_SCOPE
from services.gateway.bridge import BridgeError
from services.gateway.context import GatewayContext
from services.gateway.directory import ModelEntry
from services.gateway.errors import ApiError, serving_error
from services.gateway.grpc import inference_pb2 as pb
from services.gateway.grpc._access import authorization, authorized
from services.gateway.grpc._infer import infer
from services.gateway.grpc._status import details, status_code, trailers
from services.gateway.grpc.inference_pb2_grpc import GRPCInferenceServiceServicer
from services.gateway.routes.oip import metadata_body  # REST's: one description

__all__ = ["InferenceServicer"]

log = logging.getLogger(__name__)
Request = TypeVar("Request")
Response = TypeVar("Response")
Context: TypeAlias = grpc.aio.ServicerContext


def _guarded(
    handler: Callable[[Any, Request, Context], Awaitable[Response]],
) -> Callable[[Any, Request, Context], Awaitable[Response]]:
    """``handler``, its errors ending the call with their gRPC status."""

    @functools.wraps(handler)
    async def call(self: Any, request: Request, context: Context) -> Response:
        try:
            return await handler(self, request, context)
        except ApiError as exc:
            error = exc
        except BridgeError as exc:
            error = serving_error(exc)
        except Exception:
            log.exception("unexpected error in gRPC %s", handler.__name__)
            error = ApiError("internal", "internal error; see the gateway log")
        await context.abort(status_code(error), details(error), trailers(error))
        raise AssertionError("unreachable: abort() ends the call by raising")

    return call


class InferenceServicer(GRPCInferenceServiceServicer):
    """The Open Inference Protocol over ``ctx`` (one per server)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx
        self._live = pb.ServerLiveResponse(live=True)
        self._server = pb.ServerMetadataResponse(name="modelstream", version=ctx.config.version)
        self._models: dict[str, tuple[ModelEntry, pb.ModelMetadataResponse]] = {}

    @override
    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        return self._live

    @override
    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        ctx = self._ctx
        ready = ctx.serving.ready and ctx.models.synced.is_set() and ctx.clients.ready
        return pb.ServerReadyResponse(ready=ready)

    @override
    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        return self._server

    @override
    @_guarded
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        """Ready when serving is up; a version other than the champion's is never ready."""
        name, version = request.name, request.version
        _, entry = authorized(
            self._ctx, authorization(context), name, f"predict:{name}", CATALOGUE_SCOPE
        )
        champion = not version or version == str(entry.champion.version)
        return pb.ModelReadyResponse(ready=self._ctx.serving.ready and champion)

    @override
    @_guarded
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        """Every version's metadata is the champion's (the one the gateway serves)."""
        name = request.name
        _, entry = authorized(
            self._ctx, authorization(context), name, f"predict:{name}", CATALOGUE_SCOPE
        )
        return self._metadata(entry)

    @override
    @_guarded
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        gate = self._ctx.in_flight  # shared with HTTP: one limit per process
        if not gate.enter():
            raise overloaded(gate.limit)
        try:
            response, _headers = await infer(self._ctx, request, authorization(context))
        finally:
            gate.leave()
        # the rate-limit headers go with refusals only (abort's trailers): on every answer
        # they cost ~80 µs of grpc.aio per call, a quarter of the call itself (measured)
        return response

    def _metadata(self, entry: ModelEntry) -> pb.ModelMetadataResponse:
        """Built once per directory snapshot of the model (a new entry: a new registry
        state)."""
        cached = self._models.get(entry.name)
        if cached is not None and cached[0] is entry:
            return cached[1]
        body, tensor = metadata_body(entry), pb.ModelMetadataResponse.TensorMetadata
        response = pb.ModelMetadataResponse(
            name=body["name"], versions=body["versions"], platform=body["platform"],
            inputs=[tensor(**t) for t in body["inputs"]],
            outputs=[tensor(**t) for t in body["outputs"]],
        )  # fmt: skip
        self._models[entry.name] = (entry, response)
        return response

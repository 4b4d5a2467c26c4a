"""Who calls over gRPC: the bearer token in the ``authorization`` metadata, checked exactly
as REST checks its header (:mod:`services.gateway.auth`): token (401), then the model
(404 ``unknown_model``), then the scope (403)."""

from __future__ import annotations

from typing import Any

import grpc

from services.gateway.auth import authenticate_header, may_list_models, require
from services.gateway.context import GatewayContext
from services.gateway.directory import ModelEntry
from services.gateway.routes.serving import model_entry

__all__ = ["authorization", "authorized"]


def authorization(context: grpc.aio.ServicerContext) -> str | None:
    """The call's ``authorization`` metadata (gRPC lower-cases keys), if sent."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else None
    return None


def authorized(
    ctx: GatewayContext, header: str | None, name: str, *scopes: str
) -> tuple[Any, ModelEntry]:
    """The caller's client record and the model ``name``, if the token in ``header``
    holds one of ``scopes`` (REST's ``authorized_model``, for a header value)."""
    record = authenticate_header(ctx, header)
    entry = model_entry(ctx, name, reveal=may_list_models(ctx, record))
    return require(record, *scopes), entry

"""The FastAPI application: routers, error rendering, and the life cycle of the shared
parts (registry and client followers, the Kafka bridge, the live reports' reader)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request

from services.gateway.bridge import BridgeError
from services.gateway.context import GatewayContext
from services.gateway.errors import JsonResponse, install_error_handlers, render, serving_error
from services.gateway.fastpath import FastPath
from services.gateway.reporting import LiveReports
from services.gateway.routes import catalogue, oip, portal, v1
from services.gateway.routes import reports as report_pages

__all__ = ["create_app"]

DESCRIPTION = """\
One HTTP front door to every modelstream model. Requests are checked against the
champion's input schema, published to the model's Kafka requests topic, scored by the
same scorer as every Kafka producer, and answered here.

Authenticate with `Authorization: Bearer <token>` (`modelstream clients create`).
The catalogue (`/catalogue`) lists every model with its schema and examples;
`/reports/{name}` shows a model's monitoring report.
"""


def create_app(
    ctx: GatewayContext, extra: tuple[APIRouter, ...] = (), reports: LiveReports | None = None
) -> FastAPI:
    """The gateway app over ``ctx``; its lifespan starts and stops ``ctx``'s parts.
    ``reports`` renders ``/reports/{model}`` (without it, that page says reports are off)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await start(ctx)
        try:
            yield
        finally:
            if ctx.grpc is not None:
                await ctx.grpc.stop(5.0)
            await asyncio.to_thread(stop, ctx)
            if reports is not None:
                reports.close()

    app = FastAPI(
        title="modelstream gateway", version=ctx.config.version, description=DESCRIPTION,
        lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url="/openapi.json",
    )  # fmt: skip
    app.state.ctx, app.state.reports = ctx, reports
    install_error_handlers(app)
    app.add_exception_handler(BridgeError, _bridge_error)
    for router in (v1.router, oip.router, catalogue.router, portal.router, report_pages.router,
                   *extra):  # fmt: skip
        app.include_router(router)
    app.add_middleware(FastPath, ctx=ctx)
    return app


async def start(ctx: GatewayContext) -> None:
    """Read the registry and the clients to their ends, then open the bridge."""
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(ctx.serving.ensure_topics)
    ctx.clients.start()
    await asyncio.gather(asyncio.to_thread(ctx.models.sync), asyncio.to_thread(ctx.clients.sync))
    ctx.models.start()
    await asyncio.to_thread(ctx.serving.start, loop)
    if ctx.config.grpc_port is not None:
        from services.gateway.grpc import start_grpc  # grpcio loads only when asked for

        ctx.grpc = await start_grpc(ctx, ctx.config.grpc_host, ctx.config.grpc_port)


def stop(ctx: GatewayContext) -> None:
    ctx.serving.close()
    ctx.models.stop()
    ctx.clients.stop()
    if ctx.stats is not None:
        ctx.stats.close()


async def _bridge_error(request: Request, exc: Exception) -> JsonResponse:
    assert isinstance(exc, BridgeError)
    return render(request, serving_error(exc))

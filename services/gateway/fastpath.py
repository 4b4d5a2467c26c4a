"""The serving routes, dispatched before FastAPI's router.

``POST /v1/models/{name}/predict``, ``/v1/models/{name}/batch`` and
``/v2/models/{name}/infer`` are most of a gateway's traffic. Matched here, a request runs
the very route function FastAPI would run (same checks, same answers, same OpenAPI
document), without the router's path matching over every route, the dependency
solver, and the exception and body-limit middlewares in between: per request that
machinery cost about as much CPU as the scoring did (py-spy, 2026-12-07). Errors are
rendered by the same functions as the app's exception handlers. Every other path, and a
name with a ``/`` in it, goes to FastAPI unchanged.

Every HTTP request but the health probes first takes a slot of the process's in-flight
limit (:mod:`services.gateway.admission`); past it the answer is 503 ``overloaded`` with
``Retry-After``, sent before anything of the request is read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.admission import overloaded
from services.gateway.bridge import BridgeError
from services.gateway.errors import ApiError, render, serving_error
from services.gateway.routes import oip, v1

__all__ = ["FastPath"]

log = logging.getLogger(__name__)
_HEALTH = "/v2/health/"  # probes are answered even when the gateway is full
Route = Callable[[str, Request, Any], Awaitable[Response]]
_ROUTES: tuple[tuple[str, str, Route], ...] = (
    ("/v1/models/", "/predict", v1.predict),
    ("/v1/models/", "/batch", v1.batch),
    ("/v2/models/", "/infer", oip.infer),
)


class FastPath:
    """ASGI middleware: the serving routes straight to their functions."""

    def __init__(self, app: ASGIApp, ctx: Any) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_HEALTH):
            await self.app(scope, receive, send)
            return
        gate = self.ctx.in_flight
        if not gate.enter():
            await render(Request(scope), overloaded(gate.limit))(scope, receive, send)
            return
        try:
            await self._dispatch(scope, receive, send)
        finally:
            gate.leave()

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            path: str = scope["path"]
            for prefix, suffix, route in _ROUTES:
                if path.startswith(prefix) and path.endswith(suffix):
                    name = path[len(prefix) : -len(suffix)]
                    if name and "/" not in name:
                        await self._serve(route, name, scope, receive, send)
                        return
        await self.app(scope, receive, send)

    async def _serve(self, route: Route, name: str, scope: Scope, receive: Receive, send: Send
                     ) -> None:  # fmt: skip
        request = Request(scope, receive)
        try:
            response = await route(name, request, self.ctx)
        except ApiError as exc:
            response = render(request, exc)
        except BridgeError as exc:
            response = render(request, serving_error(exc))
        except Exception:
            log.exception("unexpected error on POST %s", scope["path"])
            response = render(request, ApiError("internal", "internal error; see the gateway log"))
        await response(scope, receive, send)

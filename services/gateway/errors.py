"""The gateway's error responses: one exception, rendered the way each API expects.

``/v1`` and the catalogue answer ``{"error": {"code", "message", ...}}``; the Open
Inference Protocol (``/v2``) answers ``{"error": "<message>"}`` as its spec says, with the
code beside it. Every code is stable and listed in the catalogue.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from services.gateway.bridge import BridgeClosedError, BridgeError, PublishError

__all__ = [
    "ERROR_CODES",
    "ApiError",
    "ErrorBody",
    "JsonResponse",
    "OipErrorBody",
    "error_responses",
    "install_error_handlers",
    "render",
    "serving_error",
]

log = logging.getLogger(__name__)

ERROR_CODES: Final[dict[str, tuple[int, str]]] = {
    "unauthenticated": (401, "no valid API token: send Authorization: Bearer <token>"),
    "forbidden": (403, "the token lacks the scope this call needs"),
    "unknown_model": (
        404,
        "no model of that name has a champion (catalogue readers are told the known ones)",
    ),
    "unknown_version": (404, "v2 infer names a version that is not the champion"),
    "not_found": (404, "no such path"),
    "request_timeout": (408, "the body did not arrive within the gateway's body timeout"),
    "payload_too_large": (
        413,
        "the body is larger than this client may send, or than one Kafka record may be",
    ),
    "invalid_input": (422, "the body does not fit the model's input schema"),
    "malformed": (422, "the body is not valid JSON (or JSON lines)"),
    "batch_too_large": (422, "more records than this client may send in one batch"),
    "rate_limited": (429, "too many requests: wait Retry-After seconds"),
    "quota_exceeded": (429, "the client's quota for this window is used up"),
    "model_failed": (502, "neither the champion nor the backup could score the request"),
    "publish_failed": (503, "Kafka did not accept the request"),
    "not_ready": (503, "the gateway is starting or lost Kafka"),
    "overloaded": (503, "the gateway serves as many requests as it may: wait Retry-After seconds"),
    "timeout": (504, "no reply from a scorer within the deadline"),
}


class JsonResponse(Response):
    """JSON written by orjson (non-finite floats become null)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """An error response: HTTP status, stable code, message, optional extra fields."""

    def __init__(
        self, code: str, message: str | None = None, *, status: int | None = None,
        headers: dict[str, str] | None = None, **extra: Any,
    ) -> None:  # fmt: skip
        default_status, default_message = ERROR_CODES.get(code, (500, code))
        self.code = code
        self.status = status or default_status
        self.message = message or default_message
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.message)


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    fields: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """A /v1 error response."""

    error: ErrorDetail


class OipErrorBody(BaseModel):
    """An Open Inference Protocol error response."""

    error: str
    code: str | None = None


def error_responses(*statuses: int, oip: bool = False) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of a route that may answer these error statuses."""
    model = OipErrorBody if oip else ErrorBody
    meaning: dict[int, list[str]] = {}
    for code, (status, text) in ERROR_CODES.items():
        meaning.setdefault(status, []).append(f"`{code}`: {text}")
    return {
        status: {"model": model, "description": "; ".join(meaning.get(status, ["error"]))}
        for status in statuses
    }


def render(request: Request, error: ApiError) -> JsonResponse:
    """The response for ``error``: ``/v1`` and ``/v2`` shapes (see the module docstring)."""
    if request.url.path.startswith("/v2"):
        body: dict[str, Any] = {"error": error.message, "code": error.code}
    else:
        body = {"error": {"code": error.code, "message": error.message, **error.extra}}
    return JsonResponse(body, status_code=error.status, headers=error.headers)


def serving_error(exc: BridgeError) -> ApiError:
    """The API error for a failure of the serving backend (REST and gRPC alike)."""
    if isinstance(exc, PublishError):
        return ApiError("publish_failed", f"{exc} ({exc.code})")
    if isinstance(exc, BridgeClosedError):
        return ApiError("not_ready", str(exc))
    return ApiError("publish_failed", str(exc))


def install_error_handlers(app: FastAPI) -> None:
    """Every failure becomes an :class:`ApiError` response; none leaks a traceback."""

    async def api_error(request: Request, exc: Exception) -> JsonResponse:
        assert isinstance(exc, ApiError)
        return render(request, exc)

    async def validation_error(request: Request, exc: Exception) -> JsonResponse:
        assert isinstance(exc, RequestValidationError)
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "code": str(e.get("type")),
             "message": str(e.get("msg"))}
            for e in exc.errors()
        ]  # fmt: skip
        return render(request, ApiError("malformed", "the request is not valid", fields=fields))

    async def http_error(request: Request, exc: Exception) -> JsonResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        return render(request, ApiError(code, str(exc.detail), status=exc.status_code))

    async def unexpected(request: Request, exc: Exception) -> JsonResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return render(request, ApiError("internal", "internal error; see the gateway log"))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)

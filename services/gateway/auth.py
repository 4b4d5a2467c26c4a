"""Who is calling and what they may do: API tokens, scopes, rate limits, body size.

A token comes as ``Authorization: Bearer <token>`` (API clients) or in the
``ms_token`` cookie the portal's sign-in sets (browsers). It is checked against the client
registry (only its SHA-256 is stored; compared in constant time) and never logged.
Then the scope the route needs, then the client's rate limit and quota, then the body
size, in that order: a refused call costs the gateway as little as possible.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError

__all__ = ["COOKIE", "admit", "authenticate", "authorize", "read_body"]

COOKIE = "ms_token"
_BEARER = "bearer "


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header and header[:7].lower() == _BEARER:
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def authenticate(ctx: GatewayContext, request: Request) -> Any:
    """The calling client's record, else 401."""
    token = _token(request)
    record = ctx.clients.authenticate(token) if token else None
    if record is None:
        why = "no API token was sent" if not token else "the API token is not valid (or revoked)"
        raise ApiError(
            "unauthenticated", f"{why}: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="modelstream"'},
        )  # fmt: skip
    return record


def authorize(ctx: GatewayContext, request: Request, *scopes: str) -> Any:
    """The caller's record if it holds any of ``scopes``, else 401/403."""
    record = authenticate(ctx, request)
    if not any(record.allows(scope) for scope in scopes):
        raise ApiError("forbidden", f"client {record.name!r} lacks the scope {' or '.join(scopes)}")
    return record


def admit(ctx: GatewayContext, record: Any, cost: int = 1) -> dict[str, str]:
    """Charge ``cost`` requests to the client's limits; 429 when over (422 when ``cost``
    could never fit: a batch larger than the burst or the whole quota). Returns the rate
    headers to send with the response."""
    decision = ctx.policy.admit(record.name, record.limits, cost)
    headers: dict[str, str] = decision.headers()
    if decision.allowed:
        return headers
    if decision.reason == "too_large":
        most = min(record.limits.burst, record.limits.quota or record.limits.burst)
        raise ApiError("batch_too_large", f"{cost} records can never pass this client's "
                       f"limits at once; split them into batches of at most {most}",
                       headers=headers)  # fmt: skip
    code = "quota_exceeded" if decision.reason == "quota" else "rate_limited"
    what = "the quota for this window is used up" if code == "quota_exceeded" else "too many"
    raise ApiError(code, f"{what}; retry after {headers.get('Retry-After')} s", headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError("payload_too_large", f"the body has {declared} bytes; at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("payload_too_large", f"the body has more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

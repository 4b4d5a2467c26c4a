"""Who is calling and what they may do: API tokens, scopes, rate limits, body size.

A token comes as ``Authorization: Bearer <token>`` (API clients; gRPC callers send it as
``authorization`` metadata). It is checked against the client registry (only its SHA-256
is stored; compared in constant time) and never logged. Browsers signed in at the portal
hold a session id instead (:mod:`services.gateway.sessions`), which reads the catalogue
and nothing else (:func:`catalogue_client`): no cookie ever calls a model. A header that
is not ``Bearer <token>`` is named in the 401 (scheme missing, another scheme, no token),
never echoed: it may hold the secret.

Checks run cheapest first, so a refused call costs the gateway as little as possible:

1. token (401; no token, no information);
2. the model, on the serving routes (predict, batch, v2 metadata, ready and infer): 404
   ``unknown_model`` before the scope, so a typo is not answered "lacks the scope
   predict:<typo>". Clients who may read the catalogue are told the known names and the
   closest one; others only that the name is not registered (they can tell a registered
   name they may not call, 403, from an unknown one, 404, but never list the names);
3. scope (403): the route's per-model scope (``predict:<model>``, ...); the catalogue's
   routes (``/v1/catalogue/{name}``, the per-model OpenAPI document, the pages) check
   ``catalogue:read`` before the model instead: that scope names no model, and a client
   without it learns nothing of the names;
4. rate limit and quota (429; 422 for a batch that could never fit);
5. body size (413), then the contract (422).

A call is charged one request at step 4, before its body is read or parsed; batch and v2
infer then charge their other records once the body told how many there are (v2 infer
with more than one row needs ``batch:<model>`` too, and the batch limits).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

from fastapi import Request

from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError
from services.gateway.sessions import SESSION_COOKIE

__all__ = [
    "COOKIE",
    "admit",
    "authenticate",
    "authenticate_header",
    "authorize",
    "catalogue_client",
    "may_list_models",
    "parse_authorization",
    "read_body",
    "require",
    "session_client",
]

COOKIE = SESSION_COOKIE
CATALOGUE_SCOPE: Final = "catalogue:read"
_EXPECTED: Final = "the Authorization header must be `Bearer <token>`"
# a word that can only be an auth scheme's name (a token has '_' in it): safe to repeat
_SCHEME_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,19}")


def parse_authorization(header: str) -> tuple[str | None, str | None]:
    """``(token, None)`` from ``Bearer <token>`` (any case), else ``(None, what is wrong)``.

    The header's value is never repeated (it may be the token); a scheme is named only
    when it looks like one.

    >>> parse_authorization("bearer  ms_abc ")
    ('ms_abc', None)
    >>> parse_authorization("ms_0123456789ab_secret")[1]
    'the Authorization header must be `Bearer <token>` (the scheme is missing)'
    >>> parse_authorization("Basic YWxhZGRpbjpvcGVu")[1]
    'the Authorization header must be `Bearer <token>` (it uses the Basic scheme)'
    >>> parse_authorization("Bearer")[1]
    'the Authorization header must be `Bearer <token>` (the token is missing)'
    """
    scheme, token = (*header.split(None, 1), "", "")[:2]
    token = token.strip()
    if scheme.lower() == "bearer":
        return (token, None) if token else (None, f"{_EXPECTED} (the token is missing)")
    if not scheme:
        return None, f"{_EXPECTED} (it is empty)"
    if not token:
        return None, f"{_EXPECTED} (the scheme is missing)"
    if _SCHEME_NAME.fullmatch(scheme):
        return None, f"{_EXPECTED} (it uses the {scheme} scheme)"
    return None, f"{_EXPECTED} (it uses another scheme)"


def authenticate(ctx: GatewayContext, request: Request) -> Any:
    """The calling client's record (from ``Authorization: Bearer``), else 401."""
    return authenticate_header(ctx, request.headers.get("authorization"))


def session_client(ctx: GatewayContext, request: Request) -> Any:
    """The client a portal session cookie signed in as, while its token is still the
    one signed in with (revocation and rotation end the session); else None."""
    session = ctx.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    record = ctx.clients.get(session.client)
    if record is None or not record.active or record.token_sha256 != session.token_sha256:
        ctx.sessions.close(session.id)
        return None
    return record


def catalogue_client(ctx: GatewayContext, request: Request) -> Any:
    """The caller's record if it may read the catalogue, else 401/403: a Bearer token,
    else a portal session (which is good for this and nothing else). An
    ``Authorization`` header that is not Bearer falls back to the session: a proxy's
    ``Basic`` login in front of the portal must not sign browsers out."""
    header = request.headers.get("authorization")
    token, problem = parse_authorization(header) if header is not None else (None, None)
    record = None if token else session_client(ctx, request)
    if record is None:
        record = _client(ctx, token, problem)
    return require(record, CATALOGUE_SCOPE)


def authenticate_header(ctx: GatewayContext, value: str | None) -> Any:
    """The record of the client whose token ``value`` carries (an ``Authorization``
    header's value, or gRPC's ``authorization`` metadata; no cookie), else 401."""
    token, problem = parse_authorization(value) if value is not None else (None, None)
    return _client(ctx, token, problem)


def _client(ctx: GatewayContext, token: str | None, problem: str | None) -> Any:
    record = ctx.clients.authenticate(token) if token else None
    if record is None:
        if problem is not None:
            message = problem
        else:
            why = "the API token is not valid (or revoked)" if token else "no API token was sent"
            message = f"{why}: send Authorization: Bearer <token>"
        raise ApiError(
            "unauthenticated", message, headers={"WWW-Authenticate": 'Bearer realm="modelstream"'}
        )
    return record


def require(record: Any, *scopes: str) -> Any:
    """``record`` if it holds any of ``scopes``, else 403."""
    if not any(record.allows(scope) for scope in scopes):
        raise ApiError("forbidden", f"client {record.name!r} lacks the scope {' or '.join(scopes)}")
    return record


def authorize(ctx: GatewayContext, request: Request, *scopes: str) -> Any:
    """The caller's record if it holds any of ``scopes``, else 401/403."""
    return require(authenticate(ctx, request), *scopes)


def may_list_models(ctx: GatewayContext, record: Any) -> bool:
    """Whether the caller may be told which models exist: the catalogue is public, or
    the client may read it (``catalogue:read`` or ``admin``)."""
    return ctx.config.public_catalogue or bool(
        record is not None and record.allows(CATALOGUE_SCOPE)
    )


def admit(ctx: GatewayContext, record: Any, cost: int = 1) -> dict[str, str]:
    """Charge ``cost`` requests to the client's limits; 429 when over (422 when ``cost``
    could never fit: a batch larger than the burst or the whole quota). Returns the rate
    headers to send with the response."""
    decision = ctx.policy.admit(record.name, record.limits, cost)
    headers: dict[str, str] = decision.headers()
    if decision.allowed:
        return headers
    if decision.reason == "too_large":
        most = record.limits.largest_cost
        raise ApiError("batch_too_large", f"{cost} records can never pass this client's "
                       f"limits at once; split them into batches of at most {most}",
                       headers=headers)  # fmt: skip
    code = "quota_exceeded" if decision.reason == "quota" else "rate_limited"
    what = "the quota for this window is used up" if code == "quota_exceeded" else "too many"
    raise ApiError(code, f"{what}; retry after {headers.get('Retry-After')} s", headers=headers)


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes, and with
    408 when it has not all arrived ``timeout`` seconds after the first read (a client
    trickling its body must not hold a slot for long)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError("payload_too_large", f"the body has {declared} bytes; at most {limit}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError("payload_too_large", f"the body has more than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError("request_timeout", f"the body did not arrive within {timeout:g} s "
                       f"({size} bytes came); send it at once, or retry") from None  # fmt: skip
    return b"".join(chunks)

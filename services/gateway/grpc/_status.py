"""Gateway errors as gRPC statuses: one table from the HTTP status every
:class:`~services.gateway.errors.ApiError` carries to a gRPC status code.

The details are the error's message, plus the request id when there is one; the trailing
metadata carries the stable error code (``ms-error-code``) and the headers REST would
have sent, lower-cased (``retry-after`` and the ``x-ratelimit-*`` family on a 429,
``www-authenticate`` on a 401).

>>> error = ApiError("rate_limited", "too many", headers={"Retry-After": "2"})
>>> status_code(error).name, details(error), trailers(error)
('RESOURCE_EXHAUSTED', 'too many', (('ms-error-code', 'rate_limited'), ('retry-after', '2')))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import grpc

from services.gateway.errors import ApiError

__all__ = ["STATUS_CODES", "details", "metadata", "status_code", "trailers"]

Metadata = tuple[tuple[str, str], ...]

STATUS_CODES: Final[Mapping[int, grpc.StatusCode]] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    502: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(error: ApiError) -> grpc.StatusCode:
    """The gRPC status of ``error`` (``UNKNOWN`` for an HTTP status the table lacks)."""
    return STATUS_CODES.get(error.status, grpc.StatusCode.UNKNOWN)


def details(error: ApiError) -> str:
    """The message, and the request id when the error names one.

    >>> details(ApiError("timeout", "no reply", request_id="r-0"))
    'no reply (request_id r-0)'
    """
    rid = error.extra.get("request_id")
    return f"{error.message} (request_id {rid})" if rid else error.message


def trailers(error: ApiError) -> Metadata:
    """The error's code and REST headers as gRPC trailing metadata."""
    return (("ms-error-code", error.code), *metadata(error.headers))


def metadata(headers: Mapping[str, str]) -> Metadata:
    """HTTP headers as gRPC metadata (keys lower-cased, as gRPC requires)."""
    return tuple((key.lower(), str(value)) for key, value in headers.items())

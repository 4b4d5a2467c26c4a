"""How much work one gateway process takes on at once, and how long it waits for a body.

- **In flight**: at most ``max_in_flight`` requests are served at once (HTTP and gRPC
  together, health probes aside). Past it a request is answered at once, before its body
  is read: 503 ``overloaded`` with ``Retry-After`` (gRPC: ``UNAVAILABLE`` with
  ``retry-after`` in the trailers), so a burst degrades into fast refusals the client can
  retry instead of a queue that times every request out. The count is a plain integer
  on the event loop (every handler runs there): a few hundred nanoseconds per request.
- **Body deadline**: a request body must arrive within ``body_timeout`` seconds of the
  first read (:func:`services.gateway.auth.read_body`), else 408 ``request_timeout``: a
  client that trickles a body a byte at a time (slow loris) holds a slot for that long
  at most. Headers are uvicorn's to time out (``timeout_keep_alive`` between requests).

>>> gate = InFlight(2)
>>> gate.enter(), gate.enter(), gate.enter()
(True, True, False)
>>> gate.leave(); gate.count
1
"""

from __future__ import annotations

from typing import Final

from services.gateway.errors import ApiError

__all__ = ["RETRY_AFTER_S", "InFlight", "overloaded"]

RETRY_AFTER_S: Final = 1  # what an overloaded gateway asks a client to wait, seconds


class InFlight:
    """A counter of requests being served, refusing past ``limit`` (event loop only)."""

    __slots__ = ("count", "limit", "refused")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {limit}")
        self.limit = limit
        self.count = 0
        self.refused = 0

    def enter(self) -> bool:
        """Take a slot; False (and counted) when all ``limit`` are taken."""
        if self.count >= self.limit:
            self.refused += 1
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1


def overloaded(limit: int) -> ApiError:
    """The refusal of a request past the in-flight limit.

    >>> error = overloaded(1024)
    >>> error.status, error.headers
    (503, {'Retry-After': '1'})
    """
    return ApiError(
        "overloaded",
        f"the gateway is serving {limit} requests already; retry after {RETRY_AFTER_S} s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )

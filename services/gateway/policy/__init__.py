"""Gateway policy: how often, how much and how large each client may call.

Pure logic over plain numbers, no Kafka, no HTTP: the gateway asks, this answers. Time
comes from an injectable clock (``time.monotonic`` by default), so tests step it by
hand. Every class is thread-safe.

- :class:`Limits` — one client's limits, stored with the client on the clients topic:
  sustained rate and burst (token bucket), quota per window, body size, batch size.
  :attr:`~Limits.largest_batch` is the batch size that can really pass: a batch takes
  its rows from the bucket and the quota at once, so neither may be smaller.
- :class:`TokenBucket` — ``burst`` tokens refilled at ``rate`` per second; shapes the
  short term (a spike of ``burst`` requests, then ``rate`` per second).
- :class:`Quota` — at most ``limit`` units per fixed window (a day by default).
- :class:`PolicyManager` — a bucket and a quota per client; :meth:`~PolicyManager.admit`
  returns a :class:`Decision` with the reason for a refusal (``rate``, ``quota`` or
  ``too_large``), the wait, and the HTTP headers to send (``Retry-After``,
  ``X-RateLimit-*``, ``X-Quota-*``).
- :func:`check_body_size` — refuse a declared ``Content-Length`` above the limit.

A request costs 1; a batch costs its rows, so a 500-row batch uses 500 tokens and 500
units of quota::

    policy = PolicyManager()
    decision = policy.admit(client.name, client.limits, cost=len(rows))
    if not decision.allowed:
        return JSONResponse(..., status_code=429, headers=decision.headers())

Limits hold per gateway process: N replicas admit up to N times a client's limits.

Errors (all :class:`PolicyError`)::

    PolicyError
    ├── InvalidLimitsError       a limit is not a positive number (also a ValueError)
    └── BodyTooLargeError        a request body is larger than the client may send
"""

from services.gateway.policy._bucket import TokenBucket
from services.gateway.policy._clock import Clock
from services.gateway.policy._errors import BodyTooLargeError, InvalidLimitsError, PolicyError
from services.gateway.policy._limits import Limits, check_body_size
from services.gateway.policy._manager import Decision, PolicyManager, Reason
from services.gateway.policy._quota import Quota

__all__ = [
    "BodyTooLargeError",
    "Clock",
    "Decision",
    "InvalidLimitsError",
    "Limits",
    "PolicyError",
    "PolicyManager",
    "Quota",
    "Reason",
    "TokenBucket",
    "check_body_size",
]

"""PolicyManager: admit or refuse each request of each client, with the reason why."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from services.gateway.policy._bucket import TokenBucket
from services.gateway.policy._clock import Clock
from services.gateway.policy._limits import Limits, check_cost, positive_number
from services.gateway.policy._quota import Quota

__all__ = ["Decision", "PolicyManager", "Reason"]

Reason: TypeAlias = Literal["rate", "quota", "too_large"]
_IDLE_S: Final = 3_600.0
_SWEEP_EVERY_S: Final = 60.0


@dataclass(frozen=True)
class Decision:
    """Whether one request may pass, and what to tell the client either way.

    ``reason`` is ``rate`` (the token bucket is empty for now), ``quota`` (the window's
    budget is spent) or ``too_large`` (the cost exceeds the burst or the whole quota, so
    waiting cannot help: split the request). ``retry_after`` is in seconds; 0.0 when
    admitted or ``too_large``. ``limit``/``remaining`` describe the token bucket
    (its burst, whole tokens left), ``quota``/``quota_remaining`` the quota window
    (None when unlimited).

    >>> Decision(False, "rate", 0.2, limit=100, remaining=0).headers()["Retry-After"]
    '1'
    >>> Decision(True, None, 0.0, limit=100, remaining=42, quota=1000, quota_remaining=7).headers()
    {'X-RateLimit-Limit': '100', 'X-RateLimit-Remaining': '42', 'X-Quota-Limit': '1000', \
'X-Quota-Remaining': '7'}
    """

    allowed: bool
    reason: Reason | None
    retry_after: float
    limit: int
    remaining: int
    quota: int | None = None
    quota_remaining: int | None = None

    def headers(self) -> dict[str, str]:
        """HTTP response headers. ``Retry-After`` (whole seconds, rounded up, at least 1)
        only on a refusal that waiting can cure, i.e. not on ``too_large``."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
        }
        if self.quota is not None:
            headers["X-Quota-Limit"] = str(self.quota)
            headers["X-Quota-Remaining"] = str(self.quota_remaining)
        if not self.allowed and self.reason != "too_large":
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


@dataclass
class _ClientState:
    limits: Limits
    bucket: TokenBucket
    quota: Quota | None
    seen: float


class PolicyManager:
    """Per-client token buckets and quotas, created on first sight of a client.

    Thread-safe: one lock makes each check-then-take atomic. State is per process, so
    with N gateway replicas a client gets up to N times its limits; put a shared store
    behind this class if that matters. Changed limits take effect on the next request
    (the bucket is rebuilt when rate or burst change, the quota when quota or window do,
    so tuning the rate does not hand out a fresh daily quota). Clients idle for more than
    ``idle_s`` whose bucket is full again and whose quota window is untouched are
    forgotten, so memory follows the active clients, not every client ever seen.

    Examples
    --------
    >>> now = [0.0]
    >>> policy = PolicyManager(clock=lambda: now[0])
    >>> limits = Limits(rate_per_s=1, burst=2, quota=3)
    >>> [policy.admit("ana", limits).reason for _ in range(3)]
    [None, None, 'rate']
    >>> now[0] = 1.0
    >>> policy.admit("ana", limits).allowed, policy.admit("ana", limits).reason
    (True, 'quota')
    >>> policy.admit("ana", limits, cost=5).reason
    'too_large'
    """

    def __init__(
        self,
        clock: Clock = time.monotonic,
        *,
        idle_s: float = _IDLE_S,
        sweep_every_s: float = _SWEEP_EVERY_S,
    ) -> None:
        positive_number("idle_s", idle_s)
        positive_number("sweep_every_s", sweep_every_s)
        self._clock, self._idle_s, self._sweep_every_s = clock, idle_s, sweep_every_s
        self._clients: dict[str, _ClientState] = {}
        self._lock = threading.Lock()
        self._swept = clock()

    def admit(self, client: str, limits: Limits, cost: int = 1) -> Decision:
        """Admit ``cost`` units (1 per request, or the rows of a batch) for ``client``."""
        check_cost(cost)
        with self._lock:
            now = self._clock()
            if now - self._swept >= self._sweep_every_s:
                self._sweep(now)
            state = self._state(client, limits, now)
            state.seen = now
            return _decide(state, cost)

    def forget(self, client: str) -> None:
        """Drop a client's state (a revoked client, say)."""
        with self._lock:
            self._clients.pop(client, None)

    def __len__(self) -> int:
        """Clients with state held."""
        with self._lock:
            return len(self._clients)

    def _state(self, client: str, limits: Limits, now: float) -> _ClientState:
        state = self._clients.get(client)
        if state is None:
            state = _ClientState(limits, self._bucket(limits), self._quota(limits), now)
            self._clients[client] = state
        elif state.limits != limits:
            old, state.limits = state.limits, limits
            if (old.rate_per_s, old.burst) != (limits.rate_per_s, limits.burst):
                state.bucket = self._bucket(limits)
            if (old.quota, old.quota_window_s) != (limits.quota, limits.quota_window_s):
                state.quota = self._quota(limits)
        return state

    def _bucket(self, limits: Limits) -> TokenBucket:
        return TokenBucket(limits.rate_per_s, limits.burst, self._clock)

    def _quota(self, limits: Limits) -> Quota | None:
        if limits.quota is None:
            return None
        return Quota(limits.quota, limits.quota_window_s, self._clock)

    def _sweep(self, now: float) -> None:
        self._swept = now
        idle = [
            client
            for client, state in self._clients.items()
            if now - state.seen > self._idle_s
            and state.bucket.full
            and (state.quota is None or state.quota.untouched)
        ]
        for client in idle:
            del self._clients[client]


def _decide(state: _ClientState, cost: int) -> Decision:
    bucket, quota = state.bucket, state.quota
    if cost > bucket.burst or (quota is not None and cost > quota.limit):
        return _decision(state, "too_large", 0.0)
    # the quota is checked before the bucket is taken from: a refusal must take nothing
    wait = 0.0 if quota is None else quota.check(cost)
    if wait > 0.0:
        return _decision(state, "quota", wait)
    wait = bucket.take(cost)
    if wait > 0.0:
        return _decision(state, "rate", wait)
    if quota is not None:
        quota.take(cost)
    return _decision(state, None, 0.0)


def _decision(state: _ClientState, reason: Reason | None, wait: float) -> Decision:
    quota = state.quota
    return Decision(
        allowed=reason is None,
        reason=reason,
        retry_after=wait,
        limit=state.bucket.burst,
        remaining=state.bucket.remaining,
        quota=None if quota is None else quota.limit,
        quota_remaining=None if quota is None else quota.remaining,
    )

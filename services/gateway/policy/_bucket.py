"""TokenBucket: a sustained rate with room for short bursts."""

from __future__ import annotations

import threading
import time

from services.gateway.policy._clock import Clock
from services.gateway.policy._limits import check_cost, positive_int, positive_number

__all__ = ["TokenBucket"]


class TokenBucket:
    """Holds up to ``burst`` tokens, refilled at ``rate`` per second; a request takes
    ``cost`` of them or none at all.

    It starts full, so a quiet client may spike to ``burst`` requests at once, then
    settles to ``rate`` per second. A refusal takes nothing and says how long until
    ``cost`` tokens will be there.

    A ``cost`` above ``burst`` can never be admitted, however long one waits: ``take``
    refuses it and returns the time until the bucket is full (the most it will ever
    hold). :class:`~services.gateway.policy.PolicyManager` checks for this first and
    refuses with reason ``too_large`` instead, so callers split the request.

    Examples
    --------
    >>> now = [0.0]
    >>> bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    >>> [bucket.take() for _ in range(4)]
    [0.0, 0.0, 0.0, 0.5]
    >>> now[0] = 0.5
    >>> bucket.take(), bucket.remaining
    (0.0, 0)
    """

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        positive_number("rate", rate)
        positive_int("burst", burst)
        self.rate, self.burst, self._clock = float(rate), burst, clock
        self._tokens, self._at = float(burst), clock()
        self._lock = threading.Lock()

    def take(self, cost: int = 1) -> float:
        """Take ``cost`` tokens: 0.0 if admitted, else seconds until they will be there."""
        check_cost(cost)
        with self._lock:
            wait = self._wait(cost)
            if wait == 0.0:
                self._tokens -= cost
            return wait

    def check(self, cost: int = 1) -> float:
        """Like :meth:`take`, but takes nothing."""
        check_cost(cost)
        with self._lock:
            return self._wait(cost)

    @property
    def remaining(self) -> int:
        """Whole tokens available now."""
        with self._lock:
            self._refill()
            return int(self._tokens)

    @property
    def full(self) -> bool:
        with self._lock:
            self._refill()
            return self._tokens >= self.burst

    def _wait(self, cost: int) -> float:
        self._refill()
        if cost <= self._tokens:
            return 0.0
        # above burst: the wait until full, the most this bucket will ever hold
        missing = min(cost, self.burst) - self._tokens
        # float rounding can leave a hair of a token missing; never answer "wait 0"
        return max(missing / self.rate, 1e-9)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._at, 0.0)  # an injected clock may step back; never drain
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._at = now

"""Quota: at most ``limit`` units per fixed window of time."""

from __future__ import annotations

import math
import threading
import time

from services.gateway.policy._clock import Clock
from services.gateway.policy._limits import check_cost, positive_int, positive_number

__all__ = ["Quota"]


class Quota:
    """A fixed-window counter: ``limit`` units per ``window_s`` seconds.

    The first window opens when the quota is created; each later window starts where the
    previous one ended, so windows do not drift with the traffic. A refusal counts
    nothing and says how long until the window ends. A fixed window lets a client spend
    up to twice its quota around a window edge; that is the price of O(1) memory and is
    fine for a daily budget (the token bucket already shapes the short term).

    Examples
    --------
    >>> now = [0.0]
    >>> quota = Quota(limit=2, window_s=60, clock=lambda: now[0])
    >>> quota.take(), quota.take(), quota.remaining
    (0.0, 0.0, 0)
    >>> now[0] = 45.0
    >>> quota.take()
    15.0
    >>> now[0] = 60.0
    >>> quota.take(), quota.remaining
    (0.0, 1)
    """

    def __init__(self, limit: int, window_s: float, clock: Clock = time.monotonic) -> None:
        positive_int("limit", limit)
        positive_number("window_s", window_s)
        self.limit, self.window_s, self._clock = limit, float(window_s), clock
        self._start, self._used = clock(), 0
        self._lock = threading.Lock()

    def take(self, cost: int = 1) -> float:
        """Count ``cost`` units: 0.0 if within the quota, else seconds to the window's end."""
        check_cost(cost)
        with self._lock:
            wait = self._wait(cost)
            if wait == 0.0:
                self._used += cost
            return wait

    def check(self, cost: int = 1) -> float:
        """Like :meth:`take`, but counts nothing."""
        check_cost(cost)
        with self._lock:
            return self._wait(cost)

    @property
    def remaining(self) -> int:
        """Units left in the current window."""
        with self._lock:
            self._roll()
            return self.limit - self._used

    @property
    def untouched(self) -> bool:
        """Nothing counted in the current window: forgetting this quota loses nothing."""
        with self._lock:
            self._roll()
            return self._used == 0

    def _wait(self, cost: int) -> float:
        now = self._roll()
        if self._used + cost <= self.limit:
            return 0.0
        return max(self._start + self.window_s - now, 1e-9)

    def _roll(self) -> float:
        """Move to the window holding now; returns now."""
        now = self._clock()
        passed = math.floor((now - self._start) / self.window_s)
        if passed >= 1:
            self._start += passed * self.window_s
            self._used = 0
        return now

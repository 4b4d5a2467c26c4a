"""The portal's browser sessions: a sign-in becomes a random session id in a cookie; the
token stays with the browser's user and never reaches a cookie.

A session remembers the client it signed in as and the SHA-256 of the token it used, so
revoking the client or rotating its token ends the session at the next page. It grants
``catalogue:read`` and nothing else: the serving routes accept only ``Authorization:
Bearer``, so a page (or a forged cross-site form) can never spend a client's quota.
Every session has a CSRF token that each form posts back (:func:`same`); before sign-in
the ``ms_csrf`` cookie plays that part for the sign-in form.

Sessions live in this process (a restarted or another replica's gateway asks the browser
to sign in again), at most :data:`MAX_SESSIONS`, each for :data:`TTL_S` seconds.

>>> store = Sessions(clock=lambda: 0.0)
>>> session = store.open("alice", "ab" * 32)
>>> store.get(session.id) is session, store.get("forged")
(True, None)
>>> store.close(session.id); store.get(session.id)
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["CSRF_COOKIE", "MAX_SESSIONS", "SESSION_COOKIE", "TTL_S", "Session", "Sessions",
           "new_token", "same"]  # fmt: skip

SESSION_COOKIE: Final = "ms_session"
CSRF_COOKIE: Final = "ms_csrf"
TTL_S: Final = 8 * 3600.0
MAX_SESSIONS: Final = 10_000


def new_token() -> str:
    """A fresh 256-bit random value, URL-safe (a session id or a CSRF token)."""
    return secrets.token_urlsafe(32)


def same(sent: str | None, expected: str | None) -> bool:
    """Whether a posted CSRF token is the expected one (constant time; both must exist).

    >>> same("a", "a"), same("a", "b"), same(None, None), same("", "")
    (True, False, False, False)
    """
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class Session:
    """One signed-in browser: who, with which token (its digest), its CSRF token."""

    id: str
    client: str
    token_sha256: str
    csrf: str
    expires: float  # on the store's clock


class Sessions:
    """Open sessions of this process, oldest evicted first past ``most``."""

    def __init__(self, ttl_s: float = TTL_S, most: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._ttl, self._most, self._clock = ttl_s, most, clock
        self._open: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def open(self, client: str, token_sha256: str) -> Session:
        """A new session for ``client`` (signed in with the token of that digest)."""
        session = Session(new_token(), client, token_sha256, new_token(),
                          self._clock() + self._ttl)  # fmt: skip
        self._open[session.id] = session
        while len(self._open) > self._most:
            self._open.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The open session ``session_id`` names, None when unknown or expired."""
        session = self._open.get(session_id) if session_id else None
        if session is not None and session.expires <= self._clock():
            del self._open[session.id]
            return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._open.pop(session_id, None)

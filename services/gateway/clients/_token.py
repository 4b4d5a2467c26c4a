"""API tokens: ``ms_<token_id>_<secret>``, shown once, stored only as a SHA-256 digest.

``token_id`` (12 hex characters, 48 random bits) names the record, so a lookup is one
dict access and only the secret part is compared, in constant time. The secret is
``secrets.token_urlsafe(32)``: 256 bits from the OS's CSPRNG, 43 URL-safe characters.

Why a fast hash is right here, unlike for passwords: a password hash must be slow
(bcrypt, scrypt, argon2) because people pick passwords from a small, guessable space, so
a leaked hash can be brute-forced one likely password at a time. A token is 256 random
bits; there is nothing to guess, and 2**256 SHA-256 evaluations are out of reach however
fast each is. Salting and stretching add no security for such inputs and would cost
every request CPU time. The digest still matters: a leaked clients topic gives away
no usable token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final

__all__ = ["TOKEN_PREFIX", "new_token", "token_digest", "token_id_of"]

TOKEN_PREFIX: Final = "ms_"  # noqa: S105 - a prefix, not a secret
_SECRET_BYTES: Final = 32
_TOKEN: Final = re.compile(r"ms_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_TOKEN_LENGTH: Final = len(TOKEN_PREFIX) + 12 + 1 + 43


def new_token() -> tuple[str, str]:
    """A fresh ``(token_id, token)``; the token is the caller's to hand out once.

    >>> token_id, token = new_token()
    >>> token_id_of(token) == token_id, len(token)
    (True, 59)
    """
    token_id = secrets.token_hex(6)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def token_id_of(token: object) -> str | None:
    """The token id of a well-formed token, None for anything else (never raises).

    >>> token_id_of("ms_0123456789ab_" + "x" * 43)
    '0123456789ab'
    >>> token_id_of("ms_0123456789ab_short"), token_id_of(None), token_id_of("Bearer x")
    (None, None, None)
    """
    # the length check first: no regex work on a megabyte of header
    if not isinstance(token, str) or len(token) != _TOKEN_LENGTH:
        return None
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token: what the clients topic stores instead of it.

    >>> token_digest("ms_0123456789ab_" + "x" * 43)[:12]
    '0d11aea5b341'
    """
    return hashlib.sha256(token.encode()).hexdigest()

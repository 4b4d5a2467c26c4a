"""Errors of the gateway policy; every one says what was expected and what came.

::

    PolicyError                  root: catch this to handle any policy failure
    ├── InvalidLimitsError       a limit is not a positive number (also a ValueError)
    └── BodyTooLargeError        a request body is larger than the client may send
"""

from __future__ import annotations

__all__ = ["BodyTooLargeError", "InvalidLimitsError", "PolicyError"]


class PolicyError(Exception):
    """Root of the policy errors."""


class InvalidLimitsError(PolicyError, ValueError):
    """A limit is missing, of the wrong type, or not positive."""


class BodyTooLargeError(PolicyError):
    """A request body exceeds the client's ``max_body_bytes``."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size, self.limit = size, limit

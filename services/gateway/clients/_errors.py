"""Errors of the client registry; every one says what was expected, what came, and what
to do next.

::

    ClientError                      root: catch this to handle any client registry failure
    ├── InvalidClientError           bad client name or record field (also a ValueError)
    ├── InvalidScopeError            a scope is not one of the valid forms (also a ValueError)
    ├── ClientExistsError            an active client of that name exists already
    ├── UnknownClientError           no active client of that name
    └── ClientStoreUnavailableError  the clients topic could not be read or written in time
"""

from __future__ import annotations

__all__ = [
    "ClientError",
    "ClientExistsError",
    "ClientStoreUnavailableError",
    "InvalidClientError",
    "InvalidScopeError",
    "UnknownClientError",
]


class ClientError(Exception):
    """Root of the client registry errors."""


class InvalidClientError(ClientError, ValueError):
    """A client name or record field is not valid."""


class InvalidScopeError(ClientError, ValueError):
    """A scope is not one of ``predict:<model>``, ``batch:<model>``, ``catalogue:read``,
    ``admin`` (or the wildcards ``predict:*``, ``batch:*``)."""


class ClientExistsError(ClientError):
    """An active client of that name exists; revoke it first or pick another name."""


class UnknownClientError(ClientError):
    """No active client of that name."""


class ClientStoreUnavailableError(ClientError):
    """Kafka did not answer in time; nothing is known to have been written."""

"""Errors of ``services.security``; every message says what to do next.

::

    KafkaSecurityError       root: catch this to handle any security failure
    ├── RoleError            an unknown role, or options the role does not take
    ├── InvalidUserError     a user name or password SCRAM and ACLs cannot carry
    ├── SecurityModeError    a local state dir's security is not the one asked for
    └── SecurityAdminError   the cluster refused or failed a user or ACL change
"""

from __future__ import annotations

__all__ = [
    "InvalidUserError",
    "KafkaSecurityError",
    "RoleError",
    "SecurityAdminError",
    "SecurityModeError",
]


class KafkaSecurityError(Exception):
    """Root of every error of ``services.security``."""


class RoleError(KafkaSecurityError, ValueError):
    """An unknown role, a role that needs ``--model`` without one, or an option it ignores."""


class InvalidUserError(KafkaSecurityError, ValueError):
    """A user name or password that SCRAM and ACL principals cannot carry."""


class SecurityAdminError(KafkaSecurityError):
    """The cluster refused or failed a SCRAM user or ACL change."""


class SecurityModeError(KafkaSecurityError):
    """A local broker state dir is secure and was asked to run without security (or a
    broker without security runs where a secure one was asked for)."""

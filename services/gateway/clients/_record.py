"""ClientRecord: one API client as the clients topic holds it (JSON, key = name)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from services.gateway.clients._errors import InvalidClientError, InvalidScopeError
from services.gateway.clients._scopes import allows, parse_scopes
from services.gateway.policy import InvalidLimitsError, Limits
from streams.kafka import MODEL_NAME

__all__ = ["ClientRecord", "validate_client_name"]

_TOKEN_ID: Final = re.compile(r"[0-9a-f]{12}")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")


def validate_client_name(name: str) -> str:
    """Client names follow the model name rule: 1-100 letters, digits, ``_`` or ``-``.

    >>> validate_client_name("billing-svc")
    'billing-svc'
    >>> validate_client_name("a b")
    Traceback (most recent call last):
    ...
    services.gateway.clients._errors.InvalidClientError: client name 'a b' is not valid: \
use 1-100 letters, digits, '_' or '-'
    """
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise InvalidClientError(
            f"client name {name!r} is not valid: use 1-100 letters, digits, '_' or '-'"
        )
    return name


@dataclass(frozen=True)
class ClientRecord:
    """An API client: who, what it may do (scopes), how much (limits), and its token's
    SHA-256 (never the token; kept out of ``repr`` so it cannot end up in a log).

    A revoked client keeps its record with ``revoked_at`` set, for the audit trail.
    """

    name: str
    token_id: str
    token_sha256: str = field(repr=False)
    scopes: tuple[str, ...]
    limits: Limits = field(default_factory=Limits)
    description: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    created_by: str = ""
    revoked_at: datetime | None = None
    revoked_by: str = ""
    rotated_at: datetime | None = None
    rotated_by: str = ""

    def __post_init__(self) -> None:
        validate_client_name(self.name)
        if not isinstance(self.token_id, str) or not _TOKEN_ID.fullmatch(self.token_id):
            raise InvalidClientError(f"token_id must be 12 hex characters, got {self.token_id!r}")
        if not isinstance(self.token_sha256, str) or not _SHA256.fullmatch(self.token_sha256):
            raise InvalidClientError("token_sha256 must be 64 lower-case hex characters")
        object.__setattr__(self, "scopes", parse_scopes(self.scopes))
        for name in ("created_at", "revoked_at", "rotated_at"):
            _require_utc(name, getattr(self, name), optional=name != "created_at")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """Whether this client may act under ``scope`` (never once revoked).

        >>> record = ClientRecord("ana", "0123456789ab", "0" * 64, ("predict:*",))
        >>> record.allows("predict:churn"), record.allows("admin")
        (True, False)
        """
        return self.active and allows(self.scopes, scope)

    def revoke(self, *, at: datetime, by: str) -> ClientRecord:
        return replace(self, revoked_at=at, revoked_by=by)

    def rotate(self, token_id: str, token_sha256: str, *, at: datetime, by: str) -> ClientRecord:
        return replace(
            self, token_id=token_id, token_sha256=token_sha256, rotated_at=at, rotated_by=by
        )

    def to_dict(self, *, digest: bool = True) -> dict[str, Any]:
        """Plain JSON types; ``digest=False`` leaves the token digest out (for display)."""
        data: dict[str, Any] = {
            "name": self.name,
            "token_id": self.token_id,
            "token_sha256": self.token_sha256,
            "scopes": list(self.scopes),
            "limits": self.limits.to_dict(),
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "rotated_at": _iso(self.rotated_at),
            "rotated_by": self.rotated_by,
        }
        if not digest:
            del data["token_sha256"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClientRecord:
        """The record of a JSON object; :class:`InvalidClientError` for anything else."""
        try:
            return cls(
                name=data["name"],
                token_id=data["token_id"],
                token_sha256=data["token_sha256"],
                scopes=tuple(data["scopes"]),
                limits=Limits.from_dict(data.get("limits") or {}),
                description=str(data.get("description", "")),
                created_at=_parse_time(data["created_at"]),
                created_by=str(data.get("created_by", "")),
                revoked_at=_optional_time(data.get("revoked_at")),
                revoked_by=str(data.get("revoked_by", "")),
                rotated_at=_optional_time(data.get("rotated_at")),
                rotated_by=str(data.get("rotated_by", "")),
            )
        except (KeyError, TypeError, InvalidLimitsError, InvalidScopeError) as exc:
            raise InvalidClientError(f"not a client record: {exc!r}") from exc


def _require_utc(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidClientError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: object) -> datetime:
    """A UTC datetime from ISO 8601 with a UTC offset."""
    if not isinstance(value, str):
        raise InvalidClientError(f"a time must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidClientError(f"a time must be ISO 8601, got {value!r}") from exc
    if parsed.utcoffset() is None:
        raise InvalidClientError(f"a time must carry its UTC offset, got {value!r}")
    return parsed.astimezone(UTC)


def _optional_time(value: object) -> datetime | None:
    return None if value is None else _parse_time(value)

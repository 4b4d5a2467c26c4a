"""ClientIndex: the clients topic as two dicts (name → record, token id → record)."""

from __future__ import annotations

import hmac
import threading

import orjson

from services.gateway.clients._errors import InvalidClientError
from services.gateway.clients._record import ClientRecord
from services.gateway.clients._token import token_digest, token_id_of

__all__ = ["ClientIndex", "decode"]


class ClientIndex:
    """The latest record of every client, looked up by name or by token; thread-safe.

    Records replace each other by name, as compaction will on the topic: a rotated
    token's old id is dropped from the token map, so the old token stops working.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, ClientRecord] = {}
        self._by_token_id: dict[str, ClientRecord] = {}
        self._lock = threading.Lock()

    def put(self, record: ClientRecord) -> None:
        with self._lock:
            self._drop(record.name)
            self._by_name[record.name] = record
            self._by_token_id[record.token_id] = record

    def remove(self, name: str) -> None:
        """Forget ``name`` (a tombstone: the clients topic never gets one from this code,
        but an operator may compact a client away)."""
        with self._lock:
            self._drop(name)

    def _drop(self, name: str) -> None:
        old = self._by_name.pop(name, None)
        # another client may hold the same id since (48 random bits; the store avoids it)
        if old is not None and self._by_token_id.get(old.token_id) is old:
            del self._by_token_id[old.token_id]

    def get(self, name: str) -> ClientRecord | None:
        with self._lock:
            return self._by_name.get(name)

    def by_token_id(self, token_id: str) -> ClientRecord | None:
        with self._lock:
            return self._by_token_id.get(token_id)

    def records(self) -> list[ClientRecord]:
        """Every record, revoked ones too, by name."""
        with self._lock:
            return [self._by_name[name] for name in sorted(self._by_name)]

    def authenticate(self, token: object) -> ClientRecord | None:
        """The active client holding ``token``; None for anything else (never raises).

        The id finds the record; the digest comparison is constant-time so response
        times reveal nothing about the secret.
        """
        if not isinstance(token, str):
            return None
        token_id = token_id_of(token)
        if token_id is None:
            return None
        record = self.by_token_id(token_id)
        if record is None or not record.active:
            return None
        digest = token_digest(token)
        return record if hmac.compare_digest(digest, record.token_sha256) else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_name)


def decode(key: bytes | str | None, value: bytes | None) -> tuple[str, ClientRecord | None]:
    """``(name, record)`` of one message (record None for a tombstone).

    Raises :class:`InvalidClientError` for a record this code cannot read.
    """
    try:
        name = key.decode() if isinstance(key, bytes) else key
        if not name:
            raise InvalidClientError("the record has no key")
        if value is None:
            return name, None
        record = ClientRecord.from_dict(orjson.loads(value))
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise InvalidClientError(f"not a JSON client record: {exc}") from exc
    if record.name != name:
        raise InvalidClientError(f"key {name!r} holds the record of {record.name!r}")
    return name, record

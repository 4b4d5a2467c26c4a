"""ClientStore: create, revoke and rotate API clients on the compacted clients topic."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType

import orjson
from confluent_kafka import KafkaError, KafkaException, Message

from services.gateway.clients._errors import (
    ClientExistsError,
    ClientStoreUnavailableError,
    UnknownClientError,
)
from services.gateway.clients._index import ClientIndex
from services.gateway.clients._reader import TopicReader
from services.gateway.clients._record import ClientRecord, validate_client_name
from services.gateway.clients._scopes import parse_scopes
from services.gateway.clients._token import new_token, token_digest
from services.gateway.policy import Limits
from streams.kafka import (
    KafkaConfig,
    KafkaSetupError,
    Topics,
    ensure_topics,
    make_admin,
    make_producer,
)

__all__ = ["ClientStore"]

log = logging.getLogger(__name__)


class ClientStore:
    """The writer of the clients topic (admin tools: the CLI, an admin endpoint).

    Each change reads the topic to its end first, then decides (does the client exist?)
    and writes one record with an idempotent producer, waiting for the broker's
    acknowledgement. A token is returned once and never stored, logged or written:
    only its SHA-256 is.

    Two admins changing the same client at the same instant both succeed and the later
    record wins (there is no fencing, unlike the model registry): changes are rare and
    made by people, and the result is always one consistent record per client.
    """

    def __init__(self, kafka: KafkaConfig, topics: Topics, *, timeout: float = 20.0) -> None:
        self._kafka, self._topics, self.timeout = kafka, topics, timeout
        self._ensure_topic()
        self._index = ClientIndex()
        self._reader = TopicReader(kafka, topics, "store")
        self._producer = make_producer(kafka)

    def _ensure_topic(self) -> None:
        spec = next(s for s in self._topics.global_specs(1) if s.name == self._topics.clients)
        try:
            ensure_topics(make_admin(self._kafka), [spec], timeout=self.timeout)
        except (KafkaException, KafkaSetupError) as exc:
            raise ClientStoreUnavailableError(
                f"cannot reach Kafka at {self._kafka.bootstrap} to check the clients topic "
                f"{spec.name}: {exc}. Is Kafka up (`modelstream kafka status`)?"
            ) from exc

    # -- changes

    def create(
        self,
        name: str,
        scopes: str | Iterable[str],
        limits: Limits | None = None,
        description: str = "",
        actor: str = "",
    ) -> tuple[ClientRecord, str]:
        """A new client and its token (shown once: hand it over now).

        A revoked name may be created again; it gets a new token."""
        validate_client_name(name)
        granted = parse_scopes(scopes)
        self._sync()
        existing = self._index.get(name)
        if existing is not None and existing.active:
            raise ClientExistsError(
                f"client {name!r} exists (created {existing.created_at:%Y-%m-%d %H:%M} by "
                f"{existing.created_by or 'unknown'}): rotate its token "
                f"(`modelstream clients rotate {name}`), revoke it first, or pick another name"
            )
        token_id, token = self._new_token()
        record = ClientRecord(
            name, token_id, token_digest(token), granted, limits or Limits(), description,
            created_at=_now(), created_by=actor,
        )  # fmt: skip
        self._write(record)
        log.info("client %s created by %s, scopes %s", name, actor or "-", ",".join(granted))
        return record, token

    def revoke(self, name: str, actor: str = "") -> ClientRecord:
        """Stop ``name``'s token from working; the record stays, with ``revoked_at`` set.

        Revoking a revoked client changes nothing and returns its record."""
        record = self._known(name)
        if not record.active:
            return record
        revoked = record.revoke(at=_now(), by=actor)
        self._write(revoked)
        log.info("client %s revoked by %s", name, actor or "-")
        return revoked

    def rotate(self, name: str, actor: str = "") -> tuple[ClientRecord, str]:
        """A new token for ``name``; the old one stops working once gateways see it."""
        record = self._known(name)
        if not record.active:
            raise UnknownClientError(
                f"client {name!r} was revoked at {record.revoked_at:%Y-%m-%d %H:%M}, so it "
                f"has no token to rotate; `modelstream clients create {name}` issues a new one"
            )
        token_id, token = self._new_token()
        rotated = record.rotate(token_id, token_digest(token), at=_now(), by=actor)
        self._write(rotated)
        log.info("client %s token rotated by %s", name, actor or "-")
        return rotated, token

    # -- reading

    def list(self) -> list[ClientRecord]:
        """Every client, revoked ones too, by name."""
        self._sync()
        return self._index.records()

    def get(self, name: str) -> ClientRecord | None:
        self._sync()
        return self._index.get(name)

    # -- internals

    def _sync(self) -> None:
        self._reader.catch_up(self._index, self.timeout)

    def _known(self, name: str) -> ClientRecord:
        self._sync()
        record = self._index.get(name)
        if record is None:
            known = ", ".join(r.name for r in self._index.records()[:10]) or "none yet"
            raise UnknownClientError(
                f"no client named {name!r} (clients: {known}); `modelstream clients list` "
                "shows them all"
            )
        return record

    def _new_token(self) -> tuple[str, str]:
        # 48-bit ids rarely collide; when one does, the older client would lose its login
        while True:
            token_id, token = new_token()
            if self._index.by_token_id(token_id) is None:
                return token_id, token

    def _write(self, record: ClientRecord) -> None:
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                failures.append(error)

        value = orjson.dumps(record.to_dict())
        try:
            self._producer.produce(
                self._topics.clients, value, record.name.encode(), on_delivery=delivered
            )
            left = self._producer.flush(self.timeout)
        except (KafkaException, BufferError) as exc:
            raise self._unwritten(record, str(exc)) from exc
        if failures or left:
            why = str(failures[0]) if failures else f"no acknowledgement within {self.timeout:g}s"
            raise self._unwritten(record, why)
        self._index.put(record)

    def _unwritten(self, record: ClientRecord, why: str) -> ClientStoreUnavailableError:
        return ClientStoreUnavailableError(
            f"could not write client {record.name!r} to {self._topics.clients} at "
            f"{self._kafka.bootstrap}: {why}. It may or may not have been written: check "
            "`modelstream clients list`, then retry (rotate, if the token was not shown)"
        )

    # -- lifecycle

    def close(self) -> None:
        self._producer.flush(self.timeout)
        self._reader.close()

    def __enter__(self) -> ClientStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _now() -> datetime:
    return datetime.now(UTC)

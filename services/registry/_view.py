"""RegistryView: rebuild the registry from its compacted topics and follow it live."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AdminClient,
    OffsetSpec,
)

from schemas.codec import ContractError
from services.registry import _artifact, _wire
from services.registry._errors import IntegrityError, RegistryUnavailableError
from services.registry._model import Change, ModelVersion, Routing
from services.registry._signing import Signature, Trust
from services.registry._state import RegistryState
from streams.kafka import KafkaConfig, Topics, consumer_config, make_admin

__all__ = ["RegistryView"]

log = logging.getLogger(__name__)
_BATCH: Final = 64  # messages per consume call; chunk records are up to 512 KiB each
_UNKNOWN_TOPIC_GRACE: Final = 5.0  # seconds a just-created topic may take to be known
_TRANSIENT: Final = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,  # a just-created topic the client's metadata lacks
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


class RegistryView:
    """A read-only copy of the registry, rebuilt from the topics and kept current.

    It reads ``topics.models`` and ``topics.routing`` from the beginning with its own
    group-less consumer (assign, ``read_committed``): a half-written artifact is never
    seen. :meth:`sync` catches up to the end, :meth:`poll` applies what arrived since.
    One thread uses a view; wrap it in a follower thread to share it.

    ``trust`` decides which versions :meth:`load_model` unpickles (checked before the
    artifact is fetched). None checks only the SHA-256: for tools and tests that build a
    view themselves; serving processes pass the :class:`Trust` their settings describe.
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        topics: Topics,
        *,
        timeout: float = 30.0,
        trust: Trust | None = None,
    ) -> None:
        self._kafka, self._topics, self._timeout = kafka, topics, timeout
        self._trust = Trust.unchecked() if trust is None else trust
        self._state = RegistryState()
        self._models: dict[tuple[str, int], object] = {}
        self._consumer = self._new_consumer()
        self._partitions = [TopicPartition(topics.models, 0), TopicPartition(topics.routing, 0)]
        self._consumer.assign(
            [TopicPartition(tp.topic, 0, OFFSET_BEGINNING) for tp in self._partitions]
        )
        self._fetcher: Consumer | None = None
        self._admin: AdminClient | None = None

    def _new_consumer(self) -> Consumer:
        # a group id is required by the client, but assign() never joins or commits
        group = f"{self._topics.prefix}._registry-view"
        return Consumer(consumer_config(self._kafka, group, read_committed=True))

    # -- following

    def sync(self, timeout: float | None = None, *, include_pending: bool = False) -> None:
        """Read up to the current end of both topics (committed records).

        ``include_pending`` also waits for transactions in flight to finish, so nothing
        written before this call is missed (writers use it before choosing a version).
        """
        timeout = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        targets = self._end_offsets(include_pending, deadline)
        while not self._reached(targets):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RegistryUnavailableError(
                    f"could not read the registry topics to their end within {timeout:g}s "
                    f"(at {self._positions()}, end {targets}): a slow broker, or a registry "
                    "transaction still open; retry, or raise the timeout"
                )
            for msg in self._consumer.consume(_BATCH, min(remaining, 0.2)):
                self._apply(msg)

    def poll(self, timeout: float = 0.0) -> list[Change]:
        """Apply what arrived since the last call; waits up to ``timeout`` for the first."""
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        applied = [self._apply(first)]
        applied += [self._apply(msg) for msg in self._consumer.consume(_BATCH, 0)]
        return [change for change in applied if change is not None]

    def _end_offsets(self, include_pending: bool, deadline: float) -> dict[str, tuple[int, int]]:
        """``topic -> (low, end)``; end is the last stable offset unless ``include_pending``.

        Retries while the cluster settles (a leader moving, a topic just created); a topic
        still unknown after a few seconds does not exist."""
        unknown_until = min(deadline, time.monotonic() + _UNKNOWN_TOPIC_GRACE)
        while True:
            timeout = max(deadline - time.monotonic(), 0.1)
            try:
                if include_pending:
                    return self._log_ends(timeout)
                return {
                    tp.topic: self._consumer.get_watermark_offsets(tp, timeout, cached=False)
                    for tp in self._partitions
                }
            except KafkaException as exc:
                error = exc.args[0]
                until = (
                    unknown_until if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART else deadline
                )
                transient = error.retriable() or error.code() in _TRANSIENT
                if not transient or time.monotonic() >= until:
                    raise self._unreachable(exc) from exc
            time.sleep(0.1)

    def _log_ends(self, timeout: float) -> dict[str, tuple[int, int]]:
        """Log end offsets counting open transactions (read_uncommitted)."""
        admin = self._admin = self._admin or make_admin(self._kafka)
        lows = {
            tp.topic: self._consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)[0]
            for tp in self._partitions
        }
        futures = admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in self._partitions},  # type: ignore[no-untyped-call]
            isolation_level=IsolationLevel.READ_UNCOMMITTED,
            request_timeout=timeout,
        )
        return {
            tp.topic: (lows[tp.topic], future.result().offset) for tp, future in futures.items()
        }

    def _reached(self, targets: dict[str, tuple[int, int]]) -> bool:
        for tp in self._consumer.position(self._partitions):
            low, end = targets[tp.topic]
            if end > low and tp.offset < end:
                return False
        return True

    def _positions(self) -> dict[str, int]:
        return {tp.topic: tp.offset for tp in self._consumer.position(self._partitions)}

    def _unreachable(self, exc: KafkaException) -> RegistryUnavailableError:
        return RegistryUnavailableError(
            f"cannot read the registry topics {self._topics.models} and {self._topics.routing} "
            f"from {self._kafka.bootstrap}: {exc.args[0]}. Is Kafka up, and were the topics "
            "created (`modelstream topics create`)?"
        )

    # -- applying records

    def _apply(self, msg: Message) -> Change | None:
        where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
        if msg.error() is not None:
            log.warning("registry read error at %s: %s", where, msg.error())
            return None
        raw_key, value = msg.key(), msg.value()
        try:
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            if msg.topic() == self._topics.routing:
                return self._apply_routing(key, value)
            return self._apply_model(key, value, msg.offset())
        except (ContractError, UnicodeDecodeError, ValueError) as exc:
            log.warning("skipping a registry record the registry cannot read at %s: %s", where, exc)
            return None

    def _apply_routing(self, model: str, value: bytes | None) -> Change | None:
        policy_of = _wire.policy_model(model)
        if policy_of is not None:
            policy = None if value is None else orjson.loads(value)
            if policy is not None and not isinstance(policy, dict):
                raise ValueError(f"the policy of {policy_of} is not a JSON object")
            self._state.set_policy(policy_of, policy)
            return None
        if value is None:
            return self._state.set_routing(model, None)
        routing = _wire.routing_from_record(_wire.codec("routing").decode_avro(value))
        if routing.model != model:
            raise ValueError(f"key {model!r} holds the routing of {routing.model!r}")
        return self._state.set_routing(model, routing)

    def _apply_model(self, key: str, value: bytes | None, offset: int | None) -> Change | None:
        parsed = _wire.parse_key(key)
        if isinstance(parsed, _wire.ChunkKey):
            self._state.add_chunk(*parsed, offset=None if value is None else offset)
            return None
        if isinstance(parsed, _wire.SignatureKey):
            self._state.set_signature(*parsed, _signature(parsed, value))
            return None
        if parsed is None:
            raise ValueError(f"unexpected key {key!r} on the models topic")
        if value is None:
            self._state.remove_version(*parsed)
            return None
        version = _wire.version_from_record(_wire.codec("model_metadata").decode_avro(value))
        if (version.name, version.version) != parsed:
            raise ValueError(f"key {key!r} holds the metadata of {version.key!r}")
        return self._state.add_version(version)

    # -- reading

    def models(self) -> list[str]:
        """Names of every registered model, sorted."""
        return self._state.models()

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first (:class:`UnknownModelError` if none)."""
        return self._state.versions(name)

    def version(self, name: str, version: int) -> ModelVersion:
        return self._state.version(name, version)

    def routing(self, name: str) -> Routing | None:
        return self._state.routing(name)

    def policy(self, name: str) -> Mapping[str, Any] | None:
        """The model's promotion policy as stored (a JSON object); None when it has none."""
        return self._state.policy(name)

    def next_version(self, name: str) -> int:
        return self._state.next_version(name)

    def signature(self, name: str, version: int) -> Signature | None:
        """The version's signature; None when it was registered unsigned."""
        self._state.version(name, version)  # UnknownModelError / UnknownVersionError
        return self._state.signature(name, version)

    def artifact(self, name: str, version: int) -> bytes:
        """The artifact's bytes, fetched from the models topic; SHA-256 verified."""
        mv = self._state.version(name, version)
        data = b"".join(self._fetch(mv, self._state.chunk_offsets(name, version)))
        if len(data) != mv.artifact_size:
            raise IntegrityError(
                f"artifact of {mv.key} has {len(data)} bytes, its metadata says "
                f"{mv.artifact_size}: register the model again"
            )
        _artifact.verify(data, mv.artifact_sha256, what=f"{name} v{version}")
        return data

    def load_model(self, name: str, version: int) -> object:
        """The model object; cached per version. Before unpickling, the version must pass
        the view's :class:`Trust` (:class:`UntrustedVersionError`) and the fetched bytes
        must match the signed SHA-256 (:class:`IntegrityError`)."""
        cached = self._models.get((name, version))
        if cached is None:
            mv = self._state.version(name, version)
            self._trust.check(mv, self._state.signature(name, version))
            data = self.artifact(name, version)
            cached = _artifact.require_predictor(_artifact.deserialize(data, mv.artifact_format))
            self._models[(name, version)] = cached
        return cached

    def _fetch(self, mv: ModelVersion, offsets: list[int]) -> list[bytes]:
        """The chunks at ``offsets`` (index order), read again from the models topic."""
        fetcher = self._fetcher = self._fetcher or self._new_consumer()
        fetcher.assign([TopicPartition(self._topics.models, 0, min(offsets))])
        try:
            found = self._read_chunks(fetcher, mv, offsets)
        finally:
            fetcher.unassign()
        missing = [offset for offset in offsets if offset not in found]
        if missing:
            raise IntegrityError(
                f"chunks of {mv.key} at offsets {missing[:5]} are gone from "
                f"{self._topics.models}; register the model again"
            )
        return [found[offset] for offset in offsets]

    def _read_chunks(
        self, fetcher: Consumer, mv: ModelVersion, offsets: list[int]
    ) -> dict[int, bytes]:
        wanted = {offset: index for index, offset in enumerate(offsets)}
        last = max(offsets)  # not offsets[-1]: a rewritten chunk lies past the others
        found: dict[int, bytes] = {}
        deadline, passed = time.monotonic() + self._timeout, False
        while len(found) < len(wanted) and not passed:
            if time.monotonic() > deadline:
                raise RegistryUnavailableError(
                    f"could not read the artifact of {mv.key} within {self._timeout:g}s"
                )
            for msg in fetcher.consume(_BATCH, 0.2):
                offset = -1 if msg.error() is not None else msg.offset() or 0
                if offset in wanted:
                    found[offset] = _chunk_data(mv, wanted[offset], msg)
                passed = passed or offset > last
        return found

    # -- lifecycle

    def close(self) -> None:
        self._consumer.close()
        if self._fetcher is not None:
            self._fetcher.close()

    def __enter__(self) -> RegistryView:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _signature(key: _wire.SignatureKey, value: bytes | None) -> Signature | None:
    if value is None:
        return None
    record = _wire.codec("signature").decode_avro(value)
    if (record["model"], record["version"]) != key:
        raise ValueError(f"key {key.model}/{key.version}/signature holds another version's")
    return Signature(record["key_id"], record["signature"])


def _chunk_data(mv: ModelVersion, index: int, msg: Message) -> bytes:
    where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
    try:
        record = _wire.codec("chunk").decode_avro(msg.value() or b"")
    except ContractError as exc:
        raise IntegrityError(f"chunk {index} of {mv.key} at {where} is unreadable: {exc}") from exc
    if (record["model"], record["version"], record["index"]) != (mv.name, mv.version, index):
        raise IntegrityError(f"the record at {where} is not chunk {index} of {mv.key}")
    data: bytes = record["data"]
    return data

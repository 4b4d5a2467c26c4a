"""Registry: register versions and change routing, one Kafka transaction per change."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import orjson
import pandas as pd
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from services.registry import _archive, _artifact, _routing, _wire
from services.registry._draft import Draft, check_size, make_draft
from services.registry._errors import (
    ConcurrentChangeError,
    InvalidModelError,
    RegistryError,
    RegistryUnavailableError,
)
from services.registry._model import ModelVersion, Routing
from services.registry._signing import Signature, Signer, Trust
from services.registry._view import RegistryView
from streams.kafka import KafkaConfig, Topics, make_producer

__all__ = ["DEFAULT_CHUNK_SIZE", "DEFAULT_MAX_ARTIFACT_BYTES", "Registry"]

DEFAULT_CHUNK_SIZE: Final = 512 * 1024  # fits any broker's default 1 MB record limit
DEFAULT_MAX_ARTIFACT_BYTES: Final = 256 * 1024 * 1024
MAX_RECORD_BYTES: Final = 1_000_000  # librdkafka's default message.max.bytes
_FENCED: Final = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)
T = TypeVar("T")
Record = tuple[str, str, bytes | None]  # topic, key, value (None: a tombstone)
Progress = Callable[[int, int], None]  # (chunks the broker acknowledged, chunks in all)


class Registry:
    """Writes the registry: model versions, routing, and the audit events.

    Each change is one transaction of a producer whose ``transactional.id`` is
    ``<prefix>._registry.<model>``: starting it fences any other writer of the same model
    and settles its open transaction, then the registry is read to its end, the change is
    decided (next version = highest + 1) and written. Two machines changing one model at
    the same time cannot both succeed: the fenced one gets :class:`ConcurrentChangeError`
    and nothing of it is written. Reads (:meth:`models`, :meth:`versions`,
    :meth:`routing`) catch up with the topics first.

    With a ``signer``, every registered version is signed (a ``<name>/<version>/signature``
    record in the same transaction); without one, versions are unsigned and serving
    processes refuse them unless told to allow unsigned versions. A ``trust`` is what
    its view loads models with (a process that registers and also runs models, as the
    lifecycle does); without one, the view checks SHA-256 only.
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        topics: Topics,
        *,
        actor: str,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        timeout: float = 90.0,
        signer: Signer | None = None,
        trust: Trust | None = None,
    ) -> None:
        if not 1024 <= chunk_size <= _wire.TOPIC_MAX_BYTES - 65536:
            raise ValueError(f"chunk_size must be 1 KiB .. 8 MiB - 64 KiB, got {chunk_size}")
        self._kafka, self._topics, self.actor = kafka, topics, actor
        self.chunk_size = chunk_size
        self.max_artifact_bytes = max_artifact_bytes
        self.timeout = timeout
        self.signer = signer
        self._view = RegistryView(kafka, topics, timeout=timeout, trust=trust)

    # -- registering

    def register(
        self,
        name: str,
        model_obj: object,
        input_schema: Mapping[str, Any],
        *,
        task: str | None = None,
        reference: pd.DataFrame | None = None,
        sensitive: Iterable[str] = (),
        description: str = "",
        hyperparameters: Mapping[str, Any] | None = None,
        training_metrics: Mapping[str, float] | None = None,
        code_version: str | None = None,
        fmt: str = "cloudpickle",
        role: str | None = None,
        positive_label: str | None = None,
        lineage: Mapping[str, Any] | None = None,
        on_progress: Progress | None = None,
    ) -> ModelVersion:
        """Serialise ``model_obj`` and register it as the next version of ``name``.

        ``task`` is guessed from the library when None (scikit-learn's and River's
        classifier / regressor types). ``role`` (champion, challenger, backup) also routes
        traffic to the version; the first version of a model becomes champion unless a
        role says otherwise. ``positive_label`` is the class a classifier's selection
        rates and fairness count: one of its classes, as text; when None it is the one
        class reading ``true``, ``1`` or ``yes`` (:class:`InvalidModelError` if there is
        not exactly one), or ``"True"`` for a model that does not expose its classes.
        ``on_progress(done, total)`` is called each time the broker acknowledges one more
        chunk of the artifact (inside the transaction, before it commits): a progress bar.
        """
        _artifact.require_predictor(model_obj)
        draft = make_draft(
            name, _artifact.serialize(model_obj, fmt), input_schema, model=model_obj, task=task,
            fmt=fmt, max_bytes=self.max_artifact_bytes, reference=reference,
            sensitive=sensitive, description=description, hyperparameters=hyperparameters,
            training_metrics=training_metrics, code_version=code_version, role=role,
            positive_label=positive_label, lineage=lineage,
        )  # fmt: skip
        return self._register(draft, on_progress)

    def register_artifact_bytes(
        self,
        name: str,
        data: bytes,
        input_schema: Mapping[str, Any],
        *,
        task: str | None = None,
        fmt: str = "cloudpickle",
        reference: pd.DataFrame | None = None,
        sensitive: Iterable[str] = (),
        description: str = "",
        hyperparameters: Mapping[str, Any] | None = None,
        training_metrics: Mapping[str, float] | None = None,
        code_version: str | None = None,
        role: str | None = None,
        positive_label: str | None = None,
        lineage: Mapping[str, Any] | None = None,
        on_progress: Progress | None = None,
    ) -> ModelVersion:
        """Register an artifact already serialised (a file). It is loaded once to check
        that it is a predictor, which runs its code: register only files you trust.
        Arguments as :meth:`register`."""
        check_size(name, data, self.max_artifact_bytes)
        model = _artifact.deserialize(data, _artifact.check_format(fmt))
        draft = make_draft(
            name, data, input_schema, model=model, task=task, fmt=fmt,
            max_bytes=self.max_artifact_bytes, reference=reference, sensitive=sensitive,
            description=description, hyperparameters=hyperparameters,
            training_metrics=training_metrics, code_version=code_version, role=role,
            positive_label=positive_label, lineage=lineage,
        )  # fmt: skip
        return self._register(draft, on_progress)

    def _register(self, draft: Draft, on_progress: Progress | None = None) -> ModelVersion:
        name, chunks = draft.name, _artifact.split(draft.data, self.chunk_size)
        progress = None if on_progress is None else _ChunkProgress(len(chunks), on_progress)

        def plan() -> tuple[list[Record], ModelVersion]:
            at = _now()
            number = self._view.next_version(name)
            version = draft.version(number, author=self.actor, at=at, chunk_count=len(chunks))
            signature = None if self.signer is None else self.signer.sign(version)
            records = self._version_records(version, chunks, signature)
            summary = _summary(version) | {"key_id": self.signer and self.signer.key_id}
            records.append(self._event(name, number, "register", draft.description, summary))
            decision = _routing.assign(self._view.routing(name), name, number, draft.role)
            if decision is not None:
                reason = f"registered v{number} as {draft.role or 'champion'}"
                records += self._routing_records(decision, reason, at)[1]
            return records, version

        return self._transact(name, plan, None if progress is None else progress.delivered)

    def _version_records(
        self, version: ModelVersion, chunks: list[bytes], signature: Signature | None
    ) -> list[Record]:
        name, number, count = version.name, version.version, len(chunks)
        chunk_codec, models = _wire.codec("chunk"), self._topics.models
        records: list[Record] = []
        for index, piece in enumerate(chunks):
            value = chunk_codec.encode_avro(_wire.chunk_record(name, number, index, count, piece))
            records.append((models, _wire.chunk_key(name, number, index), value))
        if signature is not None:
            records.append(_signature_record(models, version, signature))
        metadata = _wire.codec("model_metadata").encode_avro(_wire.version_to_record(version))
        if len(metadata) > MAX_RECORD_BYTES:
            raise InvalidModelError(
                f"the metadata of {version.key} takes {len(metadata) / 1e6:.1f} MB, over the "
                f"{MAX_RECORD_BYTES / 1e6:.0f} MB a Kafka record may hold by default; profile "
                "fewer columns or shorten the description and hyperparameters"
            )
        return [*records, (models, version.key, metadata)]

    # -- archival

    def archive(self, name: str, version: int, to: Path) -> Path:
        """Export ``version`` (artifact, metadata, signature) to ``to/<name>-v<version>``;
        the artifact is fetched and SHA-256 checked first. Writes nothing to Kafka."""
        self._view.sync()
        mv = self._view.version(name, version)
        signature = self._view.signature(name, version)
        data = self._view.artifact(name, version)
        return _archive.write_archive(to, _archive.Archive(mv, signature, data))

    def remove(self, name: str, version: int, *, reason: str = "", archived_to: str = "") -> None:
        """Tombstone every record of ``version`` (chunks, signature, metadata) in one
        transaction with a ``removed`` event, so compaction drops it. Refused
        (:class:`RoutingError`) while it is champion, challenger or backup; an earlier
        champion leaves the rollback history in the same transaction."""

        def plan() -> tuple[list[Record], None]:
            mv = self._view.version(name, version)
            routing = self._view.routing(name)
            _routing.refuse_removal(routing, name, version)
            records: list[Record] = [(self._topics.models, key, None) for key in _wire.keys_of(mv)]
            if routing is not None and version in routing.previous_champions:
                kept = tuple(v for v in routing.previous_champions if v != version)
                history = replace(routing, previous_champions=kept)
                stamped = _routing.stamp(
                    history, actor=self.actor, reason=f"removed v{version}", at=_now()
                )
                value = _wire.codec("routing").encode_avro(_wire.routing_to_record(stamped))
                records.append((self._topics.routing, name, value))
            details = _summary(mv) | {"archived_to": archived_to}
            records.append(self._event(name, version, "removed", reason, details))
            return records, None

        self._transact(name, plan)

    def restore(self, path: Path, *, reason: str = "") -> ModelVersion:
        """Publish an archive again under its own version number, with the same chunks
        count, signature and metadata (it verifies as before), and a ``restored`` event.
        Refused if that version is on the topic already."""
        archived = _archive.read_archive(path)
        mv = archived.version
        chunks = _archive.pieces(archived.data, mv.chunk_count)

        def plan() -> tuple[list[Record], ModelVersion]:
            if mv.version in {v.version for v in self._known_versions(mv.name)}:
                raise InvalidModelError(
                    f"{mv.key} is already registered, so its archive {path} was not restored; "
                    f"`modelstream models show {mv.name}` lists the versions on the topic"
                )
            records = self._version_records(mv, chunks, archived.signature)
            key_id = archived.signature and archived.signature.key_id
            details = _summary(mv) | {"restored_from": str(path), "key_id": key_id}
            return [*records, self._event(mv.name, mv.version, "restored", reason, details)], mv

        return self._transact(mv.name, plan)

    def _known_versions(self, name: str) -> list[ModelVersion]:
        return self._view.versions(name) if name in self._view.models() else []

    # -- routing

    def promote(self, name: str, version: int, reason: str = "",
                details: Mapping[str, Any] | None = None) -> Routing:  # fmt: skip
        """``version`` becomes champion; the current champion can be rolled back to.
        ``details`` join the event's (the numbers a gate decided on, say)."""
        return self._change(name, version, reason, lambda r: _routing.promote(r, name, version),
                            details)  # fmt: skip

    def set_challenger(
        self, name: str, version: int | None, fraction: float = 1.0, reason: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> Routing:  # fmt: skip
        """Shadow-score ``version`` on ``fraction`` of requests; ``None`` clears it."""
        return self._change(
            name, version, reason, lambda r: _routing.set_challenger(r, version, fraction), details
        )

    def retire(self, name: str, version: int, reason: str = "", *, action: str = "retire",
               details: Mapping[str, Any] | None = None) -> Routing:  # fmt: skip
        """The challenger ``version`` stops shadowing; the event says ``action`` (``retire``
        for the lifecycle's gate, ``veto`` for a person) and why."""

        def decide(current: Routing | None) -> _routing.Decision:
            return _routing.retire(current, name, version, action)

        return self._change(name, version, reason, decide, details)

    def set_backup(self, name: str, version: int | None, reason: str = "") -> Routing:
        """``version`` answers when the champion fails; ``None`` clears it."""
        return self._change(name, version, reason, lambda r: _routing.set_backup(r, version))

    def rollback(self, name: str, reason: str = "") -> Routing:
        """The previous champion serves again (:class:`NoPreviousChampionError` if none)."""
        return self._change(name, None, reason, _routing.rollback)

    def _change(
        self,
        name: str,
        version: int | None,
        reason: str,
        decide: Callable[[Routing | None], _routing.Decision],
        details: Mapping[str, Any] | None = None,
    ) -> Routing:
        def plan() -> tuple[list[Record], Routing]:
            self._view.versions(name)  # UnknownModelError before anything else
            if version is not None:
                self._view.version(name, version)
            decision = decide(self._view.routing(name))
            if details:
                decision = decision._replace(details={**decision.details, **details})
            routing, records = self._routing_records(decision, reason, _now())
            return records, routing

        return self._transact(name, plan)

    # -- policy and decisions

    def set_policy(self, name: str, policy: Mapping[str, Any], reason: str = "") -> None:
        """Store ``policy`` (a JSON object) as the model's promotion policy, with a
        ``policy`` event holding it; the lifecycle reads it from every view."""

        def plan() -> tuple[list[Record], None]:
            routing = self._view.routing(name)
            if routing is None:
                self._view.versions(name)  # UnknownModelError for an unknown name
            value = orjson.dumps(dict(policy))
            version = routing.champion if routing is not None else 0
            event = self._event(name, version, "policy", reason, {"policy": dict(policy)})
            return [(self._topics.routing, _wire.policy_key(name), value), event], None

        self._transact(name, plan)

    def record(self, name: str, version: int, action: str, reason: str = "",
               details: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        """A model event with no change to the registry: a decision to wait, a
        retraining started or failed. Visible in ``model_events`` and ``models show``."""

        def plan() -> tuple[list[Record], None]:
            self._view.versions(name)
            return [self._event(name, version, action, reason, details or {})], None

        self._transact(name, plan)

    def _routing_records(
        self, decision: _routing.Decision, reason: str, at: datetime
    ) -> tuple[Routing, list[Record]]:
        """The stamped routing, its record and its event."""
        routing = _routing.stamp(decision.routing, actor=self.actor, reason=reason, at=at)
        value = _wire.codec("routing").encode_avro(_wire.routing_to_record(routing))
        model, action = routing.model, decision.action
        event = self._event(model, decision.version, action, reason, decision.details)
        return routing, [(self._topics.routing, model, value), event]

    def _event(
        self, model: str, version: int, action: str, reason: str, details: Mapping[str, Any]
    ) -> Record:
        record = _wire.event_record(
            model, version, action, actor=self.actor, reason=reason, details=details
        )
        return (self._topics.model_events, model, _wire.codec("model_event").encode_avro(record))

    # -- transactions

    def _transact(
        self,
        model: str,
        plan: Callable[[], tuple[list[Record], T]],
        on_delivered: Callable[[str], None] | None = None,
    ) -> T:
        """Fence other writers of ``model``, catch up, decide, write atomically.
        ``on_delivered(key)``: each record the broker acknowledged, before the commit."""
        producer = self._producer(model)
        try:
            self._view.sync(self.timeout, include_pending=True)
            records, result = plan()
            producer.begin_transaction()
            for topic, key, value in records:
                _produce(producer, topic, key, value, on_delivered)
            if on_delivered is not None:
                producer.flush(self.timeout)  # serves the delivery reports as they come
            producer.commit_transaction(self.timeout)
        except KafkaException as exc:
            raise self._failed(model, exc) from exc
        finally:
            _close(producer)
        return result

    def _producer(self, model: str) -> Producer:
        producer = make_producer(
            self._kafka,
            transactional_id=f"{self._topics.prefix}._registry.{model}",
            message_max_bytes=max(MAX_RECORD_BYTES, self.chunk_size + 65536),
        )
        try:
            producer.init_transactions(self.timeout)
        except KafkaException as exc:
            _close(producer)
            raise self._failed(model, exc) from exc
        return producer

    def _failed(self, model: str, exc: KafkaException) -> RegistryError:
        error = exc.args[0]
        if isinstance(error, KafkaError) and error.code() in _FENCED:
            return ConcurrentChangeError(
                f"another writer changed {model} while this change was being written, so "
                f"nothing was written; check `modelstream models show {model}` and retry"
            )
        return RegistryUnavailableError(
            f"could not write to the registry at {self._kafka.bootstrap}: {error}; nothing "
            "was written. Retry once Kafka is reachable (are the topics created?)"
        )

    # -- reading

    def models(self) -> list[str]:
        self._view.sync()
        return self._view.models()

    def versions(self, name: str) -> list[ModelVersion]:
        self._view.sync()
        return self._view.versions(name)

    def routing(self, name: str) -> Routing | None:
        self._view.sync()
        return self._view.routing(name)

    @property
    def view(self) -> RegistryView:
        """The registry as this writer last read it (loads artifacts too)."""
        return self._view

    def close(self) -> None:
        self._view.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _now() -> datetime:
    """Now, at the millisecond precision the topics keep (so returned values equal read ones)."""
    return _wire.from_millis(_wire.to_millis(datetime.now(UTC)))


class _ChunkProgress:
    """Counts the artifact's chunks the broker acknowledged, for ``on_progress``."""

    def __init__(self, total: int, report: Progress) -> None:
        self.total, self.done, self.report = total, 0, report

    def delivered(self, key: str) -> None:
        if "/chunk/" in key:  # <model>/<version>/chunk/<index> (_wire.chunk_key)
            self.done += 1
            self.report(self.done, self.total)


def _produce(
    producer: Producer,
    topic: str,
    key: str,
    value: bytes | None,
    on_delivered: Callable[[str], None] | None = None,
) -> None:
    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is None and on_delivered is not None:
            on_delivered(key)  # a failed delivery fails the commit that follows

    callback = None if on_delivered is None else delivered
    while True:
        try:
            producer.produce(topic, key=key.encode(), value=value, on_delivery=callback)
            return
        except BufferError:  # local queue full: let deliveries drain it
            producer.poll(0.1)


def _close(producer: Producer) -> None:
    """Close, aborting a transaction still open. After a fenced or failed commit the abort
    itself fails and the client warns; nothing was written, so the warning is noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        producer.close()


def _summary(version: ModelVersion) -> dict[str, Any]:
    return {
        "format": version.artifact_format,
        "sha256": version.artifact_sha256,
        "size": version.artifact_size,
        "chunks": version.chunk_count,
        "training_data_fingerprint": version.training_data_fingerprint,
        "code_version": version.code_version,
        "positive_label": version.positive_label,
    }


def _signature_record(topic: str, version: ModelVersion, signature: Signature) -> Record:
    record = {
        "model": version.name, "version": version.version,
        "key_id": signature.key_id, "signature": signature.value,
    }  # fmt: skip
    value = _wire.codec("signature").encode_avro(record)
    return (topic, _wire.signature_key(version.name, version.version), value)

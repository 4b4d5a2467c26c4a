"""Record layout of the registry topics: keys, Avro codecs, record <-> dataclass.

``<prefix>._models`` (compacted, 1 partition)::

    <name>/<version>/chunk/<i>   ArtifactChunk   i = 0 .. chunk_count-1, written first
    <name>/<version>/signature   VersionSignature  when the writer signs, after the chunks
    <name>/<version>             ModelMetadata   written last, same transaction

``<prefix>._routing`` (compacted, 1 partition): key ``<name>``, value ``Routing``; key
``<name>/policy``, the model's promotion policy as a JSON object (read by the lifecycle).
``<prefix>._model_events`` (1 partition): key ``<name>``, value ``ModelEvent``.

Every value is Avro single-object encoded (``schemas/avro/*.avsc``; the chunk and
signature schemas are :data:`CHUNK_SCHEMA` and :data:`SIGNATURE_SCHEMA`). The signature
is a record of its own, not a field of ModelMetadata: it covers the metadata, and readers
that predate it skip its key. Model names hold no ``/`` (see ``streams.kafka``), so keys parse
without ambiguity.

>>> parse_key("churn/3/chunk/0"), parse_key("churn/3"), parse_key("junk")
(ChunkKey(model='churn', version=3, chunk=0), VersionKey(model='churn', version=3), None)
>>> parse_key("churn/3/signature")
SignatureKey(model='churn', version=3)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final, NamedTuple

import orjson

from schemas.codec import Codec
from schemas.contracts import load_schema
from services.registry._model import ModelVersion, Routing

__all__ = [
    "CHUNK_SCHEMA",
    "SIGNATURE_SCHEMA",
    "ChunkKey",
    "SignatureKey",
    "VersionKey",
    "chunk_key",
    "chunk_record",
    "codec",
    "earlier_schemas",
    "event_record",
    "from_millis",
    "keys_of",
    "parse_key",
    "policy_key",
    "policy_model",
    "routing_from_record",
    "routing_to_record",
    "signature_key",
    "to_millis",
    "version_from_record",
    "version_key",
    "version_to_record",
]

POLICY_SUFFIX: Final = "/policy"  # routing-topic key of a model's promotion policy (JSON)
TOPIC_MAX_BYTES: Final = 8 * 1024 * 1024  # max.message.bytes of the models topic
CHUNK_SCHEMA: Final = {
    "type": "record",
    "name": "ArtifactChunk",
    "namespace": "io.modelstream",
    "doc": "One piece of a model artifact; concatenated in index order they are the artifact.",
    "fields": [
        {"name": "model", "type": "string", "doc": "Model name."},
        {"name": "version", "type": "int", "doc": "Model version."},
        {"name": "index", "type": "int", "doc": "Position of this piece, from 0."},
        {"name": "count", "type": "int", "doc": "Number of pieces of the artifact."},
        {"name": "data", "type": "bytes", "doc": "The bytes of this piece."},
    ],
}

SIGNATURE_SCHEMA: Final = {
    "type": "record",
    "name": "VersionSignature",
    "namespace": "io.modelstream",
    "doc": "Ed25519 signature of one model version by a registry writer's key.",
    "fields": [
        {"name": "model", "type": "string", "doc": "Model name."},
        {"name": "version", "type": "int", "doc": "Model version."},
        {"name": "key_id", "type": "string", "doc": "16 hex: SHA-256 of the raw public key."},
        {"name": "signature", "type": "bytes", "doc": "Ed25519 signature, 64 bytes."},
    ],
}


# Fields added to a record after its first release, oldest first. A record names its
# writer schema by fingerprint, so the schemas before each addition stay readable: the
# compacted topics keep records for ever, and an added field takes its default in them.
ADDED_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "model_metadata": ("positive_label", "lineage"),
}


@cache
def codec(kind: str) -> Codec:
    """The codec of ``model_metadata``, ``routing``, ``model_event``, ``chunk`` or
    ``signature``; it also reads records written before the :data:`ADDED_FIELDS` of ``kind``."""
    inline = {"chunk": CHUNK_SCHEMA, "signature": SIGNATURE_SCHEMA}
    schema = inline[kind] if kind in inline else load_schema(kind)
    earlier = earlier_schemas(schema, ADDED_FIELDS.get(kind, ()))
    return Codec(schema, max_bytes=TOPIC_MAX_BYTES, writer_schemas=earlier)


def earlier_schemas(schema: Mapping[str, Any], added: tuple[str, ...]) -> list[dict[str, Any]]:
    """``schema`` as it was before each field of ``added`` (oldest first) was added.

    >>> record = {"type": "record", "name": "R", "fields": [{"name": n, "type": "int"}
    ...                                                      for n in ("a", "b", "c")]}
    >>> [[f["name"] for f in s["fields"]] for s in earlier_schemas(record, ("b", "c"))]
    [['a'], ['a', 'b']]
    """
    return [
        {**schema, "fields": [f for f in schema["fields"] if f["name"] not in added[step:]]}
        for step in range(len(added))
    ]


class VersionKey(NamedTuple):
    model: str
    version: int


class ChunkKey(NamedTuple):
    model: str
    version: int
    chunk: int


class SignatureKey(NamedTuple):
    model: str
    version: int


def policy_key(model: str) -> str:
    """The key of a model's promotion policy on the routing topic.

    >>> policy_key("churn"), policy_model("churn/policy"), policy_model("churn")
    ('churn/policy', 'churn', None)
    """
    return f"{model}{POLICY_SUFFIX}"


def policy_model(key: str) -> str | None:
    """The model whose policy ``key`` holds; None for a routing key."""
    return key.removesuffix(POLICY_SUFFIX) if key.endswith(POLICY_SUFFIX) else None


def version_key(model: str, version: int) -> str:
    return f"{model}/{version}"


def chunk_key(model: str, version: int, index: int) -> str:
    return f"{model}/{version}/chunk/{index}"


def signature_key(model: str, version: int) -> str:
    return f"{model}/{version}/signature"


def keys_of(mv: ModelVersion) -> list[str]:
    """Every key of one version on the models topic, metadata first (so a tombstoned
    version disappears before its chunks do).

    >>> from datetime import UTC, datetime
    >>> keys_of(ModelVersion("m", 2, "regression", {}, (), "a", datetime.now(UTC),
    ...                      "joblib", "00", 9, 2))
    ['m/2', 'm/2/signature', 'm/2/chunk/0', 'm/2/chunk/1']
    """
    keys = [mv.key, signature_key(mv.name, mv.version)]
    return keys + [chunk_key(mv.name, mv.version, index) for index in range(mv.chunk_count)]


def parse_key(key: str) -> VersionKey | ChunkKey | SignatureKey | None:
    """The key's parts, or None for a key the registry did not write."""
    parts = key.split("/")
    try:
        if len(parts) == 2:
            return VersionKey(parts[0], int(parts[1]))
        if len(parts) == 3 and parts[2] == "signature":
            return SignatureKey(parts[0], int(parts[1]))
        if len(parts) == 4 and parts[2] == "chunk":
            return ChunkKey(parts[0], int(parts[1]), int(parts[3]))
    except ValueError:
        return None
    return None


def to_millis(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def chunk_record(model: str, version: int, index: int, count: int, data: bytes) -> dict[str, Any]:
    return {"model": model, "version": version, "index": index, "count": count, "data": data}


def version_to_record(mv: ModelVersion) -> dict[str, Any]:
    profile = mv.reference_profile
    return {
        "name": mv.name,
        "version": mv.version,
        "task": mv.task,
        "description": mv.description,
        "input_schema": orjson.dumps(mv.input_schema).decode(),
        "features": list(mv.features),
        "sensitive_attributes": list(mv.sensitive_attributes),
        "training_data_fingerprint": mv.training_data_fingerprint,
        "hyperparameters": dict(mv.hyperparameters),
        "training_metrics": dict(mv.training_metrics),
        "code_version": mv.code_version,
        "author": mv.author,
        "created_at": to_millis(mv.created_at),
        "reference_profile": None if profile is None else orjson.dumps(profile).decode(),
        "classes": None if mv.classes is None else list(mv.classes),
        "positive_label": mv.positive_label,
        "artifact_format": mv.artifact_format,
        "artifact_sha256": mv.artifact_sha256,
        "artifact_size": mv.artifact_size,
        "chunk_count": mv.chunk_count,
        "environment": dict(mv.environment),
        "lineage": orjson.dumps(dict(mv.lineage)).decode() if mv.lineage else None,
    }


def version_from_record(record: Mapping[str, Any]) -> ModelVersion:
    profile, classes = record["reference_profile"], record["classes"]
    return ModelVersion(
        name=record["name"],
        version=record["version"],
        task=record["task"],
        description=record["description"],
        input_schema=orjson.loads(record["input_schema"]),
        features=tuple(record["features"]),
        sensitive_attributes=tuple(record["sensitive_attributes"]),
        training_data_fingerprint=record["training_data_fingerprint"],
        hyperparameters=record["hyperparameters"],
        training_metrics=record["training_metrics"],
        code_version=record["code_version"],
        author=record["author"],
        created_at=from_millis(record["created_at"]),
        reference_profile=None if profile is None else orjson.loads(profile),
        classes=None if classes is None else tuple(classes),
        positive_label=record["positive_label"],
        artifact_format=record["artifact_format"],
        artifact_sha256=record["artifact_sha256"],
        artifact_size=record["artifact_size"],
        chunk_count=record["chunk_count"],
        environment=record["environment"],
        lineage=orjson.loads(record["lineage"]) if record.get("lineage") else {},
    )


def routing_to_record(routing: Routing) -> dict[str, Any]:
    updated_at = routing.updated_at or datetime.now(UTC)
    return {
        "model": routing.model,
        "champion": routing.champion,
        "challenger": routing.challenger,
        "backup": routing.backup,
        "shadow_fraction": routing.shadow_fraction,
        "previous_champions": list(routing.previous_champions),
        "updated_at": to_millis(updated_at),
        "updated_by": routing.updated_by,
        "reason": routing.reason,
    }


def routing_from_record(record: Mapping[str, Any]) -> Routing:
    return Routing(
        model=record["model"],
        champion=record["champion"],
        challenger=record["challenger"],
        backup=record["backup"],
        shadow_fraction=record["shadow_fraction"],
        previous_champions=tuple(record["previous_champions"]),
        updated_at=from_millis(record["updated_at"]),
        updated_by=record["updated_by"],
        reason=record["reason"],
    )


def event_record(
    model: str, version: int, action: str, *, actor: str, reason: str, details: Mapping[str, Any]
) -> dict[str, Any]:
    """A ModelEvent record stamped now."""
    return {
        "ts": to_millis(datetime.now(UTC)),
        "model": model,
        "version": version,
        "action": action,
        "actor": actor,
        "reason": reason,
        "details": orjson.dumps(dict(details)).decode(),
    }

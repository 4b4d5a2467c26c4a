"""The model registry: Kafka is the system of record for models and their routing.

A model version is an artifact (a River or scikit-learn predictor serialised with
cloudpickle or joblib, SHA-256 verified on every load) plus its metadata: input schema
(the contract checked at the door), features, sensitive attributes, a classifier's
classes and positive class (declared, or inferred: the class reading true, 1 or yes),
lineage (training data fingerprint, code version, hyperparameters, metrics, author), and
a reference profile of the training data that drift is measured against. Versions count
up from 1 per model.

Topics (Avro single-object values, ``schemas/avro``)::

    <prefix>._models        compacted, 1 partition
        <name>/<version>/chunk/<i>   ArtifactChunk: the artifact in 512 KiB pieces
        <name>/<version>/signature   VersionSignature: the writer's Ed25519 signature
        <name>/<version>             ModelMetadata, after its chunks
    <prefix>._routing       compacted, 1 partition
        <name>                       Routing: champion, challenger, backup, shadow
                                     fraction, previous champions
    <prefix>._model_events  1 partition
        <name>                       ModelEvent: who did what, when, why

Every change (register, promote, set or clear a challenger or backup, rollback) is ONE
transaction holding the chunks, the metadata, the routing and the event, so
``read_committed`` readers never see half of it.

:class:`Registry` writes; :class:`RegistryView` rebuilds the registry on any machine
(``sync``) and follows it live (``poll``); scorers load models through it::

    registry = Registry(kafka, topics, actor="ana", signer=Signer.load(key_file))
    v1 = registry.register("churn", model, schema, task="classification", reference=train)
    registry.set_challenger("churn", 2, fraction=0.1, reason="retrained on May data")

    view = RegistryView(kafka, topics, trust=Trust.of(*load_public_keys([keys_dir])))
    view.sync()
    model = view.load_model("churn", view.routing("churn").champion)

Signed versions: loading an artifact runs its code (unpickling), so a writer signs each
version with an Ed25519 key only writers hold (:class:`Signer`, ``Registry(signer=...)``),
and a reader unpickles only versions its :class:`Trust` accepts (``RegistryView(trust=...)``):
signed by a trusted key, the signature covering name, version, task, artifact format,
size and SHA-256, input schema fingerprint, features and key id; the fetched bytes must
then match that SHA-256. Unsigned or unknown-key versions are refused unless the trust
allows unsigned ones; a bad signature is always refused (:class:`UntrustedVersionError`,
and a scorer keeps serving what it had). Keys are PEM files; the CLI (``modelstream models
keys``) keeps the writer's in ``<data dir>/keys/registry.key`` (0600), creating it at the
first registration, and serving processes trust ``<data dir>/keys/*.pub`` by default
(``MODELSTREAM_TRUSTED_KEYS``, ``MODELSTREAM_ALLOW_UNSIGNED`` at the process edge). A view
built without a trust checks only SHA-256: for tools and tests, never for serving.

Archival: :meth:`Registry.archive` exports a version to ``<dir>/<name>-v<version>/``
(the artifact's exact bytes, ``metadata.json``, ``signature.json``, and a ``MANIFEST.json``
of SHA-256s; written aside, then renamed). :meth:`Registry.remove` then writes tombstones
for every key of the version in one transaction with a ``removed`` event, refused while it
is champion, challenger or backup (an earlier champion leaves the rollback history), so
compaction drops it and the models topic stops growing. :meth:`Registry.restore` checks an
archive (:func:`read_archive`) and publishes the same records under the same number with a
``restored`` event: it verifies with the same signature. A view forgets a tombstoned
version; its number is not handed out again while the tombstones last.

Kafka ACLs keep the topics themselves to trusted writers: grant ``Write`` on topics
``<prefix>._models``, ``<prefix>._routing`` and ``<prefix>._model_events`` and
``Write``/``Describe`` on the prefixed TransactionalId ``<prefix>._registry.`` to the
registry's principals only;
everyone else (scorers, gateway, monitor) gets ``Read``/``Describe`` on those topics.
``modelstream models register`` checks an artifact file by loading it, so register only
files you trust.

Concurrency: each change fences other writers of the same model (transactional id
``<prefix>._registry.<model>``), then reads the topics to their end before choosing a
version number. Two machines changing one model at once cannot both win: the loser gets
:class:`ConcurrentChangeError` and wrote nothing.

Errors (all :class:`RegistryError`)::

    RegistryError
    ├── UnknownModelError            no model of that name is registered
    ├── UnknownVersionError          the model has no such version
    ├── InvalidSchemaError           the input schema is not a record of supported fields
    ├── InvalidModelError            bad name, task, format or metadata; not a predictor
    ├── ArtifactTooLargeError        the artifact exceeds the registry's size limit
    ├── IntegrityError               stored artifact bytes do not match their SHA-256
    ├── UntrustedVersionError        unsigned, unknown-key or badly signed version
    ├── KeyFileError                 a signing or trusted key file cannot be used
    ├── RoutingError                 the routing change is not possible
    │   └── NoPreviousChampionError  rollback with no earlier champion to return to
    ├── ConcurrentChangeError        another writer changed the same model meanwhile
    ├── ArchiveError                 an archive directory is incomplete, altered or in the way
    └── RegistryUnavailableError     Kafka could not be read or written in time
"""

from services.registry._archive import Archive, read_archive
from services.registry._errors import (
    ArchiveError,
    ArtifactTooLargeError,
    ConcurrentChangeError,
    IntegrityError,
    InvalidModelError,
    InvalidSchemaError,
    KeyFileError,
    NoPreviousChampionError,
    RegistryError,
    RegistryUnavailableError,
    RoutingError,
    UnknownModelError,
    UnknownVersionError,
    UntrustedVersionError,
    closest,
    not_registered,
)
from services.registry._events import ModelEvent, recent_events
from services.registry._input_schema import feature_kinds
from services.registry._model import (
    Change,
    ModelVersion,
    Role,
    Routing,
    RoutingChanged,
    Task,
    VersionAdded,
)
from services.registry._profile import data_fingerprint, reference_profile
from services.registry._registry import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_ARTIFACT_BYTES, Registry
from services.registry._signing import (
    Signature,
    Signer,
    Trust,
    key_id,
    load_public_keys,
    local_signer,
)
from services.registry._view import RegistryView

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_ARTIFACT_BYTES",
    "Archive",
    "ArchiveError",
    "ArtifactTooLargeError",
    "Change",
    "ConcurrentChangeError",
    "IntegrityError",
    "InvalidModelError",
    "InvalidSchemaError",
    "KeyFileError",
    "ModelEvent",
    "ModelVersion",
    "NoPreviousChampionError",
    "Registry",
    "RegistryError",
    "RegistryUnavailableError",
    "RegistryView",
    "Role",
    "Routing",
    "RoutingChanged",
    "RoutingError",
    "Signature",
    "Signer",
    "Task",
    "Trust",
    "UnknownModelError",
    "UnknownVersionError",
    "UntrustedVersionError",
    "VersionAdded",
    "closest",
    "data_fingerprint",
    "feature_kinds",
    "key_id",
    "load_public_keys",
    "local_signer",
    "not_registered",
    "read_archive",
    "recent_events",
    "reference_profile",
]

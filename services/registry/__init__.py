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

    registry = Registry(kafka, topics, actor="ana")
    v1 = registry.register("churn", model, schema, task="classification", reference=train)
    registry.set_challenger("churn", 2, fraction=0.1, reason="retrained on May data")

    view = RegistryView(kafka, topics)
    view.sync()
    model = view.load_model("churn", view.routing("churn").champion)

Security: loading an artifact runs its code (unpickling). Only trusted writers may
write the registry topics. With Kafka ACLs: grant ``Write`` on topics ``<prefix>._models``,
``<prefix>._routing`` and ``<prefix>._model_events`` and ``Write``/``Describe`` on the
prefixed TransactionalId ``<prefix>._registry.`` to the registry's principals only;
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
    ├── RoutingError                 the routing change is not possible
    │   └── NoPreviousChampionError  rollback with no earlier champion to return to
    ├── ConcurrentChangeError        another writer changed the same model meanwhile
    └── RegistryUnavailableError     Kafka could not be read or written in time
"""

from services.registry._errors import (
    ArtifactTooLargeError,
    ConcurrentChangeError,
    IntegrityError,
    InvalidModelError,
    InvalidSchemaError,
    NoPreviousChampionError,
    RegistryError,
    RegistryUnavailableError,
    RoutingError,
    UnknownModelError,
    UnknownVersionError,
    closest,
    not_registered,
)
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
from services.registry._view import RegistryView

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_ARTIFACT_BYTES",
    "ArtifactTooLargeError",
    "Change",
    "ConcurrentChangeError",
    "IntegrityError",
    "InvalidModelError",
    "InvalidSchemaError",
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
    "Task",
    "UnknownModelError",
    "UnknownVersionError",
    "VersionAdded",
    "closest",
    "data_fingerprint",
    "feature_kinds",
    "not_registered",
    "reference_profile",
]

"""Errors of the model registry; every one says what to do next.

::

    RegistryError                    root: catch this to handle any registry failure
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

from __future__ import annotations

__all__ = [
    "ArtifactTooLargeError",
    "ConcurrentChangeError",
    "IntegrityError",
    "InvalidModelError",
    "InvalidSchemaError",
    "NoPreviousChampionError",
    "RegistryError",
    "RegistryUnavailableError",
    "RoutingError",
    "UnknownModelError",
    "UnknownVersionError",
]


class RegistryError(Exception):
    """Root of every error of ``services.registry``."""


class UnknownModelError(RegistryError):
    """No model of that name is registered."""


class UnknownVersionError(RegistryError):
    """The model exists but has no such version."""


class InvalidSchemaError(RegistryError):
    """The input schema is not an Avro record of supported field types."""


class InvalidModelError(RegistryError):
    """The model cannot be registered as given: a bad name, task, format or metadata
    value, or an object / artifact that cannot serve (no predict method, unloadable)."""


class ArtifactTooLargeError(RegistryError):
    """The serialised artifact is larger than the registry's ``max_artifact_bytes``."""


class IntegrityError(RegistryError):
    """Stored artifact bytes are missing or do not match the SHA-256 in the metadata."""


class RoutingError(RegistryError):
    """The routing change is not possible (e.g. challenger == champion, fraction > 1)."""


class NoPreviousChampionError(RoutingError):
    """Rollback asked, but the model never had another champion."""


class ConcurrentChangeError(RegistryError):
    """Another writer changed the same model while this change was being written."""


class RegistryUnavailableError(RegistryError):
    """Kafka could not be read or written within the timeout."""

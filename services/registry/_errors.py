"""Errors of the model registry; every one says what to do next.

::

    RegistryError                    root: catch this to handle any registry failure
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

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Final

from streams.kafka import MODEL_NAME

__all__ = [
    "ArchiveError",
    "ArtifactTooLargeError",
    "ConcurrentChangeError",
    "IntegrityError",
    "InvalidModelError",
    "InvalidSchemaError",
    "KeyFileError",
    "NoPreviousChampionError",
    "RegistryError",
    "RegistryUnavailableError",
    "RoutingError",
    "UnknownModelError",
    "UnknownVersionError",
    "UntrustedVersionError",
    "closest",
    "not_registered",
]

_MAX_LISTED: Final = 20  # known names in one message


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


class UntrustedVersionError(RegistryError):
    """The version may not be unpickled here: it is unsigned or signed by a key this
    reader does not trust (unless unsigned versions are allowed), or its signature does
    not match its metadata."""


class KeyFileError(RegistryError):
    """A signing or trusted key file is missing, unreadable or not an Ed25519 key."""


class RoutingError(RegistryError):
    """The routing change is not possible (e.g. challenger == champion, fraction > 1)."""


class NoPreviousChampionError(RoutingError):
    """Rollback asked, but the model never had another champion."""


class ConcurrentChangeError(RegistryError):
    """Another writer changed the same model while this change was being written."""


class ArchiveError(RegistryError):
    """An archive directory is not one, misses a file, was altered (a SHA-256 of its
    manifest does not match), or a different archive is in the way of a new one."""


class RegistryUnavailableError(RegistryError):
    """Kafka could not be read or written within the timeout."""


def not_registered(name: str, known: Sequence[str] | None, *, more_at: str = "") -> str:
    """What to say about a model name the registry does not know; ``known`` is None when
    the reader may not be told which models exist. Lists 20 names at most (``more_at``
    says where the rest are) and suggests the closest.

    >>> not_registered("laon", ["churn", "loan"])
    'laon is not registered (known: churn, loan; did you mean loan?)'
    >>> not_registered("laon", None), not_registered("x", [])
    ('laon is not registered', 'x is not registered (no model is registered yet)')
    >>> not_registered("a.b", None)
    "'a.b' is not registered"
    """
    shown = name if MODEL_NAME.fullmatch(name) else repr(name[:100])
    message = f"{shown} is not registered"
    if known is None:
        return message
    if not known:
        return f"{message} (no model is registered yet)"
    listed = ", ".join(known[:_MAX_LISTED])
    if len(known) > _MAX_LISTED:
        listed += f" and {len(known) - _MAX_LISTED} more{f' ({more_at})' if more_at else ''}"
    suggestion = closest(name, known)
    hint = f"; did you mean {suggestion}?" if suggestion else ""
    return f"{message} (known: {listed}{hint})"


def closest(name: str, known: Sequence[str]) -> str | None:
    """The known name most like ``name`` (difflib, ratio at least 0.6; letter case aside).

    >>> closest("laon", ["fraud", "loan"]), closest("Loan", ["loan"]), closest("x", ["loan"])
    ('loan', 'loan', None)
    """
    lowered = {k.lower(): k for k in known}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[matches[0]] if matches else None

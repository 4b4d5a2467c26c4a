"""Signed versions: who may put code in front of a scorer, and how a reader checks.

A registry writer holds an Ed25519 private key (:class:`Signer`); every version it
registers gets a signature over :func:`signed_bytes`, which binds the model name, version,
task, artifact format, size and SHA-256, the input schema's fingerprint, the feature
order and the key id. The artifact bytes are bound through their SHA-256, which is checked
against the fetched bytes before they are unpickled; so changing a byte of the artifact or
of those metadata fields breaks the signature.

Readers hold a :class:`Trust`: the public keys they accept, by key id (the first 16 hex
digits of the SHA-256 of the raw 32-byte public key), and whether unsigned versions may
load. :meth:`Trust.check` runs before any artifact is fetched or unpickled:

========================================  =========================================
version                                   outcome
========================================  =========================================
signed by a trusted key, signature good   loads
signed by a trusted key, signature bad    refused, always
signed by a key not in the trust          refused, unless ``allow_unsigned``
unsigned                                  refused, unless ``allow_unsigned``
========================================  =========================================

Keys are files: the private key as unencrypted PKCS#8 PEM (mode 0600, in a 0700
directory), the public key as SubjectPublicKeyInfo PEM beside it (``<name>.pub``).

>>> signer = Signer.generate()
>>> mv = _example()
>>> signature = signer.sign(mv)
>>> Trust.of(signer.public_key).check(mv, signature)
>>> Trust.of(Signer.generate().public_key).check(mv, signature)  # doctest: +ELLIPSIS
Traceback (most recent call last):
services.registry._errors.UntrustedVersionError: churn v1 is signed by key ...
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.registry._errors import KeyFileError, UntrustedVersionError
from services.registry._model import ModelVersion

__all__ = [
    "Signature",
    "Signer",
    "Trust",
    "key_id",
    "load_public_keys",
    "local_signer",
    "signed_bytes",
]

log = logging.getLogger(__name__)
_SCHEME: Final = b"modelstream-version-signature/v1\n"
KEY_FILE: Final = "registry.key"  # in <data dir>/keys
HOW_TO_TRUST: Final = (
    "trust its key with MODELSTREAM_TRUSTED_KEYS=<the writer's .pub file or keys "
    "directory> (`modelstream models keys show` on the writer prints it), or register it "
    "again with a trusted key; MODELSTREAM_ALLOW_UNSIGNED=true turns the check off"
)


@dataclass(frozen=True)
class Signature:
    """The signature of one version, stored beside its metadata on the models topic."""

    key_id: str
    value: bytes


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw 32-byte public key.

    >>> key_id(Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key())
    '139e3940e64b5491'
    """
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(mv: ModelVersion, key: str) -> bytes:
    """The canonical bytes a signature covers: a scheme line, then sorted-key JSON.

    >>> signed_bytes(_example(), "k1")[:40]
    b'modelstream-version-signature/v1\\n{"artif'
    """
    schema = orjson.dumps(mv.input_schema, option=orjson.OPT_SORT_KEYS)
    body = {
        "artifact_format": mv.artifact_format,
        "artifact_sha256": mv.artifact_sha256,
        "artifact_size": mv.artifact_size,
        "features": list(mv.features),
        "input_schema_sha256": hashlib.sha256(schema).hexdigest(),
        "key_id": key,
        "name": mv.name,
        "task": mv.task,
        "version": mv.version,
    }
    return _SCHEME + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


class Signer:
    """An Ed25519 private key that signs versions (only registry writers hold one)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> Signer:
        """The key in ``path`` (PKCS#8 PEM, unencrypted)."""
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise KeyFileError(
                f"cannot read the signing key {path}: {exc}; create one with "
                "`modelstream models keys init`"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
        return cls(key)

    def save(self, path: Path) -> Path:
        """Write the private key to ``path`` (0600, parent 0700, never overwritten) and
        the public key to ``path.with_suffix('.pub')``; returns the public key's path."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
        public = path.with_suffix(".pub")
        public.write_bytes(self.public_pem())
        return public

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, mv: ModelVersion) -> Signature:
        return Signature(self.key_id, self._key.sign(signed_bytes(mv, self.key_id)))


@dataclass(frozen=True)
class Trust:
    """The public keys a reader accepts, by key id, and whether unsigned versions load.

    ``allow_unsigned`` also loads versions signed by a key not in ``keys`` (they are as
    good as unsigned here); a bad signature by a trusted key is refused regardless.
    """

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    allow_unsigned: bool = False
    # where the keys came from: read again when a version names a key not in ``keys``
    # (a local deployment's key is made by its first registration, after the servers start)
    sources: tuple[Path, ...] = field(default=(), compare=False)

    @classmethod
    def of(
        cls, *public_keys: Ed25519PublicKey, allow_unsigned: bool = False,
        sources: Iterable[Path] = (),
    ) -> Trust:  # fmt: skip
        return cls({key_id(key): key for key in public_keys}, allow_unsigned, tuple(sources))

    def _key(self, wanted: str) -> Ed25519PublicKey | None:
        if wanted not in self.keys and self.sources:
            for key in load_public_keys(self.sources, missing_ok=True):
                self.keys.setdefault(key_id(key), key)
        return self.keys.get(wanted)

    @classmethod
    def unchecked(cls) -> Trust:
        """Loads every version whose SHA-256 matches: for tools and tests, not serving."""
        return cls({}, allow_unsigned=True)

    def check(self, mv: ModelVersion, signature: Signature | None) -> None:
        """Return if ``mv`` may be unpickled here, else raise :class:`UntrustedVersionError`."""
        what = f"{mv.name} v{mv.version}"
        key = None if signature is None else self._key(signature.key_id)
        if signature is not None and key is not None:
            try:
                key.verify(signature.value, signed_bytes(mv, signature.key_id))
            except InvalidSignature:
                raise UntrustedVersionError(
                    f"{what}: the signature by key {signature.key_id} does not match its "
                    "metadata: the version was altered after it was signed. Do not load "
                    "it; register the model again"
                ) from None
            return
        if self.allow_unsigned:
            return
        if signature is None:
            raise UntrustedVersionError(f"{what} is unsigned, so it was not loaded: {HOW_TO_TRUST}")
        trusted = ", ".join(sorted(self.keys)) or "none"
        raise UntrustedVersionError(
            f"{what} is signed by key {signature.key_id}, which is not trusted here "
            f"(trusted: {trusted}), so it was not loaded: {HOW_TO_TRUST}"
        )


def load_public_keys(paths: Iterable[Path], *, missing_ok: bool = False) -> list[Ed25519PublicKey]:
    """The Ed25519 public keys in ``paths``: PEM files, or directories whose ``*.pub``
    files are read. A missing path is an error unless ``missing_ok`` (it then holds none)."""
    keys: list[Ed25519PublicKey] = []
    for path in paths:
        if path.is_dir():
            keys += [_public_key(file) for file in sorted(path.glob("*.pub"))]
        elif path.exists():
            keys.append(_public_key(path))
        elif not missing_ok:
            raise KeyFileError(
                f"the trusted key path {path} does not exist: give .pub files or "
                "directories of them in MODELSTREAM_TRUSTED_KEYS"
            )
    return keys


def _public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read the trusted key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def local_signer(path: Path, *, create: bool) -> Signer:
    """The signing key in ``path``; when it is missing and ``create`` is set, a new one
    (logged once: the data dir's readers trust it by default)."""
    if path.exists() or not create:
        return Signer.load(path)
    signer = Signer.generate()
    try:
        public = signer.save(path)
    except FileExistsError:  # another registration made it just now: use theirs
        return Signer.load(path)
    log.warning(
        "created the registry signing key %s (key id %s). Scorers and gateways using this "
        "data dir trust it; elsewhere set MODELSTREAM_TRUSTED_KEYS=%s",
        path, signer.key_id, public,
    )  # fmt: skip
    return signer


def _example() -> ModelVersion:
    return ModelVersion(
        "churn", 1, "classification", {"type": "record", "name": "R", "fields": []}, (),
        "ana", datetime(2026, 1, 1, tzinfo=UTC), "cloudpickle", "ab" * 32, 10, 1,
    )  # fmt: skip

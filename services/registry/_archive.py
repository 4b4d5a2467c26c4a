"""Archives of model versions on disk: export one version, verify it, bring it back.

An archive is a directory ``<name>-v<version>/`` holding::

    artifact.<format>   the artifact's exact bytes
    metadata.json       the ModelMetadata record as registered (restores it exactly)
    signature.json      key id and Ed25519 signature, base64 (absent for unsigned versions)
    MANIFEST.json       model, version, and the SHA-256 of each file above

The directory is written aside (``.<name>-v<version>.partial-*``) and renamed into place,
so a reader never sees half of one; writing the same version again is a no-op, and a
different archive already in the way is refused. Reading checks every SHA-256 of the
manifest and that the artifact matches the metadata's, before anything is published.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from services.registry import _wire
from services.registry._errors import ArchiveError
from services.registry._model import ModelVersion
from services.registry._signing import Signature

__all__ = [
    "MANIFEST",
    "Archive",
    "archive_dir",
    "manifest_of",
    "pieces",
    "read_archive",
    "write_archive",
]

MANIFEST: Final = "MANIFEST.json"
METADATA: Final = "metadata.json"
SIGNATURE: Final = "signature.json"
LAYOUT: Final = "modelstream-archive/v1"


@dataclass(frozen=True)
class Archive:
    """One version as exported: its metadata, its signature (None if unsigned), its bytes."""

    version: ModelVersion
    signature: Signature | None
    data: bytes

    def files(self) -> dict[str, bytes]:
        """File name -> content, the manifest aside.

        >>> sorted(Archive(_wire_example(), None, b"x").files())
        ['artifact.cloudpickle', 'metadata.json']
        """
        mv = self.version
        record = _wire.version_to_record(mv)
        files = {
            f"artifact.{mv.artifact_format}": self.data,
            METADATA: orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
        }
        if self.signature is not None:
            value = base64.b64encode(self.signature.value).decode()
            body = {"key_id": self.signature.key_id, "signature": value}
            files[SIGNATURE] = orjson.dumps(body, option=orjson.OPT_INDENT_2)
        return files


def archive_dir(root: Path, name: str, version: int) -> Path:
    """Where the archive of one version goes under ``root``.

    >>> archive_dir(Path("/backups"), "churn", 3).as_posix()
    '/backups/churn-v3'
    """
    return root / f"{name}-v{version}"


def manifest_of(archive: Archive) -> dict[str, Any]:
    """What MANIFEST.json says: layout, model, version and each file's SHA-256.

    >>> manifest = manifest_of(Archive(_wire_example(), None, b"x"))
    >>> manifest["model"], manifest["version"], manifest["files"]["artifact.cloudpickle"][:8]
    ('m', 1, '2d711642')
    """
    files = archive.files()
    return {
        "layout": LAYOUT,
        "model": archive.version.name,
        "version": archive.version.version,
        "signed_by": None if archive.signature is None else archive.signature.key_id,
        "files": {name: hashlib.sha256(body).hexdigest() for name, body in sorted(files.items())},
    }


def write_archive(root: Path, archive: Archive) -> Path:
    """Write ``archive`` under ``root`` and return its directory (idempotent)."""
    target = archive_dir(root, archive.version.name, archive.version.version)
    manifest = manifest_of(archive)
    if target.exists():
        return _same_or_refuse(target, manifest)
    root.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=root))
    try:
        for name, body in archive.files().items():
            (aside / name).write_bytes(body)
        stamped = manifest | {"archived_at": datetime.now(UTC).isoformat(timespec="seconds")}
        (aside / MANIFEST).write_bytes(orjson.dumps(stamped, option=orjson.OPT_INDENT_2))
        aside.rename(target)
    except FileExistsError:  # OSError subclass: another archiver got there first
        shutil.rmtree(aside, ignore_errors=True)
        return _same_or_refuse(target, manifest)
    except OSError:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    return target


def _same_or_refuse(target: Path, manifest: dict[str, Any]) -> Path:
    existing = _manifest(target)
    if existing.get("files") != manifest["files"]:
        raise ArchiveError(
            f"{target} already holds a different archive of {manifest['model']} "
            f"v{manifest['version']}; move it away or archive to another directory"
        )
    return target


def read_archive(path: Path) -> Archive:
    """The archive in ``path``, every SHA-256 checked (:class:`ArchiveError` otherwise)."""
    manifest = _manifest(path)
    files: dict[str, str] = manifest.get("files") or {}
    if manifest.get("layout") != LAYOUT or METADATA not in files:
        raise ArchiveError(f"{path / MANIFEST} is not a {LAYOUT} manifest")
    bodies = {name: _checked(path, name, digest) for name, digest in files.items()}
    try:
        version = _wire.version_from_record(orjson.loads(bodies[METADATA]))
        signature = _signature(bodies[SIGNATURE]) if SIGNATURE in bodies else None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ArchiveError(f"{path / METADATA} or {SIGNATURE} is unreadable: {exc}") from exc
    artifact = f"artifact.{version.artifact_format}"
    if artifact not in bodies:
        raise ArchiveError(f"{path} has no {artifact} in its manifest")
    data = bodies[artifact]
    if hashlib.sha256(data).hexdigest() != version.artifact_sha256:
        raise ArchiveError(f"{path / artifact} does not match the SHA-256 its metadata records")
    if (manifest.get("model"), manifest.get("version")) != (version.name, version.version):
        raise ArchiveError(f"{path / MANIFEST} names another version than {path / METADATA}")
    return Archive(version, signature, data)


def pieces(data: bytes, count: int) -> list[bytes]:
    """``data`` in exactly ``count`` chunks (as many as its metadata records; a reader
    only concatenates them, so their sizes need not match the first writer's).

    >>> [len(p) for p in pieces(bytes(10), 4)], pieces(b"", 1), len(pieces(bytes(9), 5))
    ([3, 3, 3, 1], [b''], 5)
    """
    size = -(-max(len(data), 1) // count)
    chunks = [data[start : start + size] for start in range(0, len(data), size)] or [b""]
    if len(chunks) != count:
        raise ArchiveError(f"{len(data)} bytes cannot be split into {count} chunks")
    return chunks


def _manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = orjson.loads((path / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise ArchiveError(
            f"{path} is not a model archive (no {MANIFEST}); give the directory "
            "`modelstream models archive` wrote, such as <dir>/<name>-v<version>"
        ) from None
    except orjson.JSONDecodeError as exc:
        raise ArchiveError(f"{path / MANIFEST} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArchiveError(f"{path / MANIFEST} must hold a JSON object")
    return manifest


def _checked(path: Path, name: str, digest: str) -> bytes:
    if Path(name).name != name:
        raise ArchiveError(f"{path / MANIFEST} names a file outside the archive: {name!r}")
    try:
        body = (path / name).read_bytes()
    except FileNotFoundError:
        raise ArchiveError(f"{path / name} is missing; the archive is incomplete") from None
    if hashlib.sha256(body).hexdigest() != digest:
        raise ArchiveError(
            f"{path / name} does not match its SHA-256 in {MANIFEST}: the archive was "
            "altered or damaged; restore from another copy"
        )
    return body


def _signature(body: bytes) -> Signature:
    record = orjson.loads(body)
    return Signature(str(record["key_id"]), base64.b64decode(record["signature"], validate=True))


def _wire_example() -> ModelVersion:
    return ModelVersion(
        "m", 1, "regression", {"type": "record", "name": "R", "fields": []}, ("x",), "ana",
        datetime(2026, 1, 1, tzinfo=UTC), "cloudpickle", hashlib.sha256(b"x").hexdigest(), 1, 1,
    )  # fmt: skip

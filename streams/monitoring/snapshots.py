"""The monitor's state snapshots, signed: nothing is unpickled that this deployment did
not write.

A snapshot is a pickle (the watches hold NumPy arrays, detectors and joiners), and
unpickling runs code, so anyone who can produce to the state topic could run code in the
monitor. Each snapshot therefore carries an HMAC-SHA256 of its bytes under a key of the
deployment (``MODELSTREAM_MONITOR_SNAPSHOT_KEY``, or one made once in the data dir), and
:func:`open_snapshot` checks it -- in constant time -- *before* the bytes go anywhere
near ``pickle``. A snapshot that does not verify (tampered, another key, or written
before snapshots were signed) is refused: its task starts afresh, and the monitor counts
it (``stats["snapshots_refused"]``).

Layout: ``MAGIC`` (4 bytes) + HMAC (32 bytes) + the zlib-compressed pickle.

Examples
--------
>>> key = b"k" * 32
>>> signed = seal({"windows": [1, 2]}, key)
>>> signed[:4] == MAGIC, open_snapshot(signed, key)
(True, {'windows': [1, 2]})
>>> try:
...     open_snapshot(signed[:-1] + bytes([signed[-1] ^ 1]), key)
... except SnapshotRefused as exc:
...     print(str(exc)[:45])
the snapshot's signature does not match its b
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import zlib
from typing import Any, Final

from streams.monitoring.errors import SnapshotRefused

__all__ = ["MAGIC", "MIN_KEY_BYTES", "SnapshotRefused", "open_snapshot", "seal"]

MAGIC: Final = b"MSS1"
MIN_KEY_BYTES: Final = 16
_DIGEST: Final = hashlib.sha256().digest_size


def seal(state: Any, key: bytes) -> bytes:
    """``state`` pickled, compressed and signed with ``key``."""
    _check(key)
    blob = zlib.compress(pickle.dumps(state, protocol=5), 1)
    return MAGIC + hmac.digest(key, blob, "sha256") + blob


def open_snapshot(signed: bytes, key: bytes) -> Any:
    """The state in ``signed``; :class:`SnapshotRefused` unless its signature verifies
    under ``key`` (checked before anything is decompressed or unpickled)."""
    _check(key)
    if not signed.startswith(MAGIC) or len(signed) < len(MAGIC) + _DIGEST:
        raise SnapshotRefused(
            "the snapshot is not signed (written before snapshots were signed, or not by a monitor)"
        )
    digest, blob = signed[len(MAGIC) : len(MAGIC) + _DIGEST], signed[len(MAGIC) + _DIGEST :]
    if not hmac.compare_digest(digest, hmac.digest(key, blob, "sha256")):
        raise SnapshotRefused(
            "the snapshot's signature does not match its bytes (tampered, or signed with "
            "another key)"
        )
    return pickle.loads(zlib.decompress(blob))  # noqa: S301 - signed by this deployment


def _check(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise SnapshotRefused(
            f"expected a snapshot key of at least {MIN_KEY_BYTES} bytes, got {len(key)}"
        )

"""What chDB (the embedded engine) needs beyond clickhouse-connect: who holds a directory.

A running engine keeps ``<dir>/status`` locked (``flock``) and writes its PID there; the
file is removed when the last handle closes. chDB's own error for a held directory is a
bare "Error initializing EmbeddedServer", so this is how the real cause is found.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["lock_holder"]


def lock_holder(directory: str) -> str | None:
    """``"PID 1234"`` when another engine holds ``directory``, None when it is free."""
    status = Path(directory) / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe(status)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _describe(status: Path) -> str:
    try:
        text = status.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "another process"
    for line in text.splitlines():
        if line.startswith("PID:"):
            return f"PID {line.removeprefix('PID:').strip()}"
    return "another process"

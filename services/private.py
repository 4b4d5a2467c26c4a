"""Files and directories only their owner may read: secrets, tokens, the warehouse.

>>> import tempfile
>>> d = private_dir(Path(tempfile.mkdtemp()) / "data" / "kafka")
>>> oct(d.stat().st_mode & 0o777), oct(d.parent.stat().st_mode & 0o777)
('0o700', '0o700')
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_dir", "write_private"]


def private_dir(path: str | Path) -> Path:
    """Create ``path`` and its missing parents readable by the owner only (0700); an
    existing ``path`` is narrowed to 0700 too (existing parents are left alone: they may
    be shared, like /tmp). Returns ``path``."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):  # mkdir(parents=True) would ignore the mode above
        directory.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by the owner only (also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)

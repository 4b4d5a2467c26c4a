"""Numbered SQL migrations: read, check, render. Pure: the engine side is in ``_warehouse``.

A migration is a file ``NNN_name.sql`` in ``schemas/clickhouse/``. It may hold several
statements; each ends with ``;`` at the end of a line (a ``;`` inside a line is left alone,
so string literals and comments may contain one). Every statement must be idempotent
(``IF NOT EXISTS``; a view a later file changes, ``CREATE OR REPLACE VIEW``): a file that
fails half way is run again from the top.

A line that holds ``{ttl_days}`` is the TTL clause: with ``ttl_days > 0`` the placeholder
becomes the number, with ``ttl_days == 0`` the line is dropped (keep data forever).
The checksum covers the file as written, so the TTL chosen does not change it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from services.warehouse._errors import MigrationError

__all__ = [
    "MIGRATIONS_DIR",
    "TTL_PLACEHOLDER",
    "Migration",
    "load_migrations",
    "render",
    "split_statements",
]

MIGRATIONS_DIR = Path(str(resources.files("schemas") / "clickhouse"))
TTL_PLACEHOLDER = "{ttl_days}"
_FILE_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file: its number, name, text and the checksum of that text."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file text, hex."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        """``NNN_name``, as it is reported by ``migrate``."""
        return f"{self.version:03d}_{self.name}"

    def statements(self, ttl_days: int = 0) -> list[str]:
        """The statements to run, TTL rendered."""
        return split_statements(render(self.sql, ttl_days))


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Every ``NNN_name.sql`` in ``directory`` (default: the shipped ones), by number.

    Other files are ignored; two files with one number is an error.
    """
    folder = directory or MIGRATIONS_DIR
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"expected migration files named NNN_name.sql (lower case), "
                f"got {path.name!r} in {folder}"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"expected one migration per number, got two for {version}: "
                f"{found[version].label}.sql and {path.name}"
            )
        found[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def render(sql: str, ttl_days: int) -> str:
    """Fill in the TTL: the number when ``ttl_days > 0``, else drop the TTL line.

    >>> render("ORDER BY ts\\nTTL toDateTime(ts) + INTERVAL {ttl_days} DAY\\nSETTINGS x = 1", 30)
    'ORDER BY ts\\nTTL toDateTime(ts) + INTERVAL 30 DAY\\nSETTINGS x = 1'
    >>> render("ORDER BY ts\\nTTL toDateTime(ts) + INTERVAL {ttl_days} DAY\\nSETTINGS x = 1", 0)
    'ORDER BY ts\\nSETTINGS x = 1'
    """
    if isinstance(ttl_days, bool) or not isinstance(ttl_days, int) or ttl_days < 0:
        raise ValueError(
            f"expected ttl_days as a whole number >= 0 (0 = keep forever), got {ttl_days!r}"
        )
    lines = sql.splitlines()
    if ttl_days == 0:
        return "\n".join(line for line in lines if TTL_PLACEHOLDER not in line)
    return "\n".join(line.replace(TTL_PLACEHOLDER, str(ttl_days)) for line in lines)


def split_statements(sql: str) -> list[str]:
    """Split on ``;`` at the end of a line; drop comment-only and empty pieces.

    >>> split_statements("-- a table\\nCREATE TABLE t (s String COMMENT 'a;b');\\n\\nSELECT 1;")
    ["-- a table\\nCREATE TABLE t (s String COMMENT 'a;b')", 'SELECT 1']
    >>> split_statements("-- only a comment;\\n")
    []
    """
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        current.append(line)
        stripped = line.rstrip()
        if stripped.endswith(";") and not stripped.lstrip().startswith("--"):
            current[-1] = stripped[:-1]
            statements.append("\n".join(current))
            current = []
    statements.append("\n".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(piece: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in piece.splitlines())

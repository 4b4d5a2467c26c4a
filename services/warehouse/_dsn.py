"""Where the warehouse lives: the DSN, parsed once into a frozen value.

Two forms, the same SQL behind both:

- ``chdb:///absolute/dir[?database=name]`` — the ClickHouse engine embedded in this
  process through chDB. The directory is created if missing.
- ``http(s)://user:password@host[:port][/database][?option=value...]`` — a ClickHouse
  server. User and password may be percent-encoded; options go to clickhouse-connect:
  client arguments (``connect_timeout``, ``compress``, ...) or else ClickHouse settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from services.warehouse._errors import InvalidDsn

__all__ = ["DEFAULT_DATABASE", "Dsn", "identifier", "parse_dsn"]

DEFAULT_DATABASE = "default"
_DEFAULT_PORTS = {"http": 8123, "https": 8443}


@dataclass(frozen=True)
class Dsn:
    """A parsed warehouse DSN. ``path`` is set for chDB, ``host`` for a server."""

    scheme: str
    database: str = DEFAULT_DATABASE
    path: str | None = None
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str = field(default="", repr=False)
    options: tuple[tuple[str, str], ...] = ()

    @property
    def embedded(self) -> bool:
        """True for chDB: the engine runs in this process."""
        return self.scheme == "chdb"

    def redacted(self) -> str:
        """The DSN as text with the password hidden, for logs and error messages.

        >>> parse_dsn("https://ana:s3cret@ch.example:8443/ml").redacted()
        'https://ana:***@ch.example:8443/ml'
        >>> parse_dsn("chdb:///var/lib/modelstream/warehouse").redacted()
        'chdb:///var/lib/modelstream/warehouse'
        """
        if self.embedded:
            suffix = "" if self.database == DEFAULT_DATABASE else f"?database={self.database}"
            return f"chdb://{self.path}{suffix}"
        auth = (
            f"{self.username}:***@"
            if self.password
            else (f"{self.username}@" if self.username else "")
        )
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{self.database}"


def parse_dsn(dsn: str) -> Dsn:
    """Parse a ``chdb://`` or ``http(s)://`` DSN; raise :class:`InvalidDsn` on anything else.

    >>> d = parse_dsn("chdb:///tmp/wh")
    >>> (d.embedded, d.path, d.database)
    (True, '/tmp/wh', 'default')
    >>> d = parse_dsn("http://ml%40corp:p%3Ass@ch:8123/analytics?connect_timeout=5")
    >>> (d.username, d.password, d.host, d.port, d.database, d.options)
    ('ml@corp', 'p:ss', 'ch', 8123, 'analytics', (('connect_timeout', '5'),))
    """
    parts = urlsplit(dsn.strip())
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    if parts.scheme == "chdb":
        return _parse_chdb(dsn, parts.netloc, parts.path, options)
    if parts.scheme in _DEFAULT_PORTS:
        if not parts.hostname:
            raise InvalidDsn(
                f"expected {parts.scheme}://user:password@host:port/db, got {dsn!r} (no host)"
            )
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise InvalidDsn(f"expected a numeric port in the DSN, got {parts.netloc!r}") from exc
        database = unquote(parts.path.strip("/")) or options.pop("database", DEFAULT_DATABASE)
        return Dsn(
            scheme=parts.scheme,
            database=identifier(database, dsn),
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password or ""),
            options=tuple(sorted(options.items())),
        )
    raise InvalidDsn(f"expected a DSN starting with chdb://, http:// or https://, got {dsn!r}")


def _parse_chdb(dsn: str, netloc: str, path: str, options: dict[str, str]) -> Dsn:
    if netloc or not os.path.isabs(path) or path == "/":
        raise InvalidDsn(f"expected chdb:///absolute/path/to/dir (three slashes), got {dsn!r}")
    database = options.pop("database", DEFAULT_DATABASE)
    if options:
        raise InvalidDsn(
            f"expected only ?database=name on a chdb DSN, got {sorted(options)} in {dsn!r}"
        )
    return Dsn(scheme="chdb", database=identifier(database, dsn), path=os.path.normpath(path))


def identifier(name: str, dsn: str) -> str:
    # The database name is spliced into CREATE DATABASE: letters, digits, underscore only.
    if not name.replace("_", "").isalnum() or not name.isascii() or name[0].isdigit():
        raise InvalidDsn(
            f"expected a database name of letters, digits and _, got {name!r} in {dsn!r}"
        )
    return name

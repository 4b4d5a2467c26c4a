"""Process settings: the one place that reads the environment (``MODELSTREAM_*``).

Library code in ``schemas`` and ``streams`` never reads the environment; services build
a frozen :class:`Settings` at the process edge and pass what each part needs.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by every modelstream process.

    >>> Settings(data_dir=Path("/tmp/ms")).clickhouse_dsn
    'chdb:///tmp/ms/warehouse'
    """

    model_config = SettingsConfigDict(env_prefix="MODELSTREAM_", frozen=True, extra="ignore")

    kafka: str | None = Field(
        default=None,
        description="Kafka bootstrap servers (host:port,...). Unset: the local broker "
        "started by `modelstream kafka start`.",
    )
    kafka_security_protocol: str = Field(default="PLAINTEXT")
    kafka_sasl_mechanism: str | None = None
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_password_file: Path | None = Field(
        default=None,
        description="A file holding the Kafka password (a Docker secret, or the local "
        "broker's admin.password): read when MODELSTREAM_KAFKA_PASSWORD is unset.",
    )
    clickhouse: str | None = Field(
        default=None,
        description="ClickHouse DSN: chdb:///path (embedded engine, default "
        "<data dir>/warehouse) or http(s)://user:pass@host:port/db (a server).",
    )
    clickhouse_password_file: Path | None = Field(
        default=None,
        description="A file holding the ClickHouse server's password (a Docker secret): "
        "it fills the password of MODELSTREAM_CLICKHOUSE.",
    )
    clickhouse_ttl_days: int = Field(default=0, ge=0, description="Row TTL; 0 keeps forever.")
    topic_prefix: str = Field(default="modelstream", pattern=r"^[A-Za-z0-9._-]+$")
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    data_dir: Path = Field(default=Path(".modelstream"))
    kafka_version: str = Field(default="4.1.1", pattern=r"^\d+\.\d+\.\d+$")
    cache_dir: Path = Field(default=Path.home() / ".cache" / "modelstream")
    chaos_sink_exit: str | None = Field(
        default=None,
        description="Chaos testing only: 'announced:N' or 'inserted:N' makes the sink exit "
        "like kill -9 at its N-th batch, between announcing and inserting, or inserting and "
        "committing.",
        pattern=r"^(announced|inserted):\d+$",
    )
    sql_max_execution_time_s: int = Field(
        default=30, ge=1, description="Longest a `modelstream sql` statement may run."
    )
    sql_max_memory_bytes: int = Field(
        default=2 * 1024**3,
        ge=1 << 20,
        description="Most memory a `modelstream sql` statement may use.",
    )
    monitor_snapshot_key: SecretStr | None = Field(
        default=None,
        description="Key that signs the monitor's state snapshots (HMAC-SHA256); the same "
        "on every monitor instance. Unset: one made once in <data dir>/monitor.key (0600).",
    )

    signing_key: Path | None = Field(
        default=None,
        description="Registry writers: the Ed25519 private key (PEM) that signs model "
        "versions. Unset: <data dir>/keys/registry.key, created on the first registration.",
    )
    trusted_keys: str = Field(
        default="",
        description="Scorers and gateways: the public keys whose model versions they load, "
        "as .pub files or directories of them, comma-separated. Empty: <data dir>/keys.",
    )
    allow_unsigned: bool = Field(
        default=False,
        description="Also load model versions that are unsigned or signed by a key not in "
        "MODELSTREAM_TRUSTED_KEYS (development only: loading a model runs its code).",
    )

    @field_validator("kafka", "clickhouse")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def clickhouse_dsn(self) -> str:
        if self.clickhouse:
            return _with_password(self.clickhouse, self.clickhouse_password_file)
        return f"chdb://{(self.data_dir / 'warehouse').absolute()}"

    @property
    def kafka_dir(self) -> Path:
        """Where the local broker keeps its config, log dir and pid file."""
        return self.data_dir / "kafka"

    @property
    def keys_dir(self) -> Path:
        """Where the registry's signing key and the trusted public keys live by default."""
        return self.data_dir / "keys"

    @property
    def trusted_key_paths(self) -> tuple[Path, ...]:
        """MODELSTREAM_TRUSTED_KEYS as paths; the data dir's keys when it is empty.

        >>> Settings(data_dir=Path("d"), trusted_keys="a.pub, b").trusted_key_paths
        (PosixPath('a.pub'), PosixPath('b'))
        """
        paths = tuple(Path(item.strip()) for item in self.trusted_keys.split(",") if item.strip())
        return paths or (self.keys_dir,)


def _with_password(dsn: str, password_file: Path | None) -> str:
    """``dsn`` with the password read from ``password_file`` (when given) in its URL.

    >>> import tempfile; f = Path(tempfile.mkdtemp()) / "pw"; _ = f.write_text("a b/c\\n")
    >>> _with_password("http://ms@ch:8123/db", f)
    'http://ms:a%20b%2Fc@ch:8123/db'
    >>> _with_password("http://ms:old@ch:8123/db", None)
    'http://ms:old@ch:8123/db'
    """
    if password_file is None:
        return dsn
    try:
        password = password_file.read_text().strip()
    except OSError as exc:
        raise ValueError(
            f"MODELSTREAM_CLICKHOUSE_PASSWORD_FILE={password_file} cannot be read "
            f"({exc.strerror}): point it at a readable file holding the password"
        ) from exc
    parts = urlsplit(dsn)
    user = parts.username or "default"
    host = parts.hostname or ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))

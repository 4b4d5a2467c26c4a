"""Process settings: the one place that reads the environment (``MODELSTREAM_*``).

Library code in ``schemas`` and ``streams`` never reads the environment; services build
a frozen :class:`Settings` at the process edge and pass what each part needs.
"""

from __future__ import annotations

from pathlib import Path

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
    clickhouse: str | None = Field(
        default=None,
        description="ClickHouse DSN: chdb:///path (embedded engine, default "
        "<data dir>/warehouse) or http(s)://user:pass@host:port/db (a server).",
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

    @field_validator("kafka", "clickhouse")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def clickhouse_dsn(self) -> str:
        if self.clickhouse:
            return self.clickhouse
        return f"chdb://{(self.data_dir / 'warehouse').absolute()}"

    @property
    def kafka_dir(self) -> Path:
        """Where the local broker keeps its config, log dir and pid file."""
        return self.data_dir / "kafka"

"""Turns :class:`~services.settings.Settings` into the objects library code receives:
the Kafka connection config (the local broker when ``MODELSTREAM_KAFKA`` is unset), the
local broker handle, and the topic naming of this deployment."""

from __future__ import annotations

from services.localstack import LocalBroker, LocalStackError, resolve_jars
from services.settings import Settings
from streams.kafka import KafkaConfig, Topics

__all__ = ["NoKafkaError", "kafka_config", "local_broker", "topics"]


class NoKafkaError(LocalStackError):
    """Neither MODELSTREAM_KAFKA is set nor a local broker is running."""


def local_broker(
    settings: Settings,
    *,
    port: int | None = None,
    controller_port: int | None = None,
    heap_mb: int = 512,
) -> LocalBroker:
    """The local broker of this data dir (jars resolved on first use)."""
    libs = resolve_jars(settings.kafka_version, settings.cache_dir)
    return LocalBroker(
        settings.kafka_dir, libs, port=port, controller_port=controller_port, heap_mb=heap_mb
    )


def kafka_config(settings: Settings, client_id: str = "modelstream") -> KafkaConfig:
    """Connection config: ``MODELSTREAM_KAFKA`` if set, else the running local broker."""
    bootstrap = settings.kafka or _local_bootstrap(settings)
    password = settings.kafka_password.get_secret_value() if settings.kafka_password else None
    return KafkaConfig(
        bootstrap=bootstrap,
        client_id=client_id,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_username,
        password=password,
    )


def _local_bootstrap(settings: Settings) -> str:
    status = LocalBroker(settings.kafka_dir, settings.cache_dir).status()
    if not status.running or status.bootstrap is None:
        raise NoKafkaError(
            f"no Kafka to talk to: no local broker runs from {settings.kafka_dir}. Start one "
            "with `modelstream kafka start`, or set MODELSTREAM_KAFKA=host:port."
        )
    return status.bootstrap


def topics(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix, settings.topic_replication)

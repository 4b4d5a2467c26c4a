"""Turns :class:`~services.settings.Settings` into the objects library code receives:
the Kafka connection config (the local broker when ``MODELSTREAM_KAFKA`` is unset), the
local broker handle, and the topic naming of this deployment.

A secure local broker (``modelstream kafka start --secure``) is used with the credentials
of the settings, never silently with its admin's: services run as the users they are
given, so a missing ACL shows up here and not first in production."""

from __future__ import annotations

from services.localstack import LocalBroker, LocalStackError, resolve_jars
from services.settings import Settings
from streams.kafka import KafkaConfig, Topics

__all__ = ["CredentialsRequiredError", "NoKafkaError", "kafka_config", "local_broker", "topics"]


class NoKafkaError(LocalStackError):
    """Neither MODELSTREAM_KAFKA is set nor a local broker is running."""


class CredentialsRequiredError(LocalStackError):
    """The local broker is secure and the settings hold no SASL credentials."""


def local_broker(
    settings: Settings,
    *,
    port: int | None = None,
    controller_port: int | None = None,
    heap_mb: int = 512,
    secure: bool = False,
) -> LocalBroker:
    """The local broker of this data dir (jars resolved on first use)."""
    libs = resolve_jars(settings.kafka_version, settings.cache_dir)
    return LocalBroker(
        settings.kafka_dir, libs, port=port, controller_port=controller_port, heap_mb=heap_mb,
        secure=secure,
    )  # fmt: skip


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
    sasl = settings.kafka_security_protocol.upper().startswith("SASL")
    if status.secure and not (sasl and settings.kafka_sasl_mechanism):
        raise CredentialsRequiredError(
            f"the local broker at {status.bootstrap} is secure (SASL/SCRAM, ACLs) and no "
            "credentials are set: export a user's MODELSTREAM_KAFKA_* line (printed by "
            "`modelstream kafka users add`), or the admin's (a super user):\n"
            '  eval "$(modelstream kafka start --secure | grep ^export)"'
        )
    return status.bootstrap


def topics(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix, settings.topic_replication)

"""Turns :class:`~services.settings.Settings` into the objects library code receives:
the Kafka connection config (the local broker when ``MODELSTREAM_KAFKA`` is unset), the
local broker handle, and the topic naming of this deployment.

A secure local broker (``modelstream kafka start --secure``) is used with the credentials
of the settings, never silently with its admin's: services run as the users they are
given, so a missing ACL shows up here and not first in production.

Before it hands out a config, :func:`kafka_config` asks the bootstrap whether a broker
answers (:func:`streams.kafka_probe.probe`: a few milliseconds when one does, at most
``REACH_TIMEOUT`` seconds when none does). Every command and every ``modelstream run``
process calls it first, so a wrong address or a stopped broker is one line within
seconds, not librdkafka retrying until its caller gives up.

Errors::

    LocalStackError (services.localstack)
    ├── NoKafkaError               no MODELSTREAM_KAFKA and no local broker running
    │   └── KafkaUnreachableError  no broker answers at the bootstrap address
    └── CredentialsRequiredError   the local broker is secure, the settings hold no login
"""

from __future__ import annotations

from services.localstack import BrokerStatus, LocalBroker, LocalStackError, resolve_jars
from services.settings import Settings
from streams.kafka import KafkaConfig, Topics
from streams.kafka_probe import FailureKind, Reach, probe

__all__ = [
    "REACH_TIMEOUT",
    "CredentialsRequiredError",
    "KafkaUnreachableError",
    "NoKafkaError",
    "kafka_config",
    "local_broker",
    "topics",
    "unreachable_message",
]

REACH_TIMEOUT = 3.0
START_LOCAL = "start the local broker with `modelstream kafka start`"
HINTS: dict[FailureKind, str] = {
    "refused": "is the broker running?",
    "unknown_host": "is the host name right?",
    "timeout": "is the address right, and its port open to this machine?",
    "network": "is the address right, and the network up?",
    "not_kafka": "is this a broker's Kafka listener (not its controller port, nor another "
    "service), with the right MODELSTREAM_KAFKA_SECURITY_PROTOCOL?",
}


class NoKafkaError(LocalStackError):
    """No Kafka to talk to: MODELSTREAM_KAFKA is unset and no local broker runs."""


class KafkaUnreachableError(NoKafkaError):
    """No broker answers at the bootstrap address: refused, unknown host, no answer."""


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
    """Connection config: ``MODELSTREAM_KAFKA`` if set, else the running local broker.

    Raises :class:`KafkaUnreachableError` when no broker answers there.
    """
    local: BrokerStatus | None = None
    if settings.kafka:
        bootstrap = settings.kafka
    else:
        local = _local_broker_status(settings)
        bootstrap = str(local.bootstrap)
    password = _password(settings)
    config = KafkaConfig(
        bootstrap=bootstrap,
        client_id=client_id,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_username,
        password=password,
    )
    _check_reachable(config, local, settings)
    return config


def _password(settings: Settings) -> str | None:
    """``MODELSTREAM_KAFKA_PASSWORD``, else the content of ``MODELSTREAM_KAFKA_PASSWORD_FILE``."""
    if settings.kafka_password:
        return settings.kafka_password.get_secret_value()
    if settings.kafka_password_file is None:
        return None
    try:
        return settings.kafka_password_file.read_text().strip()
    except OSError as exc:
        raise LocalStackError(
            f"MODELSTREAM_KAFKA_PASSWORD_FILE={settings.kafka_password_file} cannot be read "
            f"({exc.strerror}): point it at a readable file holding the password, or set "
            "MODELSTREAM_KAFKA_PASSWORD"
        ) from exc


def _local_broker_status(settings: Settings) -> BrokerStatus:
    broker = LocalBroker(settings.kafka_dir, settings.cache_dir)
    status = broker.status()
    if not status.running or status.bootstrap is None:
        died = f" (one ran before; its log: {broker.log_file})" if broker.log_file.exists() else ""
        raise NoKafkaError(
            f"no Kafka to talk to: no local broker runs from {settings.kafka_dir}{died}. Start "
            "one with `modelstream kafka start`, or set MODELSTREAM_KAFKA=host:port."
        )
    sasl = settings.kafka_security_protocol.upper().startswith("SASL")
    if status.secure and not (sasl and settings.kafka_sasl_mechanism):
        raise CredentialsRequiredError(
            f"the local broker at {status.bootstrap} is secure (SASL/SCRAM, ACLs) and no "
            "credentials are set: export a user's MODELSTREAM_KAFKA_* line (printed by "
            "`modelstream kafka users add`), or the admin's (a super user):\n"
            '  eval "$(modelstream kafka start --secure | grep ^export)"'
        )
    return status


def _check_reachable(config: KafkaConfig, local: BrokerStatus | None, settings: Settings) -> None:
    try:
        reach = probe(config.bootstrap, timeout=REACH_TIMEOUT, kafka_handshake=not config.tls)
    except ValueError as exc:
        raise KafkaUnreachableError(
            f"cannot use the Kafka bootstrap address: {exc}; set MODELSTREAM_KAFKA=host:port"
        ) from exc
    if not reach.ok:
        raise KafkaUnreachableError(unreachable_message(reach, local, settings))


def unreachable_message(reach: Reach, local: BrokerStatus | None, settings: Settings) -> str:
    """One line: which address failed how, and what to do about it."""
    if local is not None:
        log_file = LocalBroker(settings.kafka_dir, settings.cache_dir).log_file
        return (
            f"the local broker (pid {local.pid}) does not answer at {reach.describe()}: it may "
            f"be starting or stuck; see {log_file}, or restart it with `modelstream kafka "
            "stop` and `modelstream kafka start`."
        )
    hint = HINTS[reach.failures[0].kind] if reach.failures else ""
    return (
        f"cannot reach Kafka at {reach.describe()}: {hint} Check MODELSTREAM_KAFKA, or "
        f"unset it and {START_LOCAL}."
    )


def topics(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix, settings.topic_replication)

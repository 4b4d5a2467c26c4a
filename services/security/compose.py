"""The secrets of the docker-compose deployment, generated once into a private directory.

``docker-compose.yml`` is secure by default: the broker authenticates every client
(SASL/SCRAM, PLAIN for its own admin), authorizes with ACLs, and each modelstream service
logs in as the user of its role; ClickHouse has a generated password. None of these
secrets is in the compose file or the image: ``modelstream compose-secrets`` writes them
into ``secrets/`` (mode 0700; the files 0644 inside it, so the containers' non-root users
can read their bind-mounted copies), and compose hands each service only its own::

    kafka_admin            the broker's super user (the broker, and `kafka-users` only)
    kafka_jaas.conf        the broker's JAAS file: the admin for PLAIN, SCRAM for the rest
    kafka_admin.properties a Kafka client config for the broker's healthcheck
    kafka_<role>           the password of the user of each role (ROLE_USERS)
    clickhouse_password    the ClickHouse server's `modelstream` user
    registry_signing_key   the Ed25519 key that signs model versions (the registry tool
                           only); scorers and gateways trust registry_signing_key.pub
    grafana_admin_password Grafana's `admin` user (Grafana only)

Existing files are kept: running it again adds what is missing and changes nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from services.private import private_dir
from services.registry import Signer
from services.security.admin import generate_password
from services.security.local import PLAIN, SCRAM

__all__ = ["ROLE_USERS", "compose_secrets", "jaas_file"]

ADMIN: Final = "admin"
SIGNING_KEY: Final = "registry_signing_key"
# role -> the SCRAM user its compose service runs as (the user is named after the role)
ROLE_USERS: Final = ("scorer", "monitor", "merger", "sink", "registry", "gateway")


def jaas_file(admin_password: str) -> str:
    """The broker's JAAS file: its listeners authenticate the admin with PLAIN (the
    broker's own connections too) and every other user with SCRAM.

    >>> print(jaas_file("pw"))  # doctest: +NORMALIZE_WHITESPACE
    KafkaServer {
      org.apache.kafka.common.security.plain.PlainLoginModule required
        username="admin" password="pw" user_admin="pw";
      org.apache.kafka.common.security.scram.ScramLoginModule required;
    };
    """
    return (
        "KafkaServer {\n"
        f"  {PLAIN} required\n"
        f'    username="{ADMIN}" password="{admin_password}" user_{ADMIN}="{admin_password}";\n'
        f"  {SCRAM} required;\n"
        "};\n"
    )


def _admin_properties(admin_password: str) -> str:
    return (
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
        f'sasl.jaas.config={PLAIN} required username="{ADMIN}" password="{admin_password}";\n'
    )


def compose_secrets(directory: Path) -> list[Path]:
    """Write the missing secrets into ``directory``; returns the files it created."""
    private_dir(directory)
    created: list[Path] = []

    def ensure(name: str, make: Callable[[], str]) -> str:
        path = directory / name
        if path.exists():
            return path.read_text().strip()
        text = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        created.append(path)
        return text.strip()

    admin = ensure("kafka_admin", generate_password)
    ensure("kafka_jaas.conf", lambda: jaas_file(admin))
    ensure("kafka_admin.properties", lambda: _admin_properties(admin))
    for role in ROLE_USERS:
        ensure(f"kafka_{role}", generate_password)
    ensure("clickhouse_password", generate_password)
    ensure("grafana_admin_password", generate_password)
    key = directory / SIGNING_KEY
    if not key.exists():
        public = Signer.generate().save(key)
        for path in (key, public):
            path.chmod(0o644)  # the containers' users read their bind-mounted copy
            created.append(path)
    return created

"""The secure local broker: its admin credentials, listener settings and admin user.

Layout (one node, loopback only)::

    SASL_PLAINTEXT://127.0.0.1:<port>   clients and the broker itself
        PLAIN           the admin only (a static JAAS user: works before any metadata)
        SCRAM-SHA-256   every user, created at run time (``kafka users add``)
        SCRAM-SHA-512   the same users, if their client prefers it
    CONTROLLER://127.0.0.1:<controller port>   SASL_PLAINTEXT, PLAIN, the admin only

Why PLAIN for the broker's own connections: KRaft cannot use SCRAM on the controller
listener (the SCRAM store lives in the metadata the controller serves), and PLAIN with a
static JAAS user lets the broker authenticate before it has read any metadata. A PLAINTEXT
controller listener would need ``User:ANONYMOUS`` as a super user (broker registration
needs CLUSTER_ACTION), making every local process that reaches the port a super user.

The admin's password is generated once per state dir, kept in ``credentials.json``,
``admin.password`` (for ``MODELSTREAM_KAFKA_PASSWORD_FILE``) and ``server.properties``
(all 0600), printed once by the start that creates it, and never logged. Its SCRAM credentials are
added through the admin client once the broker listens, rather than by
``StorageTool format --add-scram``: that would put the password on a command line that
every local user can read, and it only applies to a fresh format, while this way also
secures a data dir first formatted without security.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from services.private import private_dir, write_private
from services.security._errors import KafkaSecurityError, SecurityModeError
from services.security.admin import MECHANISMS, add_user, generate_password
from streams.kafka import client_logging

__all__ = [
    "CREDENTIALS_FILE",
    "PASSWORD_FILE",
    "AdminCredentials",
    "check_running_mode",
    "create_credentials",
    "credentials_for_start",
    "ensure_admin_user",
    "load_credentials",
    "secure_settings",
    "user_exports",
    "write_private",
]

CREDENTIALS_FILE: Final = "credentials.json"
# the password alone, for MODELSTREAM_KAFKA_PASSWORD_FILE (a file name, not a secret)
PASSWORD_FILE: Final = "admin.password"  # noqa: S105
PLAIN: Final = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM: Final = "org.apache.kafka.common.security.scram.ScramLoginModule"


@dataclass(frozen=True)
class AdminCredentials:
    """The local broker's super user."""

    username: str
    password: str = field(repr=False)

    def exports(self, mechanism: str = "SCRAM-SHA-256") -> str:
        """The shell line that points modelstream at the secure local broker as this user."""
        return user_exports(self.username, self.password, mechanism)

    def file_exports(self, password_file: Path, mechanism: str = "SCRAM-SHA-256") -> str:
        """The same line with the password left in ``password_file`` (never printed again).

        >>> AdminCredentials("admin", "s3cret").file_exports(Path("/d/admin.password"))
        'export MODELSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT \
MODELSTREAM_KAFKA_SASL_MECHANISM=SCRAM-SHA-256 MODELSTREAM_KAFKA_USERNAME=admin \
MODELSTREAM_KAFKA_PASSWORD_FILE=/d/admin.password'
        """
        values = _login(self.username, mechanism) | {
            "MODELSTREAM_KAFKA_PASSWORD_FILE": str(password_file)
        }
        return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items())


def user_exports(username: str, password: str, mechanism: str = "SCRAM-SHA-256") -> str:
    """``export MODELSTREAM_KAFKA_...=...`` for one SASL user (values are shell-safe).

    >>> user_exports("app", "pw 1").split(" MODELSTREAM_KAFKA_")
    ['export', 'SECURITY_PROTOCOL=SASL_PLAINTEXT', 'SASL_MECHANISM=SCRAM-SHA-256', \
'USERNAME=app', "PASSWORD='pw 1'"]
    """
    values = _login(username, mechanism) | {"MODELSTREAM_KAFKA_PASSWORD": password}
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items())


def _login(username: str, mechanism: str) -> dict[str, str]:
    return {
        "MODELSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "MODELSTREAM_KAFKA_SASL_MECHANISM": mechanism,
        "MODELSTREAM_KAFKA_USERNAME": username,
    }


def load_credentials(state_dir: Path) -> AdminCredentials | None:
    """The admin credentials kept in ``state_dir``, or None if it was never secure."""
    path = state_dir / CREDENTIALS_FILE
    try:
        data = json.loads(path.read_text())
        creds = AdminCredentials(str(data["username"]), str(data["password"]))
        if not (state_dir / PASSWORD_FILE).exists():  # a state dir from before the file
            write_private(state_dir / PASSWORD_FILE, creds.password)
        return creds
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KafkaSecurityError(
            f"{path} cannot be read ({exc}): remove it and start the broker again (a new "
            "admin password is generated; users and ACLs are kept)"
        ) from exc


def create_credentials(state_dir: Path, username: str = "admin") -> AdminCredentials:
    """Generate the admin's password and keep it in ``state_dir`` (mode 0600)."""
    private_dir(state_dir)
    creds = AdminCredentials(username, generate_password())
    payload = {"username": creds.username, "password": creds.password}
    write_private(state_dir / CREDENTIALS_FILE, json.dumps(payload))
    write_private(state_dir / PASSWORD_FILE, creds.password)
    return creds


def credentials_for_start(state_dir: Path, *, secure: bool) -> AdminCredentials | None:
    """The admin of a broker about to start from ``state_dir`` (created on the first
    secure start); None without security. A state dir once secure stays secure."""
    admin = load_credentials(state_dir)
    if secure:
        return admin or create_credentials(state_dir)
    if admin is not None:
        raise SecurityModeError(
            f"{state_dir} belongs to a secure broker ({CREDENTIALS_FILE} is there): start it "
            f"with `modelstream kafka start --secure`, or remove {state_dir} for a fresh "
            "broker without security"
        )
    return None


def check_running_mode(state_dir: Path, want_secure: bool, is_secure: bool) -> None:
    """Refuse to hand out a running broker whose security is not the one asked for."""
    if is_secure and not want_secure:
        raise SecurityModeError(
            f"the broker running from {state_dir} is secure (SASL/SCRAM, ACLs): run "
            "`modelstream kafka start --secure` to see its bootstrap and credentials"
        )
    if want_secure and not is_secure:
        raise SecurityModeError(
            f"a broker without security runs from {state_dir}: stop it with "
            "`modelstream kafka stop`, then start it again with --secure"
        )


def _jaas(module: str, admin: AdminCredentials | None) -> str:
    if admin is None:
        return f"{module} required;"
    user, pw = admin.username, admin.password
    return f'{module} required username="{user}" password="{pw}" user_{user}="{pw}";'


def secure_settings(port: int, controller_port: int, admin: AdminCredentials) -> dict[str, str]:
    """The server.properties keys that make the broker secure (they replace the
    PLAINTEXT listener keys of the same name)."""
    client = "sasl_plaintext"
    return {
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": ",".join(["PLAIN", *MECHANISMS]),
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": _jaas(PLAIN, admin),
        f"listener.name.{client}.plain.sasl.jaas.config": _jaas(PLAIN, admin),
        f"listener.name.{client}.scram-sha-256.sasl.jaas.config": _jaas(SCRAM, None),
        f"listener.name.{client}.scram-sha-512.sasl.jaas.config": _jaas(SCRAM, None),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{admin.username}",
    }


def ensure_admin_user(bootstrap: str, admin: AdminCredentials, timeout: float = 30.0) -> None:
    """Set the admin's SCRAM credentials to its password (logging in with PLAIN).

    Retries while the broker finishes starting; raises KafkaSecurityError at the end.
    """
    client = AdminClient({
        "bootstrap.servers": bootstrap, "broker.address.family": "v4",
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
        "sasl.username": admin.username, "sasl.password": admin.password,
    } | client_logging(bootstrap, "modelstream-local-admin"))  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        left = max(deadline - time.monotonic(), 1.0)
        try:
            _upsert(client, admin, left)
            return
        except (KafkaSecurityError, KafkaException) as exc:
            if time.monotonic() >= deadline:
                raise KafkaSecurityError(
                    f"could not give the local admin its SCRAM credentials within "
                    f"{timeout:.0f}s: {exc}"
                ) from exc
        time.sleep(0.2)


def _upsert(client: AdminClient, admin: AdminCredentials, timeout: float) -> None:
    # always (re)set: the password in credentials.json wins, even over one a lost
    # credentials file had set before
    for mechanism in MECHANISMS:
        add_user(client, admin.username, admin.password, mechanism, timeout=timeout)

"""``modelstream kafka users|acls``: SCRAM users and the ACLs of each modelstream role.

Commands that change or list the cluster's users and ACLs run with the credentials in the
settings (``MODELSTREAM_KAFKA_USERNAME``/``_PASSWORD``), which must be a super user's.
``kafka acls role`` only prints what a role needs and touches no broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from services.clikit import settings_or_exit
from services.localstack import LocalBroker, LocalStackError
from services.runtime import kafka_config
from services.security._errors import KafkaSecurityError, SecurityModeError
from services.security.acls import ROLES, AclSpec, acls_for, table_rows
from services.security.admin import (
    MECHANISMS,
    add_user,
    check_user,
    generate_password,
    grant,
    list_acls,
    list_users,
)
from services.security.compose import ROLE_USERS
from services.security.local import user_exports
from services.settings import Settings
from streams.kafka import KafkaSetupError, make_admin

__all__ = ["acls_app", "users_app"]

users_app = typer.Typer(no_args_is_help=True, help="SASL/SCRAM users (needs a super user).")
acls_app = typer.Typer(no_args_is_help=True, help="ACLs, and what each modelstream role needs.")
console = Console()
err = Console(stderr=True)

RoleOpt = Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}")]
ModelOpt = Annotated[
    list[str] | None, typer.Option("--model", help="Only these models (repeat); default: all")
]
InstanceOpt = Annotated[
    str | None, typer.Option(help="One instance (transactional id, reply topic); default: any")
]


_settings = settings_or_exit


@contextmanager
def _admin(settings: Settings) -> Iterator[AdminClient]:
    """An admin client with the settings' credentials; known failures exit 1."""
    with _friendly():
        _require_security(settings)
        yield make_admin(kafka_config(settings, client_id="modelstream-security"))


def _require_security(settings: Settings) -> None:
    """Users and ACLs need a secure broker: say so before changing anything on a local
    broker that has none (a remote cluster answers for itself)."""
    if settings.kafka is not None:
        return
    status = LocalBroker(settings.kafka_dir, settings.cache_dir).status()
    if status.running and not status.secure:
        raise SecurityModeError(
            f"the local broker at {status.bootstrap} has no security (PLAINTEXT: no SASL "
            "users, no ACLs). Restart it secure: `modelstream kafka stop`, then "
            "`modelstream kafka start --secure`"
        )


@contextmanager
def _friendly() -> Iterator[None]:
    try:
        yield
    except (KafkaSecurityError, LocalStackError, KafkaSetupError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc


def _specs(settings: Settings, name: str, role: str, models: list[str] | None,
           instance: str | None) -> list[AclSpec]:  # fmt: skip
    with _friendly():
        return acls_for(role, settings.topic_prefix, f"User:{check_user(name)}", models, instance)


def _print_specs(specs: list[AclSpec], title: str) -> None:
    table = Table(title=title)
    longest = max((len(spec.name) for spec in specs), default=4)
    for column in ("resource", "pattern", "name", "operation"):  # names are never cut
        table.add_column(column, no_wrap=True, min_width=longest if column == "name" else None)
    table.add_column("why")
    for row in table_rows(specs):
        table.add_row(*row)
    console.print(table)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (the principal is User:NAME)")],
    role: RoleOpt,
    model: ModelOpt = None,
    instance: InstanceOpt = None,
    password: Annotated[
        str | None, typer.Option(help="Password (seen by ps; default: generated, printed once)")
    ] = None,
) -> None:
    """Create (or re-password) a SCRAM user and grant it the ACLs of ROLE."""
    settings = _settings()
    specs = _specs(settings, name, role, model, instance)
    secret = password or generate_password()
    with _admin(settings) as admin:
        check_user(name, secret)
        for mechanism in MECHANISMS:
            add_user(admin, name, secret, mechanism)
        granted = grant(admin, specs)
    _print_specs(specs, f"User:{name} — role {role}")
    console.print(f"user {name} ({', '.join(MECHANISMS)}): {granted} ACLs granted")
    if password is None:
        print(f"password={secret}")
        print(user_exports(name, secret))


@users_app.command("setup")
def users_setup(
    secrets: Annotated[
        Path, typer.Option(help="Directory of kafka_<role> password files (compose-secrets)")
    ],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="The gateway's models (repeat); the gateway role needs them"),
    ] = None,
) -> None:
    """One user per role, named after it, with the password in SECRETS/kafka_<role> and the
    role's ACLs (any instance; every model, the gateway's --model ones); idempotent."""
    settings = _settings()
    found = [role for role in ROLE_USERS if (secrets / f"kafka_{role}").exists()]
    if not found:
        err.print(f"no kafka_<role> files in {secrets}: run `modelstream compose-secrets` first")
        raise typer.Exit(1)
    with _admin(settings) as admin:
        for role in found:
            models = model if ROLES[role].models == "required" else None
            if ROLES[role].models == "required" and not models:
                err.print(f"skipping {role}: its role needs --model")
                continue
            secret = (secrets / f"kafka_{role}").read_text().strip()
            check_user(role, secret)
            for mechanism in MECHANISMS:
                add_user(admin, role, secret, mechanism)
            specs = acls_for(role, settings.topic_prefix, f"User:{role}", models)
            console.print(f"user {role}: {grant(admin, specs)} ACLs granted")


@users_app.command("list")
def users_list() -> None:
    """The SCRAM users and their mechanisms."""
    settings = _settings()
    with _admin(settings) as admin:
        users = list_users(admin)
    for user, mechanisms in sorted(users.items()):
        print(f"{user} {','.join(mechanisms)}")


@acls_app.command("list")
def acls_list(
    principal: Annotated[str | None, typer.Option(help="Only this principal, e.g. User:x")] = None,
) -> None:
    """Every ACL of the cluster (or of one principal)."""
    settings = _settings()
    with _admin(settings) as admin:
        specs = list_acls(admin, principal)
    rows = [(s.principal, s.permission, s.operation, s.resource, s.pattern, s.name) for s in specs]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(5)]
    for row in rows:  # plain aligned lines: nothing is cut, easy to grep
        print(" ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[5])
    console.print(f"[dim]{len(specs)} ACL(s)[/]")


@acls_app.command("grant")
def acls_grant(
    name: Annotated[str, typer.Argument(help="Existing user (the principal is User:NAME)")],
    role: RoleOpt,
    model: ModelOpt = None,
    instance: InstanceOpt = None,
) -> None:
    """Grant ROLE's ACLs to an existing user (e.g. a model more for a gateway)."""
    settings = _settings()
    specs = _specs(settings, name, role, model, instance)
    with _admin(settings) as admin:
        granted = grant(admin, specs)
    _print_specs(specs, f"User:{name} — role {role}")
    console.print(f"{granted} ACLs granted to User:{name}")


@acls_app.command("role")
def acls_role(
    role: Annotated[str, typer.Argument(help=f"One of: {', '.join(ROLES)}")],
    model: ModelOpt = None,
    instance: InstanceOpt = None,
    name: Annotated[str, typer.Option(help="User name for the principal")] = "NAME",
) -> None:
    """Print the ACLs ROLE needs in this deployment (no broker needed)."""
    settings = _settings()
    _print_specs(_specs(settings, name, role, model, instance), f"role {role}")

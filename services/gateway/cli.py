"""``modelstream clients``: API clients of the gateway (tokens, scopes, limits).

Every command reads :class:`~services.settings.Settings` once. A failure prints one line
saying what went wrong and what to do next, and exits 1 (2 for a bad setting). A token
is printed once, on creation or rotation, and cannot be shown again: only its SHA-256
is kept.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, NoReturn

import orjson
import typer
from confluent_kafka import KafkaException
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.clikit import settings_or_exit
from services.gateway.clients import (
    ClientError,
    ClientRecord,
    ClientStore,
    parse_scopes,
    validate_client_name,
)
from services.gateway.policy import InvalidLimitsError, Limits
from services.localstack import LocalStackError
from services.runtime import kafka_config, topics

__all__ = ["clients_app"]

clients_app = typer.Typer(
    no_args_is_help=True,
    help="API clients of the gateway: create (prints the token once), list, revoke, rotate.",
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

Name = Annotated[str, typer.Argument(help="Client name (letters, digits, '_' or '-')")]
Actor = Annotated[str, typer.Option(help="Who makes the change (default: your user name)")]


@contextmanager
def _store() -> Iterator[ClientStore]:
    """The client store of this deployment; known failures become one line and exit 1."""
    settings = settings_or_exit()
    try:
        kafka = kafka_config(settings, client_id="modelstream-clients")
        with ClientStore(kafka, topics(settings)) as store:
            yield store
    except (ClientError, LocalStackError, KafkaException, OSError) as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
    raise typer.Exit(1) from exc


@clients_app.command("create")
def create(
    name: Name,
    scopes: Annotated[
        str,
        typer.Option(
            help="Comma-separated: predict:<model>, predict:*, batch:<model>, "
            "batch:*, catalogue:read, admin"
        ),
    ],
    rate: Annotated[float, typer.Option(help="Sustained requests per second")] = 50.0,
    burst: Annotated[int, typer.Option(help="Requests allowed at once")] = 100,
    quota: Annotated[int | None, typer.Option(help="Requests per quota window")] = None,
    quota_window_s: Annotated[float, typer.Option(help="Quota window, seconds")] = 86_400.0,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body")] = 1_048_576,
    max_batch: Annotated[
        int,
        typer.Option(
            help="Most records per batch request (the burst, the quota and each "
            "gateway's --max-batch cap it too)"
        ),
    ] = 1_000,
    description: Annotated[str, typer.Option(help="Who uses it, for what")] = "",
    actor: Actor = "",
) -> None:
    """Create client NAME and print its API token (once)."""
    try:  # refuse bad input before connecting to Kafka
        validate_client_name(name)
        granted = parse_scopes(scopes)
        limits = Limits(rate, burst, quota, quota_window_s, max_body_bytes, max_batch)
    except (ClientError, InvalidLimitsError) as exc:
        _fail(exc)
    with _store() as store:
        record, token = store.create(
            name, granted, limits, description=description, actor=actor or getpass.getuser()
        )
    console.print(
        f"created client {record.name}: {', '.join(record.scopes)}; {_limits(record.limits)}",
        soft_wrap=True, markup=False, highlight=False,
    )  # fmt: skip
    _print_token(record, token)


@clients_app.command("rotate")
def rotate(name: Name, actor: Actor = "") -> None:
    """Issue a new token for NAME; the old one stops working."""
    with _store() as store:
        record, token = store.rotate(name, actor=actor or getpass.getuser())
    console.print(f"rotated the token of {record.name}; the old token no longer works")
    _print_token(record, token)


def _print_token(record: ClientRecord, token: str) -> None:
    console.print(f"API token (shown once): [bold]{token}[/]", soft_wrap=True, highlight=False)
    print(f"token={token}", flush=True)  # machine-readable, for scripts
    err.print(
        "[bold yellow]warning:[/] store this token now, it cannot be shown again (only its "
        f"SHA-256 is kept); if it is lost, `modelstream clients rotate {record.name}`",
        soft_wrap=True,
    )


@clients_app.command("revoke")
def revoke(name: Name, actor: Actor = "") -> None:
    """Revoke NAME: its token stops working on every gateway (the record stays)."""
    with _store() as store:
        record = store.revoke(name, actor=actor or getpass.getuser())
    console.print(f"revoked {record.name} at {_when(record.revoked_at)}", highlight=False)


@clients_app.command("list")
def list_clients(
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON array instead of a table")
    ] = False,
) -> None:
    """Every client with its scopes, limits and status (never a token or its digest)."""
    with _store() as store:
        records = store.list()
    if as_json:
        rows = [record.to_dict(digest=False) | {"largest_batch": record.limits.largest_batch}
                for record in records]  # fmt: skip
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("name", "scopes", "limits", "created", "status", box=box.SIMPLE_HEAD,
                  padding=(0, 1))  # fmt: skip
    for record in records:
        table.add_row(
            record.name, ", ".join(record.scopes), _limits(record.limits),
            f"{_when(record.created_at)} by {record.created_by or '-'}", _status(record),
        )  # fmt: skip
    console.print(table if records else "no clients yet: `modelstream clients create NAME`")


def _limits(limits: Limits) -> str:
    """
    >>> _limits(Limits(quota=5_000, max_batch=100))
    '50/s, burst 100, quota 5000/86400s, body 1.0 MiB, batch 100'
    """
    quota = "no quota" if limits.quota is None else (
        f"quota {limits.quota}/{limits.quota_window_s:g}s"
    )  # fmt: skip
    body = f"{limits.max_body_bytes / 2**20:.1f} MiB"
    if limits.max_body_bytes < 2**20:
        body = f"{limits.max_body_bytes / 1024:.1f} KiB"
    return f"{limits.rate_per_s:g}/s, burst {limits.burst}, {quota}, body {body}, {_batch(limits)}"


def _batch(limits: Limits) -> str:
    """The batch size that can really pass (what the gateway enforces), and why when it
    is below ``max_batch``.

    >>> _batch(Limits(burst=100, max_batch=1_000))
    'batch 100 (max-batch 1000, but the burst is 100: a batch takes a token per record)'
    >>> _batch(Limits(burst=500, quota=50, max_batch=200))
    'batch 50 (max-batch 200, but the quota is 50: a batch counts once per record)'
    """
    bound, most = limits.batch_bound, limits.largest_batch
    if bound == "max_batch":
        return f"batch {most}"
    why = "takes a token per record" if bound == "burst" else "counts once per record"
    return f"batch {most} (max-batch {limits.max_batch}, but the {bound} is {most}: a batch {why})"


def _status(record: ClientRecord) -> str:
    if record.revoked_at is not None:
        return f"revoked {_when(record.revoked_at)}"
    if record.rotated_at is not None:
        return f"active (rotated {_when(record.rotated_at)})"
    return "active"


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M")


if __name__ == "__main__":
    clients_app()

"""``modelstream up`` / ``status`` / ``down``: every part of the local deployment in the
background, found again from any shell.

A failure prints what went wrong (with the part's last log lines) and what to do next,
and exits 1.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from services.clikit import console, friendly_errors, settings_or_exit
from services.runtime import kafka_config, local_broker
from services.settings import Settings
from services.stack._process import PartStatus
from services.stack._stack import LocalServices

__all__ = ["down", "status", "up"]

Port = Annotated[int, typer.Option(help="Port of the gateway")]
Host = Annotated[str, typer.Option(help="Address the gateway listens on")]


@contextmanager
def _friendly() -> Iterator[Settings]:
    settings = settings_or_exit()
    with friendly_errors(OSError):
        yield settings


def modelstream_command() -> str:
    """The ``modelstream`` executable of this installation."""
    beside = Path(sys.executable).with_name("modelstream")
    return str(beside) if beside.exists() else shutil.which("modelstream") or "modelstream"


def _services(settings: Settings, host: str = "127.0.0.1", port: int = 8080) -> LocalServices:
    return LocalServices(settings.data_dir, modelstream_command(), os.environ, host=host, port=port)


def up(port: Port = 8080, host: Host = "127.0.0.1") -> None:
    """Start the local broker (unless MODELSTREAM_KAFKA is set) and the sink, scorer,
    monitor, merger and gateway in the background; returns once every part serves."""
    with _friendly() as settings:
        if settings.kafka is None:
            broker = local_broker(settings)
            was_running = broker.status().running
            bootstrap = broker.start()
            console.print(f"kafka    {bootstrap} ({'running' if was_running else 'started'})")
        kafka_config(settings, client_id="modelstream-up")  # fails fast if Kafka does not answer
        services = _services(settings, host, port)
        with console.status("starting the sink, scorer, monitor, merger, lifecycle, gateway ..."):
            statuses = services.up(
                on_ready=lambda s: console.print(f"{s.name:<9} ready (pid {s.pid}, log {s.log})")
            )
    _print(statuses)
    gateway = next((s for s in statuses if s.name == "gateway"), None)
    if gateway is not None and gateway.url:
        console.print(
            f"HTTP: {gateway.url}/v1/models/<model>/predict, the catalogue at "
            f"{gateway.url}/catalogue (a token: `modelstream clients create NAME --scopes ...`)",
            soft_wrap=True,
        )
    console.print("`modelstream status` shows them, `modelstream down` stops them.")


def status() -> None:
    """Which parts of the local deployment run; exit code 0 if all do, 3 if not."""
    with _friendly() as settings:
        statuses = _services(settings).status()
        broker = None if settings.kafka else local_broker(settings).status()
    if broker is not None:
        where = broker.bootstrap if broker.running else f"not running ({broker.state_dir})"
        console.print(f"kafka    {where}")
    _print(statuses)
    if not all(s.running for s in statuses) or (broker is not None and not broker.running):
        raise typer.Exit(3)


def down(
    keep_kafka: Annotated[
        bool, typer.Option("--keep-kafka", help="Leave the local broker running")
    ] = False,
) -> None:
    """Stop the gateway, merger, monitor, scorer and sink (each finishes its batch), then
    the local broker."""
    with _friendly() as settings:
        for name, was_running in _services(settings).down():
            console.print(f"{name:<8} {'stopped' if was_running else 'was not running'}")
        if settings.kafka is None and not keep_kafka:
            stopped = local_broker(settings).stop()
            console.print(f"kafka    {'stopped' if stopped else 'was not running'}")


def _print(statuses: list[PartStatus]) -> None:
    table = Table("part", "state", "pid", "log", box=box.SIMPLE_HEAD, padding=(0, 1))
    for s in statuses:
        state = "[green]running[/]" if s.running else "[red]stopped[/]"
        table.add_row(s.name, state, str(s.pid or "-"), str(s.log))
    console.print(table)

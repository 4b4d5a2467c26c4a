"""What the ``modelstream`` commands share: settings read once at the edge, known
failures printed as one line that says what to do next (exit 1; 2 for a bad setting)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from services.localstack import LocalStackError
from services.settings import Settings
from services.warehouse import WarehouseError
from streams.kafka import KafkaSetupError

__all__ = [
    "configure_logging",
    "console",
    "err",
    "friendly_errors",
    "settings_or_exit",
    "sql_state_file",
]

console = Console()
err = Console(stderr=True)
KNOWN: tuple[type[Exception], ...] = (
    LocalStackError,
    KafkaSetupError,
    WarehouseError,
    ValueError,
)


@contextmanager
def friendly_errors(*extra: type[Exception]) -> Iterator[None]:
    """Known failures (and ``extra`` ones) become one readable line and exit code 1."""
    try:
        yield
    except (*KNOWN, *extra) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from exc


def settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        err.print(f"[bold red]error:[/] invalid MODELSTREAM_* setting:\n{exc}")
        raise typer.Exit(2) from exc


def sql_state_file(settings: Settings) -> Path:
    """Where a running sink says on which port it serves read-only SQL."""
    return settings.data_dir / "sink.json"


def configure_logging(level: str) -> None:
    """Log lines of a long-running part: time, level, logger, message."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

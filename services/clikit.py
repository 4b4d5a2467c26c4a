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
from services.registry import KeyFileError
from services.settings import Settings
from services.warehouse import SqlLimits, WarehouseError
from streams.kafka import KafkaSetupError

__all__ = [
    "configure_logging",
    "console",
    "err",
    "friendly_errors",
    "human_size",
    "settings_or_exit",
    "sql_limits",
    "sql_state_file",
]

console = Console()
err = Console(stderr=True)
KNOWN: tuple[type[Exception], ...] = (
    LocalStackError,
    KafkaSetupError,
    WarehouseError,
    KeyFileError,  # a signing or trusted key that cannot be read
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
    """Where a running sink says on which port, with which token, it serves read-only
    SQL (mode 0600: see :mod:`services.sink.sqlserver`)."""
    return settings.data_dir / "sink.json"


def sql_limits(settings: Settings) -> SqlLimits:
    """What one statement of ``modelstream sql`` may use, wherever it runs."""
    return SqlLimits(settings.sql_max_execution_time_s, settings.sql_max_memory_bytes)


def configure_logging(level: str) -> None:
    """Log lines of a long-running part: time, level, logger, message."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def human_size(count: int) -> str:
    """A byte count for people.

    >>> human_size(512), human_size(3 * 2**20)
    ('512 B', '3.0 MiB')
    """
    if count < 1024:
        return f"{count} B"
    return f"{count / 1024:.1f} KiB" if count < 2**20 else f"{count / 2**20:.1f} MiB"

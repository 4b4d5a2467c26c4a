"""Progress while the bench runs: one bar per measured phase, one line per finished step.

The display refreshes only when a phase reports progress, at most a few times a second:
a background refresh thread would compete for the GIL with the latency reader and
show up in the percentiles it measures.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["Display"]


class Display:
    """Bars and status lines on ``console``."""

    def __init__(self, console: Console, refresh_every: float = 0.25) -> None:
        self.console = console
        self.refresh_every = refresh_every
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), console=console, auto_refresh=False,
        )  # fmt: skip
        self._last_refresh = 0.0

    def __enter__(self) -> Display:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def say(self, text: str) -> None:
        self._progress.console.print(text)

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        """A step without a count: its line says how long it took."""
        started = time.perf_counter()
        task = self._progress.add_task(description, total=None)
        self._progress.refresh()
        try:
            yield
        finally:
            self._progress.remove_task(task)
        self.say(f"[green]✓[/] {description} [dim]({time.perf_counter() - started:.1f}s)[/]")

    @contextlib.contextmanager
    def phase(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A counted phase; yields ``advance(n)``."""
        task = self._progress.add_task(description, total=total)
        self._progress.refresh()

        def advance(count: int) -> None:
            self._progress.advance(task, count)
            now = time.monotonic()
            if now - self._last_refresh >= self.refresh_every:
                self._last_refresh = now
                self._progress.refresh()

        try:
            yield advance
        finally:
            self._progress.refresh()

"""Run a model's batch on its own thread, with a deadline the caller can walk away from.

A model that hangs or sleeps must not hang the scorer: the caller waits at most the
deadline, then carries on (backup for the champion, "timeout" for the challenger). The
stuck call keeps its thread; until it returns, the guard reports itself busy and the
model is not called again (no pile-up of stuck threads).
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from streams.scoring.outcome import Outcome

__all__ = ["Guard", "Pending"]

Call = Callable[[Any], list[Outcome]]  # rows or a Frame in, one outcome per row out


class Pending:
    """A submitted call; ``result(timeout)`` gives outcomes or one failure for all rows."""

    def __init__(self, future: Future[list[Outcome]] | None, size: int, why: str = "") -> None:
        self._future = future
        self._size = size
        self._why = why

    def result(self, timeout: float) -> list[Outcome] | tuple[str, str]:
        """Outcomes, or ``(code, message)`` when the call is busy, timed out or crashed."""
        if self._future is None:
            return ("busy", self._why)
        try:
            outcomes = self._future.result(timeout=max(timeout, 0.0))
        except FutureTimeout:
            return ("timeout", f"no answer within {timeout * 1e3:.0f} ms")
        except Exception as exc:  # noqa: BLE001 - an adapter bug is a model failure
            return ("model_failed", f"{type(exc).__name__}: {exc}"[:500])
        if len(outcomes) != self._size:
            return ("model_failed", f"{len(outcomes)} outcomes for {self._size} rows")
        return outcomes


class Guard:
    """One worker thread per model role."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._running: Future[list[Outcome]] | None = None

    def submit(self, call: Call, rows: Sized) -> Pending:
        running = self._running
        if running is not None and not running.done():
            return Pending(None, len(rows), "still busy with an earlier batch")
        self._running = self._pool.submit(call, rows)
        return Pending(self._running, len(rows))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

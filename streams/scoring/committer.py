"""The thread that commits the scorer's transactions while the next batch is scored.

One daemon thread runs the submitted calls one at a time. A call stuck in librdkafka
(``send_offsets_to_transaction`` can block past its timeout when the group coordinator
went away: librdkafka#5456, #5511) is abandoned by the scorer with its committer, and a
daemon thread does not keep the process from exiting.

>>> committer = Committer()
>>> committer.submit(sum, [1, 2, 3]).result(timeout=5)
6
>>> committer.shutdown()
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["Committer"]

T = TypeVar("T")
_Job = tuple[Callable[..., Any], tuple[Any, ...], "Future[Any]"]


class Committer:
    """A single daemon worker thread with a queue of calls."""

    def __init__(self, name: str = "committer") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((fn, args, future))
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on it
                future.set_exception(exc)

    def shutdown(self, timeout: float | None = None) -> None:
        """Finish the queued calls (at most ``timeout`` seconds), then stop."""
        self._jobs.put(None)
        self._thread.join(timeout)

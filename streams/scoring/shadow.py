"""The challenger's own worker: shadow scoring that never holds a reply back.

The scorer hands each batch's sampled rows to the challenger's :class:`Shadow` and goes on
answering with the champion. The worker scores queued batches in order, several at once
when it has fallen behind (one model call over all of them: a slow challenger catches up
instead of dropping batches). Each batch carries its own deadline; a batch the challenger
has not answered by then gets the challenger's own failure, ``timeout``, and is skipped
if the worker reaches it later. A challenger that hangs holds only its own thread: later
batches queue, expire at their deadlines and are logged as its failures; nothing else
waits on it.

The scorer writes a request's prediction-log record once its challenger outcome (or
failure) is known, so every sampled request's log holds the challenger's answer.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from streams.scoring.adapters import Predictor
from streams.scoring.frame import Frame
from streams.scoring.outcome import Outcome

__all__ = ["Shadow", "Ticket"]

MAX_ROWS_PER_CALL = 20_000  # a challenger catching up scores at most this many rows at once


class Ticket:
    """One batch handed to the challenger: outcomes once scored, or a timeout after
    its deadline (``time.monotonic()``)."""

    __slots__ = ("_outcomes", "deadline", "frame", "size", "started")

    def __init__(self, frame: Frame, deadline: float) -> None:
        self.frame: Frame | None = frame
        self.size = len(frame)
        self.deadline = deadline
        self.started = time.monotonic()
        self._outcomes: list[Outcome] | None = None

    def settle(self, outcomes: list[Outcome]) -> None:
        self._outcomes = outcomes
        self.frame = None

    def result(self, now: float) -> list[Outcome] | None:
        """The outcomes; the challenger's ``timeout`` for every row once the deadline has
        passed without them; ``None`` while it may still answer."""
        outcomes = self._outcomes
        if outcomes is not None:
            return outcomes
        if now < self.deadline:
            return None
        waited = (self.deadline - self.started) * 1e3
        failed = [Outcome.failed("timeout", f"no answer within {waited:.0f} ms", waited)]
        self._outcomes = failed * self.size
        self.frame = None
        return self._outcomes

    @property
    def open(self) -> bool:
        return self._outcomes is None


class Shadow:
    """A worker thread that scores queued batches of one model version, oldest first."""

    def __init__(self, name: str, predictor: Predictor) -> None:
        self._predictor = predictor
        self._queue: deque[Ticket] = deque()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._work, name=f"shadow-{name}", daemon=True)
        self._started = False
        self._closed = False

    def submit(self, frame: Frame, deadline_s: float) -> Ticket:
        """Queue ``frame``; its outcomes are due within ``deadline_s`` seconds."""
        ticket = Ticket(frame, time.monotonic() + deadline_s)
        with self._ready:
            if not self._started:
                self._thread.start()
                self._started = True
            self._queue.append(ticket)
            self._ready.notify()
        return ticket

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()

    def _next(self) -> list[Ticket] | None:
        with self._ready:
            while not self._queue and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            taken, rows = [], 0
            while self._queue and rows < MAX_ROWS_PER_CALL:
                ticket = self._queue.popleft()
                if ticket.open and ticket.frame is not None:
                    taken.append(ticket)
                    rows += ticket.size
            return taken

    def _work(self) -> None:
        while (taken := self._next()) is not None:
            frames = [t.frame for t in taken if t.frame is not None]
            if not frames:
                continue
            started = time.perf_counter()
            try:
                outcomes = self._predictor.predict(Frame.concat(frames))
            except Exception as exc:  # noqa: BLE001 - an adapter bug is the challenger's failure
                elapsed = (time.perf_counter() - started) * 1e3
                failed = Outcome.failed(
                    "model_failed", f"{type(exc).__name__}: {exc}"[:500], elapsed
                )
                outcomes = [failed] * sum(t.size for t in taken)
            at = 0
            for ticket in taken:
                part = outcomes[at : at + ticket.size]
                at += ticket.size
                if len(part) != ticket.size:
                    part = [
                        Outcome.failed("model_failed", "fewer outcomes than rows")
                    ] * ticket.size
                if ticket.open:
                    ticket.settle(part)

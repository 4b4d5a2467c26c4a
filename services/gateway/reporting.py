"""Monitoring reports rendered on request, for the gateway's ``/reports/{model}`` pages.

The report is :func:`services.reports.render_report` over the warehouse, read the way
the catalogue's statistics read it (:mod:`services.gateway.stats`): through the sink's
read-only SQL endpoint when the sink holds the embedded warehouse (the gateway never
opens the chDB directory), else a ClickHouse server, connected on first use and again
after it failed.

Rendering is CPU work of a second or more, so it never runs on the event loop: a worker
thread renders, one report at a time. A rendered report is kept ``ttl`` seconds per
``(model, window)``, and requests for a report being rendered wait for that render: a
reload storm costs one render. Failures are not kept (the next request tries again). The
worker also gzips the page once per render (plotly.js makes it ~4.8 MB, ~1.5 MB gzipped).

Errors::

    LiveReportError              root: no report to show; the message says what to do
    ├── ReportUnavailableError   the warehouse could not answer
    ├── BadWindowError           ``from``/``to`` is not a time, or not a window (a ValueError)
    └── ReportFailedError        drawing failed for another reason (a bug: logged)
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import anyio

from services.settings import Settings
from services.sink.reader import Reader, SinkReader
from services.sink.sqlserver import SqlRejectedError
from services.warehouse import Dsn, Warehouse, WarehouseError, connect, parse_dsn

if TYPE_CHECKING:
    from services.reports import Report

__all__ = [
    "BadWindowError",
    "LiveReportError",
    "LiveReports",
    "ReaderSource",
    "Rendered",
    "ReportFailedError",
    "ReportUnavailableError",
    "ServerSource",
    "SinkSource",
    "Window",
    "live_reports",
    "parse_window",
]

log = logging.getLogger(__name__)

TTL_S: Final = 5.0
MAX_CACHED: Final = 8  # a report embeds plotly.js (megabytes): keep few


class LiveReportError(Exception):
    """Root of the live reports' errors: no report to show; the message says what to do."""


class ReportUnavailableError(LiveReportError):
    """The warehouse could not answer a report's queries."""


class BadWindowError(LiveReportError, ValueError):
    """``?from=``/``?to=`` is not an ISO 8601 time, or ``from`` is not before ``to``."""


class ReportFailedError(LiveReportError):
    """Drawing the report failed for a reason that is neither the warehouse nor the
    window: a bug; the traceback is in the gateway's log."""


@dataclass(frozen=True)
class Window:
    """The time range a report covers: ``start``/``end`` (UTC), None for the default."""

    start: datetime | None = None
    end: datetime | None = None


def parse_window(start: str | None, end: str | None) -> Window:
    """``?from=…&to=…`` (ISO 8601; a time without an offset is UTC) as a :class:`Window`.
    Raises BadWindowError.

    >>> parse_window("2026-05-01T12:00:00Z", "2026-05-01 13:00").end.isoformat()
    '2026-05-01T13:00:00+00:00'
    >>> parse_window(None, None)
    Window(start=None, end=None)
    >>> try:
    ...     parse_window("2026-05-02", "2026-05-01")
    ... except BadWindowError as exc:
    ...     print(exc)
    `from` (2026-05-02 00:00 UTC) must be before `to` (2026-05-01 00:00 UTC)
    """
    window = Window(_instant("from", start), _instant("to", end))
    if window.start is not None and window.end is not None and window.start >= window.end:
        raise BadWindowError(f"`from` ({window.start:%Y-%m-%d %H:%M} UTC) must be before `to` "
                             f"({window.end:%Y-%m-%d %H:%M} UTC)")  # fmt: skip
    return window


def _instant(name: str, text: str | None) -> datetime | None:
    if text is None or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadWindowError(
            f"`{name}` is not an ISO 8601 time: {text[:40]!r} (expected e.g. 2026-05-01T12:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Rendered:
    """A report with its page as bytes, plain and gzipped (made on the worker thread)."""

    report: Report
    body: bytes
    gzipped: bytes

    @classmethod
    def of(cls, report: Report) -> Rendered:
        body = report.html.encode()
        return cls(report, body, gzip.compress(body, compresslevel=5, mtime=0))


class ReaderSource(Protocol):
    """Gives the reader one render uses, and hears how the render went (called from the
    one worker thread that renders, never two at once)."""

    def reader(self) -> Reader: ...

    def failed(self, exc: Exception) -> str:
        """Forget what ``exc`` broke; say why the warehouse did not answer and what to do."""
        ...

    def close(self) -> None: ...


class SinkSource:
    """The embedded warehouse, through the sink that holds it (``<data dir>/sink.json``)."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self._reader = SinkReader(state_file, timeout=30.0)

    def reader(self) -> Reader:
        return self._reader

    def failed(self, exc: Exception) -> str:
        if isinstance(exc, SqlRejectedError):
            return f"the warehouse refused a report query: {exc}"
        return (
            "the embedded warehouse is read through the sink, and no sink answers for this "
            f"data dir ({self.state_file.parent}): start it (`modelstream run sink`, or "
            "`modelstream up`), then reload"
        )

    def close(self) -> None:
        return None


class ServerSource:
    """A ClickHouse server, connected on first use and again after a failure."""

    def __init__(self, dsn: Dsn, opener: Callable[[Dsn], Warehouse] = connect) -> None:
        self.dsn, self._open = dsn, opener
        self._warehouse: Warehouse | None = None

    def reader(self) -> Reader:
        if self._warehouse is None:
            self._warehouse = self._open(self.dsn)
        return self._warehouse

    def failed(self, exc: Exception) -> str:
        self.close()
        return (
            f"the warehouse at {self.dsn.redacted()} did not answer ({exc}): check that the "
            "ClickHouse server is up and MODELSTREAM_CLICKHOUSE points at it, then reload"
        )

    def close(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None


Render = Callable[..., "Report"]
Key = tuple[str, Window]


class LiveReports:
    """Reports rendered on request from ``source``, cached ``ttl`` seconds per key (see
    the module docstring). Used from the event loop: the render runs on a worker thread.
    ``render``: :func:`services.reports.render_report` unless given."""

    def __init__(
        self, source: ReaderSource, *, ttl: float = TTL_S, render: Render | None = None,
        clock: Callable[[], float] = time.monotonic, max_cached: int = MAX_CACHED,
    ) -> None:  # fmt: skip
        self.source, self.ttl, self._render, self._clock = source, ttl, render, clock
        self._max_cached = max_cached
        self._cache: dict[Key, tuple[float, Rendered]] = {}
        self._inflight: dict[Key, asyncio.Future[Rendered]] = {}
        self._one_at_a_time = anyio.CapacityLimiter(1)

    async def report(self, model: str, window: Window) -> Rendered:
        """The report of ``model`` over ``window``: a kept one, the one being rendered, or
        a new render. Raises LiveReportError."""
        key = (model, window)
        kept = self._cache.get(key)
        if kept is not None and self._clock() - kept[0] < self.ttl:
            return kept[1]
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fresh(key))
            self._inflight[key] = pending
            pending.add_done_callback(lambda done: self._settled(key, done))
        # shielded: a browser that gives up must not cancel the render others wait for
        return await asyncio.shield(pending)

    def _settled(self, key: Key, done: asyncio.Future[Rendered]) -> None:
        self._inflight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have left before it failed

    async def _fresh(self, key: Key) -> Rendered:
        report = await anyio.to_thread.run_sync(self._render_now, *key, limiter=self._one_at_a_time)
        self._keep(key, report)
        return report

    def _render_now(self, model: str, window: Window) -> Rendered:
        began = time.perf_counter()
        rendered = Rendered.of(self._draw(model, window))
        log.info("rendered the report of %s (%s to %s) in %.2f s, %d bytes", model,
                 window.start or "default", window.end or "now", time.perf_counter() - began,
                 len(rendered.body))  # fmt: skip
        return rendered

    def _draw(self, model: str, window: Window) -> Report:
        from services.reports import WindowError, render_report  # plotly loads on first use

        render = self._render or render_report
        try:
            return render(self.source.reader(), model, start=window.start, end=window.end,
                          now=datetime.now(UTC))  # fmt: skip
        except (WarehouseError, SqlRejectedError) as exc:
            raise ReportUnavailableError(self.source.failed(exc)) from exc
        except WindowError as exc:
            raise BadWindowError(str(exc)) from exc
        except Exception as exc:  # the page says so rather than a bare 500
            log.exception("drawing the report of %s over %s failed", model, window)
            raise ReportFailedError(f"drawing the report failed: {type(exc).__name__}: {exc}. "
                                    "The gateway's log has the traceback.") from exc  # fmt: skip

    def _keep(self, key: Key, report: Rendered) -> None:
        now = self._clock()
        self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self.ttl}
        while len(self._cache) >= self._max_cached:
            del self._cache[min(self._cache, key=lambda k: self._cache[k][0])]
        self._cache[key] = (now, report)

    def close(self) -> None:
        self._cache.clear()
        self.source.close()


def live_reports(settings: Settings, ttl: float = TTL_S) -> LiveReports:
    """The gateway's reports over this deployment's warehouse, each kept ``ttl`` seconds.
    Raises InvalidDsn for a DSN that cannot be understood."""
    dsn = parse_dsn(settings.clickhouse_dsn)
    source: ReaderSource = (
        SinkSource(settings.data_dir / "sink.json") if dsn.embedded else ServerSource(dsn)
    )
    return LiveReports(source, ttl=ttl)

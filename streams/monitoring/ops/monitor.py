"""Operational health per window: throughput, latency quantiles, error, DLQ and backup rates.

Fed from the prediction log (one call per scored request) and the DLQ (one call per
rejected request). Each window -- default 10 s of event time; close idle windows with
:meth:`OpsMonitor.advance` -- reports in an :class:`OpsReport`:

- ``qps``: requests (scored + DLQ) per second of the window;
- ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms``: end to end (``role`` null)
  and per model role (champion, challenger, backup), from :class:`LatencySketch`
  (relative error 1 %);
- ``error_rate``: requests answered with an error (``served_by`` none); per role, the
  requests where that model failed;
- ``dlq_rate``: DLQ records over all requests; ``backup_rate``: requests the backup served.

Examples
--------
>>> ops = OpsMonitor(window=WindowSpec(millis=1000))
>>> for i in range(10):
...     _ = ops.update(ts=i * 100, latency_ms=2.0 + i,
...                    role_latency={"champion": 1.0 + i, "challenger": 3.0},
...                    served_by="backup" if i == 9 else "champion")
>>> _ = ops.update_dlq(ts=950)
>>> report = ops.advance(ts=1000)[0]
>>> report.qps, report.backup_rate, report.dlq_rate
(11.0, 0.1, 0.09090909090909091)
>>> round(report.latency["champion"].p50, 2), report.latency["challenger"].p99
(5.0, 3.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from streams.monitoring.ops.latency import LatencySketch
from streams.monitoring.results import MetricPoint
from streams.monitoring.windows import Window, WindowClock, WindowSpec

__all__ = ["DEFAULT_WINDOW", "REQUEST", "LatencySummary", "OpsMonitor", "OpsReport"]

DEFAULT_WINDOW: Final = WindowSpec(millis=10_000)
REQUEST: Final = "request"
_NONE: Final[Sequence[OpsReport]] = ()


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency quantiles (ms) of one role over one window."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, sketch: LatencySketch) -> LatencySummary:
        """Summarise a non-empty sketch."""
        return cls(
            sketch.count,
            sketch.quantile(0.5),
            sketch.quantile(0.95),
            sketch.quantile(0.99),
            sketch.max,
        )


@dataclass(frozen=True, slots=True)
class OpsReport:
    """Counts, rates and latencies of one window (``latency`` keyed by role, ``request``
    for end to end)."""

    window: Window
    requests: int
    dlq: int
    unserved: int
    backup: int
    role_errors: Mapping[str, int]
    latency: Mapping[str, LatencySummary]

    @property
    def qps(self) -> float:
        """Requests, scored or rejected, per second of the window."""
        seconds = max(self.window.end_ms - self.window.start_ms, 1) / 1000
        return (self.requests + self.dlq) / seconds

    @property
    def error_rate(self) -> float:
        """Scored requests answered with an error."""
        return self.unserved / self.requests if self.requests else 0.0

    @property
    def backup_rate(self) -> float:
        """Scored requests the backup model answered."""
        return self.backup / self.requests if self.requests else 0.0

    @property
    def dlq_rate(self) -> float:
        """Requests rejected to the DLQ, over all requests."""
        total = self.requests + self.dlq
        return self.dlq / total if total else 0.0

    def to_metrics(self) -> list[MetricPoint]:
        """``ops`` points: qps, error/dlq/backup rates, per-role error rates and latency
        quantiles."""
        start, end, total = self.window.start_ms, self.window.end_ms, self.requests + self.dlq
        points = [
            MetricPoint("ops", "qps", self.qps, total, start, end),
            MetricPoint("ops", "dlq_rate", self.dlq_rate, total, start, end),
        ]
        points += [
            MetricPoint("ops", name, value, self.requests, start, end)
            for name, value in (("error_rate", self.error_rate), ("backup_rate", self.backup_rate))
        ]
        points += [
            MetricPoint(
                "ops", "error_rate", errors / self.requests, self.requests, start, end, role=role
            )
            for role, errors in self.role_errors.items()
            if self.requests
        ]
        for role, s in self.latency.items():
            who = None if role == REQUEST else role
            points += [
                MetricPoint("ops", f"latency_{name}_ms", value, s.count, start, end, role=who)
                for name, value in (("p50", s.p50), ("p95", s.p95), ("p99", s.p99))
            ]
        return points


class OpsMonitor:
    """Windowed operational metrics of one model (see the module docstring)."""

    def __init__(
        self, *, window: WindowSpec = DEFAULT_WINDOW, relative_accuracy: float = 0.01
    ) -> None:
        self._clock = WindowClock(window)
        self._accuracy = relative_accuracy
        self._sketches: dict[str, LatencySketch] = {}
        self._role_errors: dict[str, int] = {}
        self._requests = self._dlq = self._unserved = self._backup = 0
        # latencies of scored() waiting for their sketch, added a window at a time
        self._waiting: dict[str, list[float]] = {REQUEST: [], "champion": [], "challenger": []}

    def __setstate__(self, state: dict[str, object]) -> None:
        waiting: dict[str, list[float]] = {REQUEST: [], "champion": [], "challenger": []}
        self.__dict__.update({"_waiting": waiting} | state)  # a snapshot from before

    def scored(
        self, ts: int, latency_ms: float | None, champion_ms: float | None,
        challenger_ms: float | None, served_by: object, champion_failed: bool,
        challenger_failed: bool,
    ) -> Sequence[OpsReport]:  # fmt: skip
        """:meth:`update` for the prediction log's roles, positionally, with latencies
        (finite numbers, or ``None``) gathered and sketched when the window closes: the
        same sketches."""
        closed = self._clock.before(ts)
        reports = [self._close(closed)] if closed is not None else _NONE
        self._requests += 1
        if served_by != "champion":
            self._unserved += served_by == "none"
            self._backup += served_by == "backup"
        waiting = self._waiting
        for role, ms in ((REQUEST, latency_ms), ("champion", champion_ms),
                         ("challenger", challenger_ms)):  # fmt: skip
            if ms is not None:
                waiting[role].append(ms)
        if champion_failed:
            self._role_errors["champion"] = self._role_errors.get("champion", 0) + 1
        if challenger_failed:
            self._role_errors["challenger"] = self._role_errors.get("challenger", 0) + 1
        closed = self._clock.after(ts)
        return [*reports, self._close(closed)] if closed is not None else reports

    def update(
        self,
        ts: int,
        *,
        latency_ms: float | None = None,
        role_latency: Mapping[str, float | None] | None = None,
        served_by: str = "champion",
        failed: Iterable[str] = (),
    ) -> Sequence[OpsReport]:
        """Add one scored request: end-to-end and per-role latencies, who served it, which
        roles failed. Returns the reports of windows it closed."""
        closed = self._clock.before(ts)
        reports = [self._close(closed)] if closed is not None else _NONE
        self._requests += 1
        self._unserved += served_by == "none"
        self._backup += served_by == "backup"
        if latency_ms is not None:
            self._sketch(REQUEST).add(latency_ms)
        for role, ms in (role_latency or {}).items():
            if ms is not None:
                self._sketch(role).add(ms)
        for role in failed:
            self._role_errors[role] = self._role_errors.get(role, 0) + 1
        return self._after(ts, reports)

    def update_dlq(self, ts: int) -> Sequence[OpsReport]:
        """Add one request rejected to the DLQ."""
        closed = self._clock.before(ts)
        reports = [self._close(closed)] if closed is not None else _NONE
        self._dlq += 1
        return self._after(ts, reports)

    def advance(self, ts: int) -> Sequence[OpsReport]:
        """Close the open time window if ``ts`` is past its end (call it on a timer)."""
        closed = self._clock.advance(ts)
        return [self._close(closed)] if closed is not None else _NONE

    def flush(self) -> Sequence[OpsReport]:
        """Close the open window now."""
        closed = self._clock.flush()
        return [self._close(closed)] if closed is not None else _NONE

    def _after(self, ts: int, reports: Sequence[OpsReport]) -> Sequence[OpsReport]:
        closed = self._clock.after(ts)
        return [*reports, self._close(closed)] if closed is not None else reports

    def _sketch(self, role: str) -> LatencySketch:
        sketch = self._sketches.get(role)
        if sketch is None:
            sketch = self._sketches[role] = LatencySketch(self._accuracy)
        return sketch

    def absorb(self) -> None:
        """Sketch the latencies :meth:`scored` gathered (at the latest when the window
        closes; a caller that snapshots the monitor calls it first, to keep the
        snapshot small)."""
        for role, values in self._waiting.items():
            if values:
                self._sketch(role).add_many(values)
                values.clear()

    def _close(self, window: Window) -> OpsReport:
        self.absorb()
        latency = {role: LatencySummary.of(s) for role, s in self._sketches.items() if s.count}
        report = OpsReport(
            window,
            self._requests,
            self._dlq,
            self._unserved,
            self._backup,
            dict(self._role_errors),
            latency,
        )
        for sketch in self._sketches.values():
            sketch.clear()
        self._role_errors = {}
        self._requests = self._dlq = self._unserved = self._backup = 0
        return report

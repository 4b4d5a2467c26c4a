"""Resident memory of a process under test, sampled from ``/proc/<pid>/status``.

``psutil`` is not a dependency: ``VmRSS`` is one line of a text file. A sampler thread
reads it every half second and remembers named marks (``ready``, ``warm``), so the report
can show where memory stood at each phase and whether it stayed flat under load.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RssSampler", "RssSummary", "parse_vmrss", "rss_kb"]


def parse_vmrss(status: str) -> int | None:
    """The ``VmRSS`` of a ``/proc/<pid>/status`` text, in KiB (None if absent).

    >>> parse_vmrss("Name:\\tpython\\nVmRSS:\\t  204800 kB\\nThreads:\\t9\\n")
    204800
    >>> parse_vmrss("Name:\\tzombie\\n") is None
    True
    """
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def rss_kb(pid: int) -> int | None:
    """The resident set size of ``pid`` in KiB; None once the process is gone."""
    try:
        return parse_vmrss(Path(f"/proc/{pid}/status").read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class RssSummary:
    """Where a process's memory stood, in MB: at start, once warm, at its peak, at the end.

    ``growth_mb`` is end minus warm: what steady load added after the first phase.
    """

    start_mb: float
    warm_mb: float
    peak_mb: float
    end_mb: float
    samples: int

    @property
    def growth_mb(self) -> float:
        return self.end_mb - self.warm_mb


class RssSampler(threading.Thread):
    """Samples ``pid`` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(name=f"rss-{pid}", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []  # (monotonic time, KiB)
        self.marks: dict[str, int] = {}  # label -> KiB at that moment
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def sample(self) -> int | None:
        kb = rss_kb(self.pid)
        if kb is not None:
            self.samples.append((time.monotonic(), kb))
        return kb

    def mark(self, label: str) -> None:
        """Remember the RSS right now under ``label``."""
        kb = self.sample()
        if kb is not None:
            self.marks[label] = kb

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(5)

    def summary(self, start: str = "ready", warm: str = "warm", end: str = "end") -> RssSummary:
        """Start, warm and end marks (falling back to the first / last sample), and peak."""
        if not self.samples:
            raise ValueError(f"no RSS sample of pid {self.pid} was taken")
        first, last = self.samples[0][1], self.samples[-1][1]
        start_kb = self.marks.get(start, first)
        end_kb = self.marks.get(end, last)
        return RssSummary(
            start_mb=start_kb / 1024,
            warm_mb=self.marks.get(warm, start_kb) / 1024,
            peak_mb=max(kb for _, kb in self.samples) / 1024,
            end_mb=end_kb / 1024,
            samples=len(self.samples),
        )

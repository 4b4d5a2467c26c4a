"""CPU time of the processes under test, from ``/proc/<pid>/stat``.

Requests per second on a shared 2-core machine say little alone; the CPU a server spent
per answered request says where the cores went. A process's figure includes its live
children (MLServer's inference workers), read before and after a load phase.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["CpuMeter", "parse_stat"]

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_stat(stat: str) -> tuple[int, float]:
    """``(parent pid, user + system seconds)`` of a ``/proc/<pid>/stat`` line.

    The command name (field 2) may hold spaces and parentheses: fields are counted from
    the last ``)``.

    >>> parse_stat("42 (python (x)) S 7 42 42 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 1")
    (7, 3.0)
    """
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _cpu_with_children(pid: int) -> float | None:
    try:
        _, own = parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(pid):
            try:
                parent, seconds = parse_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue
            own += seconds if parent == pid else 0.0
    return own


class CpuMeter:
    """CPU seconds each named process used between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._before: dict[str, float | None] = {}
        self.used: dict[str, float | None] = {}

    def start(self) -> CpuMeter:
        self._before = {name: _cpu_with_children(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float | None]:
        after = {name: _cpu_with_children(pid) for name, pid in self.pids.items()}
        self.used = {
            name: (round(a - b, 3) if a is not None and (b := self._before.get(name)) is not None
                   else None)
            for name, a in after.items()
        }  # fmt: skip
        return self.used

    def per_request_ms(self, requests: int) -> dict[str, float | None]:
        """CPU milliseconds per request of each process (None without a reading).

        >>> meter = CpuMeter({})
        >>> meter.used = {"gateway": 1.5, "scorer": 0.25, "gone": None}
        >>> meter.per_request_ms(1000)
        {'gateway': 1.5, 'scorer': 0.25, 'gone': None}
        """
        return {
            name: (round(1e3 * used / requests, 3) if used is not None and requests else None)
            for name, used in self.used.items()
        }

"""What the oracle tests share: the tolerance, the window specs, the seeded timestamps and
the check that the monitor's windows are the ones found without it.

The rows of each window are found from the spec alone (chunks of N events, or runs of
equal ``ts // M``), so an oracle can then run on exactly those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

import numpy as np

from streams.monitoring import WindowSpec
from streams.monitoring.windows import Window

EXACT = {"rel": 1e-9, "abs": 1e-12}
SPECS = [WindowSpec(events=250), WindowSpec(millis=60_000)]


def _expected_spans(ts: Sequence[int], spec: WindowSpec) -> list[tuple[int, int]]:
    """``[first, end)`` event spans of the windows, from the spec alone (``ts`` sorted)."""
    if spec.events is not None:
        return [(i, min(i + spec.events, len(ts))) for i in range(0, len(ts), spec.events)]
    assert spec.millis is not None
    millis, spans, first = spec.millis, [], 0
    for _, run in groupby(ts, key=lambda t: t // millis):
        size = len(list(run))
        spans.append((first, first + size))
        first += size
    return spans


def check_spans(windows: Sequence[Window], ts: Sequence[int], spec: WindowSpec) -> None:
    spans = _expected_spans(ts, spec)
    assert len(spans) > 2, "too few windows to compare"
    assert [(w.first_event, w.end_event) for w in windows] == spans
    for w in windows:
        assert w.start_ms <= ts[w.first_event] and ts[w.end_event - 1] < w.end_ms


def timestamps(rng: np.random.Generator, n: int) -> list[int]:
    return np.cumsum(rng.integers(0, 400, size=n)).tolist()

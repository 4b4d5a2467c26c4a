"""Delayed-label join: match each label to its prediction by request id, in bounded state.

Labels arrive late (minutes to weeks), in any order, sometimes twice, sometimes before the
prediction they label, sometimes never. :class:`LabelJoiner` keeps what is waiting for
its other half, each side in insertion order, and joins as soon as both are there:

- **TTL**: an entry waits ``ttl_ms``. Time is event time by default -- the watermark, the
  largest ``ts`` seen so far -- or any clock passed as ``clock`` (e.g. wall time in ms).
  A prediction nobody labelled in time is counted in ``expired_predictions``; a label
  whose prediction never came, in ``orphan_labels``.
- **Late labels**: the ids of the last ``max_entries`` expired (or evicted) predictions are
  remembered; a label for one of them is counted in ``late_labels`` (not joined, not an
  orphan).
- **Duplicates, first wins**: a second prediction or label for an id that is waiting or
  among the last ``max_entries`` joined is counted and ignored. Last-wins would need
  retracting a join already counted in a metric window.
- **Bounds**: at most ``max_entries`` waiting per side, and as many remembered ids of each
  kind; beyond that the oldest waiting entry is dropped and counted in ``evicted_*``.

Every prediction ends up in exactly one of: joined, waiting, duplicate, expired, evicted
(and every label likewise: joined, waiting, duplicate, late, orphan, evicted).

Examples
--------
>>> joiner = LabelJoiner(ttl_ms=1000)
>>> joiner.add_prediction("r1", "cat", ts=0) is None
True
>>> joiner.add_label("r2", "dog", ts=10) is None   # label first: it waits
True
>>> joiner.add_prediction("r2", "cat", ts=20)
Joined(request_id='r2', prediction='cat', label='dog', prediction_ts=20, label_ts=10)
>>> joiner.add_label("r2", "cat", ts=30) is None   # duplicate label: first wins
True
>>> joiner.add_prediction("r3", "cat", ts=2500) is None   # r1 expires unlabelled
True
>>> joiner.add_label("r1", "cat", ts=2600) is None        # ... so its label is late
True
>>> s = joiner.stats
>>> s.joined, s.duplicate_labels, s.expired_predictions, s.late_labels
(1, 1, 1, 1)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from streams.monitoring.errors import MonitorConfigError

__all__ = ["JoinStats", "Joined", "LabelJoiner"]

_WAITING = ("_predictions", "_labels")
_REMEMBERED = ("_joined", "_expired")

P = TypeVar("P")
L = TypeVar("L")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Joined(Generic[P, L]):
    """A prediction and its label."""

    request_id: str
    prediction: P
    label: L
    prediction_ts: int
    label_ts: int


@dataclass(slots=True)
class JoinStats:
    """Counters of what happened to every prediction and label."""

    predictions: int = 0
    labels: int = 0
    joined: int = 0
    duplicate_predictions: int = 0
    duplicate_labels: int = 0
    expired_predictions: int = 0
    orphan_labels: int = 0
    late_labels: int = 0
    evicted_predictions: int = 0
    evicted_labels: int = 0


class LabelJoiner(Generic[P, L]):
    """Joins predictions and labels by request id (see the module docstring)."""

    def __init__(
        self,
        *,
        ttl_ms: int = 86_400_000,
        max_entries: int = 100_000,
        clock: Callable[[], int] | None = None,
    ) -> None:
        if ttl_ms <= 0 or max_entries <= 0:
            raise MonitorConfigError(
                f"expected ttl_ms > 0 and max_entries > 0, got {ttl_ms} and {max_entries}"
            )
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self.stats = JoinStats()
        self._clock = clock
        self._watermark = -(2**62)
        self._next_expiry = 2**62
        self._predictions: OrderedDict[str, tuple[int, int, P]] = OrderedDict()
        self._labels: OrderedDict[str, tuple[int, int, L]] = OrderedDict()
        self._joined: OrderedDict[str, None] = OrderedDict()
        self._expired: OrderedDict[str, None] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled as columns (keys, times, values): half the time of the dicts' items,
        which counts, since the monitor snapshots its watches every transaction."""
        state = {k: v for k, v in self.__dict__.items() if k not in _WAITING + _REMEMBERED}
        for name in _WAITING:
            entries: OrderedDict[str, tuple[int, int, Any]] = self.__dict__[name]
            values = list(entries.values())
            state[name] = (
                list(entries), [v[0] for v in values], [v[1] for v in values],
                [v[2] for v in values],
            )  # fmt: skip
        for name in _REMEMBERED:
            state[name] = list(self.__dict__[name])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in _WAITING:
            found = state.get(name)
            if isinstance(found, tuple):  # columns (see __getstate__)
                keys, nows, times, values = found
                state[name] = OrderedDict(zip(keys, zip(nows, times, values, strict=True),
                                              strict=True))  # fmt: skip
        for name in _REMEMBERED:
            found = state.get(name)
            if isinstance(found, list):
                state[name] = OrderedDict.fromkeys(found)
        self.__dict__.update(state)

    @property
    def waiting(self) -> tuple[int, int]:
        """``(predictions, labels)`` waiting for their other half."""
        return len(self._predictions), len(self._labels)

    def add_prediction(self, request_id: str, prediction: P, ts: int) -> Joined[P, L] | None:
        """Add a prediction made at ``ts``; returns the join if its label was waiting."""
        now = self._tick(ts)
        self.stats.predictions += 1
        if request_id in self._predictions or request_id in self._joined:
            self.stats.duplicate_predictions += 1
            return None
        self._expired.pop(request_id, None)
        waiting = self._labels.pop(request_id, None)
        if waiting is not None:
            return self._join(request_id, prediction, ts, waiting[2], waiting[1])
        self._predictions[request_id] = (now, ts, prediction)
        self._bound(self._predictions)
        return None

    def add_label(self, request_id: str, label: L, ts: int) -> Joined[P, L] | None:
        """Add a label known at ``ts``; returns the join if its prediction was waiting."""
        now = self._tick(ts)
        self.stats.labels += 1
        if request_id in self._labels or request_id in self._joined:
            self.stats.duplicate_labels += 1
            return None
        waiting = self._predictions.pop(request_id, None)
        if waiting is not None:
            return self._join(request_id, waiting[2], waiting[1], label, ts)
        if request_id in self._expired:
            del self._expired[request_id]
            self.stats.late_labels += 1
            return None
        self._labels[request_id] = (now, ts, label)
        self._bound(self._labels)
        return None

    def expire(self, now: int | None = None) -> None:
        """Drop what waited longer than the TTL (also done by every add)."""
        now = self._now() if now is None else now
        if now < self._next_expiry:
            return
        cutoff = now - self.ttl_ms
        stats = self.stats
        while self._predictions and next(iter(self._predictions.values()))[0] <= cutoff:
            request_id, _ = self._predictions.popitem(last=False)
            stats.expired_predictions += 1
            self._remember(self._expired, request_id)
        while self._labels and next(iter(self._labels.values()))[0] <= cutoff:
            self._labels.popitem(last=False)
            stats.orphan_labels += 1
        self._next_expiry = self._oldest() + self.ttl_ms

    def _join(
        self, request_id: str, prediction: P, prediction_ts: int, label: L, label_ts: int
    ) -> Joined[P, L]:
        self.stats.joined += 1
        self._remember(self._joined, request_id)
        return Joined(request_id, prediction, label, prediction_ts, label_ts)

    def _tick(self, ts: int) -> int:
        if ts > self._watermark:
            self._watermark = ts
        now = self._now()
        if now >= self._next_expiry:
            self.expire(now)
        if self._next_expiry > now + self.ttl_ms:  # what is added now expires by then
            self._next_expiry = now + self.ttl_ms
        return now

    def _now(self) -> int:
        return self._clock() if self._clock is not None else self._watermark

    def _oldest(self) -> int:
        heads = [next(iter(d.values()))[0] for d in (self._predictions, self._labels) if d]
        return min(heads, default=2**62 - self.ttl_ms)

    def _bound(self, waiting: OrderedDict[str, V]) -> None:
        if len(waiting) <= self.max_entries:
            return
        request_id, _ = waiting.popitem(last=False)
        if waiting is self._predictions:
            self.stats.evicted_predictions += 1
            self._remember(self._expired, request_id)
        else:
            self.stats.evicted_labels += 1

    def _remember(self, memory: OrderedDict[str, None], request_id: str) -> None:
        memory[request_id] = None
        if len(memory) > self.max_entries:
            memory.popitem(last=False)

"""A champion swap under load: the challenger is promoted while requests keep arriving at
the offered rate, and the replies show when the new version took over.

The swap model (:data:`~services.bench._stack.SWAP_MODEL`, topics of its own, served by
the same scorer process as the other phases) gets open-loop requests
(:class:`~services.bench._load.PacedSender`); ``promote_at`` seconds in,
``Registry.promote`` makes its challenger the champion (not before the old version has
answered: the swap happens under load). The sender goes on for at least
``seconds`` in all and :data:`TAIL` seconds past the first reply by the new version (at
most :data:`GIVE_UP` seconds past the promotion). From the replies' ``created_at`` (the
scorer's wall clock in ms, on this machine)::

    gap_ms            promote() returned (routing committed) → first reply by the new version
    max_reply_gap_ms  the longest interval between consecutive replies around the swap: from
                      the commit to :data:`AROUND` seconds past the first new reply

The first is how long a promotion takes to reach the traffic (the integration test's old
``gap_ms``; it can be ≤ 0 if the scorer serves the new version before ``promote()`` has
closed its producer and returned — never before it was called); the second shows a stall
while the new champion is put in place (at steady load about one micro-batch). The audit:
every request answered once, every reply by the old version made before every reply by
the new one (``one_switch``).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer

from schemas.codec import Codec, DecodeError
from schemas.contracts import load_schema
from services.bench._errors import BenchError
from services.bench._load import PacedSender
from services.bench._throughput import assigned_reader
from services.registry import Registry
from streams.kafka import KafkaConfig

__all__ = ["AROUND", "GIVE_UP", "TAIL", "SwapResult", "SwapTiming", "measure_swap", "swap_timing"]

TAIL = 1.0  # seconds of load after the first reply by the new version
AROUND = 1.0  # seconds after the first new reply that still count as around the swap
GIVE_UP = 60.0  # seconds after the promotion without a reply by the new version: missed
KEY_PREFIX = "s"


@dataclass(frozen=True)
class SwapTiming:
    """What the replies' ``created_at`` say about one swap (ms; None: not seen)."""

    gap_ms: float | None  # promotion committed → first reply by the new version
    max_reply_gap_ms: float | None  # longest interval between consecutive replies, around it
    max_gap_after_ms: float | None  # where that interval began, from the commit (< 0: before)
    one_switch: bool  # the new version answered, and only it, from its first reply on


def swap_timing(replies: Iterable[tuple[int, int]], committed_ms: float, new: int) -> SwapTiming:
    """The timing of a swap to version ``new`` committed at ``committed_ms`` (epoch ms),
    from ``(created_at, model_version)`` of every served reply. The longest reply gap is
    over the intervals that end after the commit and begin by :data:`AROUND` seconds past
    the first reply by ``new`` (to the last reply if it never answered).

    >>> replies = [(1_000, 1), (1_020, 1), (1_040, 1), (1_300, 2), (1_320, 2)]
    >>> swap_timing(replies, committed_ms=1_030.0, new=2)
    SwapTiming(gap_ms=270.0, max_reply_gap_ms=260.0, max_gap_after_ms=10.0, one_switch=True)
    >>> swap_timing([(1_000, 1), (1_050, 2), (1_060, 1)], committed_ms=990.0, new=2).one_switch
    False
    >>> swap_timing([(1_000, 1), (1_000, 1)], committed_ms=990.0, new=2)
    SwapTiming(gap_ms=None, max_reply_gap_ms=0.0, max_gap_after_ms=10.0, one_switch=False)
    """
    ordered = sorted(replies)  # on a tie in ms, the old version first
    versions = [version for _, version in ordered]
    gap, until = None, math.inf
    if new in versions:
        first_new = ordered[versions.index(new)][0]
        gap, until = first_new - committed_ms, first_new + AROUND * 1e3
    widest: tuple[float, float] | None = None  # (interval, where it began)
    for (before, _), (after, _) in itertools.pairwise(ordered):
        around = after >= committed_ms and before <= until
        if around and (widest is None or after - before > widest[0]):
            widest = (float(after - before), before - committed_ms)
    return SwapTiming(
        gap_ms=gap,
        max_reply_gap_ms=widest[0] if widest else None,
        max_gap_after_ms=widest[1] if widest else None,
        one_switch=gap is not None and set(versions[versions.index(new) :]) == {new},
    )


@dataclass(frozen=True)
class SwapResult:
    """One swap under load: what was offered, what came back, and how the switch went."""

    offered_rps: float
    sent: int
    answered: int  # distinct requests with a reply
    duplicates: int
    errors: int  # replies that carry an error, or could not be decoded
    from_version: int
    to_version: int
    by_version: dict[str, int]  # model version → served replies
    promote_call_ms: float  # promote() called → returned
    timing: SwapTiming

    @property
    def seconds(self) -> float:
        """How long the load ran."""
        return self.sent / self.offered_rps


@dataclass
class _Replies:
    """Per request index: ``(created_at, model_version)``; None when it is an error."""

    new: int
    served: dict[int, tuple[int, int] | None] = field(default_factory=dict)
    duplicates: int = 0
    first_new_read: float | None = None  # perf_counter when the new version first answered

    def read(self, reader: Consumer, codec: Codec) -> None:
        first = reader.poll(0.05)
        if first is None:
            return
        now = time.perf_counter()
        for message in [first, *reader.consume(1000, 0)]:
            key = message.key()
            if message.error() is not None or not key:
                continue
            index = int(key[len(KEY_PREFIX) :])
            if index in self.served:
                self.duplicates += 1
                continue
            self.served[index] = reply = _served(codec, message.value() or b"")
            if reply is not None and reply[1] == self.new and self.first_new_read is None:
                self.first_new_read = now


def _served(codec: Codec, value: bytes) -> tuple[int, int] | None:
    try:
        reply = codec.decode_avro(value)
    except DecodeError:
        return None
    if reply["error"] is not None or reply["model_version"] is None:
        return None
    return int(reply["created_at"]), int(reply["model_version"])


def measure_swap(
    kafka: KafkaConfig, registry: Registry, values: Sequence[bytes], *, model: str,
    requests: str, replies: str, rate: float, promote_at: float, seconds: float, group: str,
    timeout: float = 30.0,
) -> SwapResult:  # fmt: skip
    """Promote ``model``'s challenger while sending ``values`` (cycled) at ``rate``/s."""
    routing = registry.routing(model)
    if routing is None or routing.challenger is None:
        raise BenchError(f"the swap needs {model} with a challenger, got routing {routing}")
    old, new = routing.champion, routing.challenger
    plan = [values[i % len(values)] for i in range(round(rate * (promote_at + GIVE_UP)))]
    reader = assigned_reader(kafka, replies, group)
    sender = PacedSender(kafka, requests, plan, rate, key_prefix=KEY_PREFIX)
    got, codec = _Replies(new), Codec(load_schema("reply"))
    try:
        sender.start()
        sender.ready.wait(10)
        promoted = _load(reader, codec, sender, got, lambda: _promote(registry, model, new),
                         promote_at=promote_at, seconds=seconds)  # fmt: skip
        sender.stop()
        _drain(reader, codec, sender, got, timeout)
    finally:
        sender.stop()
        reader.close()
    called, committed = promoted
    served = [reply for reply in got.served.values() if reply is not None]
    return SwapResult(
        offered_rps=rate, sent=sender.sent, answered=len(got.served), duplicates=got.duplicates,
        errors=len(got.served) - len(served), from_version=old, to_version=new,
        by_version={str(v): n for v, n in sorted(Counter(v for _, v in served).items())},
        promote_call_ms=committed - called, timing=swap_timing(served, committed, new),
    )  # fmt: skip


def _promote(registry: Registry, model: str, version: int) -> tuple[float, float]:
    """Promote; (called, returned) in epoch ms."""
    called = time.time() * 1e3
    registry.promote(model, version, reason="modelstream bench: champion swap under load")
    return called, time.time() * 1e3


def _load(
    reader: Consumer, codec: Codec, sender: PacedSender, got: _Replies,
    promote: Callable[[], tuple[float, float]], *, promote_at: float, seconds: float,
) -> tuple[float, float]:  # fmt: skip
    """Read replies while the sender runs; promote ``promote_at`` seconds in (once the old
    version has answered); return once the new version has answered for :data:`TAIL`
    seconds and ``seconds`` have passed (or the sender ran out: :data:`GIVE_UP` seconds
    after the promotion)."""
    promoted: tuple[float, float] | None = None
    while sender.is_alive():
        got.read(reader, codec)
        now = time.perf_counter()
        if promoted is None and got.served and now - sender.started >= promote_at:
            promoted = promote()
        switched = got.first_new_read
        if switched is not None and now >= max(sender.started + seconds, switched + TAIL):
            break
    if promoted is None:
        raise BenchError(f"the swap's {sender.sent} requests got {len(got.served)} replies "
                         f"and no promotion: the scorer did not answer")  # fmt: skip
    return promoted


def _drain(
    reader: Consumer, codec: Codec, sender: PacedSender, got: _Replies, timeout: float
) -> None:
    """Read until every request sent has a reply, or ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    while len(got.served) < sender.sent and time.perf_counter() < deadline:
        got.read(reader, codec)

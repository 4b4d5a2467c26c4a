"""One chunk of input rows through the scorer's core: the door (:mod:`._door`), then
:func:`streams.scoring.score` (champion, and the backup for the rows it failed) over one
:class:`~streams.scoring.Frame`, and, when asked for, the challenger over the same frame.

The real-time scorer gives the challenger its own worker so that a reply never waits on
it; a batch run has no reply to protect, so the challenger scores every row on this
thread, and a failure of its call is every row's ``model_failed`` as on the worker.
Deadlines are per chunk and generous (:data:`BATCH_POLICY`): a batch is slow, not stuck.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.batch._door import Admitted, admit
from streams.scoring import Deployment, Frame, Outcome, Scored, ServingPolicy, score

__all__ = ["BATCH_POLICY", "ScoredChunk", "score_chunk"]

BATCH_POLICY = ServingPolicy(champion_deadline=600.0, backup_deadline=600.0,
                             challenger_deadline=600.0)  # fmt: skip


@dataclass(slots=True)
class ScoredChunk:
    """A chunk after scoring: what the door did, and per valid row every role's outcome.
    ``latency_ms``: each valid row's share of the chunk's scoring time."""

    size: int
    admitted: Admitted
    results: list[Scored]
    challengers: list[Outcome | None]
    latency_ms: float
    now_ms: int


def score_chunk(
    dep: Deployment, records: Sequence[Mapping[str, Any]], policy: ServingPolicy = BATCH_POLICY
) -> ScoredChunk:
    """Check and score ``records`` (one dict per input row, schema fields only)."""
    started = time.perf_counter()
    admitted = admit(dep.codec, records)
    results: list[Scored] = []
    challengers: list[Outcome | None] = []
    if admitted.rows:
        frame = Frame(admitted.rows, [f["name"] for f in dep.codec.schema["fields"]])
        results = score(dep, frame, policy)
        challengers = _challenger(dep, frame)
    spent = (time.perf_counter() - started) * 1e3
    share = spent / max(len(admitted.rows), 1)
    return ScoredChunk(len(records), admitted, results, challengers, share,
                       int(time.time() * 1e3))  # fmt: skip


def _challenger(dep: Deployment, frame: Frame) -> list[Outcome | None]:
    if dep.challenger is None:
        return [None] * len(frame)
    started = time.perf_counter()
    try:
        return list(dep.challenger.predictor.predict(frame))
    except Exception as exc:  # noqa: BLE001 - an adapter bug is the challenger's failure
        spent = (time.perf_counter() - started) * 1e3
        failed = Outcome.failed("model_failed", f"{type(exc).__name__}: {exc}"[:500], spent)
        return [failed] * len(frame)

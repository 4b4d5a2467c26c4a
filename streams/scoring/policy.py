"""The serving policy for one batch of valid requests of one model: the champion answers
within its deadline, the backup answers for the rows the champion failed, and the
challenger is handed the sampled rows in the shadow (:func:`shadow`), on its own worker
with its own deadline: the reply never waits for it.

Pure of Kafka: a decoded frame in, per-request outcomes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.scoring.deployment import Deployment, ServedModel
from streams.scoring.frame import Frame
from streams.scoring.outcome import Outcome
from streams.scoring.shadow import Ticket

__all__ = ["Scored", "ServingPolicy", "Shadowed", "challenger_outcomes", "score", "shadow"]


@dataclass(frozen=True)
class ServingPolicy:
    """How long each role may take per batch, in seconds. The champion and the backup
    hold the reply up to their deadlines; the challenger holds only its log records."""

    champion_deadline: float = 1.0
    backup_deadline: float = 1.0
    challenger_deadline: float = 1.0


@dataclass(slots=True)
class Scored:
    """Every role's outcome for one request; ``served`` is what the reply carries."""

    served: Outcome
    served_by: str
    champion: Outcome
    backup: Outcome | None
    challenger: Outcome | None


def _as_outcomes(result: list[Outcome] | tuple[str, str], size: int) -> list[Outcome]:
    if isinstance(result, tuple):
        return [Outcome.failed(*result) for _ in range(size)]
    return result


def _backup(
    backup: ServedModel | None, frame: Frame, failed: list[int], deadline: float
) -> dict[int, Outcome]:
    if backup is None or not failed:
        return {}
    subset = frame.take(failed)
    result = _run(backup, subset, deadline)
    return dict(zip(failed, _as_outcomes(result, len(subset)), strict=True))


def _run(served: ServedModel, frame: Frame, deadline: float) -> list[Outcome] | tuple[str, str]:
    """The model's outcomes for ``frame``: on its guard's thread within ``deadline``, or
    on this thread for a predictor whose work is bounded (``inline``)."""
    if getattr(served.predictor, "inline", False):
        try:
            return served.predictor.predict(frame)
        except Exception as exc:  # noqa: BLE001 - an adapter bug is a model failure
            return ("model_failed", f"{type(exc).__name__}: {exc}"[:500])
    return served.guard.submit(served.predictor.predict, frame).result(deadline)


@dataclass(slots=True)
class Shadowed:
    """The challenger's share of a batch: which rows, and its ticket."""

    version: int
    rows: list[int]
    ticket: Ticket | None


def shadow(
    dep: Deployment, frame: Frame, ids: Sequence[str], policy: ServingPolicy
) -> Shadowed | None:
    """Hand the sampled rows to the challenger's worker (``None``: no challenger)."""
    challenger = dep.challenger
    if challenger is None:
        return None
    if dep.shadow_fraction >= 1.0:
        chosen = list(range(len(ids)))
    else:
        chosen = [i for i, rid in enumerate(ids) if dep.in_shadow(rid)]
    if not chosen:
        return Shadowed(challenger.version, chosen, None)
    sub = frame if len(chosen) == len(frame) else frame.take(chosen)
    return Shadowed(
        challenger.version, chosen, challenger.shadow.submit(sub, policy.challenger_deadline)
    )


def challenger_outcomes(
    shadowed: Shadowed | None, size: int, now: float
) -> list[Outcome | None] | None:
    """Per row: the challenger's outcome, ``sampled_out``, or ``None`` for every row when
    there is no challenger. ``None`` (the whole result) while the worker may still answer."""
    if shadowed is None:
        return [None] * size
    skipped = Outcome.skip("sampled_out")
    out: list[Outcome | None] = [skipped] * size
    if shadowed.ticket is None:
        return out
    result = shadowed.ticket.result(now)
    if result is None:
        return None
    if len(shadowed.rows) == size:
        return list(result)
    for i, outcome in zip(shadowed.rows, result, strict=True):
        out[i] = outcome
    return out


def score(dep: Deployment, frame: Frame, policy: ServingPolicy) -> list[Scored]:
    """Champion (and backup for what it failed) over ``frame``: what the replies carry.
    The challenger is :func:`shadow`'s."""
    frame = Frame.of(frame)
    size = len(frame)
    champion = dep.champion
    first = _run(champion, frame, policy.champion_deadline)
    champ = _as_outcomes(first, size)
    failed = [i for i, outcome in enumerate(champ) if not outcome.ok]
    backups = _backup(dep.backup, frame, failed, policy.backup_deadline)
    if not backups and not failed:
        return [Scored(o, "champion", o, None, None) for o in champ]
    out = []
    for i in range(size):
        served, served_by = champ[i], "champion"
        backup = backups.get(i)
        if not served.ok:
            served, served_by = (backup, "backup") if backup and backup.ok else (served, "none")
        out.append(Scored(served, served_by, champ[i], backup, None))
    return out

"""The serving policy for one batch of valid requests of one model: the champion answers
within its deadline, the backup answers for the rows the champion failed, and the
challenger is scored in the shadow, never delaying the reply by more than a small grace.

Pure of Kafka: plain rows in, per-request outcomes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streams.scoring.deployment import Deployment, ServedModel
from streams.scoring.outcome import Outcome

__all__ = ["Scored", "ServingPolicy", "score"]


@dataclass(frozen=True)
class ServingPolicy:
    """How long the scorer waits for each role, in seconds."""

    champion_deadline: float = 1.0
    backup_deadline: float = 1.0
    challenger_grace: float = 0.002


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
    backup: ServedModel | None, rows: Sequence[dict[str, Any]], failed: list[int], deadline: float
) -> dict[int, Outcome]:
    if backup is None or not failed:
        return {}
    subset = [rows[i] for i in failed]
    result = backup.guard.submit(backup.predictor.predict, subset).result(deadline)
    return dict(zip(failed, _as_outcomes(result, len(subset)), strict=True))


def _challenger(
    dep: Deployment, rows: Sequence[dict[str, Any]], ids: Sequence[str]
) -> tuple[list[int], Any]:
    if dep.challenger is None:
        return [], None
    chosen = [i for i, rid in enumerate(ids) if dep.in_shadow(rid)]
    if not chosen:
        return chosen, None
    challenger = dep.challenger
    return chosen, challenger.guard.submit(challenger.predictor.predict, [rows[i] for i in chosen])


def score(
    dep: Deployment, rows: Sequence[dict[str, Any]], ids: Sequence[str], policy: ServingPolicy
) -> list[Scored]:
    """Score ``rows`` (decoded, valid requests with ids ``ids``) under ``dep``."""
    size = len(rows)
    shadow, pending = _challenger(dep, rows, ids)  # starts first, runs beside the champion
    champion = dep.champion
    first = champion.guard.submit(champion.predictor.predict, rows).result(policy.champion_deadline)
    champ = _as_outcomes(first, size)
    failed = [i for i, outcome in enumerate(champ) if not outcome.ok]
    backups = _backup(dep.backup, rows, failed, policy.backup_deadline)
    challenged: dict[int, Outcome] = {}
    if pending is not None:
        result = pending.result(policy.challenger_grace)
        if isinstance(result, tuple) and result[0] == "busy":
            challenged = {i: Outcome.skip("busy") for i in shadow}
        else:
            challenged = dict(zip(shadow, _as_outcomes(result, len(shadow)), strict=True))
    out = []
    for i in range(size):
        challenger = None
        if dep.challenger is not None:
            challenger = challenged.get(i) or Outcome.skip("sampled_out")
        served, served_by = champ[i], "champion"
        backup = backups.get(i)
        if not served.ok:
            served, served_by = (backup, "backup") if backup and backup.ok else (served, "none")
        out.append(Scored(served, served_by, champ[i], backup, challenger))
    return out

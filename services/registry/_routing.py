"""Routing transitions: pure functions from the current routing to the next.

Each returns a :class:`Decision`: the new routing plus the event that explains it. They
check what they can see (a challenger is not the champion, a fraction is in 0..1, a
rollback has somewhere to go); the registry checks that the versions exist.

Examples
--------
>>> first = promote(None, "churn", 1).routing
>>> first.champion, first.previous_champions
(1, ())
>>> second = promote(first, "churn", 2)
>>> second.routing.champion, second.routing.previous_champions, second.details
(2, (1,), {'previous': 1})
>>> shadow = set_challenger(second.routing, 3, 0.25).routing
>>> shadow.challenger, shadow.shadow_fraction
(3, 0.25)
>>> back = rollback(shadow)
>>> back.action, back.version, back.routing.champion, back.routing.previous_champions
('rollback', 1, 1, ())
>>> rollback(back.routing)
Traceback (most recent call last):
services.registry._errors.NoPreviousChampionError: churn has no previous champion to roll back to; promote a version instead
"""  # noqa: E501

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any, Final, NamedTuple

from services.registry._errors import NoPreviousChampionError, RoutingError
from services.registry._model import Role, Routing

__all__ = [
    "Decision",
    "assign",
    "promote",
    "refuse_removal",
    "retire",
    "rollback",
    "set_backup",
    "set_challenger",
    "stamp",
]

MAX_PREVIOUS: Final = 20  # rollback history kept per model


class Decision(NamedTuple):
    """A routing change and its event: ``action`` on ``version`` with ``details``."""

    routing: Routing
    action: str
    version: int
    details: dict[str, Any]


def promote(current: Routing | None, model: str, version: int) -> Decision:
    """``version`` becomes champion; the old champion heads the rollback history."""
    if current is None:
        return Decision(Routing(model, champion=version), "promote", version, {"previous": None})
    if current.champion == version:
        raise RoutingError(f"{model} v{version} is already the champion; nothing to change")
    history = (current.champion, *(v for v in current.previous_champions if v != version))
    routing = _vacate(
        replace(current, champion=version, previous_champions=history[:MAX_PREVIOUS]), version
    )
    return Decision(routing, "promote", version, {"previous": current.champion})


def set_challenger(current: Routing | None, version: int | None, fraction: float = 1.0) -> Decision:
    """Shadow-score ``version`` on ``fraction`` of requests; ``None`` clears the challenger."""
    routing = _require(current)
    if not (isinstance(fraction, int | float) and math.isfinite(fraction) and 0 <= fraction <= 1):
        raise RoutingError(f"shadow fraction must be between 0 and 1, got {fraction!r}")
    if version is None:
        if routing.challenger is None:
            raise RoutingError(f"{routing.model} has no challenger to clear; nothing to change")
        cleared = replace(routing, challenger=None, shadow_fraction=1.0)
        return Decision(cleared, "clear_challenger", routing.challenger, {})
    _not_champion(routing, version, "challenger")
    if routing.challenger == version and routing.shadow_fraction == fraction:
        raise RoutingError(
            f"{routing.model} v{version} is already the challenger at fraction {fraction:g}; "
            "nothing to change"
        )
    new = replace(routing, challenger=version, shadow_fraction=float(fraction))
    details = {"previous": routing.challenger, "shadow_fraction": float(fraction)}
    return Decision(new, "set_challenger", version, details)


def retire(current: Routing | None, model: str, version: int, action: str = "retire"
           ) -> Decision:  # fmt: skip
    """The challenger ``version`` stops shadowing (``action``: retire or veto).

    >>> retire(Routing("churn", 1, challenger=2), "churn", 2).routing.challenger is None
    True
    >>> retire(Routing("churn", 1, challenger=3), "churn", 2)
    Traceback (most recent call last):
    services.registry._errors.RoutingError: churn v2 is not the challenger (v3 is)
    """
    routing = _require(current)
    if routing.challenger != version:
        now = "none" if routing.challenger is None else f"v{routing.challenger}"
        raise RoutingError(f"{model} v{version} is not the challenger ({now} is)")
    cleared = replace(routing, challenger=None, shadow_fraction=1.0)
    return Decision(cleared, action, version, {"previous": version})


def set_backup(current: Routing | None, version: int | None) -> Decision:
    """``version`` answers when the champion fails; ``None`` clears the backup."""
    routing = _require(current)
    if version is None:
        if routing.backup is None:
            raise RoutingError(f"{routing.model} has no backup to clear; nothing to change")
        return Decision(replace(routing, backup=None), "clear_backup", routing.backup, {})
    _not_champion(routing, version, "backup")
    if routing.backup == version:
        raise RoutingError(f"{routing.model} v{version} is already the backup; nothing to change")
    details = {"previous": routing.backup}
    return Decision(replace(routing, backup=version), "set_backup", version, details)


def rollback(current: Routing | None) -> Decision:
    """The previous champion serves again; the current one leaves the history."""
    routing = _require(current)
    if not routing.previous_champions:
        raise NoPreviousChampionError(
            f"{routing.model} has no previous champion to roll back to; promote a version instead"
        )
    target, *rest = routing.previous_champions
    new = _vacate(replace(routing, champion=target, previous_champions=tuple(rest)), target)
    return Decision(new, "rollback", target, {"from": routing.champion})


def assign(
    current: Routing | None, model: str, version: int, role: Role | None, fraction: float = 1.0
) -> Decision | None:
    """Routing for a freshly registered version: its ``role``, or champion when the model
    has none yet; None when nothing changes."""
    if role == "champion" or (role is None and current is None):
        return promote(current, model, version)
    if role is None:
        return None
    if current is None:
        raise RoutingError(
            f"{model} has no champion yet, so v{version} cannot be its {role}; "
            "register it as champion (or without a role) first"
        )
    if role == "challenger":
        return set_challenger(current, version, fraction)
    if role == "backup":
        return set_backup(current, version)
    raise RoutingError(f"role must be champion, challenger or backup, got {role!r}")


def stamp(routing: Routing, *, actor: str, reason: str, at: datetime) -> Routing:
    """Who changed the routing, when and why."""
    return replace(routing, updated_at=at, updated_by=actor, reason=reason)


def refuse_removal(routing: Routing | None, name: str, version: int) -> None:
    """Raise :class:`RoutingError` if ``version`` serves in a role (it cannot be removed).

    >>> refuse_removal(Routing("churn", champion=2), "churn", 1)
    >>> try:
    ...     refuse_removal(Routing("churn", champion=2, backup=1), "churn", 1)
    ... except RoutingError as exc:
    ...     print(str(exc).replace("; ", ";\\n"))
    churn v1 is the backup, so it was not removed;
    clear it first (`modelstream models clear-backup churn`)
    """
    role = routing.role_of(version) if routing else None
    if role is None:
        return
    next_step = {
        "champion": f"promote another version first (`modelstream models promote {name} N`)",
        "challenger": f"clear it first (`modelstream models clear-challenger {name}`)",
        "backup": f"clear it first (`modelstream models clear-backup {name}`)",
    }[role]
    raise RoutingError(f"{name} v{version} is the {role}, so it was not removed; {next_step}")


def _require(current: Routing | None) -> Routing:
    if current is None:
        raise RoutingError("the model has no champion yet; register or promote a version first")
    return current


def _not_champion(routing: Routing, version: int, role: str) -> None:
    if routing.champion == version:
        raise RoutingError(
            f"{routing.model} v{version} is the champion, so it cannot also be the {role}; "
            f"pick another version"
        )


def _vacate(routing: Routing, champion: int) -> Routing:
    """The new champion no longer holds the challenger or backup role."""
    if routing.challenger == champion:
        routing = replace(routing, challenger=None, shadow_fraction=1.0)
    if routing.backup == champion:
        routing = replace(routing, backup=None)
    return routing

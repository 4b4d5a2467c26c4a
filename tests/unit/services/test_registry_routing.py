"""Routing transitions: promote, challenger, backup, rollback, and what each refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.registry import NoPreviousChampionError, Routing, RoutingError
from services.registry._routing import (
    MAX_PREVIOUS,
    assign,
    promote,
    rollback,
    set_backup,
    set_challenger,
    stamp,
)


def routing(**fields: object) -> Routing:
    return Routing("churn", **{"champion": 1, **fields})  # type: ignore[arg-type]


def test_first_promotion_creates_routing() -> None:
    decision = promote(None, "churn", 1)
    assert decision.routing == Routing("churn", champion=1)
    assert (decision.action, decision.version, decision.details) == (
        "promote",
        1,
        {"previous": None},
    )


def test_promote_keeps_history_most_recent_first() -> None:
    current = routing(champion=3, previous_champions=(2, 1))
    assert promote(current, "churn", 4).routing.previous_champions == (3, 2, 1)


def test_promoting_an_old_champion_removes_it_from_history() -> None:
    current = routing(champion=3, previous_champions=(2, 1))
    assert promote(current, "churn", 1).routing.previous_champions == (3, 2)


def test_history_is_bounded() -> None:
    current = routing(champion=100, previous_champions=tuple(range(99, 0, -1)))
    assert len(promote(current, "churn", 200).routing.previous_champions) == MAX_PREVIOUS


def test_promoting_the_challenger_or_backup_vacates_that_role() -> None:
    current = routing(challenger=2, shadow_fraction=0.3, backup=2)
    new = promote(current, "churn", 2).routing
    assert (new.champion, new.challenger, new.backup, new.shadow_fraction) == (2, None, None, 1.0)


def test_promoting_the_champion_changes_nothing() -> None:
    with pytest.raises(RoutingError, match="already the champion"):
        promote(routing(), "churn", 1)


def test_challenger_with_fraction_and_clearing() -> None:
    decision = set_challenger(routing(challenger=2), 3, 0.5)
    assert (decision.routing.challenger, decision.routing.shadow_fraction) == (3, 0.5)
    assert decision.details == {"previous": 2, "shadow_fraction": 0.5}
    cleared = set_challenger(decision.routing, None)
    assert (cleared.action, cleared.version) == ("clear_challenger", 3)
    assert (cleared.routing.challenger, cleared.routing.shadow_fraction) == (None, 1.0)


def test_changing_only_the_fraction_is_a_change() -> None:
    assert set_challenger(routing(challenger=2), 2, 0.1).routing.shadow_fraction == 0.1


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), float("inf")])
def test_fraction_must_be_between_0_and_1(fraction: float) -> None:
    with pytest.raises(RoutingError, match="between 0 and 1"):
        set_challenger(routing(), 2, fraction)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: set_challenger(r, 1), "is the champion, so it cannot also be the challenger"),
        (lambda r: set_backup(r, 1), "is the champion, so it cannot also be the backup"),
        (lambda r: set_challenger(r, None), "no challenger to clear"),
        (lambda r: set_backup(r, None), "no backup to clear"),
        (
            lambda r: set_challenger(r.__class__("churn", 1, challenger=2), 2),
            "already the challenger",
        ),
        (lambda r: set_backup(r.__class__("churn", 1, backup=2), 2), "already the backup"),
    ],
)
def test_refused_changes(change: object, message: str) -> None:
    with pytest.raises(RoutingError, match=message):
        change(routing())  # type: ignore[operator]


def test_backup_set_and_cleared() -> None:
    decision = set_backup(routing(), 2)
    assert (decision.routing.backup, decision.action, decision.details) == (
        2,
        "set_backup",
        {"previous": None},
    )
    assert set_backup(decision.routing, None).routing.backup is None


def test_changes_need_a_champion() -> None:
    for change in (
        lambda: set_challenger(None, 2),
        lambda: set_backup(None, 2),
        lambda: rollback(None),
    ):
        with pytest.raises(RoutingError, match="no champion yet"):
            change()


def test_rollback_walks_back_through_history() -> None:
    current = routing(champion=3, previous_champions=(2, 1), challenger=2, backup=1)
    first = rollback(current)
    assert (first.action, first.version, first.details) == ("rollback", 2, {"from": 3})
    assert (first.routing.champion, first.routing.previous_champions) == (2, (1,))
    assert first.routing.challenger is None and first.routing.backup == 1
    second = rollback(first.routing).routing
    assert (second.champion, second.previous_champions, second.backup) == (1, (), None)
    with pytest.raises(NoPreviousChampionError, match="promote a version instead"):
        rollback(second)


def test_promote_then_rollback_restores_the_champion() -> None:
    current = routing(champion=1, challenger=2)
    assert rollback(promote(current, "churn", 2).routing).routing.champion == 1


def test_assign_on_registration() -> None:
    first = assign(None, "churn", 1, None)
    assert first is not None and first.routing.champion == 1
    assert assign(first.routing, "churn", 2, None) is None
    as_challenger = assign(first.routing, "churn", 2, "challenger")
    assert as_challenger is not None and as_challenger.routing.challenger == 2
    as_backup = assign(first.routing, "churn", 2, "backup")
    assert as_backup is not None and as_backup.routing.backup == 2
    as_champion = assign(first.routing, "churn", 2, "champion")
    assert as_champion is not None and as_champion.routing.previous_champions == (1,)
    with pytest.raises(RoutingError, match="has no champion yet"):
        assign(None, "churn", 1, "challenger")


def test_stamp_records_who_when_why() -> None:
    at = datetime(2025, 1, 2, tzinfo=UTC)
    stamped = stamp(routing(), actor="ana", reason="drift", at=at)
    assert (stamped.updated_by, stamped.reason, stamped.updated_at) == ("ana", "drift", at)


def test_role_of() -> None:
    current = routing(challenger=2, backup=3)
    assert [current.role_of(v) for v in (1, 2, 3, 4)] == ["champion", "challenger", "backup", None]

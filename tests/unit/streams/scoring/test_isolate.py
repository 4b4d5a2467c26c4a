"""Bisecting aborted transactions down to the one request that cannot be produced."""

from __future__ import annotations

import random

import pytest

from streams.scoring.isolate import Isolation, IsolationError, Origin


def run_until_isolated(poison: int, backlog: int, max_batch: int, transient: set[int]
                       ) -> tuple[Origin | None, list[int], int]:  # fmt: skip
    """Drive :class:`Isolation` as the scorer does over one partition of ``backlog``
    requests: a batch starts at the committed offset and takes ``limit`` requests; it
    aborts when it holds ``poison`` (or on the attempts listed in ``transient``).
    Returns the request isolated, the offsets committed and the number of attempts."""
    iso = Isolation(max_batch)
    committed: list[int] = []
    position, attempt, found = 0, 0, None
    while position < backlog and attempt < 1_000:
        batch = list(range(position, min(backlog, position + iso.limit)))
        attempt += 1
        if iso.verdict(("t", 0, position)) is not None:  # goes to the DLQ, commits
            committed.append(position)
            position += 1
            iso.committed(1)
            continue
        if poison in batch or attempt in transient:
            found = iso.aborted({("t", 0, o) for o in batch}, "refused") or found
            continue
        committed += batch
        position += len(batch)
        iso.committed(len(batch))
    return found, committed, attempt


@pytest.mark.parametrize("seed", range(20))
def test_the_poison_is_isolated_and_every_other_request_commits_once(seed: int) -> None:
    rng = random.Random(seed)
    backlog = rng.randint(2, 3_000)
    poison = rng.randrange(backlog)
    found, committed, attempts = run_until_isolated(poison, backlog, 2_000, set())
    assert found == ("t", 0, poison)
    assert committed == list(range(backlog))  # the poison once: its DLQ entry
    assert attempts < 60  # log2(2000) halvings, not a crawl


def test_one_abort_is_taken_for_a_transient_failure() -> None:
    found, committed, _ = run_until_isolated(-1, 500, 100, transient={2})
    assert found is None and committed == list(range(500))


def test_batches_grow_back_when_the_aborts_were_transient() -> None:
    iso = Isolation(100)
    batch = {("t", 0, o) for o in range(100)}
    iso.aborted(batch, "x")
    iso.aborted(batch, "x")
    assert iso.splitting and iso.limit == 50 and iso.focus == {("t", 0)}
    iso.committed(150)
    assert iso.limit == 50  # not yet twice the suspects
    iso.committed(50)
    assert not iso.splitting and iso.limit == 100 and iso.focus is None


def test_a_refused_dlq_entry_is_retried_bare_then_given_up() -> None:
    iso = Isolation(10)
    origin = ("t", 0, 7)
    iso.aborted({origin}, "first")
    assert iso.aborted({origin}, "second") == origin  # a single request: isolated
    verdict = iso.verdict(origin)
    assert verdict is not None and verdict.error == "second" and not verdict.bare
    assert iso.aborted({origin}, "dlq refused") is None  # its DLQ entry, once: transient?
    assert iso.aborted({origin}, "dlq refused") == origin  # twice in a row: it is refused
    verdict = iso.verdict(origin)
    assert verdict is not None and verdict.bare and verdict.error == "second"
    iso.aborted({origin}, "bare entry refused")
    with pytest.raises(IsolationError, match="DLQ topic exists"):
        iso.aborted({origin}, "bare entry refused")


def test_a_written_verdict_is_remembered_for_replays() -> None:
    iso = Isolation(10)
    origin = ("t", 1, 3)
    iso.aborted({origin}, "x")
    iso.aborted({origin}, "x")
    iso.written(origin)
    verdict = iso.verdict(origin)
    assert verdict is not None and verdict.written and iso.found

"""``logged_ratio`` of ``bench --gateway``: its arithmetic, when the count is read, and
whose records count."""

from __future__ import annotations

import orjson
import pytest

from services.bench._logged import Logged, Settling, client_of


def test_every_answer_logged_is_exactly_one() -> None:
    assert Logged(12_345, 12_345, 0, 2.0, True).ratio == 1.0


def test_missing_and_extra_records_move_the_ratio_either_way() -> None:
    assert Logged(2_000, 1_999, 0, 10.0, True).ratio == pytest.approx(0.9995)
    # a call logged whose answer the bench never got (its own timeout) is above 1
    assert Logged(2_000, 2_001, 0, 2.0, True).ratio == pytest.approx(1.0005)
    assert Logged(0, 0, 3, 2.0, True).ratio is None  # no answers: no ratio, not 0/0


def test_other_clients_records_are_kept_apart() -> None:
    data = Logged(100, 100, 7, 2.5, True).to_dict()
    assert data == {"answered": 100, "logged": 100, "other_clients": 7, "waited_s": 2.5,
                    "settled": True, "ratio": 1.0}  # fmt: skip


def test_reading_stops_once_the_count_is_reached_and_quiet() -> None:
    settling = Settling(expected=3, quiet=2.0, patience=10.0, since=0.0)
    assert not settling.seen(1, 0.5)
    assert not settling.seen(3, 1.0)  # reached, but it may still grow
    assert not settling.seen(3, 2.9)
    assert settling.seen(3, 3.0)


def test_a_count_short_of_the_answers_waits_longer_and_growth_restarts_the_wait() -> None:
    settling = Settling(expected=5, quiet=2.0, patience=10.0, since=0.0)
    assert not settling.seen(4, 1.0)
    assert not settling.seen(4, 9.0)  # quiet long enough if it were complete, but short
    assert not settling.seen(5, 10.5)  # a late record: the wait starts again
    assert not settling.seen(5, 12.0)
    assert settling.seen(5, 12.5)
    stuck = Settling(expected=5, quiet=2.0, patience=10.0, since=0.0)
    assert stuck.seen(4, 0.0) is False and stuck.seen(4, 10.0) is True


def test_the_client_is_read_from_the_log_record() -> None:
    record = {"request_id": "r1", "client_id": "bench", "model": "bench-sklearn"}
    assert client_of(orjson.dumps(record)) == "bench"
    assert client_of(orjson.dumps(record | {"client_id": None})) is None  # a Kafka producer
    assert client_of(b"[1, 2]") is None and client_of(b"\xff") is None and client_of(None) is None

"""Broker trouble is ridden out with a capped backoff; Kafka's abort and fatal verdicts are not."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.scoring.retry import retrying, transient


class Clock:
    """A fake monotonic clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(errors: list[KafkaError], result: str = "done") -> tuple[list[float], object]:
    timeouts: list[float] = []

    def call(timeout: float) -> str:
        timeouts.append(timeout)
        if errors:
            raise KafkaException(errors.pop(0))
        return result

    return timeouts, call


@pytest.mark.parametrize("code", [
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._TIMED_OUT,
])  # fmt: skip
def test_a_broker_or_coordinator_away_is_transient(code: int) -> None:
    assert transient(KafkaError(code, "away"))


def test_kafka_s_own_retriable_flag_counts_and_abort_or_fatal_never_do() -> None:
    assert transient(KafkaError(KafkaError.UNKNOWN, "x", retriable=True))
    assert not transient(KafkaError(KafkaError.UNKNOWN, "x"))
    assert not transient(KafkaError(KafkaError._TRANSPORT, "x", txn_requires_abort=True))
    assert not transient(KafkaError(KafkaError._TRANSPORT, "x", fatal=True))


def test_transient_errors_are_retried_with_a_doubling_capped_backoff() -> None:
    clock = Clock()
    errors = [KafkaError(KafkaError._TRANSPORT, "down")] * 8
    timeouts, call = failing(list(errors))
    retries: list[KafkaError] = []
    result = retrying(call, "commit", 60.0, on_retry=retries.append, sleep=clock.sleep,
                      clock=clock)  # fmt: skip
    assert result == "done"
    assert clock.slept == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert len(retries) == 8
    # each attempt may take what is left of the budget
    assert timeouts[0] == 60.0 and timeouts[-1] == pytest.approx(60.0 - sum(clock.slept))


def test_the_budget_bounds_the_retries_and_the_last_error_is_raised() -> None:
    clock = Clock()
    timeouts, call = failing([KafkaError(KafkaError.NOT_COORDINATOR, "moved")] * 100)
    with pytest.raises(KafkaException) as raised:
        retrying(call, "commit", 3.0, sleep=clock.sleep, clock=clock)
    assert raised.value.args[0].code() == KafkaError.NOT_COORDINATOR
    assert sum(clock.slept) <= 3.0
    assert min(timeouts) >= 1.0  # never a zero timeout to librdkafka


@pytest.mark.parametrize("flag", ["txn_requires_abort", "fatal"])
def test_an_abortable_or_fatal_error_is_raised_at_once(flag: str) -> None:
    clock = Clock()
    timeouts, call = failing([KafkaError(KafkaError._TRANSPORT, "x", **{flag: True})])
    with pytest.raises(KafkaException):
        retrying(call, "commit", 60.0, sleep=clock.sleep, clock=clock)
    assert clock.slept == [] and len(timeouts) == 1

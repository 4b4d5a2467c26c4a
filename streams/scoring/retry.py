"""Riding through broker trouble: which Kafka errors pass, and how long to wait for them.

A broker restart, a transaction coordinator that moved or is still loading its log, a
request that timed out: the call that failed is made again after a capped exponential
backoff (0.1 s, 0.2 s, ... 5 s), for at most a bounded time (the scorer: its transaction
timeout). What Kafka says needs an abort (``txn_requires_abort``) or is fatal (fenced) is
never retried here: the caller aborts, or stops.

>>> from itertools import islice
>>> list(islice(backoff(), 8))
[0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
>>> transient(KafkaError(KafkaError._TRANSPORT, "broker down"))
True
>>> transient(KafkaError(KafkaError.NOT_COORDINATOR, "moved", txn_requires_abort=True))
False
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

__all__ = ["TRANSIENT", "backoff", "retrying", "transient"]

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = frozenset({
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.CONCURRENT_TRANSACTIONS,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._WAIT_COORD,
})  # fmt: skip


def transient(error: KafkaError) -> bool:
    """Whether the call may simply be made again: Kafka says so (retriable) or the error
    is a broker or coordinator away for a while; never an abortable or fatal one."""
    if error.fatal() or error.txn_requires_abort():
        return False
    return bool(error.retriable()) or error.code() in TRANSIENT


def backoff(first: float = 0.1, cap: float = 5.0) -> Iterator[float]:
    """Delays doubling from ``first`` up to ``cap``, forever."""
    delay = first
    while True:
        yield min(delay, cap)
        delay *= 2


def retrying(
    call: Callable[[float], T], what: str, budget: float, *,
    on_retry: Callable[[KafkaError], None] | None = None,
    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
) -> T:  # fmt: skip
    """``call(timeout)`` until it returns, retrying transient errors for ``budget``
    seconds; ``timeout`` is what is left of the budget (at least 1 s). Raises the last
    error when it is not transient or the budget is spent."""
    deadline = clock() + budget
    for delay in backoff():
        try:
            return call(max(1.0, deadline - clock()))
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if not transient(error) or clock() + delay > deadline:
                raise
            log.warning("%s failed (%s): retrying in %.1f s", what, error, delay)
            if on_retry is not None:
                on_retry(error)
            sleep(delay)
    raise AssertionError("unreachable: backoff() never ends")  # pragma: no cover

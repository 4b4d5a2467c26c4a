"""streams.refusals: a flood of refused records is one line per source per interval."""

from __future__ import annotations

import logging

import pytest

from schemas.codec import WrongTypeError
from streams.refusals import RefusalLog, reason_of

LABEL = "field 'label': expected null | string | double, got object"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def refusals(clock: Clock, **kwargs: str) -> RefusalLog:
    return RefusalLog(logging.getLogger("test.refusals"), interval=60, clock=clock, **kwargs)


def test_sixteen_hundred_refusals_make_one_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = refusals(clock)
    with caplog.at_level(logging.WARNING, "test.refusals"):
        for offset in range(1600):
            log.add("feedback", "loan", f"ms.loan.feedback[0]@{offset}", "wrong_type", LABEL)
            clock.now += 0.01
            log.tick()
        clock.now += 45
        log.tick()
    assert [r.getMessage() for r in caplog.records] == [
        f"1600 feedback records of loan refused in the last 61 s: 1600 wrong_type ({LABEL}) "
        "(first at ms.loan.feedback[0]@0)"
    ]
    assert caplog.records[0].levelno == logging.WARNING


def test_one_line_per_source_reasons_by_count() -> None:
    clock = Clock()
    log = refusals(clock, outcome="they are in the dlq table")
    log.add("feedback", "loan", "f[1]@5", "malformed", "expected a JSON object")
    for offset in (6, 7):
        log.add("feedback", "loan", f"f[1]@{offset}", "wrong_type", LABEL)
    log.add("metrics", "", "ms.metrics[0]@3", "truncated", "length 9 runs past the end")
    lines = log.summaries(now=True)
    assert lines == [
        f"3 feedback records of loan refused in the last 0 s: 2 wrong_type ({LABEL}), "
        "1 malformed (expected a JSON object) (first at f[1]@5); they are in the dlq table",
        "1 metrics record refused in the last 0 s: 1 truncated (length 9 runs past the end) "
        "(first at ms.metrics[0]@3); they are in the dlq table",
    ]


def test_the_interval_starts_at_the_first_refusal_after_a_quiet_one() -> None:
    clock = Clock()
    log = refusals(clock)
    clock.now += 500  # quiet: nothing pending, nothing to log
    assert log.summaries() == []
    log.add("feedback", "loan", "f[0]@1", "wrong_type", LABEL)
    clock.now += 59
    assert log.summaries() == []
    clock.now += 1
    assert len(log.summaries()) == 1
    assert log.summaries(now=True) == []  # each refusal is summed up once


def test_flush_logs_what_is_pending(caplog: pytest.LogCaptureFixture) -> None:
    log = refusals(Clock())
    log.add("predictions", "loan", "p[0]@9", "KeyError", "'champion'")
    with caplog.at_level(logging.WARNING, "test.refusals"):
        log.flush()
        log.flush()
    assert len(caplog.records) == 1 and "1 predictions record of loan" in caplog.text


def test_reason_of() -> None:
    assert reason_of(WrongTypeError("expected string, got object")) == "wrong_type"
    assert reason_of(KeyError("ts")) == "KeyError"

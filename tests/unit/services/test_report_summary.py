"""The summary's lines and the report's window: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from services.reports import WindowError
from services.reports._summary import Facts, attention_lines, fairness_findings
from services.reports._window import DEFAULT_SPAN, Window, resolve, step_for
from services.reports.cli import parse_time
from streams.monitoring.fairness import DEFAULT_LIMITS

T = datetime(2026, 12, 1, 12, tzinfo=UTC)
W = Window(T - DEFAULT_SPAN, T)


def test_all_fine_is_empty() -> None:
    assert attention_lines(Facts(W)) == []
    assert attention_lines(Facts(W, requests=100, dlq=1, backups=1, errors=1)) == []  # 1 %: ok


def test_lines_in_order_with_their_numbers() -> None:
    facts = Facts(W, requests=200, dlq=5, backups=3, errors=4,
                  open_alerts=["drift on age: 1 alert open since 2026-12-01 10:00; latest: x",
                               "concept drift: 1 alert open since 2026-12-01 11:00; latest: y"],
                  fairness_gaps=["Fairness gap sex demographic_parity_difference 0.2 > 0.1"],
                  challenger="Challenger v2 is better than champion v1 (...)")  # fmt: skip
    assert attention_lines(facts) == [
        "drift on age: 1 alert open since 2026-12-01 10:00; latest: x",
        "concept drift: 1 alert open since 2026-12-01 11:00; latest: y",
        "Fairness gap sex demographic_parity_difference 0.2 > 0.1",
        "Challenger v2 is better than champion v1 (...)",
        "DLQ rate 2.44 % (5 of 205 messages dead-lettered; over 1 %)",
        "Backup rate 1.50 % (3 of 200 requests answered by the backup; over 1 %)",
        "Champion error rate 2.00 % (4 of 200 champion answers failed; over 1 %)",
    ]


def test_fairness_findings_read_the_latest_window_of_each_attribute() -> None:
    t1, t2 = pd.Timestamp(T), pd.Timestamp(T + timedelta(minutes=1))
    frame = pd.DataFrame(
        [(t1, "sex", "", "demographic_parity_difference", 0.5),  # old: not reported
         (t2, "sex", "", "demographic_parity_difference", 0.05),
         (t2, "sex", "f", "selection_rate", 0.9),  # a group's rate is no gap
         (t2, "sex", "", "demographic_parity_ratio", 0.79),
         (t1, "age_band", "", "equalized_odds_difference", 0.3)],
        columns=["window_end", "attribute", "grp", "metric", "value"],
    )  # fmt: skip
    assert fairness_findings(frame, DEFAULT_LIMITS) == [
        "Fairness gap age_band equalized_odds_difference 0.3 > 0.1 (window ending 12:00)",
        "Fairness gap sex demographic_parity_ratio 0.79 < 0.8 (window ending 12:01)",
    ]


def test_window_defaults_and_errors() -> None:
    latest = T - timedelta(days=2)
    assert resolve(None, None, latest, T) == Window(
        latest + timedelta(milliseconds=1) - DEFAULT_SPAN, latest + timedelta(milliseconds=1)
    )
    assert resolve(None, None, None, T) == W
    assert resolve(None, T, latest, T) == W  # --to alone: the day before it
    naive = resolve(datetime(2026, 12, 1, 10), datetime(2026, 12, 1, 11), None, T)
    assert naive.start.tzinfo is UTC and naive.seconds == 3600
    with pytest.raises(WindowError, match="must be before its end"):
        resolve(T, T - timedelta(hours=1), None, T)
    assert isinstance(WindowError("x"), ValueError)


def test_steps_are_round_and_bounded() -> None:
    hour = Window(T, T + timedelta(hours=1))
    assert (step_for(hour, 1440), step_for(hour, 24), step_for(hour, 12)) == (60, 300, 300)
    assert step_for(Window(T, T + timedelta(days=400)), 24) == 86400


def test_cli_times() -> None:
    assert parse_time("--from", "2026-12-01T10:00+01:00") == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert parse_time("--to", None) is None
    with pytest.raises(ValueError, match="--to: expected an ISO 8601 time"):
        parse_time("--to", "noon")

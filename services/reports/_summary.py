"""What needs attention: one line per finding, each with its number.

:class:`Facts` gathers what the sections found; :func:`attention_lines` turns it into the
summary at the top of the report. Pure: the thresholds are the monitor's and the gate's
defaults, named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from services.reports._window import Window

__all__ = [
    "BACKUP_RATE",
    "DLQ_RATE",
    "ERROR_RATE",
    "Facts",
    "attention_lines",
    "fairness_findings",
]

DLQ_RATE: Final = 0.01  # more than 1 % of the messages dead-lettered
BACKUP_RATE: Final = 0.01  # more than 1 % of the requests answered by the backup
ERROR_RATE: Final = 0.01  # more than 1 % of the champion's answers failed


@dataclass
class Facts:
    """What the sections found, for the summary."""

    window: Window
    requests: int = 0
    errors: int = 0
    backups: int = 0
    dlq: int = 0
    open_alerts: list[str] = field(default_factory=list)  # one line per kind and input
    fairness_gaps: list[str] = field(default_factory=list)  # gaps past their limits
    challenger: str = ""  # what the paired test says the gate would do, "" when nothing
    label_kind: str = ""  # classification, regression, or "" before the first label


def attention_lines(facts: Facts) -> list[str]:
    """The summary lines, most urgent first; empty when all is fine.

    >>> from datetime import UTC, datetime
    >>> w = Window(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    >>> attention_lines(Facts(w, requests=1000, dlq=30, backups=5))
    ['DLQ rate 2.91 % (30 of 1030 messages dead-lettered; over 1 %)']
    >>> attention_lines(Facts(w, requests=100, open_alerts=["drift on age: 1 alert open"]))
    ['drift on age: 1 alert open']
    >>> attention_lines(Facts(w, requests=10))
    []
    """
    lines: list[str] = []
    lines += facts.open_alerts
    lines += facts.fairness_gaps
    if facts.challenger:
        lines.append(facts.challenger)
    received = facts.requests + facts.dlq
    lines += _rate("DLQ rate", facts.dlq, received, DLQ_RATE, "messages dead-lettered")
    lines += _rate("Backup rate", facts.backups, facts.requests, BACKUP_RATE,
                   "requests answered by the backup")  # fmt: skip
    lines += _rate("Champion error rate", facts.errors, facts.requests, ERROR_RATE,
                   "champion answers failed")  # fmt: skip
    return lines


def _rate(name: str, part: int, whole: int, limit: float, what: str) -> list[str]:
    if whole <= 0 or part / whole <= limit:
        return []
    return [f"{name} {100 * part / whole:.2f} % ({part} of {whole} {what}; over {100 * limit:g} %)"]


def fairness_findings(frame: pd.DataFrame, limits: Mapping[str, float]) -> list[str]:
    """One line per gap past its limit in its attribute's latest window (ratios: below
    it; differences: above), from the rows with an empty ``grp``.

    >>> t = pd.Timestamp("2026-12-01 10:00", tz="UTC")
    >>> f = pd.DataFrame({"window_end": [t, t, t - pd.Timedelta(minutes=1)],
    ...                   "attribute": ["sex"] * 3, "grp": [""] * 3,
    ...                   "metric": ["demographic_parity_difference", "demographic_parity_ratio",
    ...                              "equal_opportunity_difference"],
    ...                   "value": [0.18, 0.7, 0.5]})
    >>> fairness_findings(f, {"demographic_parity_difference": 0.1,
    ...                       "demographic_parity_ratio": 0.8,
    ...                       "equal_opportunity_difference": 0.1})
    ['Fairness gap sex demographic_parity_difference 0.18 > 0.1 (window ending 10:00)', \
'Fairness gap sex demographic_parity_ratio 0.7 < 0.8 (window ending 10:00)']
    """
    gaps = frame[(frame["grp"] == "") & frame["metric"].isin(list(limits))]
    lines = []
    for attribute, rows in gaps.groupby("attribute", sort=True):
        latest = rows[rows["window_end"] == rows["window_end"].max()]
        for row in latest.sort_values("metric").itertuples(index=False):
            limit = limits[str(row.metric)]
            ratio = str(row.metric).endswith("_ratio")
            if (row.value < limit) if ratio else (row.value > limit):
                sign = "<" if ratio else ">"
                lines.append(f"Fairness gap {attribute} {row.metric} {row.value:.3g} {sign} "
                             f"{limit:g} (window ending {row.window_end:%H:%M})")  # fmt: skip
    return lines

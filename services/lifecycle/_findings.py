"""What the gate's evidence holds: the paired test, fairness per attribute, latency, alerts.

Plain frozen data, read from the warehouse by :func:`services.lifecycle._evidence.gather`
(which says what each part counts). :meth:`Evidence.numbers` flattens it for a model
event's details and ``models show``; :func:`ttest_from_moments` is the monitor's paired
t-test from the moments SQL computes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from scipy.stats import t as student_t

from services.registry import Task
from streams.monitoring.fairness import (
    GroupRates,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from streams.monitoring.results import Significance

__all__ = [
    "GAPS",
    "ROLES",
    "AttributeFairness",
    "Evidence",
    "Favoured",
    "Latency",
    "OpenAlert",
    "PairedTest",
    "Role",
    "ttest_from_moments",
]

GAPS: Final = (
    "equal_opportunity_difference",
    "demographic_parity_difference",
    "equalized_odds_difference",
)
Favoured = Literal["challenger", "champion", "neither"]
Role = Literal["champion", "challenger"]
ROLES: Final[tuple[Role, ...]] = ("champion", "challenger")


@dataclass(frozen=True)
class PairedTest:
    """Challenger against champion on the paired requests.

    ``metric`` is ``accuracy`` (higher is better) for a classifier, ``mae`` (lower is
    better) for a regressor. Classifier: ``b`` requests only the champion got right, ``c``
    only the challenger, McNemar's test. Regressor: ``mean_difference`` and
    ``sd_difference`` of ``|e_challenger| - |e_champion|`` (negative: the challenger errs
    less), the paired t-test. With no paired request: metrics None, p-value 1.

    >>> PairedTest("classification", 100, "accuracy", 0.7, 0.8, "mcnemar", 8.1, 0.004,
    ...            b=5, c=15).favoured
    'challenger'
    """

    task: Task
    n: int
    metric: Literal["accuracy", "mae"]
    champion: float | None
    challenger: float | None
    test: Literal["mcnemar", "paired_ttest"]
    statistic: float
    p_value: float
    b: int | None = None
    c: int | None = None
    mean_difference: float | None = None
    sd_difference: float | None = None

    @property
    def favoured(self) -> Favoured:
        """Which version the data favour (significant or not)."""
        edge: float = 0.0
        if self.b is not None and self.c is not None:
            edge = self.c - self.b
        elif self.mean_difference is not None:
            edge = -self.mean_difference
        return "challenger" if edge > 0 else "champion" if edge < 0 else "neither"


@dataclass(frozen=True)
class AttributeFairness:
    """One sensitive attribute: the groups' rates per role, and the gaps between groups.

    >>> f = AttributeFairness(
    ...     "sex",
    ...     {"f": GroupRates(10, 0.5, 0.6, 0.2, 10), "m": GroupRates(10, 0.5, 0.7, 0.2, 10)},
    ...     {"f": GroupRates(10, 0.5, 0.5, 0.2, 10), "m": GroupRates(10, 0.6, 0.8, 0.3, 10)})
    >>> {k: round(v, 6) for k, v in f.widening().items() if v is not None}
    {'equal_opportunity_difference': 0.2, 'demographic_parity_difference': 0.1, \
'equalized_odds_difference': 0.2}
    """

    attribute: str
    champion: Mapping[str, GroupRates]
    challenger: Mapping[str, GroupRates]

    def gaps(self, role: Role) -> dict[str, float | None]:
        """Equal opportunity, demographic parity and equalized odds differences (None:
        undefined -- fewer than two groups with the rate)."""
        groups = self.champion if role == "champion" else self.challenger
        if not groups:
            return dict.fromkeys(GAPS)
        tpr = {name: g.tpr for name, g in groups.items()}
        fpr = {name: g.fpr for name, g in groups.items()}
        return {
            "equal_opportunity_difference": equal_opportunity_difference(tpr),
            "demographic_parity_difference": demographic_parity_difference(
                {name: g.selection_rate for name, g in groups.items()}
            ),
            "equalized_odds_difference": equalized_odds_difference(tpr, fpr),
        }

    def widening(self) -> dict[str, float | None]:
        """Challenger gap minus champion gap, per gap (None when either is undefined)."""
        mine, theirs = self.gaps("challenger"), self.gaps("champion")
        return {name: _minus(mine[name], theirs[name]) for name in GAPS}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


@dataclass(frozen=True)
class Latency:
    """p99 (``quantileExact``) of both versions' predict times on the requests both
    answered; None when there were none."""

    count: int
    champion_p99_ms: float | None
    challenger_p99_ms: float | None


@dataclass(frozen=True)
class OpenAlert:
    """An alert whose latest state is ``firing`` (``ts``: when it got there)."""

    alert_id: str
    kind: str
    name: str
    feature: str
    model_version: str
    role: str
    ts: datetime
    window_start: datetime
    message: str

    def as_json(self) -> dict[str, str]:
        """JSON-able, for a model event's details."""
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "name": self.name,
            "feature": self.feature,
            "model_version": self.model_version,
            "role": self.role,
            "ts": self.ts.isoformat(),
            "window_start": self.window_start.isoformat(),
            "message": self.message,
        }


@dataclass(frozen=True)
class Evidence:
    """Everything the gate decides on, for one champion and one challenger over
    ``[since, now)`` (see the module docstring for what each part counts)."""

    model: str
    champion_version: int
    challenger_version: int
    since: datetime
    now: datetime
    paired: PairedTest
    fairness: tuple[AttributeFairness, ...]
    latency: Latency
    challenger_alerts: tuple[OpenAlert, ...]
    champion_alerts: tuple[OpenAlert, ...]

    def numbers(self) -> dict[str, Any]:
        """A flat JSON-able dict: for the model event's details and ``models show``.
        Non-finite numbers (an infinite t statistic) are None."""
        p = self.paired
        out: dict[str, Any] = {
            "model": self.model,
            "champion_version": self.champion_version,
            "challenger_version": self.challenger_version,
            "since": self.since.isoformat(),
            "now": self.now.isoformat(),
            "paired.task": p.task,
            "paired.n": p.n,
            "paired.metric": p.metric,
            "paired.champion": p.champion,
            "paired.challenger": p.challenger,
            "paired.test": p.test,
            "paired.statistic": p.statistic,
            "paired.p_value": p.p_value,
            "paired.favoured": p.favoured,
        }
        if p.task == "classification":
            out |= {"paired.b": p.b, "paired.c": p.c}
        else:
            out |= {
                "paired.mean_difference": p.mean_difference,
                "paired.sd_difference": p.sd_difference,
            }
        for f in self.fairness:
            out |= _fairness_numbers(f)
        out |= {
            "latency.count": self.latency.count,
            "latency.champion_p99_ms": self.latency.champion_p99_ms,
            "latency.challenger_p99_ms": self.latency.challenger_p99_ms,
            "alerts.challenger_open": len(self.challenger_alerts),
            "alerts.challenger": [a.alert_id for a in self.challenger_alerts],
            "alerts.champion_open": len(self.champion_alerts),
            "alerts.champion": [a.alert_id for a in self.champion_alerts],
        }
        return {k: _finite(v) for k, v in out.items()}


def _fairness_numbers(f: AttributeFairness) -> dict[str, Any]:
    out: dict[str, Any] = {}
    mine, theirs, wider = f.gaps("challenger"), f.gaps("champion"), f.widening()
    for gap in GAPS:
        key = f"fairness.{f.attribute}.{gap}"
        out |= {f"{key}.champion": theirs[gap], f"{key}.challenger": mine[gap],
                f"{key}.widening": wider[gap]}  # fmt: skip
    for role in ROLES:
        for name, g in (f.champion if role == "champion" else f.challenger).items():
            key = f"fairness.{f.attribute}.{role}.{name}"
            out |= {f"{key}.count": g.count, f"{key}.selection_rate": g.selection_rate,
                    f"{key}.tpr": g.tpr, f"{key}.fpr": g.fpr}  # fmt: skip
    return out


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def ttest_from_moments(n: int, mean: float, sd: float) -> Significance:
    """:func:`~streams.monitoring.performance.paired_ttest.paired_ttest` from ``n``, the
    mean and the sample standard deviation of the differences, with its conventions
    (``sd == 0``: statistic 0 and p-value 1 when ``mean == 0``, else infinite and 0).

    >>> result = ttest_from_moments(4, 0.5, 0.408248290463863)
    >>> round(result.statistic, 4), round(result.p_value, 4)
    (2.4495, 0.0917)
    >>> ttest_from_moments(3, -0.5, 0.0)
    Significance(statistic=-inf, p_value=0.0)
    """
    if sd == 0.0:
        if mean == 0.0:
            return Significance(0.0, 1.0)
        return Significance(math.copysign(math.inf, mean), 0.0)
    statistic = mean / (sd / math.sqrt(n))
    return Significance(statistic, float(2.0 * student_t.sf(abs(statistic), n - 1)))

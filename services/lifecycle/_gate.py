"""The promotion gate: promote, retire or wait, from a policy and the evidence.

:func:`decide` is pure. It makes every check on every call (each a value, the bound it
was held to, and whether it passed: the record of the decision), then decides in order:

1. fewer than ``min_labels`` paired labelled requests: **wait** for labels;
2. the paired test favours the champion with ``p < alpha``: **retire** (worse);
3. it favours the challenger with ``p < alpha`` but a fairness gap of the challenger is
   wider than the champion's by more than ``max_fairness_widening``: **retire** (unfair);
4. better, but a drift / concept-drift / anomaly alert is open on it, or its latency p99
   is above ``(1 + max_p99_increase)`` times the champion's and more than
   ``p99_slack_ms`` above it: **wait**;
5. better and every check passed: **promote**; no significant difference: **wait**.

A wait once the challenger has shadowed ``max_shadow_s`` or longer becomes **retire** (no
decision in time). With ``pinned`` a promote or wait becomes **wait** with a reason that
starts with ``pinned``; a retire stays a retire.

The paired test (McNemar, or the paired t-test for a regressor) is two-sided; which
version it favours is its direction: ``c > b`` (more requests only the challenger got
right), or a negative mean of ``|e_challenger| - |e_champion|``.

Boundaries: significance is ``p < alpha`` (p exactly alpha is not significant);
``min_labels`` labelled requests are enough; a widening exactly ``max_fairness_widening``
passes and so does a p99 exactly at its bound (both compared with a 1e-9 tolerance, so a
bound met in exact arithmetic is not failed by floating-point rounding); a gap undefined
for the roles (fewer than two groups with a labelled positive) is not compared.

Examples
--------
>>> from datetime import UTC, datetime
>>> from services.lifecycle._findings import Evidence, Latency, PairedTest
>>> from services.lifecycle._policy import PromotionPolicy
>>> at = datetime(2026, 1, 1, tzinfo=UTC)
>>> def evidence(n, champion, challenger, p_value, b, c):
...     paired = PairedTest("classification", n, "accuracy", champion, challenger,
...                         "mcnemar", 13.0, p_value, b=b, c=c)
...     return Evidence("churn", 1, 2, at, at, paired, (), Latency(n, 5.0, 5.5), (), ())
>>> policy = PromotionPolicy(min_labels=2000)
>>> decide(policy, evidence(40, 0.8, 0.9, 0.04, 1, 5), shadow_age_s=60).reason
'waiting for labels: 40 of 2,000 labelled requests both versions scored'
>>> verdict = decide(policy, evidence(2140, 0.78, 0.71, 0.0003, 200, 50), shadow_age_s=60)
>>> verdict.action, verdict.reason
('retire', 'worse: accuracy 0.71 vs 0.78, McNemar p=0.0003 < 0.01 on 2,140 requests')
>>> verdict = decide(policy, evidence(2140, 0.78, 0.84, 0.0001, 50, 178), shadow_age_s=60)
>>> verdict.action, verdict.checks["labels"]
('promote', Check(value=2140, bound=2000, passed=True))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from services.lifecycle._findings import (
    GAPS,
    AttributeFairness,
    Evidence,
    Latency,
    PairedTest,
)
from services.lifecycle._policy import PromotionPolicy, format_duration

__all__ = ["Action", "Check", "Verdict", "decide"]

Action = Literal["promote", "retire", "wait"]
TOLERANCE: Final = 1e-9
_GAP_NAMES: Final = {
    "equal_opportunity_difference": "equal opportunity gap",
    "demographic_parity_difference": "demographic parity gap",
    "equalized_odds_difference": "equalized odds gap",
}
_TESTS: Final = {"mcnemar": "McNemar", "paired_ttest": "paired t-test"}
_METRICS: Final = {"accuracy": "accuracy", "mae": "MAE"}


@dataclass(frozen=True, slots=True)
class Check:
    """One condition of the gate: the value seen, the bound it was held to, the outcome."""

    value: float | int | bool | None
    bound: float | int | bool | None
    passed: bool


@dataclass(frozen=True)
class Verdict:
    """What the gate decided, why (one sentence with the numbers), and every check."""

    action: Action
    reason: str
    checks: Mapping[str, Check]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"action", "reason", "checks": {name: {value, bound, passed}}}``."""
        checks = {name: asdict(check) for name, check in self.checks.items()}
        return {"action": self.action, "reason": self.reason, "checks": checks}


def decide(policy: PromotionPolicy, evidence: Evidence, *, shadow_age_s: float) -> Verdict:
    """The gate's verdict on ``evidence`` under ``policy`` for a challenger that has
    shadowed ``shadow_age_s`` seconds (see the module docstring for the rules)."""
    checks = _checks(policy, evidence, shadow_age_s)
    action, reason = _verdict(policy, evidence, checks)
    if action == "wait" and not checks["shadow_age"].passed:
        action = "retire"
        reason = (
            f"no decision after shadowing {_age(shadow_age_s)} "
            f"(max-shadow {format_duration(policy.max_shadow_s)}): {reason}"
        )
    if policy.pinned and action != "retire":
        action, reason = "wait", f"pinned: the champion stays (the gate would {action}: {reason})"
    return Verdict(action, reason, checks)


def _checks(policy: PromotionPolicy, evidence: Evidence, shadow_age_s: float) -> dict[str, Check]:
    paired = evidence.paired
    significant = paired.p_value < policy.alpha
    checks = {
        "labels": Check(paired.n, policy.min_labels, paired.n >= policy.min_labels),
        "not_worse": Check(
            paired.p_value, policy.alpha, not (significant and paired.favoured == "champion")
        ),
        "better": Check(
            paired.p_value, policy.alpha, significant and paired.favoured == "challenger"
        ),
    }
    for attribute in evidence.fairness:
        for gap, widening in attribute.widening().items():
            bound = policy.max_fairness_widening
            passed = not _widens(widening, bound)
            checks[f"fairness.{attribute.attribute}.{gap}"] = Check(widening, bound, passed)
    alerts = len(evidence.challenger_alerts)
    checks["alerts"] = Check(alerts, 0, alerts == 0)
    checks["p99"] = _p99_check(policy, evidence.latency)
    age, limit = shadow_age_s, policy.max_shadow_s
    checks["shadow_age"] = Check(age, limit, age < limit)
    checks["pinned"] = Check(policy.pinned, False, not policy.pinned)
    return checks


def _widens(widening: float | None, bound: float) -> bool:
    return widening is not None and widening > bound + TOLERANCE


def _p99_check(policy: PromotionPolicy, latency: Latency) -> Check:
    mine, theirs = latency.challenger_p99_ms, latency.champion_p99_ms
    if mine is None or theirs is None:
        return Check(mine, None, False)
    # a relative bound alone would block on microseconds of noise: a few µs per row of a
    # batch; within ``p99_slack_ms`` of the champion a challenger always passes
    bound = max(theirs * (1.0 + policy.max_p99_increase), theirs + policy.p99_slack_ms)
    return Check(mine, bound, mine <= bound + TOLERANCE)


def _verdict(
    policy: PromotionPolicy, evidence: Evidence, checks: Mapping[str, Check]
) -> tuple[Action, str]:
    paired = evidence.paired
    if not checks["labels"].passed:
        return "wait", (
            f"waiting for labels: {paired.n:,} of {policy.min_labels:,} labelled requests "
            "both versions scored"
        )
    if not checks["not_worse"].passed:
        return "retire", f"worse: {_comparison(paired, policy.alpha)}"
    if not checks["better"].passed:
        return "wait", f"no significant difference yet: {_comparison(paired, policy.alpha)}"
    better = f"better: {_comparison(paired, policy.alpha)}"
    unfair = _widened(evidence.fairness, policy.max_fairness_widening)
    if unfair:
        return "retire", f"{better}, but it widens {'; '.join(unfair)}"
    blocked = _blocked(evidence, checks, policy)
    if blocked:
        return "wait", f"{better}, but {' and '.join(blocked)}"
    return "promote", better


def _comparison(paired: PairedTest, alpha: float) -> str:
    """``accuracy 0.71 vs 0.78, McNemar p=0.0003 < 0.01 on 2,140 requests`` (challenger
    first)."""
    sign = "<" if paired.p_value < alpha else "≥"
    return (
        f"{_METRICS[paired.metric]} {_num(paired.challenger)} vs {_num(paired.champion)}, "
        f"{_TESTS[paired.test]} p={paired.p_value:.2g} {sign} {alpha:g} "
        f"on {paired.n:,} requests"
    )


def _widened(fairness: tuple[AttributeFairness, ...], bound: float) -> list[str]:
    out = []
    for attribute in fairness:
        before, after = attribute.gaps("champion"), attribute.gaps("challenger")
        for gap in GAPS:
            was, now = before[gap], after[gap]
            if was is None or now is None or not _widens(now - was, bound):
                continue
            out.append(
                f"the {_GAP_NAMES[gap]} on {attribute.attribute}: {was:.3g} → {now:.3g} "
                f"({now - was:+.3g} > {bound:g})"
            )
    return out


def _blocked(evidence: Evidence, checks: Mapping[str, Check], policy: PromotionPolicy) -> list[str]:
    out = []
    alerts = evidence.challenger_alerts
    if alerts:
        names = ", ".join(
            f"{a.kind} {a.name}" + (f" on {a.feature}" if a.feature else "") + f" ({a.alert_id})"
            for a in alerts
        )
        are = "alerts are" if len(alerts) > 1 else "alert is"
        out.append(f"{len(alerts)} {are} open on it: {names}")
    p99 = checks["p99"]
    if not p99.passed:
        latency = evidence.latency
        if p99.bound is None:
            out.append("its latency p99 was not measured (no request both versions answered)")
        else:
            theirs = latency.champion_p99_ms or 0.0
            relative = theirs * (1.0 + policy.max_p99_increase)
            how = (f"{1 + policy.max_p99_increase:g}x the champion's" if relative >= p99.bound
                   else f"{policy.p99_slack_ms:g} ms over the champion's")  # fmt: skip
            out.append(
                f"its latency p99 {_ms(latency.challenger_p99_ms)} is above "
                f"{how} {_ms(latency.champion_p99_ms)} = {_ms(p99.bound)}"
            )
    return out


def _age(seconds: float) -> str:
    """``25.5h``-style: one decimal in the largest unit that fits."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _ms(value: float | int | bool | None) -> str:
    return "-" if value is None else f"{value:.4g} ms"


def _num(value: float | int | bool | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) and math.isfinite(value) else str(value)

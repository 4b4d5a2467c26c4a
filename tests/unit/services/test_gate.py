"""The promotion gate (services/lifecycle/_gate.py): every rule, its boundaries, its words.

And the pure parts of the evidence: the t-test from moments is the monitor's paired
t-test, ``numbers()`` is flat and strict JSON.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest

from services.lifecycle._evidence import (
    AttributeFairness,
    Evidence,
    Latency,
    OpenAlert,
    PairedTest,
    ttest_from_moments,
)
from services.lifecycle._gate import Verdict, decide
from services.lifecycle._policy import PromotionPolicy
from streams.monitoring.fairness import GroupRates
from streams.monitoring.performance.paired_ttest import paired_ttest

AT = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = PromotionPolicy(min_labels=2000, alpha=0.01, max_fairness_widening=0.02)
HOUR = 3600.0
CHECKS = {"labels", "not_worse", "better", "alerts", "p99", "shadow_age", "pinned"}


def paired(
    n: int = 2140,
    champion: float = 0.78,
    challenger: float = 0.84,
    p_value: float = 0.0001,
    b: int = 50,
    c: int = 178,
) -> PairedTest:
    return PairedTest(
        "classification", n, "accuracy", champion, challenger, "mcnemar", 12.0, p_value,
        b=b, c=c,
    )  # fmt: skip


def worse() -> PairedTest:
    return paired(champion=0.78, challenger=0.71, p_value=0.0003, b=200, c=50)


def rates(tpr: float | None, selection: float = 0.5, fpr: float = 0.1) -> GroupRates:
    return GroupRates(100, selection, tpr, fpr, 100)


def fairness(
    champion_tpr: tuple[float, float], challenger_tpr: tuple[float, float]
) -> AttributeFairness:
    """Same selection rates and FPRs everywhere: only the TPR gap differs."""
    return AttributeFairness(
        "sex",
        {"f": rates(champion_tpr[0]), "m": rates(champion_tpr[1])},
        {"f": rates(challenger_tpr[0]), "m": rates(challenger_tpr[1])},
    )


def alert(alert_id: str = "ms.alerts-0-17", kind: str = "drift") -> OpenAlert:
    return OpenAlert(alert_id, kind, "psi", "age", "2", "", AT, AT, "psi of age 0.31 > 0.2")


def evidence(
    p: PairedTest | None = None,
    fair: tuple[AttributeFairness, ...] = (),
    latency: Latency | None = None,
    alerts: tuple[OpenAlert, ...] = (),
) -> Evidence:
    return Evidence(
        "churn", 1, 2, AT, AT, p or paired(), fair, latency or Latency(3000, 10.0, 11.0),
        alerts, (),
    )  # fmt: skip


def judge(e: Evidence, policy: PromotionPolicy = POLICY, age: float = HOUR) -> Verdict:
    return decide(policy, e, shadow_age_s=age)


# -- labels


def test_too_few_labels_waits_and_says_how_many_of_how_many() -> None:
    verdict = judge(evidence(paired(n=1999)))
    assert verdict.action == "wait"
    assert verdict.reason == (
        "waiting for labels: 1,999 of 2,000 labelled requests both versions scored"
    )
    assert verdict.checks["labels"].passed is False


def test_too_few_labels_waits_even_when_the_test_already_says_worse() -> None:
    assert judge(evidence(replace(worse(), n=1999))).action == "wait"


def test_exactly_min_labels_is_enough() -> None:
    verdict = judge(evidence(paired(n=2000)))
    assert verdict.action == "promote"
    assert (verdict.checks["labels"].value, verdict.checks["labels"].bound) == (2000, 2000)


# -- the paired test


def test_worse_at_alpha_retires_with_the_numbers() -> None:
    verdict = judge(evidence(worse()))
    assert verdict.action == "retire"
    assert verdict.reason == (
        "worse: accuracy 0.71 vs 0.78, McNemar p=0.0003 < 0.01 on 2,140 requests"
    )
    assert verdict.checks["not_worse"].passed is False


def test_worse_retires_before_any_other_check() -> None:
    e = evidence(worse(), (fairness((0.8, 0.8), (0.5, 0.9)),), Latency(9, 1.0, 50.0), (alert(),))
    assert judge(e).action == "retire"
    assert judge(e).reason.startswith("worse:")


def test_better_at_alpha_with_every_check_passed_promotes() -> None:
    verdict = judge(evidence(fair=(fairness((0.8, 0.89), (0.8, 0.9)),)))
    assert verdict.action == "promote"
    assert verdict.reason == (
        "better: accuracy 0.84 vs 0.78, McNemar p=0.0001 < 0.01 on 2,140 requests"
    )
    assert all(check.passed for check in verdict.checks.values())


def test_p_exactly_alpha_is_not_significant() -> None:
    better_at_alpha = judge(evidence(paired(p_value=0.01)))
    worse_at_alpha = judge(evidence(replace(worse(), p_value=0.01)))
    assert better_at_alpha.action == worse_at_alpha.action == "wait"
    assert better_at_alpha.reason == (
        "no significant difference yet: accuracy 0.84 vs 0.78, McNemar p=0.01 ≥ 0.01 "
        "on 2,140 requests"
    )
    assert judge(evidence(paired(p_value=0.00999))).action == "promote"
    assert judge(evidence(replace(worse(), p_value=0.00999))).action == "retire"


def test_no_difference_waits() -> None:
    tie = paired(champion=0.8, challenger=0.8, p_value=1.0, b=40, c=40)
    assert tie.favoured == "neither"
    assert judge(evidence(tie)).action == "wait"


def test_a_regressor_is_judged_on_mae() -> None:
    def regression(mean_difference: float, p_value: float) -> PairedTest:
        mae = 2.9 + mean_difference
        return PairedTest(
            "regression", 2140, "mae", 2.9, mae, "paired_ttest", 4.0, p_value,
            mean_difference=mean_difference, sd_difference=1.0,
        )  # fmt: skip

    verdict = judge(evidence(regression(0.3, 0.0003)))
    assert verdict.action == "retire"
    assert verdict.reason == (
        "worse: MAE 3.2 vs 2.9, paired t-test p=0.0003 < 0.01 on 2,140 requests"
    )
    assert judge(evidence(regression(-0.3, 0.0003))).action == "promote"


# -- fairness


def test_better_but_a_wider_equal_opportunity_gap_retires_with_that_reason() -> None:
    verdict = judge(evidence(fair=(fairness((0.8, 0.89), (0.75, 0.9)),)))
    assert verdict.action == "retire"
    assert verdict.reason.startswith("better: accuracy 0.84 vs 0.78")
    assert "widens the equal opportunity gap on sex: 0.09 → 0.15 (+0.06 > 0.02)" in verdict.reason
    check = verdict.checks["fairness.sex.equal_opportunity_difference"]
    assert check.passed is False
    assert check.value == pytest.approx(0.06)
    assert check.bound == 0.02
    assert verdict.checks["fairness.sex.demographic_parity_difference"].passed is True


def test_a_widening_exactly_the_bound_passes() -> None:
    # (0.8 - 0.58) - (0.8 - 0.6) is 0.020000000000000018 in floating point: still the bound
    exact = fairness((0.6, 0.8), (0.58, 0.8))
    assert exact.widening()["equal_opportunity_difference"] > 0.02
    assert judge(evidence(fair=(exact,))).action == "promote"
    above = fairness((0.6, 0.8), (0.579, 0.8))
    assert judge(evidence(fair=(above,))).action == "retire"


def test_a_narrower_gap_is_never_a_reason() -> None:
    assert judge(evidence(fair=(fairness((0.6, 0.9), (0.85, 0.9)),))).action == "promote"


def test_a_gap_undefined_for_both_roles_is_not_compared() -> None:
    one_group_with_positives = AttributeFairness(
        "region", {"n": rates(0.8), "s": rates(None)}, {"n": rates(0.2), "s": rates(None)}
    )
    verdict = judge(evidence(fair=(one_group_with_positives,)))
    check = verdict.checks["fairness.region.equal_opportunity_difference"]
    assert (check.value, check.passed) == (None, True)
    assert verdict.action == "promote"


def test_an_unfair_challenger_that_is_not_significantly_better_waits() -> None:
    e = evidence(paired(p_value=0.2), (fairness((0.8, 0.89), (0.5, 0.9)),))
    assert judge(e).action == "wait"


# -- alerts and latency


def test_an_open_alert_on_the_challenger_makes_it_wait_and_names_the_alert() -> None:
    verdict = judge(evidence(alerts=(alert(),)))
    assert verdict.action == "wait"
    assert verdict.reason.endswith(", but 1 alert is open on it: drift psi on age (ms.alerts-0-17)")
    assert (verdict.checks["alerts"].value, verdict.checks["alerts"].passed) == (1, False)


def test_p99_above_the_bound_waits_and_says_by_how_much() -> None:
    verdict = judge(evidence(latency=Latency(3000, 10.0, 12.5)))
    assert verdict.action == "wait"
    assert verdict.reason.endswith(
        ", but its latency p99 12.5 ms is above 1.2x the champion's 10 ms = 12 ms"
    )
    assert verdict.checks["p99"].bound == pytest.approx(12.0)


def test_p99_exactly_at_the_bound_passes() -> None:
    # 6.0 * 1.2 is 7.199999999999999 in floating point: a p99 of 7.2 ms is at the bound
    assert 6.0 * 1.2 < 7.2
    assert judge(evidence(latency=Latency(3000, 6.0, 7.2))).action == "promote"
    assert judge(evidence(latency=Latency(3000, 6.0, 7.21))).action == "wait"


def test_a_p99_within_the_slack_of_the_champion_passes_whatever_the_ratio() -> None:
    # per-row latencies of a batched scorer are microseconds: 3x of 3 µs is noise
    assert judge(evidence(latency=Latency(3000, 0.003, 0.009))).action == "promote"
    verdict = judge(evidence(latency=Latency(3000, 0.5, 1.6)))
    assert verdict.action == "wait"
    assert verdict.reason.endswith(
        ", but its latency p99 1.6 ms is above 1 ms over the champion's 0.5 ms = 1.5 ms"
    ), verdict.reason


def test_alerts_and_latency_both_said() -> None:
    verdict = judge(evidence(latency=Latency(3000, 10.0, 20.0), alerts=(alert(), alert("b"))))
    assert "2 alerts are open on it" in verdict.reason
    assert " and its latency p99 20 ms" in verdict.reason


def test_unmeasured_latency_does_not_pass() -> None:
    verdict = judge(evidence(latency=Latency(0, None, None)))
    assert verdict.action == "wait"
    assert "latency p99 was not measured" in verdict.reason


# -- max shadow and pinned


def test_max_shadow_turns_a_wait_into_retire_at_the_bound() -> None:
    few = evidence(paired(n=10))
    assert judge(few, age=POLICY.max_shadow_s - 1).action == "wait"
    verdict = judge(few, age=POLICY.max_shadow_s)
    assert verdict.action == "retire"
    assert verdict.reason == (
        "no decision after shadowing 1.0d (max-shadow 1d): waiting for labels: 10 of 2,000 "
        "labelled requests both versions scored"
    )
    assert verdict.checks["shadow_age"].passed is False


def test_max_shadow_does_not_stop_a_promotion_made_in_time() -> None:
    assert judge(evidence(), age=10 * POLICY.max_shadow_s).action == "promote"


def test_pinned_waits_instead_of_promoting_and_says_what_the_gate_would_do() -> None:
    verdict = judge(evidence(), replace(POLICY, pinned=True))
    assert verdict.action == "wait"
    assert verdict.reason.startswith("pinned: the champion stays (the gate would promote: better:")
    assert verdict.checks["pinned"].passed is False


def test_pinned_still_retires() -> None:
    pinned = replace(POLICY, pinned=True)
    assert judge(evidence(worse()), pinned).action == "retire"
    assert judge(evidence(paired(n=5)), pinned, age=POLICY.max_shadow_s).action == "retire"
    assert judge(evidence(paired(n=5)), pinned).reason.startswith("pinned")


# -- the record


@pytest.mark.parametrize(
    "e",
    [
        evidence(paired(n=3)),
        evidence(worse()),
        evidence(fair=(fairness((0.8, 0.89), (0.75, 0.9)),)),
        evidence(alerts=(alert(),)),
        evidence(),
    ],
)
def test_every_verdict_carries_every_check_as_json(e: Evidence) -> None:
    verdict = judge(e)
    assert set(verdict.checks) >= CHECKS
    record = json.loads(json.dumps(verdict.to_dict()))
    assert record["action"] == verdict.action
    assert set(record["checks"]["labels"]) == {"value", "bound", "passed"}
    assert orjson.loads(orjson.dumps(verdict.checks)) == record["checks"]


def test_numbers_is_flat_strict_json() -> None:
    e = evidence(fair=(fairness((0.8, 0.89), (0.75, 0.9)),), alerts=(alert(),))
    numbers = e.numbers()
    json.dumps(numbers, allow_nan=False)
    assert not any(isinstance(v, dict) for v in numbers.values())
    assert numbers["paired.b"] == 50 and numbers["paired.c"] == 178
    assert numbers["paired.favoured"] == "challenger"
    assert numbers["fairness.sex.equal_opportunity_difference.widening"] == pytest.approx(0.06)
    assert numbers["fairness.sex.challenger.f.tpr"] == 0.75
    assert numbers["alerts.challenger"] == ["ms.alerts-0-17"]
    assert numbers["latency.challenger_p99_ms"] == 11.0


def test_an_infinite_statistic_is_null_in_numbers() -> None:
    p = PairedTest(
        "regression", 3, "mae", 1.0, 0.5, "paired_ttest", float("-inf"), 0.0,
        mean_difference=-0.5, sd_difference=0.0,
    )  # fmt: skip
    numbers = evidence(p).numbers()
    assert numbers["paired.statistic"] is None
    json.dumps(numbers, allow_nan=False)


# -- the t-test from SQL's moments


def test_the_t_test_from_moments_is_the_monitors_paired_t_test() -> None:
    rng = random.Random(7)
    for n in (2, 3, 10, 500):
        first = [abs(rng.gauss(0, 1)) for _ in range(n)]
        second = [abs(rng.gauss(0.1, 1)) for _ in range(n)]
        d = [y - x for x, y in zip(first, second, strict=True)]
        mean = sum(d) / n
        sd = (sum((x - mean) ** 2 for x in d) / (n - 1)) ** 0.5
        got, expected = ttest_from_moments(n, mean, sd), paired_ttest(first, second)
        assert got.statistic == pytest.approx(expected.statistic, rel=1e-9)
        assert got.p_value == pytest.approx(expected.p_value, rel=1e-9)
    assert ttest_from_moments(5, 0.0, 0.0) == paired_ttest([1.0] * 5, [1.0] * 5)
    assert ttest_from_moments(5, 0.5, 0.0) == paired_ttest([1.0] * 5, [1.5] * 5)

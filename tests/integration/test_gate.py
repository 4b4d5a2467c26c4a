"""The promotion gate on real ClickHouse: evidence gathered in SQL, decided by the policy.

One champion (v1) and four challengers shadowing it over the same hour, rows inserted
straight into ``predictions``, ``feedback`` and ``alerts``:

- v2 is less accurate: retired, worse;
- v3 is more accurate but misses the positives of one group: retired, it widens the
  equal opportunity gap;
- v4 has too few labels: waits;
- v5 is better and fair, with alerts that do not count (resolved, another kind, before
  its shadow began): promoted.

The evidence is checked against the same numbers computed in Python over the inserted
rows: McNemar's b, c and p-value, the TPR of every group per role, the p99s, and which
requests count (another model, another hour, a failed champion, a silent challenger,
an unlabelled request, a corrected label: each is in the data).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.lifecycle._evidence import Evidence, gather
from services.lifecycle._gate import decide
from services.lifecycle._policy import PromotionPolicy
from services.registry import ModelVersion
from services.warehouse import Warehouse
from streams.monitoring.performance.mcnemar import mcnemar
from streams.monitoring.performance.paired_ttest import paired_ttest
from tests.integration.fixtures_warehouse import as_insert, sample_row

pytestmark = pytest.mark.integration

MODEL = "credit"
START = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
SINCE, NOW = START, START + timedelta(hours=1)
POLICY = PromotionPolicy(
    min_labels=500, alpha=0.01, max_fairness_widening=0.02, max_p99_increase=0.2
)
PER_CHALLENGER = 600


def version(number: int) -> ModelVersion:
    return ModelVersion(
        MODEL, number, "classification", {"type": "record", "name": "In", "fields": []},
        ("income",), "ana", START - timedelta(days=1), "cloudpickle", "0" * 64, 10, 1,
        sensitive_attributes=("sex",), classes=("no", "yes"), positive_label="yes",
    )  # fmt: skip


@dataclass
class Data:
    """What was inserted, and what Python says each challenger's paired requests are."""

    predictions: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    # per challenger: (sex, label, champion output, challenger output) of each paired request
    paired: dict[int, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    latencies: dict[int, list[tuple[float, float]]] = field(default_factory=dict)


def flip(label: str) -> str:
    return "no" if label == "yes" else "yes"


def answer(rng: random.Random, label: str, right: float) -> str:
    return label if rng.random() < right else flip(label)


def challenger_output(number: int, rng: random.Random, sex: str, label: str) -> str:
    if number == 2:  # worse
        return answer(rng, label, 0.6)
    if number == 3:  # better overall, but misses 40% of the positives of f
        return answer(rng, label, 0.6) if sex == "f" and label == "yes" else label
    return label  # v4 (few labels), v5: right every time: every gap 0


def prediction(
    request_id: str, ts: datetime, sex: str, champion: str, number: int, out: str | None,
    champion_ms: float, challenger_ms: float, **overrides: Any,
) -> dict[str, Any]:  # fmt: skip
    columns = dict(
        request_id=request_id, model=MODEL, ts=ts, sensitive={"sex": sex},
        champion_version="1", champion_output=champion, champion_error="",
        champion_probabilities={}, challenger_probabilities={},
        challenger_version=str(number), challenger_output=out,
        champion_latency_ms=champion_ms, challenger_latency_ms=challenger_ms,
    )  # fmt: skip
    return sample_row("predictions", **(columns | overrides))


def label(request_id: str, value: str, ts: datetime) -> dict[str, Any]:
    return sample_row(
        "feedback", request_id=request_id, model=MODEL, ts=ts, label_string=value,
        label_number=None,
    )  # fmt: skip


def build() -> Data:
    rng = random.Random(13)
    data = Data()
    for number in (2, 3, 4, 5):
        data.paired[number], data.latencies[number] = [], []
        for i in range(PER_CHALLENGER):
            rid = f"v{number}-{i}"
            ts = START + timedelta(milliseconds=5 * i + number)
            sex = "f" if i % 2 else "m"
            truth = "yes" if (i // 2) % 2 else "no"  # base rate 0.5 in each group
            champion = answer(rng, truth, 0.75)
            out = challenger_output(number, rng, sex, truth)
            ms = (round(rng.uniform(1.0, 5.0), 3), round(rng.uniform(1.0, 5.5), 3))
            data.predictions.append(prediction(rid, ts, sex, champion, number, out, *ms))
            data.latencies[number].append(ms)
            if number == 4 and i % 6 > 1:  # v4: one request in three is labelled
                continue
            if i % 50 == 0:  # a label corrected later: the latest one counts
                data.feedback.append(label(rid, flip(truth), ts + timedelta(seconds=1)))
            data.feedback.append(label(rid, truth, ts + timedelta(seconds=2)))
            data.paired[number].append((sex, truth, champion, out))
    data.predictions += noise()
    data.feedback += [label(p["request_id"], "yes", NOW) for p in noise()]
    data.alerts = alerts()
    return data


def noise() -> list[dict[str, Any]]:
    """Labelled requests of v5 that must not count."""
    inside = START + timedelta(minutes=30)
    return [
        prediction("n-before", SINCE - timedelta(milliseconds=1), "f", "yes", 5, "no", 1, 99),
        prediction("n-at-now", NOW, "f", "yes", 5, "no", 1, 99),
        prediction("n-other-model", inside, "f", "yes", 5, "no", 1, 99, model="other"),
        prediction("n-champion-failed", inside, "f", "", 5, "no", 1, 99, champion_error="boom"),
        prediction("n-silent", inside, "f", "yes", 5, None, 1, 99, challenger_latency_ms=None),
        prediction("n-other-champion", inside, "f", "yes", 5, "no", 1, 99, champion_version="7"),
    ]


def alerts() -> list[dict[str, Any]]:
    inside = START + timedelta(minutes=20)

    def alert(alert_id: str, version: str, ts: datetime, **overrides: Any) -> dict[str, Any]:
        columns = dict(
            alert_id=alert_id, model=MODEL, model_version=version, role="", ts=ts,
            window_start=ts - timedelta(minutes=1), window_end=ts,
        )  # fmt: skip
        return sample_row("alerts", **(columns | overrides))

    return [
        alert("a-champion-drift", "1", inside),
        alert("a-v2-anomaly", "2", inside, kind="anomaly", name="half_space_trees"),
        alert("a-v5-resolved", "5", inside),
        alert("a-v5-resolved", "5", inside + timedelta(minutes=5), status="resolved"),
        alert("a-v5-performance", "5", inside, kind="performance", name="accuracy"),
        alert("a-v5-before", "5", SINCE - timedelta(minutes=1)),
        alert("a-v5-after-now", "5", NOW + timedelta(minutes=1)),
        alert("a-champion-role", "", inside, role="champion", kind="concept_drift"),
    ]


@pytest.fixture(scope="module")
def data() -> Data:
    return build()


@pytest.fixture
def loaded(warehouse: Warehouse, data: Data) -> Iterator[Warehouse]:
    for table in ("predictions", "feedback", "alerts"):
        rows, columns = as_insert(getattr(data, table))
        warehouse.insert(table, rows, columns)
    yield warehouse


def evidence(warehouse: Warehouse, number: int) -> Evidence:
    return gather(warehouse, MODEL, version(1), version(number), since=SINCE, now=NOW)


def expected_mcnemar(rows: list[tuple[str, str, str, str]]) -> tuple[int, int, float]:
    b = sum(1 for _, y, a, c in rows if a == y and c != y)
    c = sum(1 for _, y, a, ch in rows if a != y and ch == y)
    return b, c, mcnemar(b, c).p_value


def expected_tpr(rows: list[tuple[str, str, str, str]], role: int, sex: str) -> float:
    positives = [r for r in rows if r[0] == sex and r[1] == "yes"]
    return sum(1 for r in positives if r[role] == "yes") / len(positives)


def expected_p99(values: list[float]) -> float:
    """quantileExact(0.99): the sorted values' element floor(0.99 n)."""
    ordered = sorted(values)
    return ordered[min(int(0.99 * len(ordered)), len(ordered) - 1)]


def test_the_evidence_is_pythons_computation_over_the_rows(loaded: Warehouse, data: Data) -> None:
    for number in (2, 3, 4, 5):
        e, rows = evidence(loaded, number), data.paired[number]
        b, c, p = expected_mcnemar(rows)
        assert (e.paired.n, e.paired.b, e.paired.c) == (len(rows), b, c)
        assert e.paired.p_value == pytest.approx(p, rel=1e-12)
        assert e.paired.champion == pytest.approx(sum(r[1] == r[2] for r in rows) / len(rows))
        assert e.paired.challenger == pytest.approx(sum(r[1] == r[3] for r in rows) / len(rows))
        (sex,) = e.fairness

        for group in ("f", "m"):
            assert sex.champion[group].tpr == pytest.approx(expected_tpr(rows, 2, group))
            assert sex.challenger[group].tpr == pytest.approx(expected_tpr(rows, 3, group))
        champion_ms, challenger_ms = zip(*data.latencies[number], strict=True)
        assert e.latency.count == PER_CHALLENGER
        assert e.latency.champion_p99_ms == expected_p99(list(champion_ms))
        assert e.latency.challenger_p99_ms == expected_p99(list(challenger_ms))


def test_a_worse_challenger_is_retired(loaded: Warehouse) -> None:
    e = evidence(loaded, 2)
    verdict = decide(POLICY, e, shadow_age_s=3600)
    assert verdict.action == "retire"
    assert verdict.reason.startswith(f"worse: accuracy {e.paired.challenger:.3g} vs ")
    assert [a.alert_id for a in e.challenger_alerts] == ["a-v2-anomaly"]


def test_an_accurate_challenger_that_widens_equal_opportunity_is_retired(
    loaded: Warehouse,
) -> None:
    e = evidence(loaded, 3)
    verdict = decide(POLICY, e, shadow_age_s=3600)
    assert verdict.action == "retire"
    assert verdict.reason.startswith("better: accuracy")
    assert "widens the equal opportunity gap on sex: " in verdict.reason
    assert verdict.checks["fairness.sex.equal_opportunity_difference"].passed is False
    assert e.numbers()["fairness.sex.equal_opportunity_difference.widening"] > 0.2


def test_a_challenger_with_too_few_labels_waits(loaded: Warehouse, data: Data) -> None:
    e = evidence(loaded, 4)
    verdict = decide(POLICY, e, shadow_age_s=3600)
    assert verdict.action == "wait"
    assert verdict.reason == (
        f"waiting for labels: {len(data.paired[4])} of 500 labelled requests both versions scored"
    )


def test_a_better_fair_challenger_without_open_alerts_is_promoted(loaded: Warehouse) -> None:
    e = evidence(loaded, 5)
    verdict = decide(POLICY, e, shadow_age_s=3600)
    assert verdict.action == "promote", verdict.reason
    assert e.challenger_alerts == ()
    assert [a.alert_id for a in e.champion_alerts] == ["a-champion-drift", "a-champion-role"]
    assert all(check.passed for check in verdict.checks.values())


def test_an_alert_open_on_the_challenger_holds_the_promotion(loaded: Warehouse) -> None:
    rows, columns = as_insert(
        [alerts()[-1] | {"alert_id": "a-v5-concept", "role": "", "model_version": "5"}]
    )
    loaded.insert("alerts", rows, columns)
    verdict = decide(POLICY, evidence(loaded, 5), shadow_age_s=3600)
    assert verdict.action == "wait"
    assert verdict.reason.endswith(
        ", but 1 alert is open on it: concept_drift psi on age (a-v5-concept)"
    )
    assert verdict.checks["alerts"].passed is False


def test_a_regressors_evidence_is_the_paired_t_test_on_absolute_errors(
    warehouse: Warehouse,
) -> None:
    rng = random.Random(5)
    predictions, feedback, truth = [], [], []
    for i in range(80):
        rid, ts, y = f"r{i}", START + timedelta(seconds=i), rng.uniform(0, 100)
        a, b = y + rng.gauss(0, 5), y + rng.gauss(0, 4)
        predictions.append(prediction(rid, ts, "f", repr(a), 2, repr(b), 1.0, 1.0))
        feedback.append(sample_row("feedback", request_id=rid, model=MODEL, ts=ts,
                                   label_string=None, label_number=y))  # fmt: skip
        truth.append((abs(a - y), abs(b - y)))
    predictions.append(prediction("r-nan", START, "f", "nan", 2, "1.0", 1.0, 1.0))
    feedback.append(label("r-nan", "3", START))
    for table, rows in (("predictions", predictions), ("feedback", feedback)):
        values, columns = as_insert(rows)
        warehouse.insert(table, values, columns)
    regressor = replace(version(1), task="regression", classes=None, positive_label=None)
    e = gather(warehouse, MODEL, regressor, replace(regressor, version=2), since=SINCE, now=NOW)
    first, second = (list(errors) for errors in zip(*truth, strict=True))
    expected = paired_ttest(first, second)
    assert (e.paired.n, e.paired.metric, e.paired.test) == (80, "mae", "paired_ttest")
    assert e.paired.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert e.paired.p_value == pytest.approx(expected.p_value, rel=1e-9)
    assert e.paired.champion == pytest.approx(sum(first) / 80, rel=1e-12)
    assert e.paired.challenger == pytest.approx(sum(second) / 80, rel=1e-12)
    assert e.fairness == ()

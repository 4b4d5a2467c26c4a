"""Every closed window of the fairness monitor against Fairlearn.

The data are random but seeded; rows go in one at a time, as the services feed them, and
the rows of each window are found without the monitor; Fairlearn then runs on exactly
those rows. Rates and gaps agree to 1e-9 (relative).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial, update_wrapper

import fairlearn.metrics as flm
import numpy as np
import pytest

from streams.monitoring import WindowSpec
from streams.monitoring.fairness import MISSING, FairnessMonitor, FairnessReport
from tests.unit.streams.monitoring.oracle_support import EXACT, SPECS, check_spans, timestamps


@dataclass(frozen=True)
class Encoding:
    """How labels reach the monitor, and the same labels as Fairlearn gets them."""

    positive_label: object
    fed: Callable[[bool], object]
    oracle: Callable[[bool], object]
    oracle_positive: object


def _text(positive: bool) -> str:
    return "approved" if positive else "denied"


ENCODINGS = {
    "strings": Encoding("approved", _text, _text, "approved"),
    "digits as text": Encoding(1, lambda p: "1" if p else "0", int, 1),
    "floats vs text": Encoding("1", lambda p: 1.0 if p else 0.0, int, 1),
}
ATTRIBUTES = {"sex": (["f", "m", "x"], [0.55, 0.43, 0.02]), "region": (["n", "s", "e"], None)}


@dataclass(frozen=True)
class FairRow:
    sensitive: dict[str, str]
    predicted: bool
    actual: bool | None
    ts: int


def _fair_rows(n: int, seed: int) -> list[FairRow]:
    rng = np.random.default_rng(seed)
    sex = rng.choice(ATTRIBUTES["sex"][0], p=ATTRIBUTES["sex"][1], size=n)
    region = rng.choice(ATTRIBUTES["region"][0], size=n)
    bias = {"f": 0.3, "m": 0.5, "x": 0.4}
    actual = rng.random(n) < 0.45
    predicted = rng.random(n) < np.array([bias[s] for s in sex]) + 0.25 * actual
    labelled = rng.random(n) >= 0.2  # a fifth of the predictions never get a label
    no_region = rng.random(n) < 0.05  # counted in the group MISSING
    rows = []
    for i, ts in enumerate(timestamps(rng, n)):
        sensitive = {"sex": str(sex[i])} | ({} if no_region[i] else {"region": str(region[i])})
        rows.append(
            FairRow(sensitive, bool(predicted[i]), bool(actual[i]) if labelled[i] else None, ts)
        )
    return rows


@pytest.mark.parametrize("encoding", ENCODINGS.values(), ids=ENCODINGS.keys())
@pytest.mark.parametrize("spec", SPECS, ids=["events", "millis"])
def test_fairness_equals_fairlearn_on_every_window(encoding: Encoding, spec: WindowSpec) -> None:
    rows = _fair_rows(2100, seed=11)
    monitor = FairnessMonitor(list(ATTRIBUTES), positive_label=encoding.positive_label, window=spec)
    reports: list[FairnessReport] = []
    for row in rows:
        actual = None if row.actual is None else encoding.fed(row.actual)
        reports += monitor.update(row.sensitive, encoding.fed(row.predicted), actual, ts=row.ts)
    reports += monitor.flush()
    windows = [r.window for r in reports if r.attribute == "sex"]
    check_spans(windows, [r.ts for r in rows], spec)
    seen: Counter[str] = Counter()
    for report in reports:
        chunk = rows[report.window.first_event : report.window.end_event]
        seen += _check_fairness(report, chunk, encoding)
    assert seen["windows"] == 2 * len(windows)
    assert seen["undefined rate"] > 0 and seen["every rate defined"] > 0


def _at(metric: Callable[..., float], positive: object) -> Callable[..., float]:
    """``metric`` with its positive label bound, keeping its name for the MetricFrame."""
    return update_wrapper(partial(metric, pos_label=positive), metric)


def _check_fairness(report: FairnessReport, rows: list[FairRow], enc: Encoding) -> Counter[str]:
    groups = np.array([r.sensitive.get(report.attribute, MISSING) for r in rows])
    predicted = np.array([enc.oracle(r.predicted) for r in rows])
    selection = flm.MetricFrame(
        metrics=_at(flm.selection_rate, enc.oracle_positive),
        y_true=predicted,  # ignored by selection_rate
        y_pred=predicted,
        sensitive_features=groups,
    )
    assert set(report.groups) == set(selection.by_group.index)
    for name, rates in report.groups.items():
        assert rates.count == int(np.sum(groups == name))
        assert rates.selection_rate == pytest.approx(selection.by_group[name], **EXACT)
    assert report.demographic_parity_difference == pytest.approx(selection.difference(), **EXACT)
    assert report.demographic_parity_ratio == pytest.approx(selection.ratio(), **EXACT)
    binary = np.array([r.predicted for r in rows], dtype=int)
    dpd = flm.demographic_parity_difference(binary, binary, sensitive_features=groups)
    dpr = flm.demographic_parity_ratio(binary, binary, sensitive_features=groups)
    assert (report.demographic_parity_difference, report.demographic_parity_ratio) == (
        pytest.approx(dpd, **EXACT),
        pytest.approx(dpr, **EXACT),
    )
    return _check_error_rates(report, [r for r in rows if r.actual is not None], enc)


def _check_error_rates(report: FairnessReport, rows: list[FairRow], enc: Encoding) -> Counter[str]:
    """TPR and FPR on the labelled rows; a group without a labelled positive (negative)
    has no TPR (FPR) here, where Fairlearn gives 0, so the gaps are taken over the groups
    that have the rate (the documented difference)."""
    groups = np.array([r.sensitive.get(report.attribute, MISSING) for r in rows])
    actual = np.array([bool(r.actual) for r in rows])
    frames = {}
    for rate, metric, has in (
        ("tpr", flm.true_positive_rate, actual),
        ("fpr", flm.false_positive_rate, ~actual),
    ):
        defined = set(groups[has])
        keep = np.isin(groups, list(defined))
        frames[rate] = frame = flm.MetricFrame(
            metrics=_at(metric, enc.oracle_positive),
            y_true=np.array([enc.oracle(r.actual) for r in rows])[keep],
            y_pred=np.array([enc.oracle(r.predicted) for r in rows])[keep],
            sensitive_features=groups[keep],
        )
        for name, rates in report.groups.items():
            found = getattr(rates, rate)
            if name in defined:
                assert found == pytest.approx(frame.by_group[name], **EXACT)
            else:
                assert found is None
    gaps = {k: f.difference() if len(f.by_group) >= 2 else None for k, f in frames.items()}
    assert report.equal_opportunity_difference == pytest.approx(gaps["tpr"], **EXACT)
    odds = [g for g in gaps.values() if g is not None]
    assert report.equalized_odds_difference == pytest.approx(max(odds) if odds else None, **EXACT)
    every = (
        all(len(frames[k].by_group) == len(set(groups)) for k in frames) and len(set(groups)) >= 2
    )
    if every:  # Fairlearn's own gap functions apply as they are
        _check_fairlearn_gaps(report, groups, actual, np.array([r.predicted for r in rows]))
    return Counter({"windows": 1, "every rate defined" if every else "undefined rate": 1})


def _check_fairlearn_gaps(
    report: FairnessReport, groups: np.ndarray, actual: np.ndarray, predicted: np.ndarray
) -> None:
    y_true, y_pred = actual.astype(int), predicted.astype(int)
    eo = flm.equal_opportunity_difference(y_true, y_pred, sensitive_features=groups)
    odds = flm.equalized_odds_difference(y_true, y_pred, sensitive_features=groups)
    assert report.equal_opportunity_difference == pytest.approx(eo, **EXACT)
    assert report.equalized_odds_difference == pytest.approx(odds, **EXACT)

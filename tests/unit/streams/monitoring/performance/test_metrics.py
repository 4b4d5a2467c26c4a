"""Metric functions equal scikit-learn's on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.monitoring import EmptySampleError
from streams.monitoring.performance import (
    accuracy,
    confusion,
    f1,
    log_loss,
    mae,
    mcnemar,
    paired_ttest,
    precision,
    r2,
    recall,
    rmse,
    roc_auc,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")

labels = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1, max_size=80
)


@given(labels)
@settings(max_examples=60, deadline=None)
def test_classification_metrics_equal_sklearn(pairs: list[tuple[str, str]]) -> None:
    y_true, y_pred = [t for t, _ in pairs], [p for _, p in pairs]
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    c = confusion(y_true, y_pred, positive="a")
    binary = {"pos_label": "a", "average": "binary", "zero_division": 0.0}
    t = ["a" if v == "a" else "z" for v in y_true]
    p = ["a" if v == "a" else "z" for v in y_pred]
    assert precision(c) == pytest.approx(skm.precision_score(t, p, **binary))  # type: ignore[arg-type]
    assert recall(c) == pytest.approx(skm.recall_score(t, p, **binary))  # type: ignore[arg-type]
    assert f1(c) == pytest.approx(skm.f1_score(t, p, **binary))  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=1, max_size=80))
@settings(max_examples=60, deadline=None)
def test_log_loss_and_auc_equal_sklearn(rows: list[tuple[bool, float]]) -> None:
    y, p = [t for t, _ in rows], [s for _, s in rows]
    p_true = [s if t else 1 - s for t, s in rows]
    expected = skm.log_loss(y, p, labels=[False, True])
    assert math.isclose(log_loss(p_true), expected, rel_tol=1e-9, abs_tol=1e-12)
    if len(set(y)) == 2:
        assert roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    else:
        assert roc_auc(y, p) is None


@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=1, max_size=80))
@settings(max_examples=60, deadline=None)
def test_regression_metrics_equal_sklearn(rows: list[tuple[float, float]]) -> None:
    t, p = [a for a, _ in rows], [b for _, b in rows]
    assert mae(t, p) == pytest.approx(skm.mean_absolute_error(t, p), rel=1e-9, abs=1e-9)
    assert rmse(t, p) == pytest.approx(math.sqrt(skm.mean_squared_error(t, p)), rel=1e-9, abs=1e-9)
    if len(rows) >= 2:  # sklearn: R^2 is NaN for one sample
        assert r2(t, p) == pytest.approx(skm.r2_score(t, p), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("b, c", [(0, 0), (3, 0), (2, 9), (12, 12), (30, 12), (100, 140)])
def test_mcnemar_by_hand(b: int, c: int) -> None:
    result = mcnemar(b, c)
    if b + c == 0:
        assert result == (0.0, 1.0)
    elif b + c < 25:
        assert result.p_value == pytest.approx(scipy.stats.binomtest(b, b + c, 0.5).pvalue)
    else:
        statistic = (abs(b - c) - 1) ** 2 / (b + c)
        assert result.statistic == pytest.approx(statistic)
        assert result.p_value == pytest.approx(scipy.stats.chi2.sf(statistic, 1))


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100)), min_size=2, max_size=60))
@settings(deadline=None)
def test_paired_ttest_equals_scipy(rows: list[tuple[float, float]]) -> None:
    a, b = [x for x, _ in rows], [y for _, y in rows]
    d = np.subtract(b, a)
    if np.ptp(d) < 1e-9 * max(1.0, float(np.abs(d).max())):
        return  # SciPy's NaN / unstable zone; covered by the next test
    expected = scipy.stats.ttest_rel(b, a)
    found = paired_ttest(a, b)
    assert found.statistic == pytest.approx(expected.statistic, rel=1e-6)
    assert found.p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)


def test_paired_ttest_with_constant_differences() -> None:
    assert paired_ttest([1.0, 2.0], [1.0, 2.0]) == (0.0, 1.0)
    assert paired_ttest([1.0, 2.0], [2.0, 3.0]) == (math.inf, 0.0)


def test_empty_inputs_raise() -> None:
    for call in (
        lambda: accuracy([], []),
        lambda: log_loss([]),
        lambda: mae([], []),
        lambda: roc_auc([], []),
        lambda: paired_ttest([], []),
    ):
        with pytest.raises(EmptySampleError):
            call()

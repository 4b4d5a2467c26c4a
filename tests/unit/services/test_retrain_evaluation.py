"""The holdout: a trained model's contract, the metrics of it and of the champion, the
positive class spelled as the new model spells it, and the command's options and summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from river import linear_model, preprocessing
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import f1_score
from sklearn.metrics import log_loss as sklearn_log_loss

from services.lifecycle._errors import ModelContractError
from services.lifecycle._evaluation import check_contract, holdout_metrics, predict
from services.lifecycle._retrain import RetrainResult, _positive_for
from services.lifecycle.cli import parse_params, summary, window
from services.lifecycle.trainers import river_logistic
from services.registry import ModelVersion
from services.synthetic import labelled_rows

TRAIN = labelled_rows(400, seed=3)
ROWS = [row for row, _ in TRAIN]
LABELS = ["True" if label else "False" for _, label in TRAIN]
FEATURES = tuple(ROWS[0])


def frame_of(rows: list[dict[str, Any]], labels: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(rows).assign(label=labels)


def test_a_river_model_is_scored_as_serving_scores_it_with_sklearns_numbers() -> None:
    model = river_logistic(frame_of(ROWS, LABELS), {"lr": "0.1"})
    answers = predict(model, task="classification", features=FEATURES, rows=ROWS)
    check_contract(answers, task="classification", classes={"True", "False"}, what="m")
    metrics = holdout_metrics(answers, LABELS, task="classification", positive="True")
    guesses = [a.output for a in answers]
    p_true = [(a.probabilities or {})["True"] for a in answers]
    assert metrics["accuracy"] == pytest.approx(sum(map(str.__eq__, guesses, LABELS)) / 400)
    assert metrics["accuracy"] > 0.8
    assert metrics["f1"] == pytest.approx(f1_score(LABELS, guesses, pos_label="True"))
    assert metrics["log_loss"] == pytest.approx(
        sklearn_log_loss([label == "True" for label in LABELS], p_true)
    )
    assert metrics["failed"] == 0.0


def test_a_sklearn_model_on_boolean_labels_compares_by_class_text() -> None:
    x = pd.DataFrame(ROWS)[list(FEATURES[:-1])]
    model = LogisticRegression().fit(x.to_numpy(), [label == "True" for label in LABELS])
    answers = predict(model, task="classification", features=FEATURES[:-1], rows=ROWS)
    metrics = holdout_metrics(answers, LABELS, task="classification", positive="True")
    assert metrics["accuracy"] == pytest.approx(
        model.score(x.to_numpy(), [v == "True" for v in LABELS])
    )


class Failing:
    """Answers until it meets a row without ``x0``."""

    def predict_one(self, x: dict[str, Any]) -> bool:
        return x["x0"] > 0


def test_a_model_that_fails_on_a_holdout_row_breaks_the_contract() -> None:
    rows = [{"x0": 1.0}, {"x1": 2.0}, {"x1": 3.0}]
    answers = predict(Failing(), task="classification", features=("x0", "x1"), rows=rows)
    with pytest.raises(ModelContractError, match=r"^m failed on 2 of 3 holdout requests \(row "
                       r"1: KeyError: 'x0'\): it does not take the champion's input"):  # fmt: skip
        check_contract(answers, task="classification", classes={"True", "False"}, what="m")


def test_a_champion_that_fails_counts_wrong_and_is_counted() -> None:
    rows = [{"x0": 1.0}, {"x1": 2.0}, {"x0": -3.0}, {"x0": 4.0}]
    answers = predict(Failing(), task="classification", features=("x0", "x1"), rows=rows)
    metrics = holdout_metrics(answers, ["True", "True", "False", "False"],
                              task="classification", positive="True")  # fmt: skip
    assert metrics == {"accuracy": 0.5, "f1": 0.5, "failed": 1.0}


def test_a_regressor_where_a_classifier_belongs_is_refused() -> None:
    x = pd.DataFrame(ROWS)[["x0", "x1"]]
    model = LinearRegression().fit(x.to_numpy(), [float(label == "True") for label in LABELS])
    answers = predict(model, task="classification", features=("x0", "x1"), rows=ROWS[:5])
    with pytest.raises(ModelContractError, match="which is no class of its training labels "
                       r"\(False, True\): is it a classifier\?"):  # fmt: skip
        check_contract(answers, task="classification", classes={"True", "False"}, what="m")


def test_a_regressor_must_answer_numbers() -> None:
    class Words:
        def predict(self, rows: Any) -> list[str]:
            return ["high"] * len(rows)

    answers = predict(Words(), task="regression", features=("x0",), rows=[{"x0": 1.0}])
    with pytest.raises(ModelContractError, match="answers 'high', but the model is a regressor"):
        check_contract(answers, task="regression", classes=set(), what="m")


def test_something_without_predict_is_no_predictor() -> None:
    with pytest.raises(ModelContractError, match=r"dict has no predict_proba_one.*return a River"):
        predict({"weights": [1.0]}, task="classification", features=("x0",), rows=ROWS[:1])


def test_regression_metrics_leave_out_the_requests_the_model_failed() -> None:
    model = preprocessing.StandardScaler() | linear_model.LinearRegression()
    for x, y in [({"a": 1.0}, 2.0), ({"a": 2.0}, 4.0)] * 50:
        model.learn_one(x, y)
    answers = predict(model, task="regression", features=("a",),
                      rows=[{"a": 1.0}, {"a": "x"}, {"a": 2.0}])  # fmt: skip
    metrics = holdout_metrics(answers, [2.0, 3.0, 4.0], task="regression", positive=None)
    assert set(metrics) == {"mae", "rmse", "failed"} and metrics["failed"] == 1.0
    assert metrics["mae"] < 0.5


def version(**fields: Any) -> ModelVersion:
    base: dict[str, Any] = {
        "name": "churn", "version": 3, "task": "classification", "input_schema": {},
        "features": ("x0",), "author": "ana", "created_at": datetime(2026, 5, 1, tzinfo=UTC),
        "artifact_format": "cloudpickle", "artifact_sha256": "0" * 64, "artifact_size": 1,
        "chunk_count": 1, "positive_label": "True",
    }  # fmt: skip
    return ModelVersion(**(base | fields))


def test_the_champions_positive_class_is_spelled_as_the_new_model_spells_it() -> None:
    booleans = LogisticRegression().fit([[0.0], [1.0]], [False, True])
    numbers = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert _positive_for(booleans, version(positive_label="True")) == "true"
    assert _positive_for(numbers, version(positive_label="1.0")) == "1"
    assert _positive_for(numbers, version(positive_label="1")) == "1"
    assert _positive_for(object(), version(positive_label="True")) == "True"  # classes unknown
    assert _positive_for(numbers, version(positive_label="yes")) == "yes"  # the registry says no


def test_options_and_summary() -> None:
    now = datetime(2026, 5, 8, tzinfo=UTC)
    assert window(None, None, None, now=now)[0] == datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="--since: '7 days' is not a duration"):
        window("7 days", None, None, now=now)
    with pytest.raises(ValueError, match="--from 'May 1' is not an ISO 8601 time"):
        window(None, "May 1", None, now=now)
    with pytest.raises(ValueError, match="the window must start before it ends"):
        window(None, "2026-05-09", None, now=now)
    with pytest.raises(ValueError, match="--param '=3' is not k=v"):
        parse_params(["=3"])
    lineage = {"trainer": "pkg.mod:fit", "code_version": "abc+dirty",
               "data": {"start": "S", "end": "E", "fingerprint": "sha256:f"}}  # fmt: skip
    result = RetrainResult(
        version(version=4, lineage=lineage), version(), "challenger", 1000, 800, 200,
        {"holdout_accuracy": 0.9, "holdout_f1": 0.8, "parent_holdout_accuracy": 0.6,
         "parent_holdout_f1": 0.5, "parent_holdout_failed": 0.0},
    )  # fmt: skip
    assert summary(result) == [
        "registered churn v4 (challenger), retrained from champion v3 by pkg.mod:fit "
        "(code abc+dirty)",
        "data: 1000 labelled requests, S .. E (train 800, holdout 200 latest); "
        "fingerprint sha256:f",
        "holdout: accuracy 0.9000 (champion 0.6000), f1 0.8000 (champion 0.5000)",
    ]

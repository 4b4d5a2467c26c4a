"""A model on the holdout: its answers through the scorer's own adapter, and its metrics.

Both the trained model and the champion answer the holdout through
:func:`streams.scoring.adapt`, the code that serves them, so the numbers are what serving
would have scored. Metrics are the monitor's (``streams.monitoring.performance``), with
classes compared by class text (:func:`streams.monitoring.labels.label_key`):
classification ``accuracy``, ``f1`` of the positive class and ``log_loss`` when every
answer came with probabilities; regression ``mae`` and ``rmse``. A request the champion
failed on counts as a wrong answer (classification) or is left out (regression); the
count is ``failed``.

:func:`check_contract` is stricter for the trained model: every holdout request must be
answered, a regressor must answer numbers, and a classifier only classes that the
training labels hold.

Examples
--------
>>> class Sign:
...     def predict_one(self, x): return x["a"] > 0
>>> rows, labels = [{"a": 1.0}, {"a": -2.0}, {"a": 3.0}], ["True", "False", "False"]
>>> answers = predict(Sign(), task="classification", features=("a",), rows=rows)
>>> holdout_metrics(answers, labels, task="classification", positive="True")
{'accuracy': 0.6666666666666666, 'f1': 0.6666666666666666, 'failed': 0.0}
>>> check_contract(answers, task="classification", classes={"True", "False"}, what="v2")
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from services.lifecycle._errors import ModelContractError
from streams.monitoring.labels import label_key
from streams.monitoring.performance import accuracy, confusion, f1, log_loss, mae, rmse
from streams.scoring import Outcome, UnsupportedModelError, adapt

__all__ = ["check_contract", "holdout_metrics", "predict"]

Row = dict[str, Any]


def predict(model: object, *, task: str, features: Sequence[str], rows: list[Row]) -> list[Outcome]:
    """``model``'s answer to each row, as the scorer would get it."""
    try:
        predictor = adapt(model, task=task, features=features)
    except UnsupportedModelError as exc:
        raise ModelContractError(f"{exc}; return a River or scikit-learn predictor") from exc
    return predictor.predict(rows)


def check_contract(
    answers: Sequence[Outcome], *, task: str, classes: Collection[str], what: str
) -> None:
    """Raise :class:`ModelContractError` unless every answer is one serving can log."""
    failed = [(i, a) for i, a in enumerate(answers) if not a.ok]
    if failed:
        index, first = failed[0]
        error = first.error[1] if first.error else first.skipped
        raise ModelContractError(
            f"{what} failed on {len(failed)} of {len(answers)} holdout requests (row "
            f"{index}: {error}): it does not take the champion's input; make the trainer "
            "return a model that predicts from one value per input field"
        )
    for answer in answers:
        output = answer.output
        if task == "regression" and not isinstance(output, float):
            raise ModelContractError(
                f"{what} answers {output!r}, but the model is a regressor: it must answer numbers"
            )
        if task == "classification" and label_key(output) not in classes:
            raise ModelContractError(
                f"{what} answers {output!r}, which is no class of its training labels "
                f"({', '.join(sorted(classes)[:10])}): is it a classifier?"
            )


def holdout_metrics(
    answers: Sequence[Outcome], labels: Sequence[Any], *, task: str, positive: str | None
) -> dict[str, float]:
    """The metrics of ``answers`` against ``labels`` (see the module docstring)."""
    failed = float(sum(not a.ok for a in answers))
    if task == "regression":
        pairs = [(float(t), float(a.output)) for t, a in zip(labels, answers, strict=True)
                 if a.ok and isinstance(a.output, float)]  # fmt: skip
        if not pairs:
            return {"failed": failed}
        actual, estimate = [t for t, _ in pairs], [g for _, g in pairs]
        return {"mae": mae(actual, estimate), "rmse": rmse(actual, estimate), "failed": failed}
    truth = [label_key(t) for t in labels]
    guess = [label_key(a.output) if a.ok and a.output is not None else None for a in answers]
    metrics = {"accuracy": accuracy(truth, guess)}
    if positive is not None:
        metrics["f1"] = f1(confusion(truth, guess, positive=label_key(positive)))
    if not failed and all(a.probabilities for a in answers):
        metrics["log_loss"] = log_loss([_p_true(a, t) for a, t in zip(answers, truth, strict=True)])
    return metrics | {"failed": failed}


def _p_true(answer: Outcome, truth: str) -> float:
    by_class = {label_key(name): p for name, p in (answer.probabilities or {}).items()}
    return float(by_class.get(truth, 0.0))

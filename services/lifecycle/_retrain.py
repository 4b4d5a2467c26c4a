"""Retraining with provenance: labelled requests in, a registered challenger out.

:func:`retrain`, step by step (nothing is registered unless every step succeeds):

1. the trainer reference is resolved (:mod:`~services.lifecycle._trainer`), before any
   data is read, so a typo costs no query;
2. the champion is the parent: its input schema, features, task, sensitive attributes and
   positive class are the new version's too; it is loaded (to be scored on the holdout)
   only if ``trust`` accepts its signature;
3. its labelled requests in ``[start, end)`` are read in one query
   (:mod:`~services.lifecycle._training_data`); fewer than ``min_rows`` is
   :class:`TooFewRowsError`;
4. the last ``holdout`` fraction by time is held out (no training row is later than a
   holdout row), the trainer fits the rest;
5. the trained model must answer every holdout request the way serving logs answers
   (:mod:`~services.lifecycle._evaluation`); it and the champion are scored on the same
   holdout (``holdout_*`` and ``parent_holdout_*`` training metrics);
6. the version is registered (signed by the registry's signer) as the challenger, or
   with no role (``shadow=False``), with ``lineage``::

       {"kind": "retrain", "trainer": "pkg.mod:fn", "code_version": "<sha>[+dirty]",
        "parent_version": 3, "seed": 0, "trigger": {"by": "cli"},
        "data": {"start": ISO, "end": ISO, "read_at": ISO, "rows": 5000,
                 "train_rows": 4000, "holdout_rows": 1000, "fingerprint": "sha256:...",
                 "sql": "SELECT ...", "params": {"model": ..., "start": ..., "end": ...}}}

The training data's fingerprint is the registry's own
(:func:`services.registry.data_fingerprint`) of the training frame handed to the trainer
(input fields and ``label``), so ``training_data_fingerprint`` and
``lineage.data.fingerprint`` are one value; ``sql`` with ``params`` selects the same rows
again while the warehouse keeps them (a label corrected since changes them, and the
fingerprint shows it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from services.lifecycle._errors import ModelContractError, RetrainError, TooFewRowsError
from services.lifecycle._evaluation import check_contract, holdout_metrics, predict
from services.lifecycle._trainer import code_version, load_trainer, run_trainer
from services.lifecycle._training_data import Reader, TrainingData, read_labelled, time_split
from services.registry import (
    InvalidModelError,
    InvalidSchemaError,
    ModelVersion,
    Registry,
    Trust,
    UntrustedVersionError,
    data_fingerprint,
)
from services.registry._artifact import class_labels  # the registry's class text, to match
from streams.monitoring.labels import label_key

__all__ = ["RetrainResult", "retrain"]


@dataclass(frozen=True)
class RetrainResult:
    """What a retraining registered, and the numbers it was registered on."""

    version: ModelVersion
    parent: ModelVersion
    role: str | None
    rows: int
    train_rows: int
    holdout_rows: int
    metrics: Mapping[str, float]

    @property
    def lineage(self) -> Mapping[str, Any]:
        return self.version.lineage


def retrain(
    registry: Registry,
    warehouse: Reader,
    name: str,
    *,
    trainer: str,
    start: datetime,
    end: datetime,
    min_rows: int = 500,
    holdout: float = 0.2,
    params: Mapping[str, str] | None = None,
    trigger: Mapping[str, Any] | None = None,
    shadow: bool = True,
    seed: int = 0,
    trust: Trust | None = None,
) -> RetrainResult:
    """Retrain ``name`` on its labelled requests in ``[start, end)`` (see the module
    docstring). ``warehouse``: a :class:`~services.warehouse.Warehouse`, or any
    :class:`Reader`. ``trust`` decides whether the champion may be loaded to be scored on the
    holdout (default: versions signed by the registry's own signer; with no signer, a
    development setup, any version). Raises a :class:`RetrainError` (nothing registered),
    or the registry's and warehouse's own errors."""
    start, end = _utc(start), _utc(end)
    _check_arguments(start, end, min_rows, holdout)
    function = load_trainer(trainer)
    parent = _champion(registry, name)
    parent_model = _load_parent(registry, parent, trust)  # refused before any work
    data = read_labelled(warehouse, name, task=parent.task, input_schema=parent.input_schema,
                         start=start, end=end)  # fmt: skip
    if len(data) < min_rows:
        raise TooFewRowsError(_too_few(name, len(data), min_rows, start, end))
    train, held = time_split(data.frame, holdout)
    hyperparameters = dict(params or {})
    model = run_trainer(function, trainer, train, hyperparameters, seed)
    metrics = _evaluate(model, parent_model, parent, train, held, trainer)
    lineage = _lineage(trainer, function, parent, data, train, held, trigger, seed)
    version = _register(registry, parent, model, train, hyperparameters, metrics, lineage, shadow)
    return RetrainResult(version, parent, "challenger" if shadow else None, len(data),
                         len(train), len(held), metrics)  # fmt: skip


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _check_arguments(start: datetime, end: datetime, min_rows: int, holdout: float) -> None:
    if not start < end:
        raise RetrainError(
            f"the window must start before it ends, got {start.isoformat()} .. {end.isoformat()}"
        )
    if min_rows < 2:
        raise RetrainError(f"min_rows must be at least 2 (a training row and a holdout row), "
                           f"got {min_rows}")  # fmt: skip
    if not 0.0 < holdout < 1.0:
        raise RetrainError(f"holdout must be a fraction between 0 and 1, got {holdout}")


def _champion(registry: Registry, name: str) -> ModelVersion:
    routing = registry.routing(name)
    if routing is None:
        registry.versions(name)  # UnknownModelError (with suggestions) when not registered
        raise RetrainError(f"{name} has no champion to retrain: promote a version first")
    return registry.view.version(name, routing.champion)


def _too_few(name: str, found: int, needed: int, start: datetime, end: datetime) -> str:
    """
    >>> _too_few("churn", 312, 500, datetime(2026, 5, 1, tzinfo=UTC),
    ...          datetime(2026, 5, 8, tzinfo=UTC))  # doctest: +NORMALIZE_WHITESPACE
    'found 312 labelled requests of churn between 2026-05-01T00:00:00+00:00 and
     2026-05-08T00:00:00+00:00; need 500: wait for more labels, widen --since or lower
     --min-rows'
    """
    return (
        f"found {found} labelled requests of {name} between {start.isoformat()} and "
        f"{end.isoformat()}; need {needed}: wait for more labels, widen --since or lower "
        "--min-rows"
    )


def _load_parent(registry: Registry, parent: ModelVersion, trust: Trust | None) -> object:
    """The champion's model, once ``trust`` accepts its signature (it is unpickled)."""
    if trust is None:
        signer = registry.signer
        trust = Trust.unchecked() if signer is None else Trust.of(signer.public_key)
    try:
        trust.check(parent, registry.view.signature(parent.name, parent.version))
    except UntrustedVersionError as exc:
        raise RetrainError(
            f"the champion cannot be scored on the holdout, so nothing was retrained: {exc}"
        ) from exc
    return registry.view.load_model(parent.name, parent.version)


def _evaluate(
    model: object, parent_model: object, parent: ModelVersion, train: pd.DataFrame,
    held: pd.DataFrame, trainer: str,
) -> dict[str, float]:  # fmt: skip
    """``holdout_*`` of the new model and ``parent_holdout_*`` of the champion, after the
    new model passed the contract on every holdout request."""
    rows = _rows(held[list(parent.features)])
    labels = held["label"].tolist()
    task, features = parent.task, parent.features
    answers = predict(model, task=task, features=features, rows=rows)
    classes = {label_key(c) for c in train["label"]} if task == "classification" else set()
    check_contract(answers, task=task, classes=classes, what=f"the model {trainer} returned")
    parent_answers = predict(parent_model, task=task, features=features, rows=rows)
    positive = parent.positive_label
    new = holdout_metrics(answers, labels, task=task, positive=positive)
    old = holdout_metrics(parent_answers, labels, task=task, positive=positive)
    new.pop("failed")  # always 0: the contract allows no failure
    return {f"holdout_{k}": v for k, v in new.items()} | {
        f"parent_holdout_{k}": v for k, v in old.items()
    }


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the scorer decodes requests: Python values, None where missing."""
    plain = frame.astype(object)
    return [dict(row) for row in plain.where(plain.notna(), None).to_dict("records")]


def _lineage(
    trainer: str, function: object, parent: ModelVersion, data: TrainingData,
    train: pd.DataFrame, held: pd.DataFrame, trigger: Mapping[str, Any] | None, seed: int,
) -> dict[str, Any]:  # fmt: skip
    return {
        "kind": "retrain",
        "trainer": trainer,
        "code_version": code_version(function),
        "parent_version": parent.version,
        "seed": seed,
        "trigger": dict(trigger) if trigger else {"by": "api"},
        "data": {
            "start": data.start.isoformat(),
            "end": data.end.isoformat(),
            "read_at": data.read_at.isoformat(),
            "rows": len(data),
            "train_rows": len(train),
            "holdout_rows": len(held),
            "fingerprint": data_fingerprint(_reference(train)),
            **data.query.provenance(),
        },
    }


def _reference(train: pd.DataFrame) -> pd.DataFrame:
    """The training frame as the registry profiles and fingerprints it."""
    return train.reset_index(drop=True)


def _register(
    registry: Registry, parent: ModelVersion, model: object, train: pd.DataFrame,
    params: dict[str, str], metrics: dict[str, float], lineage: dict[str, Any], shadow: bool,
) -> ModelVersion:  # fmt: skip
    data = lineage["data"]
    description = (
        f"retrained from v{parent.version} by {lineage['trainer']} on {data['rows']} labelled "
        f"requests, {data['start']} .. {data['end']}"
    )
    try:
        return registry.register(
            parent.name, model, parent.input_schema, task=parent.task,
            reference=_reference(train), sensitive=parent.sensitive_attributes,
            positive_label=_positive_for(model, parent), hyperparameters=params,
            training_metrics=metrics, code_version=lineage["code_version"],
            role="challenger" if shadow else None, description=description, lineage=lineage,
        )  # fmt: skip
    except (InvalidModelError, InvalidSchemaError) as exc:
        raise ModelContractError(
            f"the registry refused the model {lineage['trainer']} returned: {exc}"
        ) from exc


def _positive_for(model: object, parent: ModelVersion) -> str | None:
    """The champion's positive class, spelled as the new model's classes spell it (a
    scikit-learn model trained on booleans says ``true`` where River says ``True``)."""
    positive = parent.positive_label
    classes = class_labels(model)
    if positive is None or classes is None or positive in classes:
        return positive
    same = [c for c in classes if label_key(c) == label_key(positive)]
    return same[0] if same else positive

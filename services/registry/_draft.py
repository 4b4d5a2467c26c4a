"""A model version before it gets its number: every input checked, the profile computed.

Everything that can be wrong with a registration is found here, before Kafka is touched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, get_args

import orjson
import pandas as pd

from services.registry import _artifact
from services.registry._errors import ArtifactTooLargeError, InvalidModelError, InvalidSchemaError
from services.registry._input_schema import check_sensitive, feature_kinds, validate_input_schema
from services.registry._model import ModelVersion, Role, Task
from services.registry._positive import positive_label as _positive_label
from services.registry._profile import data_fingerprint, reference_profile
from streams.kafka import validate_model_name

__all__ = ["Draft", "check_size", "make_draft"]

_TASKS: Final[tuple[str, ...]] = get_args(Task)
_ROLES: Final[tuple[str, ...]] = get_args(Role)


@dataclass(frozen=True)
class Draft:
    """Validated inputs of one registration; :meth:`version` numbers it."""

    name: str
    task: Task
    input_schema: Mapping[str, Any]
    features: tuple[str, ...]
    data: bytes = field(repr=False)
    fmt: _artifact.ArtifactFormat
    role: Role | None = None
    sensitive: tuple[str, ...] = ()
    description: str = ""
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    training_metrics: Mapping[str, float] = field(default_factory=dict)
    code_version: str | None = None
    classes: tuple[str, ...] | None = None
    positive_label: str | None = None
    profile: Mapping[str, Any] | None = None
    fingerprint: str | None = None
    lineage: Mapping[str, Any] = field(default_factory=dict)

    def version(self, number: int, *, author: str, at: datetime, chunk_count: int) -> ModelVersion:
        return ModelVersion(
            name=self.name,
            version=number,
            task=self.task,
            input_schema=self.input_schema,
            features=self.features,
            author=author,
            created_at=at,
            artifact_format=self.fmt,
            artifact_sha256=_artifact.sha256(self.data),
            artifact_size=len(self.data),
            chunk_count=chunk_count,
            description=self.description,
            sensitive_attributes=self.sensitive,
            training_data_fingerprint=self.fingerprint,
            hyperparameters=self.hyperparameters,
            training_metrics=self.training_metrics,
            code_version=self.code_version,
            reference_profile=self.profile,
            classes=self.classes,
            positive_label=self.positive_label,
            environment=_artifact.environment(),
            lineage=self.lineage,
        )


def make_draft(
    name: str,
    data: bytes,
    input_schema: Mapping[str, Any],
    *,
    model: object,
    task: str | None,
    fmt: str,
    max_bytes: int,
    reference: pd.DataFrame | None = None,
    sensitive: Iterable[str] = (),
    description: str = "",
    hyperparameters: Mapping[str, Any] | None = None,
    training_metrics: Mapping[str, float] | None = None,
    code_version: str | None = None,
    role: str | None = None,
    positive_label: str | None = None,
    lineage: Mapping[str, Any] | None = None,
) -> Draft:
    """Check every input of a registration (nothing is written yet). ``model`` is the
    loaded predictor: its task is guessed when ``task`` is None, its classes recorded, and
    a classifier's positive class checked or inferred (``services.registry._positive``)."""
    check_size(name, data, max_bytes)
    _artifact.require_predictor(model)
    name = _check_name(name)
    checked_task = _check_choice("task", task or _guess_task(name, model), _TASKS)
    labels = _artifact.class_labels(model)
    classes = None if labels is None else tuple(labels)
    features = validate_input_schema(input_schema)
    profile, fingerprint = _describe(reference, input_schema, features)
    return Draft(
        name=name,
        task=checked_task,  # type: ignore[arg-type]  # checked against the Literal's values
        input_schema=dict(input_schema),
        features=features,
        data=data,
        fmt=_artifact.check_format(fmt),
        role=None if role is None else _check_choice("role", role, _ROLES),  # type: ignore[arg-type]  # checked
        sensitive=check_sensitive(sensitive, features),
        description=description,
        hyperparameters={str(k): str(v) for k, v in (hyperparameters or {}).items()},
        training_metrics=_check_metrics(training_metrics or {}),
        code_version=code_version or None,
        classes=classes,
        positive_label=_positive_label(name, checked_task, classes, positive_label),
        profile=profile,
        fingerprint=fingerprint,
        lineage=_check_lineage(lineage or {}),
    )


def _check_name(name: str) -> str:
    try:
        return validate_model_name(name)
    except ValueError as exc:
        raise InvalidModelError(str(exc)) from None


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidModelError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _guess_task(name: str, model: object) -> str:
    task = _artifact.guess_task(model)
    if task is None:
        raise InvalidModelError(
            f"cannot tell whether the {type(model).__name__} of {name} is a classifier or a "
            "regressor; say which with task='classification' or task='regression'"
        )
    return task


def check_size(name: str, data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise ArtifactTooLargeError(
            f"the artifact of {name} is {len(data) / 2**20:.1f} MiB, over the registry's "
            f"limit of {max_bytes / 2**20:.1f} MiB; shrink the model (fewer trees, "
            "compression) or raise max_artifact_bytes"
        )


def _check_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for key, value in metrics.items():
        number = float(value) if isinstance(value, int | float) else math.nan
        if not math.isfinite(number):
            raise InvalidModelError(
                f"training metric {key!r} must be a finite number, got {value!r}"
            )
        checked[str(key)] = number
    return checked


def _describe(
    reference: pd.DataFrame | None, schema: Mapping[str, Any], features: tuple[str, ...]
) -> tuple[dict[str, Any] | None, str | None]:
    """The reference profile of the declared features and the data's fingerprint."""
    if reference is None:
        return None, None
    missing = [name for name in features if name not in reference.columns]
    if missing:
        raise InvalidSchemaError(
            f"the reference data has no column for input fields {', '.join(missing)}; pass "
            "the training data with one column per input field (extra columns are ignored)"
        )
    kinds = feature_kinds(schema)
    profile = reference_profile(
        reference,
        numeric=[name for name in features if kinds[name] == "numeric"],
        categorical=[name for name in features if kinds[name] == "categorical"],
    )
    return profile, data_fingerprint(reference)


def _check_lineage(lineage: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON object, or :class:`InvalidModelError` naming what is not JSON."""
    try:
        return dict(orjson.loads(orjson.dumps(dict(lineage))))
    except TypeError as exc:
        raise InvalidModelError(f"lineage must be a JSON object: {exc}") from exc

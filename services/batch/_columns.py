"""The output's columns: the input's, then what scoring added to each row.

::

    prediction            the served prediction (class label, or number for regression)
    probability_<class>   each class's probability (classifiers that expose them)
    model_version         the version that served the row (champion, or the backup)
    served_by             champion | backup | none (no model could score the row)
    error                 why the row has no prediction: ``<reason>: <message>``
    challenger_prediction, challenger_probability_<class>, challenger_version
                          with --challenger: the challenger's answer (never served)

A refused row (the door) keeps its input columns; its ``served_by`` and prediction are
null and ``error`` says what the contract expected. The class columns are fixed by the
first chunk with probabilities (sorted class labels); a class first seen later is an
error, not a dropped column.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from services.batch._chunk import ScoredChunk
from services.batch._errors import BatchError, InputError
from streams.scoring import Deployment, Outcome

__all__ = ["ADDED", "Layout"]

ADDED = ("prediction", "model_version", "served_by", "error")


def _classes(outcomes: Iterable[Outcome | None]) -> tuple[str, ...]:
    found: set[str] = set()
    for outcome in outcomes:
        if outcome is not None and outcome.probabilities:
            found.update(outcome.probabilities)
    return tuple(sorted(found))


@dataclass(frozen=True)
class Layout:
    """Which columns scoring adds, and their types: fixed once, for every chunk."""

    task: str
    classes: tuple[str, ...]
    challenger_classes: tuple[str, ...] | None  # None: no challenger columns

    @classmethod
    def of(cls, dep: Deployment, first: ScoredChunk) -> Layout:
        served = _classes(r.served for r in first.results)
        challenger = _classes(first.challengers) if dep.challenger is not None else None
        return cls(dep.task, served, challenger)

    def names(self) -> list[str]:
        """The added columns, in order.

        >>> Layout("classification", ("no", "yes"), ()).names()  # doctest: +NORMALIZE_WHITESPACE
        ['prediction', 'probability_no', 'probability_yes', 'model_version', 'served_by',
         'error', 'challenger_prediction', 'challenger_version']
        """
        names = ["prediction", *(f"probability_{c}" for c in self.classes), *ADDED[1:]]
        if self.challenger_classes is not None:
            names += ["challenger_prediction",
                      *(f"challenger_probability_{c}" for c in self.challenger_classes),
                      "challenger_version"]  # fmt: skip
        return names

    def check_input(self, input_names: Iterable[str]) -> None:
        """An input column named like an added one would be ambiguous: refuse it."""
        clash = sorted(set(input_names) & set(self.names()))
        if clash:
            raise InputError(f"the input has column(s) {', '.join(clash)}, which scoring "
                             "adds: rename them in the input")  # fmt: skip

    def _prediction_type(self) -> pa.DataType:
        return pa.float64() if self.task == "regression" else pa.string()

    def columns(self, dep: Deployment, chunk: ScoredChunk) -> dict[str, pa.Array]:
        """The added columns of ``chunk``, one value per input row."""
        cols: dict[str, list[Any]] = {name: [None] * chunk.size for name in self.names()}
        error = cols["error"]
        for refusal in chunk.admitted.refused:
            error[refusal.index] = f"{refusal.reason}: {refusal.message}"
        self._served(cols, dep, chunk)
        if dep.challenger is not None and self.challenger_classes is not None:
            versions, predictions = cols["challenger_version"], cols["challenger_prediction"]
            for i, ch in zip(chunk.admitted.indices, chunk.challengers, strict=True):
                versions[i] = dep.challenger.version
                if ch is not None and ch.ok:
                    predictions[i] = ch.output
                    _spread(cols, "challenger_probability_", i, ch)
        return {name: pa.array(values, type=self._type(name)) for name, values in cols.items()}

    @staticmethod
    def _served(cols: dict[str, list[Any]], dep: Deployment, chunk: ScoredChunk) -> None:
        champion = dep.champion.version
        backup = dep.backup.version if dep.backup is not None else champion
        served_by, versions = cols["served_by"], cols["model_version"]
        predictions, error = cols["prediction"], cols["error"]
        for i, result in zip(chunk.admitted.indices, chunk.results, strict=True):
            served_by[i] = result.served_by
            versions[i] = backup if result.served_by == "backup" else champion
            served = result.served
            if result.served_by == "none":
                code, message = served.error or ("model_failed", "no model could serve it")
                error[i] = f"{code}: {message}"
            else:
                predictions[i] = served.output
                _spread(cols, "probability_", i, served)

    def _type(self, name: str) -> pa.DataType:
        if name in ("prediction", "challenger_prediction"):
            return self._prediction_type()
        if name in ("model_version", "challenger_version"):
            return pa.int32()
        if name in ("served_by", "error"):
            return pa.string()
        return pa.float64()

    def schema(self, input_schema: pa.Schema) -> pa.Schema:
        """The output's schema: the input's fields, then the added ones."""
        added = [pa.field(name, self._type(name)) for name in self.names()]
        return pa.schema([*input_schema, *added])


def _spread(cols: dict[str, list[Any]], prefix: str, i: int, outcome: Outcome) -> None:
    """Row ``i``'s probabilities into their columns; a class without one is an error."""
    for label, p in (outcome.probabilities or {}).items():
        column = cols.get(prefix + label)
        if column is None:
            known = sorted(n[len(prefix) :] for n in cols if n.startswith(prefix))
            raise BatchError(f"class {label!r} appeared after the first chunk fixed the "
                             f"columns ({', '.join(known)}): rerun with a larger "
                             "--batch-size")  # fmt: skip
        column[i] = p

"""Training data from the warehouse: a model's labelled requests in a time window.

The rows come from the ``labelled_requests`` view (``schemas/clickhouse/
016_labelled_requests.sql``): every logged request of the model with its latest label
(a corrected label wins), whoever scored it. One query, read as one DataFrame
(:func:`read_labelled`), ordered by ``(ts, request_id)``, so the same window read twice
gives the same rows in the same order, and the query text and its bound values are kept
(:class:`TrainingQuery`) as the version's provenance.

The prediction log keeps features as text (``Map(String, String)``: numbers as decimal
text, booleans as ``True`` / ``False``, a null as the empty string), so
:func:`typed_features` types them back by the champion's input schema: ``double`` /
``float`` as float64 (NaN when missing or not a number), ``int`` / ``long`` as int64
(``Int64`` when nullable), ``boolean`` as bool (``boolean`` when nullable), ``string`` and
``enum`` as text (None when missing from a nullable field).

The label is a classifier's class text (:func:`schemas.labels.label_class`, the text the
scorer logs its answers in and the monitor compares by: ``True``, ``1``, ``cat``), or a
regressor's number; requests labelled null (unlabelable) are left out.

Examples
--------
>>> schema = {"type": "record", "name": "R", "fields": [
...     {"name": "age", "type": "long"}, {"name": "spend", "type": ["null", "double"]},
...     {"name": "vip", "type": "boolean"}, {"name": "plan", "type": "string"}]}
>>> frame = typed_features([{"age": "42", "spend": "", "vip": "True", "plan": "pro"},
...                         {"age": "7", "spend": "2.5", "vip": "False", "plan": ""}], schema)
>>> frame.dtypes.astype(str).to_dict()
{'age': 'int64', 'spend': 'float64', 'vip': 'bool', 'plan': 'object'}
>>> frame.to_dict("records")
[{'age': 42, 'spend': nan, 'vip': True, 'plan': 'pro'}, {'age': 7, 'spend': 2.5, 'vip': False, 'plan': ''}]
>>> train, holdout = time_split(frame, 0.5)
>>> list(train.index), list(holdout.index)
([0], [1])
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import numpy as np
import pandas as pd

from services.lifecycle._errors import RetrainError
from services.warehouse import QueryError

__all__ = [
    "Reader",
    "TrainingData",
    "TrainingQuery",
    "labelled_query",
    "read_labelled",
    "time_split",
    "typed_features",
]

VIEW: Final = "labelled_requests"
_UNKNOWN_TABLE: Final = 60  # ClickHouse's error code
_LABEL: Final = {
    "classification": "label_class",
    "regression": "coalesce(label_number, toFloat64OrNull(label_string))",
}
_SQL: Final = """SELECT request_id, ts, features, {label} AS label
FROM {view}
WHERE model = {{model:String}}
  AND ts >= toDateTime64({{start:String}}, 3, 'UTC')
  AND ts < toDateTime64({{end:String}}, 3, 'UTC')
  AND label IS NOT NULL
ORDER BY ts, request_id"""
_FLOATS: Final = frozenset({"double", "float"})
_INTS: Final = frozenset({"int", "long"})
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})


class Reader(Protocol):
    """Where training data is read from: a :class:`~services.warehouse.Warehouse`, or
    anything else that runs a SELECT with ``{name:String}`` parameters into a DataFrame."""

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame: ...


@dataclass(frozen=True)
class TrainingQuery:
    """The statement that selected the training data, and the values bound to it (every
    parameter is a ``String``)."""

    sql: str
    params: Mapping[str, str]

    def provenance(self) -> dict[str, Any]:
        """``{"sql": ..., "params": {...}}``, as the version's lineage records it."""
        return {"sql": self.sql, "params": dict(self.params)}

    def literal(self) -> str:
        """The statement with its values written in as SQL string literals, to run where
        parameters cannot be bound (``modelstream sql``, the sink's endpoint).

        >>> print(TrainingQuery("SELECT {a:String}", {"a": "it's"}).literal())
        SELECT 'it\\'s'
        """
        text = self.sql
        for name, value in self.params.items():
            quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            text = text.replace(f"{{{name}:String}}", quoted)
        return text


@dataclass(frozen=True)
class TrainingData:
    """The labelled requests of one window, in ``(ts, request_id)`` order.

    ``frame``: one column per input field (schema types) and ``label``; ``ts`` and
    ``request_ids`` line up with its rows (a default RangeIndex).
    """

    frame: pd.DataFrame
    ts: pd.Series
    request_ids: pd.Series
    query: TrainingQuery
    start: datetime
    end: datetime
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __len__(self) -> int:
        return len(self.frame)


def labelled_query(model: str, task: str, start: datetime, end: datetime) -> TrainingQuery:
    """The query for ``model``'s labelled requests logged in ``[start, end)`` (UTC).

    >>> q = labelled_query("churn", "classification", datetime(2026, 5, 1, tzinfo=UTC),
    ...                    datetime(2026, 5, 8, tzinfo=UTC))
    >>> q.params
    {'model': 'churn', 'start': '2026-05-01 00:00:00.000', 'end': '2026-05-08 00:00:00.000'}
    >>> q.sql.splitlines()[0]
    'SELECT request_id, ts, features, label_class AS label'
    """
    label = _LABEL.get(task)
    if label is None:
        raise ValueError(f"task must be classification or regression, got {task!r}")
    params = {"model": model, "start": _sql_time(start), "end": _sql_time(end)}
    return TrainingQuery(_SQL.format(label=label, view=VIEW), params)


def _sql_time(moment: datetime) -> str:
    """UTC text with milliseconds, as ``toDateTime64(..., 3, 'UTC')`` reads it; a naive
    time is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def read_labelled(
    warehouse: Reader,
    model: str,
    *,
    task: str,
    input_schema: Mapping[str, Any],
    start: datetime,
    end: datetime,
) -> TrainingData:
    """``model``'s labelled requests in ``[start, end)``, one query, features typed."""
    query = labelled_query(model, task, start, end)
    read_at = datetime.now(UTC)
    try:
        raw = warehouse.query_df(query.sql, query.params)
    except QueryError as exc:
        if exc.code != _UNKNOWN_TABLE:
            raise
        raise RetrainError(
            f"the warehouse has no {VIEW} view yet: run `modelstream db migrate`, then "
            "retrain again"
        ) from exc
    if raw.empty:
        raw = pd.DataFrame({"request_id": [], "ts": [], "features": [], "label": []})
    features = typed_features(list(raw["features"]), input_schema)
    label = raw["label"].astype(object if task == "classification" else float)
    frame = features.assign(label=label.reset_index(drop=True))
    return TrainingData(
        frame=frame,
        ts=pd.Series(pd.to_datetime(raw["ts"], utc=True)).reset_index(drop=True),
        request_ids=raw["request_id"].astype(str).reset_index(drop=True),
        query=query,
        start=start,
        end=end,
        read_at=read_at,
    )


def typed_features(
    rows: Sequence[Mapping[str, str]], input_schema: Mapping[str, Any]
) -> pd.DataFrame:
    """Feature text (the prediction log's ``features`` map) as columns of the schema's
    types, in the schema's field order (see the module docstring for the rules)."""
    columns: dict[str, pd.Series] = {}
    for spec in input_schema["fields"]:
        name = spec["name"]
        base, nullable = _base_type(spec["type"])
        text = pd.Series([row.get(name, "") for row in rows], dtype=object)
        columns[name] = _typed(name, text, base, nullable)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(rows)))


def _base_type(node: Any) -> tuple[str, bool]:
    """(``double`` | ``long`` | ... | ``enum``, whether null is allowed)."""
    if isinstance(node, list):
        rest = [branch for branch in node if branch != "null"]
        return _base_type(rest[0])[0], len(rest) < len(node)
    if isinstance(node, Mapping):
        return str(node.get("type")), False
    return str(node), False


def _typed(name: str, text: pd.Series, base: str, nullable: bool) -> pd.Series:
    missing = text.isna() | (text == "")
    if base in _FLOATS:
        return pd.Series(pd.to_numeric(text.where(~missing), errors="coerce"), dtype="float64")
    if base in _INTS:
        numbers = pd.to_numeric(text.where(~missing), errors="coerce")
        whole = numbers.dropna()
        if not bool(np.all(np.mod(whole, 1) == 0)):
            raise RetrainError(
                f"input field {name!r} is {base}, but the prediction log holds fractions for "
                "it: was the input schema changed? Retrain a window logged under this schema"
            )
        if bool(numbers.isna().any()) or nullable:
            return pd.Series(numbers, dtype="Int64")
        return pd.Series(numbers, dtype="int64")
    if base == "boolean":
        lowered = text.where(~missing).str.lower()
        values = lowered.map(lambda v: True if v in _TRUE else False if v in _FALSE else None)
        if bool(values.isna().any()) or nullable:
            return pd.Series(values, dtype="boolean")
        return pd.Series(values, dtype="bool")
    # string and enum: an empty text is missing only where the schema allows null
    if nullable:
        return text.where(~missing, None)
    return text.fillna("")


def time_split(frame: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout) of a frame in time order: the holdout is its last
    ``round(len * holdout)`` rows (at least one), so no training row is later than a
    holdout row.

    >>> frame = pd.DataFrame({"x": range(10)})
    >>> [len(part) for part in time_split(frame, 0.2)], time_split(frame, 0.2)[1]["x"].tolist()
    ([8, 2], [8, 9])
    >>> time_split(frame.head(1), 0.2)
    Traceback (most recent call last):
    ValueError: 1 row cannot be split into a training set and a holdout: need at least 2
    """
    if not 0.0 < holdout < 1.0 or math.isnan(holdout):
        raise ValueError(f"holdout must be a fraction between 0 and 1, got {holdout}")
    n = len(frame)
    if n < 2:
        raise ValueError(
            f"{n} row{'' if n == 1 else 's'} cannot be split into a training set and a "
            "holdout: need at least 2"
        )
    held = min(max(round(n * holdout), 1), n - 1)
    return frame.iloc[: n - held], frame.iloc[n - held :]

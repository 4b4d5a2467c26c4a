"""The evidence a challenger is judged on: aggregated in ClickHouse, one query per concern.

The **paired requests** of a champion and a challenger over ``[since, now)`` are the
requests of the model (``predictions.ts`` in the range) that the champion version scored
without error and the challenger version answered, and that have a label (the latest one,
as ``labelled_predictions`` joins it). On them, aggregated in ClickHouse:

- ``paired``: for a classifier the discordant counts ``b`` (champion right, challenger
  wrong) and ``c`` (the reverse), McNemar's two-sided test on them and both accuracies;
  for a regressor the mean and sample variance of ``|e_challenger| - |e_champion|``, the
  two-sided paired t-test on them and both MAEs (the monitor's tests,
  ``streams/monitoring/performance``). Classes compare by class text, the view's
  ``label_class`` / ``champion_class`` / ``challenger_class`` (``true`` = ``True``,
  ``1.0`` = ``1``: the monitor's ``label_key``); a regression label is ``label_number``, or
  a string label read as a number, and outputs are read as numbers (not finite: skipped).
- ``fairness`` (a classifier with a ``positive_label`` and sensitive attributes; else
  empty): per sensitive attribute of the champion and per role, each group's
  selection rate, TPR and FPR (positive class: the champion's ``positive_label``) and the
  gaps Fairlearn defines (``streams/monitoring/fairness``: a group without a labelled
  positive has no TPR); ``widening`` = challenger gap - champion gap. Both roles are
  counted on the same requests and labels, so a gap is defined for both or for neither.
  A request without a value for the attribute counts in the group ``(missing)``.

Over the requests both versions answered in the range, labelled or not:

- ``latency``: ``quantileExact(0.99)`` of ``champion_latency_ms`` and of
  ``challenger_latency_ms`` over the real-time path's requests (a batch row's latency is
  its share of a chunk) (exact: the sorted values' element ``floor(0.99 n)``, so a
  decision can be recomputed from the rows).

And from ``alerts``:

- ``challenger_alerts`` / ``champion_alerts`` (:func:`open_alerts`): the drift,
  concept-drift and anomaly alerts of the model whose latest state before ``now``
  (``argMax(status, ts)`` per ``alert_id``) is ``firing`` and was reached at or after
  ``since``, on that version (``model_version``; for an alert without one, ``role``). The
  lower bound matters: the sink lands every alert as ``firing`` and nothing resolves one
  yet, so without it one old alert would count as open forever.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from services.lifecycle._findings import (
    GAPS,
    ROLES,
    AttributeFairness,
    Evidence,
    Latency,
    OpenAlert,
    PairedTest,
    Role,
    ttest_from_moments,
)
from services.registry import ModelVersion
from services.sink.reader import Reader
from streams.monitoring.fairness import MISSING, GroupCounts, GroupRates
from streams.monitoring.labels import label_key
from streams.monitoring.performance.mcnemar import mcnemar

__all__ = [
    "ALERT_KINDS",
    "GAPS",
    "AttributeFairness",
    "Evidence",
    "Latency",
    "OpenAlert",
    "PairedTest",
    "gather",
    "open_alerts",
    "ttest_from_moments",
]

ALERT_KINDS: Final = ("drift", "concept_drift", "anomaly")

# The rows every query starts from: the model, the range, both versions.
_RANGE: Final = """
    model = {model:String}
    AND ts >= {since:DateTime64(3, 'UTC')} AND ts < {now:DateTime64(3, 'UTC')}
    AND champion_version = {champion:String} AND challenger_version = {challenger:String}"""
# champion_class is NULL exactly when champion_output is '' (the champion failed: its
# champion_error is set); challenger_class is NULL when the challenger did not answer.
_CLASSIFIED: Final = (
    _RANGE + "\n    AND label_class IS NOT NULL AND champion_class IS NOT NULL"
    " AND challenger_class IS NOT NULL"
)

_CLASSIFICATION_SQL: Final = f"""
SELECT
    count() AS n,
    countIf(champion_class = label_class AND challenger_class != label_class) AS b,
    countIf(champion_class != label_class AND challenger_class = label_class) AS c,
    countIf(champion_class = label_class) AS champion_right,
    countIf(challenger_class = label_class) AS challenger_right
FROM labelled_predictions
WHERE {_CLASSIFIED}
"""

_REGRESSION_SQL: Final = f"""
WITH
    coalesce(label_number, toFloat64OrNull(label_string)) AS y,
    toFloat64OrNull(champion_output) AS champion_y,
    toFloat64OrNull(challenger_output) AS challenger_y,
    abs(challenger_y - y) - abs(champion_y - y) AS d
SELECT
    count() AS n,
    avg(abs(champion_y - y)) AS champion_mae,
    avg(abs(challenger_y - y)) AS challenger_mae,
    avg(d) AS mean_d,
    varSampStable(d) AS var_d
FROM labelled_predictions
WHERE {_RANGE}
    AND isFinite(y) AND isFinite(champion_y) AND isFinite(challenger_y)
"""

_FAIRNESS_SQL: Final = f"""
WITH {{positive:String}} AS positive
SELECT
    attribute,
    if(sensitive[attribute] = '', {{missing:String}}, sensitive[attribute]) AS grp,
    count() AS n,
    countIf(label_class = positive) AS positives,
    countIf(champion_class = positive) AS champion_selected,
    countIf(champion_class = positive AND label_class = positive) AS champion_tp,
    countIf(champion_class = positive AND label_class != positive) AS champion_fp,
    countIf(challenger_class = positive) AS challenger_selected,
    countIf(challenger_class = positive AND label_class = positive) AS challenger_tp,
    countIf(challenger_class = positive AND label_class != positive) AS challenger_fp
FROM labelled_predictions
ARRAY JOIN {{attributes:Array(String)}} AS attribute
WHERE {_CLASSIFIED}
GROUP BY attribute, grp
ORDER BY attribute, grp
"""

_LATENCY_SQL: Final = f"""
SELECT
    count() AS n,
    quantileExact(0.99)(champion_latency_ms) AS champion_p99,
    quantileExact(0.99)(assumeNotNull(challenger_latency_ms)) AS challenger_p99
FROM predictions
WHERE {_RANGE}
    AND champion_error = '' AND challenger_output IS NOT NULL
    AND challenger_latency_ms IS NOT NULL
    AND source != 'batch'
"""

_ALERTS_SQL: Final = f"""
SELECT alert_id, last_kind, last_name, last_feature, last_version, last_role, last_ts,
    last_window_start, last_message
FROM
(
    SELECT
        alert_id,
        argMax(status, ts) AS last_status,
        argMax(kind, ts) AS last_kind,
        argMax(name, ts) AS last_name,
        argMax(feature, ts) AS last_feature,
        argMax(model_version, ts) AS last_version,
        argMax(role, ts) AS last_role,
        argMax(window_start, ts) AS last_window_start,
        argMax(message, ts) AS last_message,
        max(ts) AS last_ts
    FROM alerts
    WHERE model = {{model:String}} AND ts < {{now:DateTime64(3, 'UTC')}}
        AND kind IN ({", ".join(f"'{k}'" for k in ALERT_KINDS)})
    GROUP BY alert_id
)
WHERE last_status = 'firing' AND last_ts >= {{since:DateTime64(3, 'UTC')}}
    AND if(last_version != '', last_version = {{version:String}}, last_role = {{role:String}})
ORDER BY last_ts, alert_id
"""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def gather(
    warehouse: Reader,
    model: str,
    champion: ModelVersion,
    challenger: ModelVersion,
    *,
    since: datetime,
    now: datetime,
) -> Evidence:
    """The evidence on ``challenger`` against ``champion`` over ``[since, now)``.

    Raises :class:`~services.warehouse.WarehouseError` when the warehouse cannot answer.
    """
    params = {
        "model": model,
        "since": since,
        "now": now,
        "champion": str(champion.version),
        "challenger": str(challenger.version),
    }
    if champion.task == "regression":
        paired = _regression(warehouse, params)
    else:
        paired = _classification(warehouse, params)
    return Evidence(
        model,
        champion.version,
        challenger.version,
        since,
        now,
        paired,
        _fairness(warehouse, params, champion),
        _latency(warehouse, params),
        open_alerts(warehouse, model, challenger.version, role="challenger", since=since, now=now),
        open_alerts(warehouse, model, champion.version, role="champion", since=since, now=now),
    )


def _one_row(warehouse: Reader, sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    columns, rows = warehouse.query(sql, params, read_only=True)
    return dict(zip(columns, rows[0], strict=True))


def _classification(warehouse: Reader, params: Mapping[str, Any]) -> PairedTest:
    row = _one_row(warehouse, _CLASSIFICATION_SQL, params)
    n, b, c = int(row["n"]), int(row["b"]), int(row["c"])
    test = mcnemar(b, c)
    return PairedTest(
        "classification",
        n,
        "accuracy",
        row["champion_right"] / n if n else None,
        row["challenger_right"] / n if n else None,
        "mcnemar",
        test.statistic,
        test.p_value,
        b=b,
        c=c,
    )


def _regression(warehouse: Reader, params: Mapping[str, Any]) -> PairedTest:
    row = _one_row(warehouse, _REGRESSION_SQL, params)
    n = int(row["n"])
    if n == 0:
        return PairedTest("regression", 0, "mae", None, None, "paired_ttest", 0.0, 1.0)
    mean = float(row["mean_d"])
    sd = math.sqrt(max(float(row["var_d"]), 0.0)) if n > 1 else 0.0
    test = ttest_from_moments(n, mean, sd)
    return PairedTest(
        "regression",
        n,
        "mae",
        float(row["champion_mae"]),
        float(row["challenger_mae"]),
        "paired_ttest",
        test.statistic,
        test.p_value,
        mean_difference=mean,
        sd_difference=sd,
    )


def _fairness(
    warehouse: Reader, params: Mapping[str, Any], champion: ModelVersion
) -> tuple[AttributeFairness, ...]:
    if (
        champion.task != "classification"
        or champion.positive_label is None
        or not champion.sensitive_attributes
    ):
        return ()
    query = {
        **params,
        "positive": label_key(champion.positive_label),
        "missing": MISSING,
        "attributes": list(champion.sensitive_attributes),
    }
    columns, rows = warehouse.query(_FAIRNESS_SQL, query, read_only=True)
    groups: dict[str, dict[Role, dict[str, GroupRates]]] = {
        name: {"champion": {}, "challenger": {}} for name in champion.sensitive_attributes
    }
    for values in rows:
        row = dict(zip(columns, values, strict=True))
        for role in ROLES:
            groups[row["attribute"]][role][row["grp"]] = _rates(row, role)
    return tuple(
        AttributeFairness(name, by_role["champion"], by_role["challenger"])
        for name, by_role in groups.items()
    )


def _rates(row: Mapping[str, Any], role: str) -> GroupRates:
    n, positives = int(row["n"]), int(row["positives"])
    return GroupCounts(
        count=n,
        selected=int(row[f"{role}_selected"]),
        positives=positives,
        true_positives=int(row[f"{role}_tp"]),
        negatives=n - positives,
        false_positives=int(row[f"{role}_fp"]),
    ).rates()


def _latency(warehouse: Reader, params: Mapping[str, Any]) -> Latency:
    row = _one_row(warehouse, _LATENCY_SQL, params)
    n = int(row["n"])
    if n == 0:
        return Latency(0, None, None)
    return Latency(n, float(row["champion_p99"]), float(row["challenger_p99"]))


def open_alerts(
    warehouse: Reader,
    model: str,
    version: int,
    *,
    role: Role,
    now: datetime,
    since: datetime | None = None,
) -> tuple[OpenAlert, ...]:
    """The drift, concept-drift and anomaly alerts open on ``version`` of ``model`` as of
    ``now``: latest state ``firing``, reached at or after ``since`` (when given), on that
    version (``model_version``; for an alert without one, ``role``). Oldest first.

    Raises :class:`~services.warehouse.WarehouseError` when the warehouse cannot answer.
    """
    params = {
        "model": model,
        "version": str(version),
        "role": role,
        "now": now,
        "since": _EPOCH if since is None else since,
    }
    _, rows = warehouse.query(_ALERTS_SQL, params, read_only=True)
    return tuple(OpenAlert(*row) for row in rows)

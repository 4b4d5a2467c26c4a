"""SQL -> frames for the model's quality: drift, performance and fairness.

Drift and fairness are read as the monitor emitted them (``metrics``, one row per window;
drift falls back to the window summaries measured against ``reference_profiles`` when
the monitor wrote no drift metric); performance is recomputed from the labelled
predictions (``labelled_predictions``, classes compared as the monitor compares them),
per bucket and role, so its intervals need only counts.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from services.reports._queries import params, utc_columns
from services.reports._window import Window
from services.sink.reader import Reader

__all__ = [
    "current_distribution",
    "drift",
    "fairness",
    "label_kind",
    "paired_counts",
    "performance",
    "references",
]

# A monitor window counts when it overlaps the report's: the one holding the latest
# prediction ends after it.
_ENDS_IN: Final = (
    "model = {model:String} AND window_end > {start:DateTime64(3, 'UTC')} "
    "AND window_start < {end:DateTime64(3, 'UTC')}"
)
_WINDOW: Final = (
    "model = {model:String} AND ts >= {start:DateTime64(3, 'UTC')} "
    "AND ts < {end:DateTime64(3, 'UTC')}"
)
_BUCKET: Final = "toStartOfInterval(ts, toIntervalSecond({step:UInt32})) AS bucket"

DRIFT_SQL: Final = f"""
SELECT window_end, feature, method, max(value) AS value,
       max(toFloat64OrZero(threshold)) AS threshold, max(toUInt8(drifted)) AS drifted,
       sum(count) AS count
FROM drift_by_feature
WHERE {_ENDS_IN}
GROUP BY window_end, feature, method
ORDER BY window_end, feature
"""

# PSI per bucket from the monitor's window summaries (docs/queries.md), for a monitor that
# wrote summaries but no drift metric; counts binned on two versions' profiles never mix.
DRIFT_FROM_SUMMARIES_SQL: Final = """
SELECT bucket AS window_end, feature, 'psi' AS method,
       ms_psi(any(ref_counts), if(kind = 'numeric', ms_coarse(sumForEach(counts), any(starts)),
                                  sumForEach(counts))) AS value,
       0.2 AS threshold, toUInt8(value > 0.2) AS drifted, toUInt64(0) AS count
FROM
(
    SELECT toStartOfInterval(s.window_start, toIntervalSecond({step:UInt32})) AS bucket,
           r.version AS version, s.feature AS feature, s.kind AS kind, s.counts AS counts,
           r.ref_counts AS ref_counts, r.starts AS starts
    FROM window_summaries AS s FINAL
    INNER JOIN (SELECT * FROM reference_profiles FINAL WHERE model = {model:String}) AS r
        ON r.version = s.model_version AND r.feature = s.feature
    WHERE s.model = {model:String} AND s.kind IN ('numeric', 'categorical')
      AND s.window_start >= {start:DateTime64(3, 'UTC')}
      AND s.window_start < {end:DateTime64(3, 'UTC')}
)
GROUP BY bucket, version, feature, kind
ORDER BY window_end, feature
"""

REFERENCES_SQL: Final = """
SELECT feature, kind, edges, ref_counts, categories, total
FROM reference_profiles FINAL
WHERE model = {model:String} AND version = {version:String}
ORDER BY feature
"""

# Live values of one input binned as the reference is: bin i holds edges[i] <= x <
# edges[i+1] (1-based here), values beyond the edges in the outer bins.
NUMERIC_SQL: Final = f"""
WITH (SELECT any(edges) FROM reference_profiles FINAL WHERE model = {{model:String}}
      AND version = {{version:String}} AND feature = {{feature:String}}) AS edges
SELECT if(x >= edges[-1], length(edges) - 1,
          greatest(1, arrayFirstIndex(e -> e > x, edges) - 1)) AS bin,
       count() AS n
FROM (SELECT toFloat64OrNull(features[{{feature:String}}]) AS x FROM predictions
      WHERE {_WINDOW} AND champion_version = {{version:String}})
WHERE x IS NOT NULL AND isFinite(x)
GROUP BY bin
ORDER BY bin
"""

CATEGORICAL_SQL: Final = f"""
WITH (SELECT any(categories) FROM reference_profiles FINAL WHERE model = {{model:String}}
      AND version = {{version:String}} AND feature = {{feature:String}}) AS known
SELECT if(has(known, v), v, 'other') AS category, count() AS n
FROM (SELECT multiIf(raw = 'True', 'true', raw = 'False', 'false', raw) AS v
      FROM (SELECT features[{{feature:String}}] AS raw FROM predictions
            WHERE {_WINDOW} AND champion_version = {{version:String}}))
WHERE v != ''
GROUP BY category
"""

LABEL_KIND_SQL: Final = f"""
SELECT countIf(label_string IS NOT NULL) AS classes, countIf(label_number IS NOT NULL) AS numbers
FROM labelled_predictions
WHERE {_WINDOW}
"""

CLASSIFICATION_SQL: Final = f"""
SELECT {_BUCKET},
       countIf(champion_class IS NOT NULL) AS champion_n,
       countIf(champion_class = label_class) AS champion_hits,
       countIf(challenger_class IS NOT NULL) AS challenger_n,
       countIf(challenger_class = label_class) AS challenger_hits,
       arrayStringConcat(arraySort(groupUniqArray(champion_version)), ', ') AS champions,
       arrayStringConcat(arraySort(groupUniqArrayIf(assumeNotNull(challenger_version),
                                                    challenger_class IS NOT NULL)), ', ')
           AS challengers
FROM labelled_predictions
WHERE {_WINDOW} AND label_class IS NOT NULL
GROUP BY bucket
ORDER BY bucket
"""

REGRESSION_SQL: Final = f"""
WITH coalesce(label_number, toFloat64OrNull(label_string)) AS y,
     abs(toFloat64OrNull(champion_output) - y) AS champion_error,
     abs(toFloat64OrNull(challenger_output) - y) AS challenger_error
SELECT {_BUCKET},
       countIf(isFinite(champion_error)) AS champion_n,
       avgIf(champion_error, isFinite(champion_error)) AS champion_mean,
       stddevSampStableIf(champion_error, isFinite(champion_error)) AS champion_sd,
       countIf(isFinite(challenger_error)) AS challenger_n,
       avgIf(challenger_error, isFinite(challenger_error)) AS challenger_mean,
       stddevSampStableIf(challenger_error, isFinite(challenger_error)) AS challenger_sd,
       arrayStringConcat(arraySort(groupUniqArray(champion_version)), ', ') AS champions,
       arrayStringConcat(arraySort(groupUniqArrayIf(assumeNotNull(challenger_version),
                                                    isFinite(challenger_error))), ', ')
           AS challengers
FROM labelled_predictions
WHERE {_WINDOW} AND y IS NOT NULL
GROUP BY bucket
ORDER BY bucket
"""

# McNemar's discordant pairs of one champion and one challenger, as the gate counts them.
PAIRED_SQL: Final = f"""
SELECT count() AS n,
       countIf(champion_class = label_class AND challenger_class != label_class) AS b,
       countIf(champion_class != label_class AND challenger_class = label_class) AS c,
       countIf(champion_class = label_class) AS champion_hits,
       countIf(challenger_class = label_class) AS challenger_hits
FROM labelled_predictions
WHERE {_WINDOW} AND champion_version = {{champion:String}}
  AND challenger_version = {{challenger:String}} AND label_class IS NOT NULL
  AND champion_class IS NOT NULL AND challenger_class IS NOT NULL
"""

FAIRNESS_SQL: Final = f"""
SELECT window_end,
       if(`group` = '', labels['attribute'], splitByChar('=', `group`)[1]) AS attribute,
       if(`group` = '', '', substring(`group`, length(attribute) + 2)) AS grp,
       name AS metric, avg(value) AS value, sum(count) AS count
FROM metrics
WHERE {_ENDS_IN} AND kind = 'fairness' AND role IN ('', 'champion')
GROUP BY window_end, attribute, grp, metric
ORDER BY window_end, attribute, grp, metric
"""


def drift(reader: Reader, model: str, window: Window, step: int) -> tuple[pd.DataFrame, str]:
    """Per window end and feature: the drift statistic (max over the monitor's tasks),
    its threshold and whether it drifted; from the summaries when no metric exists.
    Also where the numbers come from: 'metrics' or 'summaries'."""
    frame = reader.query_df(DRIFT_SQL, params(model, window))
    if len(frame):
        return utc_columns(frame), "metrics"
    frame = reader.query_df(DRIFT_FROM_SUMMARIES_SQL, params(model, window, step=step))
    return utc_columns(frame), "summaries"


def references(reader: Reader, model: str, version: str) -> pd.DataFrame:
    """The training profile of every input of one version."""
    return reader.query_df(REFERENCES_SQL, {"model": model, "version": version})


def current_distribution(reader: Reader, model: str, window: Window, version: str,
                         feature: str, kind: str) -> pd.DataFrame:  # fmt: skip
    """Live counts of one input, binned on the version's reference: ``bin`` (1-based)
    for a numeric input, ``category`` for a categorical one, and ``n``."""
    sql = NUMERIC_SQL if kind == "numeric" else CATEGORICAL_SQL
    return reader.query_df(sql, params(model, window, version=version, feature=feature))


def label_kind(reader: Reader, model: str, window: Window) -> str:
    """'classification', 'regression', or '' when no prediction of the window is labelled."""
    rows = reader.query(LABEL_KIND_SQL, params(model, window), read_only=True).rows
    classes, numbers = (int(v or 0) for v in rows[0]) if rows else (0, 0)
    if classes:
        return "classification"
    return "regression" if numbers else ""


def performance(reader: Reader, model: str, window: Window, step: int,
                kind: str) -> pd.DataFrame:  # fmt: skip
    """Per bucket and role: labelled answers and hits (classification) or the absolute
    error's mean and standard deviation (regression), with the versions involved."""
    sql = CLASSIFICATION_SQL if kind == "classification" else REGRESSION_SQL
    return utc_columns(reader.query_df(sql, params(model, window, step=step)))


def paired_counts(reader: Reader, model: str, window: Window, champion: str,
                  challenger: str) -> dict[str, int]:  # fmt: skip
    """n, b, c and both versions' hits over the labelled requests both answered."""
    query = params(model, window, champion=champion, challenger=challenger)
    result = reader.query(PAIRED_SQL, query, read_only=True)
    row = result.rows[0] if result.rows else (0,) * len(result.columns)
    return {name: int(value or 0) for name, value in zip(result.columns, row, strict=True)}


def fairness(reader: Reader, model: str, window: Window) -> pd.DataFrame:
    """The champion's per-group rates (``grp`` set) and between-group gaps (``grp``
    empty) per window end and attribute, as the monitor emitted them."""
    return utc_columns(reader.query_df(FAIRNESS_SQL, params(model, window)))

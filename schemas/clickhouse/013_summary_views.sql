-- Drift, performance and fairness of ANY time range, from the monitor's additive window
-- summaries (010): the windows that lie inside [start, end) are summed over every input
-- partition, then measured as the monitor measures one window (012's functions). So a
-- week is measured as one window of a week: not an average of per-minute values.
-- Parameterised views: every parameter must be given, e.g.
--   SELECT * FROM drift_from_summaries(model = 'churn', start = today() - 7, end = now())
-- start and end are DateTime64(3) in UTC ('2026-12-01 00:00:00', or an expression).

CREATE VIEW IF NOT EXISTS drift_from_summaries
AS WITH
    live AS
    (
        SELECT
            model_version,
            feature,
            kind,
            sumForEach(counts) AS counts,
            sum(stats['missing']) AS missing,
            sum(stats['below']) AS below,
            sum(stats['below_sum']) AS below_sum,
            sum(stats['above']) AS above,
            sum(stats['above_sum']) AS above_sum,
            count() AS summaries,
            min(window_start) AS first_window_start,
            max(window_end) AS last_window_end
        FROM window_summaries FINAL
        WHERE model = {model:String} AND kind IN ('numeric', 'categorical')
            AND window_start >= {start:DateTime64(3, 'UTC')}
            AND window_end <= {end:DateTime64(3, 'UTC')}
        GROUP BY model_version, feature, kind
        HAVING arraySum(counts) > 0
    ),
    sample AS
    (
        SELECT live.*, r.ref_counts, r.points, r.cdf, r.starts, r.wasserstein_scale
        FROM live
        INNER JOIN (SELECT * FROM reference_profiles FINAL WHERE model = {model:String}) AS r
            ON r.version = live.model_version AND r.feature = live.feature AND r.kind = live.kind
    )
SELECT
    {model:String} AS model,
    model_version,
    feature,
    kind,
    m.1 AS method,
    m.2 AS value,
    m.3 AS p_value,
    ms_drift_threshold(method, wasserstein_scale) AS threshold,
    ms_drifted(method, value, p_value, threshold) AS drifted,
    arraySum(counts) AS count,
    missing,
    summaries,
    first_window_start,
    last_window_end
FROM
(
    SELECT *, ms_numeric_drift(ref_counts, points, cdf, starts, counts, below, below_sum, above,
                               above_sum) AS measures
    FROM sample WHERE kind = 'numeric'
    UNION ALL
    SELECT *, ms_categorical_drift(ref_counts, counts) AS measures
    FROM sample WHERE kind = 'categorical'
)
ARRAY JOIN measures AS m
COMMENT 'Drift per reference version, feature and method over the summary windows inside [start, end): psi, ks, js, wasserstein (numeric), psi, js, chisquare (categorical); parameters model, start, end';

CREATE VIEW IF NOT EXISTS performance_from_summaries
AS SELECT
    {model:String} AS model,
    role,
    model_version,
    m.1 AS metric,
    m.2 AS value,
    toUInt64(m.3) AS count
FROM
(
    SELECT
        role,
        model_version,
        ms_classification_metrics(sumForEach(counts)) AS metrics
    FROM window_summaries FINAL
    WHERE model = {model:String} AND kind = 'classification'
        AND window_start >= {start:DateTime64(3, 'UTC')}
        AND window_end <= {end:DateTime64(3, 'UTC')}
    GROUP BY role, model_version
    UNION ALL
    SELECT
        role,
        model_version,
        -- r2 from sums: SS_tot = sum y^2 - (sum y)^2 / n; 1 or 0 when the labels are constant
        arrayFilter(t -> t.3 > 0, [
            ('mae', sum(stats['sum_abs_error']) / sum(stats['n']), sum(stats['n'])),
            ('rmse', sqrt(sum(stats['sum_sq_error']) / sum(stats['n'])), sum(stats['n'])),
            ('r2', if(
                sum(stats['sum_sq_y']) - pow(sum(stats['sum_y']), 2) / sum(stats['n']) = 0,
                if(sum(stats['sum_sq_error']) = 0, 1., 0.),
                1 - sum(stats['sum_sq_error'])
                    / (sum(stats['sum_sq_y']) - pow(sum(stats['sum_y']), 2) / sum(stats['n']))),
             sum(stats['n']))]) AS metrics
    FROM window_summaries FINAL
    WHERE model = {model:String} AND kind = 'regression'
        AND window_start >= {start:DateTime64(3, 'UTC')}
        AND window_end <= {end:DateTime64(3, 'UTC')}
    GROUP BY role, model_version
)
ARRAY JOIN metrics AS m
COMMENT 'Accuracy, precision, recall, F1 (classification) or MAE, RMSE, R2 (regression) per role and version over the labelled predictions joined inside [start, end); parameters model, start, end';

CREATE VIEW IF NOT EXISTS fairness_from_summaries
AS WITH
    groups AS
    (
        SELECT role, model_version, feature AS attribute, `group`, sumForEach(counts) AS c
        FROM window_summaries FINAL
        WHERE model = {model:String} AND kind = 'fairness'
            AND window_start >= {start:DateTime64(3, 'UTC')}
            AND window_end <= {end:DateTime64(3, 'UTC')}
        GROUP BY role, model_version, attribute, `group`
    )
SELECT
    {model:String} AS model, role, model_version, attribute, `group`, m.1 AS metric,
    assumeNotNull(m.2) AS value, toUInt64(c[1]) AS count
FROM groups
ARRAY JOIN ms_group_rates(c) AS m
UNION ALL
SELECT
    {model:String} AS model, role, model_version, attribute, '' AS `group`, m.1 AS metric,
    assumeNotNull(m.2) AS value, toUInt64(total) AS count
FROM
(
    SELECT role, model_version, attribute, groupArray(c) AS cs, sum(c[1]) AS total
    FROM groups
    GROUP BY role, model_version, attribute
)
ARRAY JOIN ms_fairness_gaps(cs) AS m
COMMENT 'Per group (count, selection_rate, tpr, fpr) and between groups (empty group: demographic parity difference and ratio, equal opportunity and equalized odds differences) per role, version and sensitive attribute inside [start, end); parameters model, start, end';

-- Drift, performance and fairness of a SEGMENT of the logged predictions, recomputed from
-- the raw rows: a time range [start, end) of prediction time, narrowed by
--   client          the client-id of the request ('' = every client)
--   version         the champion version that scored it ('' = every version)
--   segment_input,  an input and the value it must have, as the prediction log writes it
--   segment_value   (text; booleans True / False) ('' = no such condition)
-- Every parameter must be given, '' where it does not apply, e.g.
--   SELECT * FROM drift_from_predictions(model = 'churn', start = today() - 1, end = today(),
--                                        client = 'mobile-app', version = '',
--                                        segment_input = '', segment_value = '')
-- Each row is binned as the monitor's HistogramWindow / CategoryWindow bins it, against
-- the reference profile of the champion version that scored it: numbers on the reference's
-- cut points (beyond the edges: the outer bins, counted below / above with their sums),
-- categories per known category, anything else in other. Missing: an input absent or null
-- (the log's ''), a number that is not finite or not a number (ClickHouse's parser: no
-- spaces around it, no '_'; the log's True / False are 1 / 0). Labels are the latest per
-- request (labelled_predictions).

CREATE VIEW IF NOT EXISTS segment_predictions
AS SELECT *
FROM predictions
WHERE model = {model:String}
    AND ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}
    AND ({client:String} = '' OR client_id = {client:String})
    AND ({version:String} = '' OR champion_version = {version:String})
    AND ({segment_input:String} = '' OR features[{segment_input:String}] = {segment_value:String})
COMMENT 'The predictions of one segment (see 014_segment_views.sql); parameters model, start, end, client, version, segment_input, segment_value';

CREATE VIEW IF NOT EXISTS drift_from_predictions
AS WITH
    binned AS
    (
        SELECT
            p.champion_version AS model_version,
            r.feature AS feature,
            r.kind AS kind,
            r.ref_counts AS ref_counts,
            r.points AS points,
            r.cdf AS cdf,
            r.starts AS starts,
            r.categories AS categories,
            r.wasserstein_scale AS wasserstein_scale,
            p.features[r.feature] AS text,
            ifNull(multiIf(text = 'True', 1., text = 'False', 0., toFloat64OrNull(text)), nan)
                AS number,
            kind = 'numeric' AND isFinite(number) AS finite,
            -- a boolean input is logged True / False, profiled true / false; a text input
            -- 'True' is itself when its reference knows it
            multiIf(has(categories, text), text, text = 'True', 'true', text = 'False', 'false',
                    text) AS category,
            multiIf(
                kind = 'numeric',
                if(finite, 1 + arrayCount(q -> q <= number, arraySlice(points, 2, length(points) - 2)), 0),
                category = '', 0,
                indexOf(categories, category) = 0, length(categories),
                indexOf(categories, category)) AS bin,
            finite AND number < r.edges[1] AS is_below,
            finite AND number > r.edges[-1] AS is_above
        FROM segment_predictions(
            model = {model:String}, start = {start:DateTime64(3, 'UTC')},
            end = {end:DateTime64(3, 'UTC')}, client = {client:String},
            version = {version:String}, segment_input = {segment_input:String},
            segment_value = {segment_value:String}) AS p
        INNER JOIN (SELECT * FROM reference_profiles FINAL WHERE model = {model:String}) AS r
            ON r.version = p.champion_version
    ),
    sample AS
    (
        SELECT
            model_version,
            feature,
            kind,
            any(ref_counts) AS ref_counts,
            any(points) AS points,
            any(cdf) AS cdf,
            any(starts) AS starts,
            any(wasserstein_scale) AS wasserstein_scale,
            sumMap(map(toUInt32(bin), toUInt64(1))) AS bins,
            arrayMap(
                j -> toFloat64(bins[toUInt32(j)]),
                range(1, if(kind = 'numeric', length(points), length(any(categories)) + 1))) AS counts,
            bins[toUInt32(0)] AS missing,
            toFloat64(countIf(is_below)) AS below,
            sumIf(number, is_below) AS below_sum,
            toFloat64(countIf(is_above)) AS above,
            sumIf(number, is_above) AS above_sum
        FROM binned
        GROUP BY model_version, feature, kind
        HAVING arraySum(counts) > 0
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
    missing
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
COMMENT 'Drift per champion version, feature and method of one segment of predictions, against that version''s reference profile; parameters model, start, end, client, version, segment_input, segment_value';

CREATE VIEW IF NOT EXISTS performance_from_predictions
AS WITH
    scored AS
    (
        SELECT p.request_id AS request_id, o.1 AS role, o.2 AS model_version, o.3 AS class
        FROM segment_predictions(
            model = {model:String}, start = {start:DateTime64(3, 'UTC')},
            end = {end:DateTime64(3, 'UTC')}, client = {client:String},
            version = {version:String}, segment_input = {segment_input:String},
            segment_value = {segment_value:String}) AS p
        ARRAY JOIN [('champion', p.champion_version, ms_class(p.champion_output)),
                    ('challenger', ifNull(p.challenger_version, ''), ms_class(p.challenger_output))] AS o
        WHERE class IS NOT NULL
    ),
    labels AS
    (
        SELECT request_id, label_class
        FROM labelled_predictions
        WHERE model = {model:String} AND label_class IS NOT NULL
            AND ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}
    )
SELECT
    {model:String} AS model, role, model_version, m.1 AS metric, m.2 AS value,
    toUInt64(m.3) AS count
FROM
(
    SELECT
        role,
        model_version,
        -- tp fp fn tn (none without a positive class), correct, n
        ms_classification_metrics([
            ({positive:String} != '') * countIf(class = {positive:String} AND label_class = {positive:String}),
            ({positive:String} != '') * countIf(class = {positive:String} AND label_class != {positive:String}),
            ({positive:String} != '') * countIf(class != {positive:String} AND label_class = {positive:String}),
            ({positive:String} != '') * countIf(class != {positive:String} AND label_class != {positive:String}),
            countIf(class = label_class),
            count()]) AS metrics
    FROM scored
    INNER JOIN labels USING (request_id)
    GROUP BY role, model_version
)
ARRAY JOIN metrics AS m
COMMENT 'Accuracy (and precision, recall, F1 of the class positive, when not empty) per role and version over the labelled predictions of one segment; parameters model, start, end, client, version, segment_input, segment_value, positive';

CREATE VIEW IF NOT EXISTS fairness_from_predictions
AS WITH
    scored AS
    (
        SELECT
            p.request_id AS request_id, o.1 AS role, o.2 AS model_version, o.3 AS class,
            if(mapContains(p.sensitive, {attribute:String}), p.sensitive[{attribute:String}],
               '(missing)') AS `group`
        FROM segment_predictions(
            model = {model:String}, start = {start:DateTime64(3, 'UTC')},
            end = {end:DateTime64(3, 'UTC')}, client = {client:String},
            version = {version:String}, segment_input = {segment_input:String},
            segment_value = {segment_value:String}) AS p
        ARRAY JOIN [('champion', p.champion_version, ms_class(p.champion_output)),
                    ('challenger', ifNull(p.challenger_version, ''), ms_class(p.challenger_output))] AS o
        WHERE class IS NOT NULL
    ),
    labels AS
    (
        SELECT request_id, label_class
        FROM labelled_predictions
        WHERE model = {model:String} AND label_class IS NOT NULL
            AND ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}
    ),
    groups AS
    (
        -- count selected positives true_positives negatives false_positives
        SELECT
            role, model_version, {attribute:String} AS attribute, `group`,
            arrayMap(n -> toFloat64(n), [
                count(),
                countIf(class = {positive:String}),
                countIf(label_class = {positive:String}),
                countIf(label_class = {positive:String} AND class = {positive:String}),
                countIf(label_class != {positive:String}),
                countIf(label_class != {positive:String} AND class = {positive:String})]) AS c
        FROM scored
        LEFT JOIN labels USING (request_id)
        GROUP BY role, model_version, `group`
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
COMMENT 'Per group (count, selection_rate, tpr, fpr) and between groups (empty group: the gaps) of one sensitive attribute, per role and version, over one segment of predictions (selection from every prediction, TPR / FPR from the labelled ones); parameters model, start, end, client, version, segment_input, segment_value, attribute, positive';

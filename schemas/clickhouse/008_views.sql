-- Views for the questions people ask most: champion vs challenger, drift, fairness,
-- latency and QPS, DLQ reasons. Each is plain SQL over the tables: read them, copy them.

CREATE VIEW IF NOT EXISTS champion_vs_challenger
AS SELECT
    model,
    toStartOfHour(ts) AS hour,
    champion_version,
    challenger_version,
    count() AS labelled,
    avg(champion_output = label_string) AS champion_accuracy,
    avgIf(challenger_output = label_string, challenger_output IS NOT NULL) AS challenger_accuracy,
    avgIf(challenger_output = champion_output, challenger_output IS NOT NULL) AS agreement
FROM labelled_predictions
WHERE label_string IS NOT NULL
GROUP BY model, hour, champion_version, challenger_version
COMMENT 'Accuracy of champion and challenger on the same labelled requests, per hour';

CREATE VIEW IF NOT EXISTS drift_by_feature
AS SELECT
    model,
    model_version,
    feature,
    name AS method,
    window_start,
    window_end,
    value,
    count,
    labels['threshold'] AS threshold,
    labels['drifted'] = 'true' AS drifted
FROM metrics
WHERE kind = 'drift'
COMMENT 'Drift statistics per feature, method and window, as the monitor emitted them';

CREATE VIEW IF NOT EXISTS fairness_by_group
AS SELECT
    model,
    model_version,
    labels['attribute'] AS attribute,
    `group`,
    name AS metric,
    window_start,
    window_end,
    value,
    count
FROM metrics
WHERE kind = 'fairness'
COMMENT 'Per-group rates and between-group gaps (empty group) per window';

CREATE VIEW IF NOT EXISTS latency_qps
AS SELECT
    model,
    client_id,
    toStartOfMinute(ts) AS minute,
    count() AS requests,
    count() / 60 AS qps,
    quantile(0.5)(latency_ms) AS p50_ms,
    quantile(0.95)(latency_ms) AS p95_ms,
    quantile(0.99)(latency_ms) AS p99_ms,
    avg(served_by = 'backup') AS backup_rate,
    avg(champion_error != '') AS champion_error_rate
FROM predictions
GROUP BY model, client_id, minute
COMMENT 'Scorer latency percentiles and QPS per model, client and minute';

CREATE VIEW IF NOT EXISTS dlq_reasons
AS SELECT
    model,
    toDate(ts) AS day,
    reason,
    stage,
    count() AS messages,
    any(message) AS example
FROM dlq
GROUP BY model, day, reason, stage
COMMENT 'Dead-lettered messages per model, day and reason, with one example message';

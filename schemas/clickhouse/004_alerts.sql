-- Alerts raised and resolved by the monitor.
CREATE TABLE IF NOT EXISTS alerts
(
    ts DateTime64(3, 'UTC') COMMENT 'When the alert changed state (UTC, milliseconds)',
    alert_id String COMMENT 'Stable id of the alert: the same id fires and later resolves',
    model LowCardinality(String) COMMENT 'Model name',
    model_version LowCardinality(String) COMMENT 'Model version; empty when it spans versions',
    role LowCardinality(String) COMMENT 'champion, challenger or backup; empty when not per role',
    kind LowCardinality(String) COMMENT 'Metric kind that triggered it (as in metrics.kind)',
    name LowCardinality(String) COMMENT 'Metric name that triggered it (as in metrics.name)',
    feature LowCardinality(String) COMMENT 'Feature; empty when not per feature',
    `group` LowCardinality(String) COMMENT 'Sensitive group; empty when not per group',
    severity LowCardinality(String) COMMENT 'info, warning or critical',
    status LowCardinality(String) COMMENT 'firing or resolved',
    value Float64 COMMENT 'Metric value that crossed the threshold',
    threshold Float64 COMMENT 'Threshold it was compared with',
    window_start DateTime64(3, 'UTC') COMMENT 'Start of the window the value covers',
    window_end DateTime64(3, 'UTC') COMMENT 'End of the window the value covers',
    message String COMMENT 'Human readable: what was expected, what came',
    labels Map(LowCardinality(String), String) COMMENT 'Anything else that qualifies the alert'
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (model, ts, alert_id)
TTL toDateTime(ts) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1
COMMENT 'Alert state changes (the alerts topic)';

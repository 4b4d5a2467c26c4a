-- Monitor output: drift, performance, fairness, anomaly, latency, QPS, error rates.
-- Sorted by (model, kind, name) before ts: every metric query picks one kind and name.
CREATE TABLE IF NOT EXISTS metrics
(
    ts DateTime64(3, 'UTC') COMMENT 'When the monitor emitted the value (UTC, milliseconds)',
    model LowCardinality(String) COMMENT 'Model name',
    model_version LowCardinality(String) COMMENT 'Model version the value is about; empty when it spans versions',
    role LowCardinality(String) COMMENT 'champion, challenger or backup; empty when not per role',
    kind LowCardinality(String) COMMENT 'drift, concept_drift, performance, fairness, anomaly, latency, qps, error_rate',
    name LowCardinality(String) COMMENT 'Statistic: psi, ks, accuracy, auc, mae, p95, demographic_parity_gap, ...',
    feature LowCardinality(String) COMMENT 'Feature the value is about; empty when not per feature',
    `group` LowCardinality(String) COMMENT 'Sensitive group, as attribute=value; empty when not per group. Quote it: `group`',
    window_start DateTime64(3, 'UTC') COMMENT 'Start of the window the value covers (inclusive)',
    window_end DateTime64(3, 'UTC') COMMENT 'End of the window the value covers (exclusive)',
    value Float64 COMMENT 'The value',
    count UInt64 COMMENT 'Observations behind the value',
    labels Map(LowCardinality(String), String) COMMENT 'Anything else that qualifies the value'
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (model, kind, name, ts)
TTL toDateTime(ts) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1
COMMENT 'Monitoring values (the metrics topic), one row per statistic per window';

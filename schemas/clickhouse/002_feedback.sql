-- Ground truth that arrives after the prediction; join on (model, request_id).
CREATE TABLE IF NOT EXISTS feedback
(
    request_id String COMMENT 'Request id of the prediction this label is for',
    model LowCardinality(String) COMMENT 'Model name',
    ts DateTime64(3, 'UTC') COMMENT 'When the label was observed (UTC, milliseconds)',
    label_string Nullable(String) COMMENT 'Label for classification; NULL for regression',
    label_number Nullable(Float64) COMMENT 'Label for regression; NULL for classification',
    source LowCardinality(String) COMMENT 'Who or what gave the label (a system, a reviewer, a topic)',
    INDEX request_id_bloom request_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (model, ts, request_id)
TTL toDateTime(ts) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1
COMMENT 'Delayed labels (the feedback topic), one row per label event';

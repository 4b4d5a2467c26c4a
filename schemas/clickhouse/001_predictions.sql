-- Every scored request: the input, the champion's and the challenger's answers, the backup
-- when it served, and everything needed to trace a prediction back to its model version.
-- One feature in SQL: features['age'] (text), toFloat64OrNull(features['age']) (number).
-- Applied by services.warehouse.Warehouse.migrate; a line holding {ttl_days} is the TTL
-- clause, dropped when ttl_days is 0. Never edit this file once applied: add a new one.
CREATE TABLE IF NOT EXISTS predictions
(
    request_id String COMMENT 'Request id: the Kafka key of the request, or the id its producer chose',
    model LowCardinality(String) COMMENT 'Model name, the <model> in <prefix>.<model>.requests',
    ts DateTime64(3, 'UTC') COMMENT 'When the scorer produced the reply (UTC, milliseconds)',
    client_id LowCardinality(String) COMMENT 'client-id header of the request; empty when absent',
    source_topic LowCardinality(String) COMMENT 'Topic the request was read from',
    source_partition Int32 COMMENT 'Partition the request was read from',
    source_offset Int64 COMMENT 'Offset of the request: topic[partition]@offset traces it in Kafka',
    features Map(String, String) COMMENT 'Input record, one entry per feature; numbers as decimal text, nested values as JSON text. Read one with features[''name'']',
    champion_version LowCardinality(String) COMMENT 'Champion model version that scored the request',
    champion_output String COMMENT 'Champion prediction: the class, or the number as text for regression; empty on error',
    champion_probabilities Map(String, Float64) COMMENT 'Champion class probabilities; empty for regression',
    champion_latency_ms Float64 COMMENT 'Champion predict time in milliseconds',
    champion_error String COMMENT 'Why the champion failed; empty when it succeeded',
    challenger_version LowCardinality(Nullable(String)) COMMENT 'Shadow challenger version; NULL when the model has no challenger',
    challenger_output Nullable(String) COMMENT 'Challenger prediction, same form as champion_output; NULL when it did not answer',
    challenger_probabilities Map(String, Float64) COMMENT 'Challenger class probabilities',
    challenger_latency_ms Nullable(Float64) COMMENT 'Challenger predict time in milliseconds; NULL when it did not run',
    challenger_error String COMMENT 'Why the challenger failed; empty when it succeeded or did not run',
    challenger_skipped Bool COMMENT 'The challenger was configured but not run for this request (sampling, budget)',
    served_by LowCardinality(String) COMMENT 'Who answered the client: champion or backup',
    backup_version LowCardinality(Nullable(String)) COMMENT 'Backup model version when it served; NULL otherwise',
    backup_output Nullable(String) COMMENT 'Backup prediction when it served',
    backup_probabilities Map(String, Float64) COMMENT 'Backup class probabilities when it served',
    backup_latency_ms Nullable(Float64) COMMENT 'Backup predict time in milliseconds when it served',
    backup_error String COMMENT 'Why the backup failed too; empty otherwise',
    sensitive Map(String, String) COMMENT 'Values of the model''s declared sensitive attributes, for fairness per group',
    schema_fingerprint LowCardinality(String) COMMENT 'Fingerprint of the input schema the request was decoded with',
    training_data_fingerprint LowCardinality(String) COMMENT 'Fingerprint of the champion''s training data',
    latency_ms Float64 COMMENT 'Scorer time from consuming the request to producing the reply, milliseconds',
    INDEX request_id_bloom request_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (model, ts, request_id)
TTL toDateTime(ts) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1
COMMENT 'One row per scored request (the prediction log topic, landed by the sink)';

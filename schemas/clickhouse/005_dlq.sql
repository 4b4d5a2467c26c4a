-- Messages that could not be served: the original bytes, why, where, and at which stage.
CREATE TABLE IF NOT EXISTS dlq
(
    request_id String COMMENT 'Request id when it could be read; empty otherwise',
    model LowCardinality(String) COMMENT 'Model name',
    ts DateTime64(3, 'UTC') COMMENT 'When the message was dead-lettered (UTC, milliseconds)',
    reason LowCardinality(String) COMMENT 'Short machine-readable cause: decode_error, schema_mismatch, ...',
    message String COMMENT 'Human readable: what was expected, what came',
    stage LowCardinality(String) COMMENT 'Where it failed: decode, validate, predict, reply, ...',
    source_topic LowCardinality(String) COMMENT 'Topic the message was read from',
    source_partition Int32 COMMENT 'Partition the message was read from',
    source_offset Int64 COMMENT 'Offset of the message',
    headers Map(String, String) COMMENT 'Kafka headers of the original message',
    payload String COMMENT 'The original message value, byte for byte (read as bytes, or with hex())'
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (model, ts, request_id)
TTL toDateTime(ts) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1
COMMENT 'Dead-lettered messages (the dlq topics)';

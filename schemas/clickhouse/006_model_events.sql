-- The registry's audit trail: who registered, promoted, rolled back what, and why.
-- No TTL: the trail is tiny and must outlive the predictions it explains.
CREATE TABLE IF NOT EXISTS model_events
(
    ts DateTime64(3, 'UTC') COMMENT 'When it happened (UTC, milliseconds)',
    model LowCardinality(String) COMMENT 'Model name',
    version LowCardinality(String) COMMENT 'Model version the action is about',
    action LowCardinality(String) COMMENT 'register, promote, set_challenger, set_backup, rollback, retire, ...',
    actor LowCardinality(String) COMMENT 'Who did it (user or service)',
    reason String COMMENT 'Why, in the actor''s words',
    details String COMMENT 'Anything else, as a JSON object: JSONExtractString(details, ''key'')'
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (model, ts)
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1
COMMENT 'Model registry events (register, promote, rollback, ...)';

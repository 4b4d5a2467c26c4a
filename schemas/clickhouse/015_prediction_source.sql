-- Which path scored a prediction: 'stream' (the real-time scorer) or 'batch'
-- (`modelstream score`, source_topic 'batch:<input>'). The prediction log's optional
-- `source` field; a record without it (written before this field existed) is 'stream'.
-- Monitoring reads both; filter on it to compare the paths or to leave batch traffic out
-- of latency and throughput.
ALTER TABLE predictions
    ADD COLUMN IF NOT EXISTS source LowCardinality(String) DEFAULT 'stream'
    COMMENT 'Which path scored it: stream (the real-time scorer) or batch (modelstream score)'

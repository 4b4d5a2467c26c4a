-- The monitor's additive window summaries (<prefix>.summaries, streams/monitoring/summaries.py):
-- per model, input partition, window of event time and kind, counts that add up across
-- partitions and windows. Sum them over any range (sumForEach(counts), sum(stats['x'])) and
-- the drift, performance and fairness numbers of that range follow (013_summary_views.sql).
--
-- One row per (model, partition, window_start, kind, feature, group, role, model_version):
-- ReplacingMergeTree on that key, read with FINAL. The sink lands each record once
-- (deduplication token), and the monitor writes one summary per window and key, but a
-- monitor that reprocesses its input (offsets reset, state lost) writes the same windows
-- again: FINAL keeps one of them, the last landed, so a range never counts a window twice.
-- Not applicable fields are '' (feature of a latency summary, role of a numeric one).
CREATE TABLE IF NOT EXISTS window_summaries
(
    model LowCardinality(String) COMMENT 'Model name',
    `partition` Int32 COMMENT 'Input partition of the monitor task that summarised it (predictions / feedback topic partition). Quote it: `partition`',
    window_start DateTime64(3, 'UTC') COMMENT 'Start of the event-time window (inclusive, UTC)',
    window_end DateTime64(3, 'UTC') COMMENT 'End of the event-time window (exclusive, UTC)',
    kind LowCardinality(String) COMMENT 'numeric, categorical, classification, regression, fairness or latency',
    model_version LowCardinality(String) COMMENT 'numeric / categorical: the champion version whose reference profile bins them; otherwise the version that answered; empty when unknown',
    role LowCardinality(String) COMMENT 'champion or challenger (classification, regression, fairness); empty otherwise',
    feature LowCardinality(String) COMMENT 'The input (numeric, categorical) or the sensitive attribute (fairness); empty otherwise',
    `group` LowCardinality(String) COMMENT 'fairness: the attribute''s value; empty otherwise. Quote it: `group`',
    counts Array(Float64) COMMENT 'numeric: per cut-point interval of the reference profile; categorical: per reference category, other last; classification: tp fp fn tn correct n; fairness: count selected positives true_positives negatives false_positives; latency: per bucket',
    stats Map(LowCardinality(String), Float64) COMMENT 'numeric: missing below below_sum above above_sum count sum sum_sq; categorical: missing; regression: n sum_error sum_abs_error sum_sq_error sum_y sum_sq_y; latency: count sum',
    source_topic LowCardinality(String) COMMENT 'Topic the summary was landed from (<prefix>.summaries)',
    source_partition Int32 COMMENT 'Partition of that topic',
    source_offset Int64 COMMENT 'Offset of the summary record: topic[partition]@offset traces it in Kafka'
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(window_start)
ORDER BY (model, kind, window_start, feature, `partition`, role, model_version, `group`)
TTL toDateTime(window_start) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1
COMMENT 'Additive per-window summaries of the monitor (the summaries topic); read with FINAL';

-- The reference each live window is measured against: per model version and feature, the
-- training profile as the monitor reads it (streams.monitoring.drift.reference
-- references_from_profile), computed by the sink from the registry's <prefix>._models
-- topic. Numeric: live values are binned on `points` (the histogram edges and the training
-- quantiles inside them), the reference CDF at each point is `cdf`; categorical: live
-- values are counted per `categories` entry, anything unknown in the last one (other).
-- No TTL: a reference must outlive the predictions it explains. ReplacingMergeTree, read
-- with FINAL: a sink that reads the compacted topic again lands the same rows again.
CREATE TABLE IF NOT EXISTS reference_profiles
(
    model LowCardinality(String) COMMENT 'Model name',
    version LowCardinality(String) COMMENT 'Model version whose training data this is (versions are strings, as everywhere)',
    feature LowCardinality(String) COMMENT 'Input name',
    kind LowCardinality(String) COMMENT 'numeric or categorical',
    edges Array(Float64) COMMENT 'numeric: histogram edges (quantiles of the training data); bin i holds edges[i] <= x < edges[i+1], the last bin x = edges[-1] too, values beyond the edges count in the outer bins',
    ref_counts Array(UInt64) COMMENT 'Training counts per bin: numeric per histogram bin, categorical per category with other last',
    points Array(Float64) COMMENT 'numeric: cut points = the edges and the training quantiles strictly inside them, sorted; live values are counted per interval between consecutive points',
    cdf Array(Float64) COMMENT 'numeric: reference CDF at each point (exact at the edges, the quantile level at the others), as the KS and Wasserstein estimators use it',
    ref_fine Array(Float64) COMMENT 'numeric: reference probability mass per cut-point interval (differences of cdf)',
    starts Array(UInt32) COMMENT 'numeric: 0-based index of the first cut-point interval of each histogram bin',
    categories Array(String) COMMENT 'categorical: the known categories (booleans as true/false), then other for everything else',
    total UInt64 COMMENT 'Training values counted (missing values excluded)',
    std Nullable(Float64) COMMENT 'numeric: population standard deviation of the training values; NULL when not finite',
    wasserstein_scale Float64 COMMENT 'What the Wasserstein threshold is multiplied by: std, else the histogram''s std, 1 for a constant or categorical feature',
    registered_at DateTime64(3, 'UTC') COMMENT 'When the version was registered (UTC)',
    training_data_fingerprint LowCardinality(String) COMMENT 'Fingerprint of the training data profiled; empty when unknown',
    source_offset Int64 COMMENT 'Offset of the model_metadata record on <prefix>._models'
)
ENGINE = ReplacingMergeTree
PARTITION BY tuple()
ORDER BY (model, version, feature)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'Reference profiles of registered model versions (the _models topic), as the monitor reads them; read with FINAL';

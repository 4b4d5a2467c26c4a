-- Each prediction with its latest label, for performance SQL (champion vs challenger).
-- A label corrected later wins (argMax by ts). Filter on model and ts: both reach the
-- predictions sort key.
CREATE VIEW IF NOT EXISTS labelled_predictions
AS SELECT
    p.model AS model,
    p.request_id AS request_id,
    p.ts AS ts,
    p.champion_version AS champion_version,
    p.champion_output AS champion_output,
    p.champion_probabilities AS champion_probabilities,
    p.challenger_version AS challenger_version,
    p.challenger_output AS challenger_output,
    p.challenger_probabilities AS challenger_probabilities,
    p.served_by AS served_by,
    p.sensitive AS sensitive,
    f.label_string AS label_string,
    f.label_number AS label_number,
    f.label_ts AS label_ts
FROM predictions AS p
INNER JOIN
(
    SELECT
        model,
        request_id,
        argMax(label_string, ts) AS label_string,
        argMax(label_number, ts) AS label_number,
        max(ts) AS label_ts
    FROM feedback
    GROUP BY model, request_id
) AS f ON p.model = f.model AND p.request_id = f.request_id
COMMENT 'Predictions joined with their latest feedback label';

-- Every logged request of a model with its inputs and its latest label: what retraining
-- reads (services/lifecycle/_training_data.py). The successor of labelled_predictions
-- (009) for training: the same join and the same class rule (label_class, as the monitor
-- compares labels: schemas/labels.py), plus the features and the path that scored the
-- request (source, 015: stream or batch); every path is read alike, since a labelled
-- input is a training row whoever scored it, and only columns every path fills are kept.
-- A label corrected later wins (argMax by ts); a null label (unlabelable) has a NULL
-- label_class and label_number. Filter on model and ts: both reach the predictions sort key.

CREATE VIEW IF NOT EXISTS labelled_requests
AS SELECT
    model,
    request_id,
    ts,
    source,
    features,
    sensitive,
    champion_version,
    champion_output,
    challenger_version,
    challenger_output,
    label_string,
    label_number,
    label_ts,
    multiIf(
        lower(label_text) = 'true', 'True', lower(label_text) = 'false', 'False',
        match(label_text, '^-?[0-9]+[.]0$'), substring(label_text, 1, length(label_text) - 2),
        label_text
    ) AS label_class
FROM
(
    SELECT
        p.model AS model,
        p.request_id AS request_id,
        p.ts AS ts,
        p.source AS source,
        p.features AS features,
        p.sensitive AS sensitive,
        p.champion_version AS champion_version,
        p.champion_output AS champion_output,
        p.challenger_version AS challenger_version,
        p.challenger_output AS challenger_output,
        f.label_string AS label_string,
        f.label_number AS label_number,
        f.label_ts AS label_ts,
        -- a number label as text: whole numbers without '.0'
        if(
            f.label_string IS NULL AND f.label_number IS NOT NULL,
            if(
                f.label_number = trunc(f.label_number) AND abs(f.label_number) < 1e15,
                toString(toInt64(f.label_number)),
                toString(f.label_number)
            ),
            f.label_string
        ) AS label_text
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
)
COMMENT 'Logged requests with their features and latest feedback label (label_class compares as the monitor does), for retraining';

-- Labels and predictions compared by class text, the rule the monitor uses
-- (schemas/labels.py label_class), so SQL and the monitor count the same labelled requests
-- and the same right and wrong answers:
--   true / false in any letter case -> 'True' / 'False' (a JSON boolean label lands as
--   'True' / 'False', and a River model with boolean classes answers 'True' / 'False');
--   a whole number -> its integer text ('1.0', 1.0 and 1 are all '1');
--   anything else -> its text.
-- A null label (unlabelable) has a NULL label_class, a failed model a NULL *_class.
-- Replaces the views of 007 and 008 (never edit an applied file: add a new one).

CREATE OR REPLACE VIEW labelled_predictions
AS SELECT
    model,
    request_id,
    ts,
    champion_version,
    champion_output,
    champion_probabilities,
    challenger_version,
    challenger_output,
    challenger_probabilities,
    served_by,
    sensitive,
    label_string,
    label_number,
    label_ts,
    multiIf(
        lower(label_text) = 'true', 'True', lower(label_text) = 'false', 'False',
        match(label_text, '^-?[0-9]+[.]0$'), substring(label_text, 1, length(label_text) - 2),
        label_text
    ) AS label_class,
    multiIf(
        champion_output = '', NULL,
        lower(champion_output) = 'true', 'True', lower(champion_output) = 'false', 'False',
        match(champion_output, '^-?[0-9]+[.]0$'),
        substring(champion_output, 1, length(champion_output) - 2),
        champion_output
    ) AS champion_class,
    multiIf(
        lower(challenger_output) = 'true', 'True', lower(challenger_output) = 'false', 'False',
        match(challenger_output, '^-?[0-9]+[.]0$'),
        substring(challenger_output, 1, length(challenger_output) - 2),
        challenger_output
    ) AS challenger_class
FROM
(
    SELECT
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
COMMENT 'Predictions joined with their latest feedback label; label_class, champion_class and challenger_class compare as the monitor does';

CREATE OR REPLACE VIEW champion_vs_challenger
AS SELECT
    model,
    toStartOfHour(ts) AS hour,
    champion_version,
    challenger_version,
    count() AS labelled,
    countIf(champion_class IS NOT NULL) AS champion_labelled,
    avgIf(champion_class = label_class, champion_class IS NOT NULL) AS champion_accuracy,
    countIf(challenger_class IS NOT NULL) AS challenger_labelled,
    avgIf(challenger_class = label_class, challenger_class IS NOT NULL) AS challenger_accuracy,
    avgIf(
        challenger_class = champion_class,
        challenger_class IS NOT NULL AND champion_class IS NOT NULL
    ) AS agreement
FROM labelled_predictions
WHERE label_class IS NOT NULL
GROUP BY model, hour, champion_version, challenger_version
COMMENT 'Accuracy of champion and challenger over the labelled requests each answered, per hour';

-- The monitor's drift, fairness and class-text rules as SQL functions, so the views of
-- 013 and 014 state each formula once and any two histograms can be compared by hand:
--   SELECT ms_psi(ref_counts, [120, 95, 80, ...]) FROM reference_profiles FINAL WHERE ...
-- Same definitions and conventions as streams/monitoring (drift/psi.py, jensen_shannon.py,
-- chisquare.py, ks.py, wasserstein.py, fairness/*.py; schemas/labels.py): proportions
-- below 1e-4 raised to it (PSI, chi-square), base-2 Jensen-Shannon, KS and Wasserstein on
-- the reference's cut points. An empty histogram gives NULL where Python raises.
-- SQL functions belong to the ClickHouse server, not to a database: they are named ms_*,
-- and changing one is a new migration with CREATE OR REPLACE FUNCTION.

-- counts / their sum
CREATE FUNCTION IF NOT EXISTS ms_proportions AS (counts) ->
    arrayMap(c -> c / arraySum(counts), counts);

-- Population stability index of `actual` against `expected` (counts per bin)
CREATE FUNCTION IF NOT EXISTS ms_psi AS (expected, actual) ->
    if(arraySum(expected) > 0 AND arraySum(actual) > 0,
       arraySum(arrayMap(
           (e, a) -> (greatest(a, 1e-4) - greatest(e, 1e-4)) * log(greatest(a, 1e-4) / greatest(e, 1e-4)),
           ms_proportions(expected), ms_proportions(actual))),
       NULL);

-- x log(x / y), 0 for x = 0 (scipy.special.rel_entr)
CREATE FUNCTION IF NOT EXISTS ms_rel_entr AS (x, y) -> if(x > 0, x * log(x / y), 0.);

-- Jensen-Shannon distance, base 2 (scipy.spatial.distance.jensenshannon)
CREATE FUNCTION IF NOT EXISTS ms_js_distance AS (p, q) ->
    if(arraySum(p) > 0 AND arraySum(q) > 0,
       sqrt(greatest(arraySum(arrayMap(
           (a, b) -> ms_rel_entr(a, (a + b) / 2) + ms_rel_entr(b, (a + b) / 2),
           ms_proportions(p), ms_proportions(q))) / log(2) / 2, 0.)),
       NULL);

-- the entries of `a` whose bin holds data in `a` or `b` (chi-square drops bins empty in both)
CREATE FUNCTION IF NOT EXISTS ms_kept AS (a, b) -> arrayFilter((x, y) -> x > 0 OR y > 0, a, b);

-- scipy.stats.chisquare statistic: expected frequencies rescaled to the observed total
CREATE FUNCTION IF NOT EXISTS ms_chisquare_of AS (observed, expected) ->
    arraySum(arrayMap(
        (o, e) -> pow(o - e, 2) / e,
        observed, arrayMap(e -> e * (arraySum(observed) / arraySum(expected)), expected)));

-- Chi-square statistic of `observed` counts against `reference` counts (chisquare_counts)
CREATE FUNCTION IF NOT EXISTS ms_chisquare AS (reference, observed) ->
    multiIf(
        length(ms_kept(reference, observed)) < 2, 0.,
        arraySum(observed) > 0,
        ms_chisquare_of(
            ms_kept(observed, reference),
            arrayMap(r -> greatest(r / arraySum(reference), 1e-4), ms_kept(reference, observed))),
        NULL);

-- exp(a log x - x - lgamma(a)), 0 below exp's range (Cephes' igam_fac underflow)
CREATE FUNCTION IF NOT EXISTS ms_gamma_factor AS (a, x) ->
    if(a * log(x) - x - lgamma(a) < -709.782712893384, 0., exp(a * log(x) - x - lgamma(a)));

-- regularized lower incomplete gamma P(a, x) by its series (x < a + 1)
CREATE FUNCTION IF NOT EXISTS ms_gamma_p_series AS (a, x) ->
    ms_gamma_factor(a, x) / a * arrayFold(
        (s, n) -> (s.1 * x / (a + n), s.2 + s.1 * x / (a + n)), range(1, 400), (1., 1.)).2;

CREATE FUNCTION IF NOT EXISTS ms_tiny AS (v) -> if(abs(v) < 1e-300, 1e-300, v);

-- one step of Lentz's method: state (c, d, h), next partial numerator an and denominator b
CREATE FUNCTION IF NOT EXISTS ms_lentz_step AS (s, an, b) ->
    (ms_tiny(b + an / s.1), 1 / ms_tiny(an * s.2 + b),
     s.3 * ms_tiny(b + an / s.1) / ms_tiny(an * s.2 + b));

-- regularized upper incomplete gamma Q(a, x) by its continued fraction (x >= a + 1)
CREATE FUNCTION IF NOT EXISTS ms_gamma_q_fraction AS (a, x) ->
    ms_gamma_factor(a, x) * arrayFold(
        (s, i) -> ms_lentz_step(s, -i * (i - a), x + 1 - a + 2 * i),
        range(1, 400), (1e300, 1 / (x + 1 - a), 1 / (x + 1 - a))).3;

-- Q(a, x) = 1 - P(a, x)
CREATE FUNCTION IF NOT EXISTS ms_gamma_q AS (a, x) ->
    multiIf(x <= 0, 1., x < a + 1, 1 - ms_gamma_p_series(a, x), ms_gamma_q_fraction(a, x));

-- survival function of chi-square with `df` degrees of freedom (scipy.special.chdtrc)
CREATE FUNCTION IF NOT EXISTS ms_chi2_sf AS (df, x) -> ms_gamma_q(df / 2, x / 2);

-- p-value of ms_chisquare (1 when fewer than two bins hold data)
CREATE FUNCTION IF NOT EXISTS ms_chisquare_p_value AS (reference, observed) ->
    if(length(ms_kept(reference, observed)) < 2, 1.,
       ms_chi2_sf(length(ms_kept(reference, observed)) - 1,
                  assumeNotNull(ms_chisquare(reference, observed))));

-- survival function of the Kolmogorov distribution (scipy.special.kolmogorov)
CREATE FUNCTION IF NOT EXISTS ms_kolmogorov AS (x) ->
    multiIf(
        x <= 0, 1.,
        x <= 0.82,
        greatest(least(1 - sqrt(2 * pi()) / x * arraySum(arrayMap(
            k -> exp(-pow(2 * k - 1, 2) * pi() * pi() / (8 * x * x)), [1, 2, 3, 4])), 1.), 0.),
        greatest(least(2 * arraySum(arrayMap(
            k -> pow(-1, k - 1) * exp(-2 * k * k * x * x), [1, 2, 3, 4, 5, 6])), 1.), 0.));

-- KS p-value by Stephens' approximation for samples of n and m values (ks_pvalue_fast)
CREATE FUNCTION IF NOT EXISTS ms_ks_p_value AS (statistic, n, m) ->
    ms_kolmogorov((sqrt(n * m / (n + m)) + 0.12 + 0.11 / sqrt(n * m / (n + m))) * statistic);

-- counts per histogram bin from counts per cut-point interval
CREATE FUNCTION IF NOT EXISTS ms_coarse AS (fine, starts) ->
    arrayMap((a, b) -> arraySum(arraySlice(fine, a + 1, b - a)),
             starts, arrayPushBack(arrayPopFront(starts), length(fine)));

-- live CDF (left limits) at the cut points, the values below the lowest edge counted
-- (histogram.cdfs_at_points)
CREATE FUNCTION IF NOT EXISTS ms_live_cdf AS (fine, below, above) ->
    arrayMap(c -> (below + c) / arraySum(fine), arrayCumSum(arrayConcat([0.], arrayMap(
        (c, i) -> c - if(i = 1, below, 0) - if(i = length(fine), above, 0),
        fine, arrayEnumerate(fine)))));

-- binned KS statistic: the largest CDF gap at the cut points (ks.ks_binned)
CREATE FUNCTION IF NOT EXISTS ms_ks_binned AS (ref_cdf, live_cdf) ->
    arrayMax(arrayMap((f, g) -> abs(f - g), ref_cdf, live_cdf));

-- integral over [0, 1] of |the line from l to r|
CREATE FUNCTION IF NOT EXISTS ms_chord_area AS (l, r) ->
    if(l * r >= 0, abs(l + r) / 2, (l * l + r * r) / (2 * (abs(l) + abs(r))));

-- binned Wasserstein-1: CDFs linear between cut points, exact tails (wasserstein_binned)
CREATE FUNCTION IF NOT EXISTS ms_wasserstein_binned AS
    (points, ref_cdf, live_cdf, below, below_sum, above, above_sum, total) ->
    arraySum(arrayMap(
        j -> (points[j + 1] - points[j])
             * ms_chord_area(ref_cdf[j] - live_cdf[j], ref_cdf[j + 1] - live_cdf[j + 1]),
        range(1, length(points))))
    + ((below * points[1] - below_sum) + (above_sum - above * points[-1])) / total;

-- the monitor's numeric methods on one live histogram: [(method, value, p_value)]
CREATE FUNCTION IF NOT EXISTS ms_numeric_drift AS
    (ref_counts, points, cdf, starts, fine, below, below_sum, above, above_sum) -> [
        ('psi', ms_psi(ref_counts, ms_coarse(fine, starts)), CAST(NULL, 'Nullable(Float64)')),
        ('ks', toNullable(ms_ks_binned(cdf, ms_live_cdf(fine, below, above))),
         toNullable(ms_ks_p_value(ms_ks_binned(cdf, ms_live_cdf(fine, below, above)),
                                  arraySum(ref_counts), arraySum(fine)))),
        ('js', ms_js_distance(ref_counts, ms_coarse(fine, starts)), NULL),
        ('wasserstein', toNullable(ms_wasserstein_binned(points, cdf,
            ms_live_cdf(fine, below, above), below, below_sum, above, above_sum, arraySum(fine))),
         NULL)];

-- the monitor's categorical methods on one live count vector (other last)
CREATE FUNCTION IF NOT EXISTS ms_categorical_drift AS (ref_counts, counts) -> [
        ('psi', ms_psi(ref_counts, counts), CAST(NULL, 'Nullable(Float64)')),
        ('js', ms_js_distance(ref_counts, counts), NULL),
        ('chisquare', ms_chisquare(ref_counts, counts),
         toNullable(ms_chisquare_p_value(ref_counts, counts)))];

-- the default thresholds (streams.monitoring.drift.methods.DEFAULT_THRESHOLDS): p-values
-- for ks and chisquare, the value for the others, Wasserstein's in reference std
CREATE FUNCTION IF NOT EXISTS ms_drift_threshold AS (method, wasserstein_scale) ->
    multiIf(method IN ('ks', 'chisquare'), 1e-6, method = 'wasserstein', 0.25 * wasserstein_scale, 0.2);

CREATE FUNCTION IF NOT EXISTS ms_drifted AS (method, value, p_value, threshold) ->
    if(method IN ('ks', 'chisquare'), ifNull(p_value < threshold, false), value > threshold);

-- a group's rates from its counts [count, selected, positives, true_positives, negatives,
-- false_positives] (fairness.groups.GroupRates): [(metric, value)], undefined rates left out
CREATE FUNCTION IF NOT EXISTS ms_group_rates AS (c) -> arrayFilter(t -> t.2 IS NOT NULL, [
        ('count', toNullable(c[1])),
        ('selection_rate', toNullable(if(c[1] > 0, c[2] / c[1], 0.))),
        ('tpr', if(c[3] > 0, c[4] / c[3], NULL)),
        ('fpr', if(c[5] > 0, c[6] / c[5], NULL))]);

-- max - min of rates, NULL with fewer than two
CREATE FUNCTION IF NOT EXISTS ms_rate_difference AS (rates) ->
    if(length(rates) >= 2, arrayMax(rates) - arrayMin(rates), NULL);

-- the gaps between the groups of one attribute, from each group's counts (as above):
-- [(metric, value)], Fairlearn's definitions (fairness.report.FairnessReport.from_rates)
CREATE FUNCTION IF NOT EXISTS ms_fairness_gaps AS (groups) -> arrayFilter(t -> t.2 IS NOT NULL, [
        ('demographic_parity_difference', toNullable(
            arrayMax(arrayMap(c -> if(c[1] > 0, c[2] / c[1], 0.), groups))
            - arrayMin(arrayMap(c -> if(c[1] > 0, c[2] / c[1], 0.), groups)))),
        ('demographic_parity_ratio', if(
            arrayMax(arrayMap(c -> if(c[1] > 0, c[2] / c[1], 0.), groups)) > 0,
            arrayMin(arrayMap(c -> if(c[1] > 0, c[2] / c[1], 0.), groups))
            / arrayMax(arrayMap(c -> if(c[1] > 0, c[2] / c[1], 0.), groups)),
            NULL)),
        ('equal_opportunity_difference',
         ms_rate_difference(arrayMap(c -> c[4] / c[3], arrayFilter(c -> c[3] > 0, groups)))),
        ('equalized_odds_difference', multiIf(
            ms_rate_difference(arrayMap(c -> c[4] / c[3], arrayFilter(c -> c[3] > 0, groups))) IS NULL,
            ms_rate_difference(arrayMap(c -> c[6] / c[5], arrayFilter(c -> c[5] > 0, groups))),
            ms_rate_difference(arrayMap(c -> c[6] / c[5], arrayFilter(c -> c[5] > 0, groups))) IS NULL,
            ms_rate_difference(arrayMap(c -> c[4] / c[3], arrayFilter(c -> c[3] > 0, groups))),
            greatest(
                ms_rate_difference(arrayMap(c -> c[4] / c[3], arrayFilter(c -> c[3] > 0, groups))),
                ms_rate_difference(arrayMap(c -> c[6] / c[5], arrayFilter(c -> c[5] > 0, groups))))))]);

-- classification counts [tp, fp, fn, tn, correct, n] -> [(metric, value, count)]; precision,
-- recall and F1 only when a positive class was counted (tp + fp + fn + tn = n)
CREATE FUNCTION IF NOT EXISTS ms_classification_metrics AS (c) -> arrayFilter(t -> t.3 > 0, [
        ('accuracy', c[5] / c[6], c[6]),
        ('precision', if(c[1] + c[2] > 0, c[1] / (c[1] + c[2]), 0.),
         if(c[1] + c[2] + c[3] + c[4] = c[6], c[6], 0)),
        ('recall', if(c[1] + c[3] > 0, c[1] / (c[1] + c[3]), 0.),
         if(c[1] + c[2] + c[3] + c[4] = c[6], c[6], 0)),
        ('f1', if(2 * c[1] + c[2] + c[3] > 0, 2 * c[1] / (2 * c[1] + c[2] + c[3]), 0.),
         if(c[1] + c[2] + c[3] + c[4] = c[6], c[6], 0))]);

-- the class text a label or an output is compared by (schemas/labels.py label_class; the
-- rule of 009_label_classes.sql); NULL for an empty output (the model failed)
CREATE FUNCTION IF NOT EXISTS ms_class AS (text) ->
    multiIf(
        text = '', NULL,
        lower(text) = 'true', 'True', lower(text) = 'false', 'False',
        match(text, '^-?[0-9]+[.]0$'), substring(text, 1, length(text) - 2),
        text);

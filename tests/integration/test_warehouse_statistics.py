"""The warehouse recomputes drift, performance and fairness in SQL, and its numbers are the
Python estimators' numbers (relative 1e-9) on the same data: from the monitor's window
summaries for any range of windows, and from the raw prediction log for any segment.

The data (``statistics_support``) lands through the sink's own row mapping into the real
ClickHouse engine. Every SQL block of ``docs/queries.md`` runs on it as well.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.special import chdtrc, kolmogorov

from services.warehouse import Warehouse, connect
from streams.monitoring.drift.categories import CategoryWindow
from streams.monitoring.drift.histogram import HistogramWindow
from streams.monitoring.drift.methods import (
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    Sample,
    measure,
)
from streams.monitoring.drift.reference import NumericReference, Reference
from streams.monitoring.fairness.groups import GroupCounts
from streams.monitoring.fairness.report import FairnessReport
from streams.monitoring.labels import label_key
from streams.monitoring.performance import classification, regression
from streams.monitoring.summaries import binned_sample, category_sample, merge
from streams.monitoring.windows import Window
from tests.integration.statistics_support import (
    ATTRIBUTES,
    HOUR,
    MODEL,
    POSITIVE,
    REGRESSOR,
    Event,
    Traffic,
    land,
    traffic,
)

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
FENCE = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)
REL = 1e-9
Segment = dict[str, str]
EVERYONE: Segment = {"client": "", "version": "", "segment_input": "", "segment_value": ""}


@pytest.fixture(scope="module")
def data() -> Traffic:
    return traffic()


@pytest.fixture(scope="module")
def loaded(warehouse_dsn: str, warehouse_engine: Warehouse, data: Traffic) -> Iterator[Warehouse]:
    name = f"test_stats_{uuid.uuid4().hex[:10]}"
    with connect(warehouse_dsn, database=name) as warehouse:
        warehouse.migrate()
        land(warehouse, data)
        yield warehouse
    warehouse_engine.command(f"DROP DATABASE IF EXISTS {name} SYNC")


def ranges(data: Traffic) -> list[tuple[int, int]]:
    """Every window, and one range across the v1 -> v2 change (window-aligned)."""
    return [(data.start - HOUR, data.start + 6 * HOUR), (data.start + HOUR, data.start + 3 * HOUR)]


def literal(millis: int) -> str:
    return f"'{datetime.fromtimestamp(millis / 1000, tz=UTC):%Y-%m-%d %H:%M:%S.%f}'"


def view(
    warehouse: Warehouse, name: str, model: str, span: tuple[int, int], **params: str
) -> list[dict[str, Any]]:
    args = [f"model = '{model}'", f"start = {literal(span[0])}", f"end = {literal(span[1])}"]
    args += [f"{key} = '{value}'" for key, value in params.items()]
    columns, rows = warehouse.query(f"SELECT * FROM {name}({', '.join(args)})", read_only=True)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def close(got: float | None, expected: float | None) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    return got == pytest.approx(expected, rel=REL, abs=1e-12)


def assert_same(got: dict[Any, Any], expected: dict[Any, Any]) -> None:
    assert got.keys() == expected.keys()
    wrong = {k: (got[k], expected[k]) for k in expected if not all(map(close, got[k], expected[k]))}
    assert not wrong, wrong


# -- the docs -----------------------------------------------------------------------------


def test_every_query_in_the_docs_runs(loaded: Warehouse) -> None:
    queries = FENCE.findall(DOCS.read_text())
    assert len(queries) >= 15
    empty = []
    for sql in queries:
        _, rows = loaded.query(sql, read_only=True)
        if "_from_" in sql and not rows:
            empty.append(sql)
    assert len(empty) <= 1, empty  # only the one about last Tuesday may find nothing


# -- what lands ---------------------------------------------------------------------------


def test_reference_profiles_are_what_the_monitor_measures_against(
    loaded: Warehouse, data: Traffic
) -> None:
    columns, rows = loaded.query(
        "SELECT version, feature, kind, edges, ref_counts, points, cdf, starts, categories, "
        "total, std FROM reference_profiles FINAL ORDER BY version, feature"
    )
    got = {(r[0], r[1]): dict(zip(columns, r, strict=True)) for r in rows}
    assert set(got) == {(str(v), f) for v, refs in data.references.items() for f in refs}
    for (version, feature), row in got.items():
        ref = data.references[int(version)][feature]
        if isinstance(ref, NumericReference):
            assert (row["kind"], row["edges"], row["ref_counts"]) == (
                "numeric", list(ref.edges), list(ref.counts))  # fmt: skip
            assert (row["points"], row["cdf"], row["starts"], row["total"], row["std"]) == (
                list(ref.points), list(ref.cdf), list(ref.starts), ref.total, ref.std)  # fmt: skip
        else:
            assert row["categories"] == [*ref.categories, "other"]
            assert row["ref_counts"] == list(ref.counts_with_other)
    refined = [f for f, r in data.references[1].items() if isinstance(r, NumericReference)
               and len(r.points) > len(r.edges)]  # fmt: skip
    assert refined and "tenure" not in refined  # both binning paths are exercised
    assert got[("1", "mobile")]["categories"] == ["false", "true", "other"]
    assert sorted(got[("1", "member")]["categories"]) == ["False", "True", "other"]


def test_a_summary_landed_twice_counts_once(loaded: Warehouse, data: Traffic) -> None:
    count = "SELECT count() FROM window_summaries"
    assert loaded.query(count).rows[0][0] == len(data.summaries) + 1
    assert loaded.query(f"{count} FINAL").rows[0][0] == len(data.summaries)


# -- from the window summaries ------------------------------------------------------------


def inside(data: Traffic, model: str, kinds: set[str], span: tuple[int, int]) -> list[Any]:
    return [
        s for m, _, s in data.summaries
        if m == model and s.kind in kinds and s.window_start >= span[0] and s.window_end <= span[1]
    ]  # fmt: skip


def drift_rows(rows: list[dict[str, Any]]) -> dict[Any, tuple[float, float | None]]:
    return {(r["model_version"], r["feature"], r["method"]): (r["value"], r["p_value"])
            for r in rows}  # fmt: skip


def measured(ref: Reference, sample: Sample, version: int, feature: str) -> dict[Any, Any]:
    methods = NUMERIC_METHODS if isinstance(ref, NumericReference) else CATEGORICAL_METHODS
    found = {name: measure(name, ref, sample) for name in methods}
    return {(str(version), feature, name): (m.value, m.p_value) for name, m in found.items()}


def test_drift_from_summaries_is_the_estimators_on_the_summed_windows(
    loaded: Warehouse, data: Traffic
) -> None:
    for span in ranges(data):
        expected: dict[Any, Any] = {}
        for summary in merge(inside(data, MODEL, {"numeric", "categorical"}, span)):
            version, feature = summary.model_version, summary.feature
            assert version is not None and feature is not None
            ref = data.references[version][feature]
            sample = (binned_sample(summary, ref) if isinstance(ref, NumericReference)
                      else category_sample(summary))  # fmt: skip
            expected |= measured(ref, sample, version, feature)
        rows = view(loaded, "drift_from_summaries", MODEL, span)
        assert_same(drift_rows(rows), expected)
        assert any(r["drifted"] for r in rows) and not all(r["drifted"] for r in rows)


def test_performance_from_summaries_is_sklearns_definitions(
    loaded: Warehouse, data: Traffic
) -> None:
    for span in ranges(data):
        pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for ts, role, version, output, label, _ in data.joined:
            if span[0] <= ts < span[1]:
                pairs[(role, str(version))].append((label_key(label), label_key(output)))
        expected = {}
        for (role, version), labelled in pairs.items():
            truth, predicted = [t for t, _ in labelled], [p for _, p in labelled]
            c = classification.confusion(truth, predicted, positive=POSITIVE)
            values = {"accuracy": classification.accuracy(truth, predicted),
                      "precision": classification.precision(c),
                      "recall": classification.recall(c), "f1": classification.f1(c)}  # fmt: skip
            expected |= {(role, version, k): (v, len(labelled)) for k, v in values.items()}
        got = view(loaded, "performance_from_summaries", MODEL, span)
        assert_same({(r["role"], r["model_version"], r["metric"]): (r["value"], r["count"])
                     for r in got}, expected)  # fmt: skip


def test_regression_performance_from_summaries(loaded: Warehouse, data: Traffic) -> None:
    for span in ranges(data):
        by_version: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for e in data.events:
            if e.label is not None and span[0] <= e.label_ts < span[1] and e.regression:
                by_version[str(e.version)].append(e.regression)
        expected = {}
        for version, pairs in by_version.items():
            truth, predicted = [y for _, y in pairs], [p for p, _ in pairs]
            for name in ("mae", "rmse", "r2"):
                value = getattr(regression, name)(truth, predicted)
                expected[("champion", version, name)] = (value, len(pairs))
        got = view(loaded, "performance_from_summaries", REGRESSOR, span)
        assert_same({(r["role"], r["model_version"], r["metric"]): (r["value"], r["count"])
                     for r in got}, expected)  # fmt: skip


def fairness_expected(groups: dict[tuple[str, str, str], GroupCounts]) -> dict[Any, Any]:
    """``(role, version, attribute, group, metric) -> (value,)`` from per-group counts."""
    expected: dict[Any, Any] = {}
    by_attribute: dict[tuple[str, str], dict[str, GroupCounts]] = defaultdict(dict)
    for (role, version, group), counts in groups.items():
        by_attribute[(role, version)][group] = counts
    for (role, version), found in by_attribute.items():
        rates = {g: c.rates() for g, c in found.items()}
        report = FairnessReport.from_rates(ATTRIBUTES[0], Window(0, 0, 0, 0, 0), rates)
        for point in report.to_metrics():
            group = point.group.split("=", 1)[1] if point.group else ""
            expected[(role, version, ATTRIBUTES[0], group, point.name)] = (point.value,)
    return expected


def fairness_rows(rows: list[dict[str, Any]]) -> dict[Any, Any]:
    return {(r["role"], r["model_version"], r["attribute"], r["group"], r["metric"]):
            (r["value"],) for r in rows}  # fmt: skip


def group_of(sensitive: dict[str, str]) -> str:
    return str(sensitive.get(ATTRIBUTES[0], "(missing)"))


def test_fairness_from_summaries_is_fairlearns_definitions(
    loaded: Warehouse, data: Traffic
) -> None:
    for span in ranges(data):
        groups: dict[tuple[str, str, str], GroupCounts] = defaultdict(GroupCounts)
        for ts, role, version, output, sensitive in data.selected:
            if span[0] <= ts < span[1]:
                g = groups[(role, str(version), group_of(sensitive))]
                g.count += 1
                g.selected += label_key(output) == POSITIVE
        for ts, role, version, output, label, sensitive in data.joined:
            if span[0] <= ts < span[1]:
                g = groups[(role, str(version), group_of(sensitive))]
                predicted = label_key(output) == POSITIVE
                if label_key(label) == POSITIVE:
                    g.positives, g.true_positives = g.positives + 1, g.true_positives + predicted
                else:
                    g.negatives, g.false_positives = g.negatives + 1, g.false_positives + predicted
        got = fairness_rows(view(loaded, "fairness_from_summaries", MODEL, span))
        assert_same(got, fairness_expected(groups))


# -- from the raw prediction log, per segment ---------------------------------------------


SEGMENTS: list[Segment] = [
    EVERYONE,
    EVERYONE | {"client": "mobile-app"},
    EVERYONE | {"version": "2", "segment_input": "plan", "segment_value": "pro"},
]


def in_segment(e: Event, span: tuple[int, int], segment: Segment) -> bool:
    feature = segment["segment_input"]
    return (
        span[0] <= e.ts < span[1]
        and segment["client"] in ("", e.client)
        and segment["version"] in ("", str(e.version))
        and (not feature or e.features.get(feature) == segment["segment_value"])
    )


def segment_span(data: Traffic) -> tuple[int, int]:
    return data.start + HOUR + 123, data.start + 3 * HOUR + 4_567  # not window-aligned


def test_drift_from_predictions_bins_as_the_histogram_windows(
    loaded: Warehouse, data: Traffic
) -> None:
    span = segment_span(data)
    for segment in SEGMENTS:
        windows: dict[tuple[int, str], HistogramWindow | CategoryWindow] = {}
        for e in data.events:
            if in_segment(e, span, segment):
                for feature, ref in data.references[e.version].items():
                    window = windows.get((e.version, feature))
                    if window is None:
                        window = windows[(e.version, feature)] = (
                            HistogramWindow(ref) if isinstance(ref, NumericReference)
                            else CategoryWindow(ref)
                        )  # fmt: skip
                    window.add(e.features.get(feature))
        expected: dict[Any, Any] = {}
        for (version, feature), window in windows.items():
            sample = window.snapshot()
            if sample.total:
                expected |= measured(data.references[version][feature], sample, version, feature)
        got = view(loaded, "drift_from_predictions", MODEL, span, **segment)
        assert_same(drift_rows(got), expected)


def labelled(
    data: Traffic, span: tuple[int, int], segment: Segment
) -> Iterator[tuple[Event, str, str, str]]:
    """(event, role, version, output) of every answer in the segment."""
    for e in data.events:
        if in_segment(e, span, segment):
            for role, version, output in (("champion", str(e.version), e.champion),
                                          ("challenger", "3", e.challenger)):  # fmt: skip
                if output is not None:
                    yield e, role, version, output


def test_performance_from_predictions_of_a_segment(loaded: Warehouse, data: Traffic) -> None:
    span = segment_span(data)
    for segment in SEGMENTS:
        pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for e, role, version, output in labelled(data, span, segment):
            if e.label is not None:
                pairs[(role, version)].append((label_key(e.label), label_key(output)))
        expected = {}
        for (role, version), found in pairs.items():
            truth, predicted = [t for t, _ in found], [p for _, p in found]
            c = classification.confusion(truth, predicted, positive=POSITIVE)
            values = {"accuracy": classification.accuracy(truth, predicted),
                      "precision": classification.precision(c),
                      "recall": classification.recall(c), "f1": classification.f1(c)}  # fmt: skip
            expected |= {(role, version, k): (v, len(found)) for k, v in values.items()}
        got = view(loaded, "performance_from_predictions", MODEL, span, **segment,
                   positive=POSITIVE)  # fmt: skip
        assert_same({(r["role"], r["model_version"], r["metric"]): (r["value"], r["count"])
                     for r in got}, expected)  # fmt: skip
        accuracy_only = view(loaded, "performance_from_predictions", MODEL, span, **segment,
                             positive="")  # fmt: skip
        assert {r["metric"] for r in accuracy_only} == {"accuracy"}


def test_fairness_from_predictions_of_a_segment(loaded: Warehouse, data: Traffic) -> None:
    span = segment_span(data)
    for segment in SEGMENTS:
        groups: dict[tuple[str, str, str], GroupCounts] = defaultdict(GroupCounts)
        for e, role, version, output in labelled(data, span, segment):
            actual = None if e.label is None else label_key(e.label) == POSITIVE
            groups[(role, version, group_of(e.sensitive))].add(
                label_key(output) == POSITIVE, actual
            )
        got = view(loaded, "fairness_from_predictions", MODEL, span, **segment,
                   attribute=ATTRIBUTES[0], positive=POSITIVE)  # fmt: skip
        assert_same(fairness_rows(got), fairness_expected(groups))


# -- the p-values -------------------------------------------------------------------------


def test_p_values_are_scipys(loaded: Warehouse) -> None:
    xs = [0.0, 1e-8, 1e-3, 0.1, 0.5, 1, 2, 3.5, 5, 8, 13, 20, 34, 55, 89, 144, 377, 987, 1400,
          1500, 1e4]  # fmt: skip
    dfs = list(range(1, 41))
    (got,) = loaded.query(
        "SELECT arrayMap(df -> arrayMap(x -> ms_chi2_sf(df, x), {xs:Array(Float64)}), "
        "{dfs:Array(Float64)})", {"xs": xs, "dfs": dfs},
    ).rows[0]  # fmt: skip
    for df, row in zip(dfs, got, strict=True):
        assert row == pytest.approx([chdtrc(df, x) for x in xs], rel=REL, abs=0.0), df
    points = [float(x) for x in np.linspace(0.0, 4.0, 801)] + [5.0, 8.0, 20.0, 30.0]
    (got,) = loaded.query(
        "SELECT arrayMap(x -> ms_kolmogorov(x), {xs:Array(Float64)})", {"xs": points}
    ).rows[0]
    assert got == pytest.approx([kolmogorov(x) for x in points], rel=REL, abs=0.0)


def test_empty_histograms_give_null_where_python_raises(loaded: Warehouse) -> None:
    (row,) = loaded.query(
        "SELECT ms_psi([1, 2], [0., 0.]), ms_js_distance([0, 0], [1., 2.]), "
        "ms_chisquare([1, 2], [0., 0.]), ms_chisquare([5, 0, 0], [3., 0., 0.]), "
        "ms_chisquare_p_value([5, 0, 0], [3., 0., 0.])"
    ).rows
    assert row == (None, None, None, 0.0, 1.0)

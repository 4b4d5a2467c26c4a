"""The monitor adds inputs a batch at a time (streams.monitoring.columns): every count,
sum and detection must be the one the per-event estimators give on the same events, value
for value, including the values that are not numbers."""

from __future__ import annotations

import dataclasses
import math
import pickle
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from services.registry import reference_profile
from services.synthetic import rows
from streams.monitoring.anomaly import HalfSpaceTreesMonitor
from streams.monitoring.anomaly.scaling import ProfileScaler
from streams.monitoring.change import FeatureChangeMonitor
from streams.monitoring.change.adwin import ADWINDetector
from streams.monitoring.columns import NumericColumn, count_categories, detector_column
from streams.monitoring.drift import FeatureDriftMonitor
from streams.monitoring.drift.categories import CategoryWindow
from streams.monitoring.drift.histogram import HistogramWindow
from streams.monitoring.drift.reference import (
    CategoricalReference,
    NumericReference,
    references_from_profile,
)
from streams.monitoring.results import MetricPoint
from streams.monitoring.summaries import Summary, SummaryWindows
from streams.monitoring.watch import ModelSpec, ModelWatch
from streams.monitoring.windows import WindowSpec
from tests.unit.streams.monitoring.test_watch import record

T0 = 1_800_000_000_000
MESSY: list[Any] = [
    None, float("nan"), float("inf"), -float("inf"), "2.5", "abc", "", True, False, 7, -3,
    10**400, [1], {"a": 1}, 1e9, -1e9, 0.0, -0.0,
]  # fmt: skip


def messy_values(n: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    return [rng.choice(MESSY) if rng.random() < 0.2 else rng.gauss(0, 1.5) for _ in range(n)]


REFERENCE = NumericReference.from_samples([random.Random(1).gauss(0, 1) for _ in range(500)])


@pytest.mark.parametrize("seed", range(5))
def test_a_column_bins_and_sums_as_the_histogram_adds_one_value_at_a_time(seed: int) -> None:
    values = messy_values(400, seed)
    one, batch = HistogramWindow(REFERENCE), HistogramWindow(REFERENCE)
    for value in values:
        one.add(value)
    for chunk in (values[:150], values[150:151], values[151:]):
        batch.add_batch(NumericColumn.of(chunk, REFERENCE), len(chunk))
    assert batch.snapshot() == one.snapshot()


def test_numbers_only_columns_take_the_fast_path_and_give_the_same_floats() -> None:
    values: list[Any] = [random.Random(2).gauss(0, 1) for _ in range(1_000)] + [None, 3, True]
    column = NumericColumn.of(values, REFERENCE)
    assert column.detector is not None and np.isnan(column.detector[1_000])
    one = HistogramWindow(REFERENCE)
    for value in values:
        one.add(value)
    batch = HistogramWindow(REFERENCE)
    batch.add_batch(column, len(values))
    assert batch.snapshot() == one.snapshot()  # exact: sums added in the same order


def test_the_detector_column_keeps_numbers_and_skips_everything_else() -> None:
    got = detector_column(["2.5", 1, True, None, float("nan"), 2.0, [1], 10**400])
    assert [None if math.isnan(v) else v for v in got.tolist()] == [
        None, 1.0, 1.0, None, None, 2.0, None, None,
    ]  # fmt: skip


@pytest.mark.parametrize("values", [
    ["basic", "pro", None, "max", "pro", "basic", "zzz"],  # text: the Counter path
    ["basic", "pro", None, float("nan"), True, 3, 3.0, "true", [1], "max"],  # anything else
])  # fmt: skip
def test_category_counts_are_the_category_window_s(values: list[Any]) -> None:
    reference = CategoricalReference(("basic", "pro", "true", "3"), (5, 4, 3, 2), other=1)
    one = CategoryWindow(reference)
    for value in values:
        one.add(value)
    batch = CategoryWindow(reference)
    batch.add_batch(count_categories(values, reference), len(values))
    assert batch.snapshot() == one.snapshot()


def test_adwin_in_a_batch_detects_what_it_detects_value_by_value() -> None:
    rng = random.Random(4)
    stream = [rng.gauss(0, 1) for _ in range(3_000)] + [rng.gauss(1.5, 1) for _ in range(2_000)]
    stream += [rng.gauss(-1, 1) for _ in range(2_000)]  # a second change: River starts afresh
    one, batch = ADWINDetector(2e-4), ADWINDetector(2e-4)
    expected = [(i, d) for i, x in enumerate(stream) if (d := one.update(x)) is not None]
    got = []
    for start in range(0, len(stream), 700):
        got += [(start + i, d) for i, d in batch.update_many(stream[start : start + 700])]
    assert len(expected) >= 2 and got == expected
    assert (batch.seen, batch.detections, batch.estimate) == (
        one.seen, one.detections, one.estimate,
    )  # fmt: skip


def test_feature_change_detections_come_at_the_same_events() -> None:
    rng = random.Random(5)
    scales = {"a": (0.0, 1.0), "b": (10.0, 2.0), "c": (0.0, 1.0)}
    data = []
    for i in range(6_000):
        row: dict[str, Any] = {"a": rng.gauss(0 if i < 2_000 else 2, 1), "b": rng.gauss(10, 2)}
        row["c"] = rng.choice(MESSY) if i % 50 == 0 else rng.gauss(0 if i < 4_000 else -2, 1)
        data.append(row)
    one, batch = FeatureChangeMonitor(scales), FeatureChangeMonitor(scales)
    expected = [d for row in data for d in one.update(row)]
    got = []
    for start in range(0, len(data), 333):
        chunk = data[start : start + 333]
        columns = {name: detector_column([r.get(name) for r in chunk]) for name in ("a", "c")}
        got += batch.update_columns(columns, len(chunk))  # "b" absent: missing throughout
    assert {d.key for d in expected} >= {"a", "c"}
    assert got == [d for d in expected if d.key != "b"]
    assert batch.seen == one.seen == len(data)


def profile_and_rows(n: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    train = list(rows(1_000, sensitive=False, seed=1))
    for i, row in enumerate(train):
        row["plan"] = ("basic", "pro", "max")[i % 3]
    profile = reference_profile(pd.DataFrame(train))
    rng = random.Random(seed)
    live = list(rows(n // 2, sensitive=False, seed=seed))
    live += rows(n - n // 2, sensitive=False, seed=seed + 1, shift={"x3": 1.5})
    for i, row in enumerate(live):
        row["plan"] = rng.choice(["basic", "pro", "max", "gold", None, 3, True])
        if i % 17 == 0:
            row["x2"] = rng.choice(MESSY[:-2])
        if i % 29 == 0:
            del row["x4"]
    return profile, live


def test_drift_windows_extended_in_batches_are_the_per_event_windows() -> None:
    profile, live = profile_and_rows(2_000, seed=6)
    one = FeatureDriftMonitor.from_profile(profile, window=WindowSpec(events=300))
    batch = FeatureDriftMonitor.from_profile(profile, window=WindowSpec(events=300))
    references = one.references
    expected = [r for i, row in enumerate(live) for r in one.update(row, ts=T0 + i)]
    got: list[Any] = []
    i, rng = 0, random.Random(7)
    while i < len(live):
        n = min(rng.randint(1, 200), batch.room, len(live) - i)
        chunk = live[i : i + n]
        columns: dict[str, Any] = {}
        for name, ref in references.items():
            values = [row.get(name) for row in chunk]
            columns[name] = (
                NumericColumn.of(values, ref)
                if isinstance(ref, NumericReference)
                else count_categories(values, ref)
            )  # fmt: skip
        got += batch.extend(columns, [T0 + j for j in range(i, i + n)])
        i += n
    got += batch.flush()
    expected += one.flush()
    assert len(expected) > 50 and got == expected


def watch_spec(profile: dict[str, Any]) -> ModelSpec:
    numeric = tuple(f"x{i}" for i in range(10))
    return ModelSpec("m", features=(*numeric, "plan"), reference_profile=profile,
                     numeric=numeric, version=1, drift_window=300,
                     summary_window_ms=2_000)  # fmt: skip


def test_the_watch_s_drift_and_summaries_are_the_per_event_estimators_numbers() -> None:
    """The watch gathers inputs and drains them at window boundaries, at ticks, and when a
    label closes a summary window first; a snapshot in between carries what is pending.
    Its drift results, input summaries, per-feature detections and anomaly reports are
    what the per-event estimators give on the same events."""
    profile, live = profile_and_rows(12_000, seed=8)  # an anomaly window: 10,000 events
    spec = watch_spec(profile)
    watch = ModelWatch(spec)
    references = references_from_profile(profile)
    drift = FeatureDriftMonitor(references, window=WindowSpec(events=300))
    summaries = SummaryWindows(references, window_ms=2_000, version=1)
    changes = FeatureChangeMonitor.from_profile(profile, features=spec.numeric_features())
    trees = HalfSpaceTreesMonitor(ProfileScaler.from_profile(profile, spec.numeric_features()),
                                  seed=7)  # fmt: skip
    rng = random.Random(9)
    got: list[Any] = []
    expected: list[Any] = []
    for i, row in enumerate(live):
        ts = T0 + i + rng.randint(-30, 30)
        got += watch.on_prediction(record(i, row) | {"ts": ts})
        expected += summaries.on_features(row, ts)
        expected += [r.to_metric() for r in drift.update(row, ts)]
        expected += [d.at_event for d in changes.update(row) if d.level == "drift"]
        expected += [p for report in trees.update(row, ts) for p in report.to_metrics()]
        if i % 11 == 0 and i > 40:  # a label 2.5 s on: it may close a summary window
            got += watch.on_feedback({"request_id": f"r{i - 40}", "label": True, "ts": ts + 2_500})
            expected += summaries.on_joined(ts + 2_500, "champion", 1, "True", "True", {}, ())
        if i % 1_000 == 999:
            watch = pickle.loads(pickle.dumps(watch))  # with inputs waiting for a drain
    got += watch.flush()
    expected += summaries.flush() + [r.to_metric() for r in drift.flush()]
    expected += [p for report in trees.flush() for p in report.to_metrics()]

    def inputs(items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, Summary) and item.kind in ("numeric", "categorical"):
                out.append(dataclasses.replace(item, last=False))
            elif isinstance(item, MetricPoint) and item.kind in ("drift", "anomaly"):
                out.append(dataclasses.replace(item, model_version=None))
            elif isinstance(item, int):
                out.append(item)
            elif getattr(item, "kind", None) == "drift" and "adwin" in item.message:
                out.append(item.at_event)
        return sorted(out, key=repr)

    assert any(isinstance(x, int) for x in expected), "x3's shift should be detected"
    assert sum(getattr(x, "kind", None) == "anomaly" for x in expected) >= 6  # two windows
    assert inputs(got) == inputs(expected)

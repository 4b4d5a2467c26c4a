"""Window summaries add up: three partitions' summaries of a window, merged, are the
summary of the whole window, and the drift estimators give the same numbers on them as on
the window's values seen at once."""

from __future__ import annotations

import random
from typing import Any

import pandas as pd
import pytest

from services.registry import reference_profile
from services.synthetic import rows
from streams.monitoring.drift import FeatureDriftMonitor
from streams.monitoring.drift.categories import CategoryWindow
from streams.monitoring.drift.histogram import HistogramWindow
from streams.monitoring.drift.methods import measure
from streams.monitoring.drift.reference import NumericReference
from streams.monitoring.summaries import (
    CLASSIFICATION_COUNTS,
    Summary,
    SummaryWindows,
    binned_sample,
    category_sample,
    merge,
)
from streams.monitoring.watch import ModelSpec, ModelWatch
from tests.unit.streams.monitoring.test_watch import record

T0 = 1_800_000_000_000
W = 60_000


def events(n: int, seed: int) -> list[tuple[int, dict[str, Any]]]:
    """``n`` rows over ~5 minutes of event time, x3 drifting in the second half."""
    rng = random.Random(seed)
    first = list(rows(n // 2, seed=seed))
    second = list(rows(n - n // 2, seed=seed + 1, shift={"x3": 1.0}))
    out = []
    for i, row in enumerate(first + second):
        row["x1"] = None if rng.random() < 0.02 else row["x1"]
        out.append((T0 + i * 300_000 // n, row))
    return out


@pytest.fixture(scope="module")
def references() -> dict[str, Any]:
    train = pd.DataFrame(list(rows(5_000, seed=1)))
    return FeatureDriftMonitor.from_profile(reference_profile(train)).references


def summaries_of(stream: list[tuple[int, dict[str, Any]]], refs: dict[str, Any]) -> list[Summary]:
    windows = SummaryWindows(refs, window_ms=W, version=1)
    out = [s for ts, row in stream for s in windows.on_features(row, ts)]
    return out + windows.flush()


def test_three_partitions_merged_are_the_whole_stream(references: dict[str, Any]) -> None:
    stream = events(6_000, seed=3)
    partitions = [stream[p::3] for p in range(3)]
    per_partition = [s for part in partitions for s in summaries_of(part, references)]
    whole = summaries_of(stream, references)
    starts = sorted({s.window_start for s in whole})
    assert len(starts) == 5
    for start in starts:
        merged = {s.key(): s for s in merge(x for x in per_partition if x.window_start == start)}
        alone = {s.key(): s for s in whole if s.window_start == start}
        assert merged.keys() == alone.keys()
        for key, s in alone.items():
            assert merged[key].counts == s.counts
            assert merged[key].stats == pytest.approx(s.stats, rel=1e-12)


def test_estimators_on_merged_summaries_equal_the_window_seen_at_once(
    references: dict[str, Any],
) -> None:
    stream = events(6_000, seed=4)
    partitions = [stream[p::3] for p in range(3)]
    per_partition = [s for part in partitions for s in summaries_of(part, references)]
    start = T0 + 4 * W  # the last window: drifted
    merged = {s.feature: s for s in merge(x for x in per_partition if x.window_start == start)}
    in_window = [row for ts, row in stream if start <= ts < start + W]
    compared = 0
    for name, ref in references.items():
        whole = HistogramWindow(ref) if isinstance(ref, NumericReference) else CategoryWindow(ref)
        for row in in_window:
            whole.add(row.get(name))
        expected = whole.snapshot()
        if isinstance(ref, NumericReference):
            got = binned_sample(merged[name], ref)
            methods = ("psi", "js", "ks", "wasserstein")
        else:
            got = category_sample(merged[name])
            methods = ("psi", "js", "chisquare")
        assert got == expected
        for method in methods:
            a, b = measure(method, ref, got), measure(method, ref, expected)
            assert a.value == b.value and a.p_value == b.p_value
            compared += 1
    assert compared >= 40
    x3 = merged["x3"]
    assert measure("psi", references["x3"], binned_sample(x3, references["x3"])).value > 0.2
    n = merged["x0"].stats["count"]
    assert merged["x0"].stats["sum"] / n == pytest.approx(
        sum(r["x0"] for r in in_window) / len(in_window)
    )


def test_the_watch_emits_labelled_and_group_counts_per_role() -> None:
    train = pd.DataFrame(list(rows(2_000, seed=1)))
    spec = ModelSpec(
        "m", features=(*[f"x{i}" for i in range(10)], "group"), sensitive=("group",),
        reference_profile=reference_profile(train), numeric=tuple(f"x{i}" for i in range(10)),
        version=1, summary_window_ms=W,
    )  # fmt: skip
    watch = ModelWatch(spec)
    rng = random.Random(5)
    out: list[Any] = []
    truth = {}
    for i, row in enumerate(rows(1_000, seed=6)):
        r = record(i, row, "True" if rng.random() < 0.5 else "False", "True", row["group"])
        out += watch.on_prediction(r)
        truth[i] = rng.random() < 0.5
    for i in range(1_000):
        fb = {"request_id": f"r{i}", "model": "m", "label": str(truth[i]), "ts": T0 + 1_000 + i}
        out += watch.on_feedback(fb)
    out += watch.flush()
    summaries = [s for s in out if isinstance(s, Summary)]
    conf = {s.role: dict(zip(CLASSIFICATION_COUNTS, s.counts, strict=True))
            for s in summaries if s.kind == "classification"}  # fmt: skip
    assert conf["champion"]["n"] == conf["challenger"]["n"] == 1_000
    assert conf["challenger"]["tp"] + conf["challenger"]["fp"] == 1_000  # it always says True
    assert conf["challenger"]["tp"] == sum(truth.values())
    groups = [s for s in summaries if s.kind == "fairness" and s.role == "champion"]
    assert sum(s.counts[0] for s in groups) == 1_000  # every prediction, once per group
    assert sum(s.counts[2] + s.counts[4] for s in groups) == 1_000  # every label
    latency = [s for s in summaries if s.kind == "latency"]
    assert sum(s.stats["count"] for s in latency) == 1_000


def test_a_rebase_splits_the_inputs_by_version_and_keeps_the_rest(
    references: dict[str, Any],
) -> None:
    windows = SummaryWindows(references, window_ms=W, version=1)
    stream = events(600, seed=7)
    emitted: list[Summary] = []
    for ts, row in stream[:300]:
        emitted += windows.on_features(row, ts)
        windows.on_latency(1.0)
    at_rebase = windows.rebase(references, 2)
    assert {s.model_version for s in at_rebase} == {1}
    assert {s.kind for s in at_rebase} == {"numeric", "categorical"}
    emitted += at_rebase
    for ts, row in stream[300:]:
        emitted += windows.on_features(row, ts)
        windows.on_latency(1.0)
    emitted += windows.flush()
    latency = [s for s in emitted if s.kind == "latency"]
    assert sum(s.stats["count"] for s in latency) == 600  # not split, not lost
    per_window = {(s.window_start, s.kind, s.feature, s.model_version) for s in emitted}
    assert len(per_window) == len([s for s in emitted])  # never two for one key

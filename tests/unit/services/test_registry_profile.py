"""Reference profile: exact edges and counts, missing values, categories, fingerprints;
and the doctests of every registry module (``services`` is not a doctest path)."""

from __future__ import annotations

import doctest
import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registry import data_fingerprint, reference_profile
from services.registry._profile import bin_counts, categorical_profile, numeric_profile

MODULES = [
    "services.registry",
    "services.registry._artifact",
    "services.registry._draft",
    "services.registry._errors",
    "services.registry._input_schema",
    "services.registry._model",
    "services.registry._profile",
    "services.registry._registry",
    "services.registry._routing",
    "services.registry._state",
    "services.registry._view",
    "services.registry._wire",
    "services.registry.cli",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_numeric_profile_is_exact_and_json() -> None:
    values = pd.Series(np.random.default_rng(7).normal(50, 10, 5_000))
    profile = numeric_profile(values, bins=20)
    edges, counts = profile["histogram"]["edges"], profile["histogram"]["counts"]
    assert len(edges) == 21 and len(counts) == 20
    assert edges == sorted(edges) and edges[0] == profile["min"] and edges[-1] == profile["max"]
    assert sum(counts) == profile["count"] == 5_000
    assert counts == bin_counts(values.to_numpy(), np.array(edges))
    assert all(230 <= count <= 270 for count in counts)  # quantile bins hold equal mass
    assert profile["mean"] == pytest.approx(values.mean())
    assert profile["std"] == pytest.approx(values.std(ddof=0))
    assert list(profile["quantiles"]) == [
        "0.01",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "0.75",
        "0.9",
        "0.95",
        "0.99",
    ]
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile


def test_missing_and_infinite_values_are_missing() -> None:
    profile = numeric_profile(pd.Series([1.0, np.nan, np.inf, -np.inf, 3.0, None]))
    assert (profile["count"], profile["missing"], profile["min"], profile["max"]) == (
        2,
        4,
        1.0,
        3.0,
    )


def test_all_missing_has_no_statistics() -> None:
    profile = numeric_profile(pd.Series([np.nan, np.nan]))
    assert profile["mean"] is None and profile["histogram"] == {"edges": [], "counts": []}
    json.dumps(profile, allow_nan=False)


def test_ties_collapse_edges() -> None:
    values = pd.Series([0.0] * 90 + list(range(1, 11)))
    histogram = numeric_profile(values, bins=10)["histogram"]
    assert histogram["edges"][0] == 0.0 and len(set(histogram["edges"])) == len(histogram["edges"])
    assert histogram["counts"][0] >= 90 and sum(histogram["counts"]) == 100


def test_live_values_outside_the_edges_go_to_the_outer_bins() -> None:
    assert bin_counts(np.array([-5.0, 0.0, 5.0, 10.0, 99.0]), np.array([0.0, 5.0, 10.0])) == [2, 3]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300), st.integers(1, 20)
)
def test_histogram_counts_every_value(values: list[float], bins: int) -> None:
    histogram = numeric_profile(pd.Series(values), bins=bins)["histogram"]
    assert sum(histogram["counts"]) == len(values)
    assert len(histogram["edges"]) == len(histogram["counts"]) + 1


def test_categorical_top_and_other() -> None:
    values = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None])
    profile = categorical_profile(values, top=2)
    assert profile == {
        "count": 11,
        "missing": 1,
        "distinct": 4,
        "counts": {"a": 5, "b": 3},
        "other": 3,
    }


def test_columns_split_by_dtype_without_a_schema() -> None:
    frame = pd.DataFrame({"x": [1, 2], "flag": [True, False], "city": ["a", "b"]})
    profile = reference_profile(frame)
    assert set(profile["numeric"]) == {"x"} and set(profile["categorical"]) == {"flag", "city"}
    assert profile["rows"] == 2 and profile["format"] == 1


def test_reference_profile_rejects_bad_bins() -> None:
    with pytest.raises(ValueError, match="bins"):
        reference_profile(pd.DataFrame({"x": [1.0]}), bins=0)


def test_fingerprint_tracks_data_and_columns_not_index() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]})
    same = frame.set_axis([10, 11])
    assert data_fingerprint(frame) == data_fingerprint(same)
    assert data_fingerprint(frame) != data_fingerprint(frame.rename(columns={"x": "y"}))
    changed = frame.assign(x=[1.0, 2.5])
    assert data_fingerprint(frame) != data_fingerprint(changed)
    assert len(data_fingerprint(frame)) == len("sha256:") + 64


def test_mean_of_huge_values_stays_json() -> None:
    profile = numeric_profile(pd.Series([1e308, 1e308]))
    assert profile["mean"] is None or math.isfinite(profile["mean"])
    json.dumps(profile, allow_nan=False)

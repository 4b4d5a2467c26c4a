"""References follow the registry profile's conventions exactly."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registry._profile import reference_profile
from streams.monitoring import ReferenceProfileError
from streams.monitoring.drift import (
    CategoricalReference,
    CategoryWindow,
    HistogramWindow,
    NumericReference,
    references_from_profile,
)


@given(st.lists(st.floats(-1e6, 1e6) | st.none(), min_size=1, max_size=80), st.integers(1, 12))
@settings(max_examples=100, deadline=None)
def test_training_data_fills_the_window_exactly_like_the_profile(
    values: list[float | None], bins: int
) -> None:
    frame = pd.DataFrame({"x": pd.Series(values, dtype=float)})
    entry = reference_profile(frame, bins=bins)["numeric"]["x"]
    if entry["count"] == 0:
        return
    reference = NumericReference.from_profile(entry)
    window = HistogramWindow(reference)
    for value in values:
        window.add(value)
    sample = window.snapshot()
    assert list(sample.counts) == entry["histogram"]["counts"]
    assert sample.missing == entry["missing"] and sample.below == sample.above == 0


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=80), st.integers(1, 12))
@settings(max_examples=100, deadline=None)
def test_from_samples_equals_from_profile(values: list[float], bins: int) -> None:
    entry = reference_profile(pd.DataFrame({"x": values}), bins=bins)["numeric"]["x"]
    from_profile = NumericReference.from_profile(entry)
    from_samples = NumericReference.from_samples(values, bins=bins)
    assert from_profile.edges == from_samples.edges and from_profile.counts == from_samples.counts
    assert from_profile.points == from_samples.points


def test_cut_points_add_inner_quantiles_with_their_levels() -> None:
    reference = NumericReference.from_samples(np.arange(101.0), bins=4)
    assert reference.points == (0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 100.0)
    assert reference.cdf[1:4] == (0.01, 0.05, 0.1)
    assert reference.starts == (0, 4, 5, 6)
    assert all(b >= a for a, b in pairwise(reference.cdf))


def test_categories_follow_the_profile(normal_profile: dict[str, Any]) -> None:
    frame = pd.DataFrame(
        {
            "plan": ["basic", "pro", "basic", None, "max", "basic"],
            "flag": [True, False, True, True, None, False],
        }
    )
    profile = reference_profile(frame, top=2)
    refs = references_from_profile(profile)
    plan, flag = refs["plan"], refs["flag"]
    assert isinstance(plan, CategoricalReference) and isinstance(flag, CategoricalReference)
    assert plan.counts_with_other == (3, 1, 1)
    window = CategoryWindow(flag)
    for value in frame["flag"]:
        window.add(value)
    assert dict(zip(flag.bins, window.snapshot().counts, strict=False)) == {"true": 3, "false": 2}


def test_features_without_data_are_left_out_unless_named() -> None:
    profile = reference_profile(pd.DataFrame({"x": [None, None], "y": [1.0, 2.0]}, dtype=float))
    assert list(references_from_profile(profile)) == ["y"]
    with pytest.raises(ReferenceProfileError):
        references_from_profile(profile, ["x"])
    with pytest.raises(ReferenceProfileError, match="missing"):
        references_from_profile(profile, ["nope"])


@pytest.mark.parametrize(
    "edges, counts", [((0.0,), ()), ((0.0, 1.0), (0,)), ((1.0, 0.0), (3,)), ((0.0, 1.0, 2.0), (1,))]
)
def test_malformed_histograms_are_rejected(
    edges: tuple[float, ...], counts: tuple[int, ...]
) -> None:
    with pytest.raises(ReferenceProfileError):
        NumericReference(edges, counts)


def test_constant_feature() -> None:
    reference = NumericReference.from_samples([3.0, 3.0, 3.0])
    window = HistogramWindow(reference)
    for value in (3.0, 2.0, 4.0, 5.0):
        window.add(value)
    sample = window.snapshot()
    assert sample.counts == (4,) and (sample.below, sample.above) == (1, 2)

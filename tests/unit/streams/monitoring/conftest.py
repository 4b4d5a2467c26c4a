"""Shared fixtures: seeded generators and training profiles built by the registry's code."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from services.registry._profile import reference_profile

FEATURES = [f"f{i}" for i in range(10)]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261101)


@pytest.fixture(scope="session")
def normal_profile() -> dict[str, Any]:
    """The registry's profile of 10,000 rows of 10 independent N(0, 1) features."""
    data = np.random.default_rng(7).normal(size=(10_000, len(FEATURES)))
    return reference_profile(pd.DataFrame(data, columns=FEATURES))

"""Reference profile of training data: what drift monitoring compares live inputs against.

The profile is plain JSON (``json.dumps`` works as is) so it travels in the model
metadata and any language can read it::

    {"format": 1, "rows": 6,
     "numeric": {"age": {"count": 5, "missing": 1, "mean": ..., "std": ..., "min": ...,
                         "max": ..., "quantiles": {"0.5": ...},
                         "histogram": {"edges": [...], "counts": [...]}}},
     "categorical": {"plan": {"count": 6, "missing": 0, "distinct": 3,
                              "counts": {"basic": 3, "pro": 2}, "other": 1}}}

Conventions a monitor must follow to compare like with like:

* Missing values (null, NaN, +-inf) are counted in ``missing``, never in the statistics.
* ``std`` is the population standard deviation (``ddof=0``).
* Histogram edges are the distinct quantiles of the data at ``linspace(0, 1, bins + 1)``,
  so bins hold roughly equal mass; ``counts[i]`` counts ``edges[i] <= x < edges[i+1]``
  and the last bin also holds ``x == edges[-1]``. Live values outside the edges belong to
  the outer bins: ``i = clip(searchsorted(edges, x, side="right") - 1, 0, len(counts) - 1)``.
  A constant feature has edges ``[v, v]`` and one bin.
* Categories are strings (booleans as ``"true"`` / ``"false"``); ``counts`` holds the
  ``top`` most frequent, ``other`` the rest, ``distinct`` how many there were.

Counts are exact integers and edges exact floats, so PSI, KS, Jensen-Shannon or
Wasserstein distances computed later reproduce what the training data says.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0, None, 60.0],
...                       "plan": ["basic", "pro", "basic", "pro", "basic", "max"]})
>>> profile = reference_profile(frame, bins=4, quantiles=(0.5,), top=2)
>>> age = profile["numeric"]["age"]
>>> age["count"], age["missing"], age["mean"], age["quantiles"]
(5, 1, 40.0, {'0.5': 40.0})
>>> age["histogram"]
{'edges': [20.0, 30.0, 40.0, 50.0, 60.0], 'counts': [1, 1, 1, 2]}
>>> profile["categorical"]["plan"]
{'count': 6, 'missing': 0, 'distinct': 3, 'counts': {'basic': 3, 'pro': 2}, 'other': 1}
>>> data_fingerprint(frame) == data_fingerprint(frame.copy())
True
>>> data_fingerprint(frame)[:7]
'sha256:'
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["DEFAULT_QUANTILES", "data_fingerprint", "reference_profile"]

DEFAULT_QUANTILES: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
PROFILE_FORMAT: Final = 1


def reference_profile(
    frame: pd.DataFrame,
    *,
    numeric: Iterable[str] | None = None,
    categorical: Iterable[str] | None = None,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    bins: int = 10,
    top: int = 20,
) -> dict[str, Any]:
    """Profile the columns of ``frame`` (see the module docstring for the layout).

    Without ``numeric`` and ``categorical``, numeric dtypes (not booleans) are numeric
    and every other column is categorical.
    """
    if bins < 1 or top < 1:
        raise ValueError(f"expected bins >= 1 and top >= 1, got bins={bins}, top={top}")
    if numeric is None and categorical is None:
        numeric, categorical = _split_by_dtype(frame)
    return {
        "format": PROFILE_FORMAT,
        "rows": len(frame),
        "numeric": {
            str(name): numeric_profile(frame[name], quantiles=quantiles, bins=bins)
            for name in numeric or ()
        },
        "categorical": {
            str(name): categorical_profile(frame[name], top=top) for name in categorical or ()
        },
    }


def _split_by_dtype(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric: list[str] = []
    categorical: list[str] = []
    for name in frame.columns:
        dtype = frame[name].dtype
        is_number = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        (numeric if is_number else categorical).append(str(name))
    return numeric, categorical


def numeric_profile(
    values: pd.Series, *, quantiles: Sequence[float] = DEFAULT_QUANTILES, bins: int = 10
) -> dict[str, Any]:
    """Count, mean, std, min, max, quantiles and a quantile-binned histogram.

    >>> numeric_profile(pd.Series([1, 1, 1]), quantiles=(0.5,))["histogram"]
    {'edges': [1.0, 1.0], 'counts': [3]}
    >>> numeric_profile(pd.Series([None, "x"], dtype=object), quantiles=())["count"]
    0
    """
    raw = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    data = raw[np.isfinite(raw)]
    base: dict[str, Any] = {"count": int(data.size), "missing": int(raw.size - data.size)}
    if data.size == 0:
        empty = dict.fromkeys(("mean", "std", "min", "max"))
        return base | empty | {"quantiles": {}, "histogram": {"edges": [], "counts": []}}
    edges = _edges(data, bins)
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: mean becomes None
        mean, std = _finite(data.mean()), _finite(data.std())
    return base | {
        "mean": mean,
        "std": std,
        "min": float(data.min()),
        "max": float(data.max()),
        "quantiles": dict(
            zip(map(_quantile_key, quantiles), _quantiles(data, quantiles), strict=True)
        ),
        "histogram": {"edges": [float(e) for e in edges], "counts": bin_counts(data, edges)},
    }


def _quantile_key(q: float) -> str:
    return f"{q:g}"


def _quantiles(data: NDArray[np.float64], quantiles: Sequence[float]) -> list[float]:
    if not quantiles:
        return []
    return [float(v) for v in np.quantile(data, np.asarray(quantiles, dtype=float))]


def _edges(data: NDArray[np.float64], bins: int) -> NDArray[np.float64]:
    edges = np.unique(np.quantile(data, np.linspace(0.0, 1.0, bins + 1)))
    return np.repeat(edges, 2) if edges.size == 1 else edges


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def bin_counts(values: NDArray[np.float64], edges: NDArray[np.float64]) -> list[int]:
    """Histogram counts with the profile's convention (outer bins absorb the tails).

    >>> bin_counts(np.array([0.0, 1.0, 1.5, 2.0, 9.0]), np.array([1.0, 2.0, 3.0]))
    [3, 2]
    """
    bins = len(edges) - 1
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
    return [int(c) for c in np.bincount(index, minlength=bins)]


def categorical_profile(values: pd.Series, *, top: int = 20) -> dict[str, Any]:
    """Category counts: the ``top`` most frequent, the rest summed in ``other``.

    >>> categorical_profile(pd.Series([True, False, True, None]))
    {'count': 3, 'missing': 1, 'distinct': 2, 'counts': {'true': 2, 'false': 1}, 'other': 0}
    """
    present = values.dropna()
    labels = present.map(_category)
    counts = labels.value_counts(sort=False)
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    kept = {str(label): int(count) for label, count in ranked[:top]}
    return {
        "count": int(present.size),
        "missing": int(values.size - present.size),
        "distinct": len(ranked),
        "counts": kept,
        "other": int(present.size) - sum(kept.values()),
    }


def _category(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def data_fingerprint(frame: pd.DataFrame) -> str:
    """``sha256:<hex>`` of the rows (``pandas.util.hash_pandas_object``, index ignored)
    and the column names: equal data gives equal fingerprints on any machine."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(str(name) for name in frame.columns).encode())
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    digest.update(rows.astype("<u8").tobytes())
    return f"sha256:{digest.hexdigest()}"

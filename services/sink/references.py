"""``<prefix>._models`` → ``reference_profiles``: what drift is measured against, in SQL.

The registry's compacted topic holds artifact chunks (``<name>/<v>/chunk/<i>``) and version
signatures (``<name>/<v>/signature``), both skipped with no row, and one
``model_metadata`` record per version (``<name>/<v>``, Avro). A version
with a reference profile becomes one row per feature, read exactly as the monitor reads
it (:func:`streams.monitoring.drift.reference.references_from_profile`), so SQL bins live
values on the same cut points and compares them with the same reference CDF. A tombstone
(a version deleted by compaction) removes nothing: a reference outlives its version.

Examples
--------
>>> profile = {"numeric": {"age": {"count": 4, "std": 1.5, "quantiles": {"0.5": 25.0},
...                                "histogram": {"edges": [20.0, 30.0, 40.0],
...                                              "counts": [2, 2]}}}}
>>> row = dict(zip(REFERENCE_COLUMNS, profile_rows("churn", 3, profile)[0]))
>>> row["points"], row["cdf"], row["ref_fine"], row["starts"]
([20.0, 25.0, 30.0, 40.0], [0.0, 0.5, 0.5, 1.0], [0.5, 0.0, 0.5], [0, 2])
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise
from typing import Any, Final

import orjson

from services.registry._wire import ChunkKey, SignatureKey, codec, parse_key
from services.sink.landing import Position, Row, UnlandableError, from_millis
from streams.monitoring.drift import NumericReference, references_from_profile
from streams.monitoring.drift.methods import threshold_scale
from streams.monitoring.errors import ReferenceProfileError

__all__ = ["REFERENCE_COLUMNS", "profile_rows", "reference_rows"]

REFERENCE_COLUMNS: Final = (
    "model", "version", "feature", "kind", "edges", "ref_counts", "points", "cdf", "ref_fine",
    "starts", "categories", "total", "std", "wasserstein_scale", "registered_at",
    "training_data_fingerprint", "source_offset",
)  # fmt: skip
OTHER: Final = "other"


def reference_rows(value: bytes, pos: Position) -> list[Row]:
    """The rows of one ``_models`` record: none for a chunk or a tombstone."""
    key = parse_key((pos.key or b"").decode("utf-8", "replace"))
    if isinstance(key, ChunkKey | SignatureKey) or not value:
        return []
    if key is None:
        raise UnlandableError(
            "unexpected_key", f"expected a key <model>/<version>[/chunk/<i>], got {pos.key!r}"
        )
    record = codec("model_metadata").decode_avro(value)
    if (record["name"], record["version"]) != tuple(key):
        raise UnlandableError(
            "unexpected_key", f"key {key.model}/{key.version} holds "
            f"{record['name']}/{record['version']}"
        )  # fmt: skip
    if record["reference_profile"] is None:
        return []
    try:
        profile = orjson.loads(record["reference_profile"])
    except orjson.JSONDecodeError as exc:
        raise UnlandableError("bad_reference_profile", f"not JSON: {exc}") from exc
    return profile_rows(
        record["name"], record["version"], profile, registered_at=from_millis(record["created_at"]),
        fingerprint=record["training_data_fingerprint"] or "", offset=pos.offset,
    )  # fmt: skip


def profile_rows(
    model: str,
    version: int,
    profile: Mapping[str, Any],
    *,
    registered_at: datetime | None = None,
    fingerprint: str = "",
    offset: int = -1,
) -> list[Row]:
    """One row per feature the monitor can measure in ``profile``."""
    try:
        references = references_from_profile(profile)
    except (ReferenceProfileError, TypeError, ValueError, AttributeError) as exc:
        raise UnlandableError(
            "bad_reference_profile", f"{model}/{version}: {type(exc).__name__}: {exc}"
        ) from exc
    when = registered_at or from_millis(0)
    rows = []
    for feature, ref in references.items():
        scale = threshold_scale("wasserstein", ref)
        if isinstance(ref, NumericReference):
            fine = [b - a for a, b in pairwise(ref.cdf)]
            shape: tuple[Any, ...] = (
                "numeric", list(ref.edges), list(ref.counts), list(ref.points), list(ref.cdf),
                fine, list(ref.starts), [], ref.total, ref.std,
            )  # fmt: skip
        else:
            counts = ref.counts_with_other
            shape = ("categorical", [], list(counts), [], [], [], [],
                     [*ref.categories, OTHER], sum(counts), None)  # fmt: skip
        rows.append((model, str(version), feature, *shape, scale, when, fingerprint, offset))
    return rows

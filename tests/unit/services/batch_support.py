"""Shared pieces of the batch-scoring unit tests: a real (small) River deployment."""

from __future__ import annotations

from functools import cache
from typing import Any

from schemas.codec import Codec
from services.synthetic import input_schema, labelled_rows, river_challenger, river_champion
from streams.scoring import Deployment, ServedModel, adapt

SCHEMA = input_schema(3)
FEATURES = [f["name"] for f in SCHEMA["fields"]]


@cache
def _models() -> tuple[Any, Any]:
    train = labelled_rows(300, n_features=3)
    return river_champion(train), river_challenger(train)


def deployment(*, challenger: bool = False, champion: Any = None) -> Deployment:
    """Champion v1 (and challenger v2) trained on synthetic rows, as a registry would serve."""
    first, second = _models()

    def served(version: int, model: Any) -> ServedModel:
        return ServedModel(version, adapt(model, task="classification", features=FEATURES))

    return Deployment(
        model="m", task="classification", codec=Codec(SCHEMA),
        champion=served(1, champion or first),
        challenger=served(2, second) if challenger else None, sensitive=("group",),
    )  # fmt: skip


def row(i: int) -> dict[str, Any]:
    return {"x0": i / 10, "x1": -i / 7, "x2": 0.5, "group": "a" if i % 2 else "b"}

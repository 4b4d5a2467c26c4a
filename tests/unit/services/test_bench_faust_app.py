"""The faust baseline builds the scorer's reply record (checked against its schema) and
one scoring agent in every variant."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from schemas.codec import Codec
from schemas.contracts import load_schema
from services.bench._faust_variants import VARIANTS
from services.bench._stack import SCHEMA
from services.bench.faust_app import Models, build_app, reply_for


def test_faust_reply_is_a_valid_scorer_reply() -> None:
    models = Models("bench", 1, "classification", None, None, None)
    reply = reply_for(models, "b42", {False: 0.2, True: 0.8}, time.perf_counter())
    codec = Codec(load_schema("reply"))
    decoded = codec.decode_avro(codec.encode_avro(reply))
    assert decoded["request_id"] == "b42"
    assert decoded["prediction"] == "True"
    assert decoded["probabilities"] == {"False": 0.2, "True": 0.8}
    assert decoded["served_by"] == "champion"
    assert decoded["error"] is None


@pytest.mark.parametrize("variant", [v.name for v in VARIANTS])
def test_every_variant_builds_one_scoring_agent(variant: str, tmp_path: Path) -> None:
    args = argparse.Namespace(
        prefix="p", bootstrap="127.0.0.1:1", datadir=tmp_path, partitions=3,
        requests="p.bench.faust-requests", replies=f"p.bench.faust-replies-{variant}",
        variant=variant, max_batch=500,
    )  # fmt: skip
    app = build_app(args, Models("bench", 1, "classification", Codec(SCHEMA), None, None))
    assert app.conf.id == f"p.bench-faust-{variant}"
    assert [agent.name.rsplit(".", 1)[-1] for agent in app.agents.values()] == ["score"]

"""The faust baseline builds the scorer's reply record (checked against its schema)."""

from __future__ import annotations

import time

from schemas.codec import Codec
from schemas.contracts import load_schema
from services.bench.faust_app import Models, reply_for


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

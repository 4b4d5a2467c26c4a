"""The sink lands the monitor's window summaries and the registry's reference profiles from
real Kafka into the real ClickHouse engine; a record that cannot be a row goes to ``dlq``."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import pandas as pd
import pytest

from services.registry import Registry
from services.sink import Sink, SinkConfig
from services.synthetic import input_schema, labelled_rows, river_champion
from services.warehouse import Warehouse
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin, make_producer
from streams.monitoring.drift.reference import NumericReference, references_from_profile
from streams.monitoring.summaries import Summary

pytestmark = pytest.mark.integration
JSON = [("content-type", b"application/json")]


def summary(window: int, partition: int) -> bytes:
    record = Summary(
        "categorical", window * 60_000, (window + 1) * 60_000, (3.0, 1.0, 0.0),
        {"missing": 1.0}, feature="group", model_version=1,
    ).to_record(model="churn", partition=partition)  # fmt: skip
    return orjson.dumps(record)


def test_summaries_and_reference_profiles_land_bad_records_in_the_dlq(
    kafka: KafkaConfig, unique: Callable[[str], str], warehouse: Warehouse
) -> None:
    topics = Topics(unique("sums"))
    ensure_topics(make_admin(kafka), topics.global_specs(2))
    train = labelled_rows(300)
    frame = pd.DataFrame([row for row, _ in train])
    with Registry(kafka, topics, actor="tests", chunk_size=1_024) as registry:
        registered = registry.register("churn", river_champion(train), input_schema(),
                                       task="classification", reference=frame)  # fmt: skip
    assert registered.chunk_count >= 1  # chunk records, which the sink skips
    producer = make_producer(kafka)
    for i in range(40):
        producer.produce(topics.summaries, summary(i // 2, i % 2), b"churn", headers=JSON)
    producer.produce(topics.summaries, summary(0, 0), b"churn", headers=JSON)  # again
    bad = orjson.loads(summary(50, 0)) | {"counts": ["three"]}
    producer.produce(topics.summaries, orjson.dumps(bad), b"churn", headers=JSON)
    producer.produce(topics.summaries, b"not json", b"churn", headers=JSON)
    assert producer.flush(30) == 0

    sink = Sink(kafka, SinkConfig(topics, max_age=0.2), warehouse)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sink.stats["reference_profiles"] < 11:
        sink.step(0.2)
    while time.monotonic() < deadline and sink.stats["window_summaries"] < 41:
        sink.step(0.2)
    sink.flush_all()
    sink.close()

    final = "SELECT count(), sum(counts[1]) FROM window_summaries FINAL"
    assert warehouse.query(final).rows == [(40, 120.0)]
    columns, rows = warehouse.query(
        "SELECT feature, kind, points, cdf, ref_counts, categories FROM reference_profiles FINAL"
    )
    expected = references_from_profile(registered.reference_profile or {})
    got = {r[0]: dict(zip(columns, r, strict=True)) for r in rows}
    assert set(got) == set(expected) and len(got) == 11
    for feature, ref in expected.items():
        if isinstance(ref, NumericReference):
            assert (got[feature]["points"], got[feature]["cdf"]) == (list(ref.points),
                                                                     list(ref.cdf))  # fmt: skip
        else:
            assert got[feature]["categories"] == [*ref.categories, "other"]
    dlq = warehouse.query(
        "SELECT model, reason, headers['ms-reason'], message FROM dlq ORDER BY source_offset"
    ).rows  # fmt: skip
    assert [(m, r, h) for m, r, h, _ in dlq] == [("churn", "sink_decode", "sink_decode")] * 2
    assert "counts[0]" in dlq[0][3] and "not JSON" in dlq[1][3]

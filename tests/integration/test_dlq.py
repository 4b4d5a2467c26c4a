"""``modelstream dlq`` against the real broker and a real scorer (in this process: a
scorer subprocess and the registry would cost ~10 s more here, and neither is what is
tested): a request refused for an unknown model is listed, shown, re-driven once the
model is deployed, answered exactly once under its original request id, and a second
re-drive sends nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from confluent_kafka import TopicPartition
from typer.testing import CliRunner

from schemas.codec import Codec
from services.dlq import DlqReader, RedriveFencedError, Redriver, records_spec
from services.dlq.cli import app
from services.synthetic import input_schema, rows
from streams.kafka import (
    KafkaConfig,
    Topics,
    ensure_topics,
    make_admin,
    make_consumer,
    make_producer,
)
from streams.scoring import Deployment, DeploymentTable, Scorer, ScorerConfig, ServedModel, adapt
from tests.integration.scoring_support import collect, decode_reply, reader

SCHEMA = input_schema()


class _Yes:
    """A classifier that always says yes (what it says is not the point)."""

    def predict_proba_one(self, x: dict[str, Any]) -> dict[str, float]:
        return {"no": 0.3, "yes": 0.7}

    def predict_one(self, x: dict[str, Any]) -> str:
        return "yes"


def _deployment(model: str) -> Deployment:
    features = [f["name"] for f in SCHEMA["fields"]]
    predictor = adapt(_Yes(), task="classification", features=features)
    return Deployment(model, "classification", Codec(SCHEMA), ServedModel(1, predictor))


@contextmanager
def _scoring(kafka: KafkaConfig, topics: Topics) -> Iterator[DeploymentTable]:
    """A scorer serving what the yielded table holds (nothing at first)."""
    table = DeploymentTable()
    scorer = Scorer(kafka, ScorerConfig(topics), table)
    stop = threading.Event()
    thread = threading.Thread(target=scorer.run, args=(stop,), name="scorer", daemon=True)
    thread.start()
    try:
        yield table
    finally:
        stop.set()
        thread.join(30)
        scorer.close()


@pytest.fixture
def topics(kafka: KafkaConfig, unique: Callable[[str], str]) -> Topics:
    names = Topics(unique("dlq"))
    ensure_topics(make_admin(kafka), names.global_specs(1) + names.model_specs("m", 1))
    return names


def _cli(kafka: KafkaConfig, topics: Topics, *args: str) -> str:
    env = {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": topics.prefix,
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _end(kafka: KafkaConfig, topic: str, group: str) -> int:
    consumer = make_consumer(kafka, group)
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def test_redrive_answers_a_refused_request_once(
    kafka: KafkaConfig, topics: Topics, unique: Callable[[str], str]
) -> None:
    def cli(*args: str) -> str:
        return _cli(kafka, topics, *args)

    value = orjson.dumps(next(rows(1)))
    replies = reader(kafka, [topics.replies("m"), topics.dlq("m")], unique("g"))
    with _scoring(kafka, topics) as table:
        producer = make_producer(kafka)
        # no key, no request-id header: the scorer names it <topic>-<partition>-<offset>
        headers = [("content-type", b"application/json"), ("client-id", b"tester")]
        producer.produce(topics.requests("m"), value, None, headers=headers)
        assert producer.flush(10) == 0
        refused = collect(replies, 1, timeout=30, quiet=0)
        assert [m.topic for m in refused] == [topics.dlq("m")]
        assert refused[0].headers["ms-reason"] == b"unknown_model"
        rid, position = f"{topics.requests('m')}-0-0", f"{topics.dlq('m')}[0]@0"

        listed = orjson.loads(cli("list", "--model", "m", "--since", "1h", "--json"))
        assert [(e["position"], e["reason"], e["request_id"], e["client_id"], e["redriven"])
                for e in listed] == [(position, "unknown_model", rid, "tester", None)]  # fmt: skip
        assert orjson.loads(cli("list", "--all", "--since", "2999-01-01", "--json")) == []
        assert cli("show", position, "--raw").encode() == value
        shown = cli("show", rid, "--model", "m")
        assert "unknown_model" in shown and '"x0"' in shown
        assert "would re-drive 1 entries" in cli("redrive", "--model", "m", "--dry-run")
        assert _end(kafka, topics.requests("m"), unique("w")) == 1  # the dry run sent nothing

        table.put(_deployment("m"))  # the fix: the model is deployed now
        assert "re-drove 1 entries" in cli("redrive", "--model", "m", "--yes")
        sent = _end(kafka, topics.requests("m"), unique("w"))
        answers = collect(replies, 1, timeout=30, quiet=1.0)
        assert [decode_reply(m)["request_id"] for m in answers] == [rid]  # exactly one reply
        assert decode_reply(answers[0])["error"] is None

        again = cli("redrive", "--all", "--yes")
        assert "0 entries; 1 re-driven before are skipped" in again
        assert _end(kafka, topics.requests("m"), unique("w")) == sent  # nothing sent

    record = orjson.loads(cli("list", "--model", "m", "--json"))[0]["redriven"]
    assert (record["times"], record["request_id"]) == (1, rid)
    assert record["target"] == f"{topics.requests('m')}[0]@1"


def test_a_fenced_redrive_sends_and_records_nothing(
    kafka: KafkaConfig, topics: Topics, unique: Callable[[str], str]
) -> None:
    """Two re-drives at once: the later one fences the earlier, whose chunk is neither
    sent nor recorded; a repeated re-drive (--again) counts up."""
    producer = make_producer(kafka)
    headers = [("content-type", b"application/json"), ("ms-reason", b"wrong_type"),
               ("ms-stage", b"gateway"), ("ms-request-id", b"gw-1")]  # fmt: skip
    producer.produce(topics.dlq("m"), b'{"x0": 1}', None, headers=headers)
    assert producer.flush(10) == 0
    ensure_topics(make_admin(kafka), [records_spec(topics)])
    with DlqReader(kafka, topics) as dlq:
        (entry,) = dlq.entries([topics.dlq("m")])
        first = Redriver(kafka, topics, "first")
        second = Redriver(kafka, topics, "second")  # same transactional id: fences first
        with pytest.raises(RedriveFencedError, match="run the command again"):
            first.send([entry], {})
        assert dlq.redrives() == {}
        (record,) = second.send([entry], dlq.redrives())
        assert (record.actor, record.times, record.request_id) == ("second", 1, "gw-1")
        (again,) = second.send([entry], dlq.redrives())
        assert again.times == 2 and dlq.redrives() == {entry.position: again}
        second.close()
    requests = reader(kafka, [topics.requests("m")], unique("g"))
    sent = collect(requests, 2, timeout=10, quiet=0.5)
    assert [(m.value, m.headers["request-id"]) for m in sent] == [(b'{"x0": 1}', b"gw-1")] * 2


def test_show_and_list_refuse_what_is_not_a_dlq_of_this_deployment(
    kafka: KafkaConfig, topics: Topics
) -> None:
    env = {"MODELSTREAM_KAFKA": kafka.bootstrap, "MODELSTREAM_TOPIC_PREFIX": topics.prefix}
    runner = CliRunner()
    result = runner.invoke(app, ["show", f"{topics.requests('m')}[0]@0"], env=env)
    assert result.exit_code == 1 and "is not a DLQ topic of this deployment" in result.output
    result = runner.invoke(app, ["list", "--model", "nosuch"], env=env)
    assert result.exit_code == 1 and "--all" in result.output
    result = runner.invoke(app, ["show", f"{topics.dlq('m')}[0]@5"], env=env)
    assert result.exit_code == 1 and "is not in the topic" in result.output

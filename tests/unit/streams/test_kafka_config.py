"""Topic naming and client config, no broker."""

from __future__ import annotations

import pytest

from streams.kafka import KafkaConfig, Topics, consumer_config, producer_config


def test_model_topic_set() -> None:
    names = [spec.name for spec in Topics("p").model_specs("iris", 2)]
    assert names == [
        f"p.iris.{k}" for k in ("requests", "replies", "predictions", "feedback", "dlq")
    ]


def test_registry_topics_are_compacted_single_partition() -> None:
    specs = {spec.name: spec for spec in Topics("p").global_specs(3)}
    for name in ("p._models", "p._routing"):
        assert specs[name].config["cleanup.policy"] == "compact"
        assert specs[name].partitions == 1
    assert specs["p.metrics"].partitions == 3


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "x" * 101, "é"])
def test_bad_model_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not valid"):
        Topics().requests(bad)


def test_sasl_settings_pass_through_and_password_is_not_in_repr() -> None:
    cfg = KafkaConfig("h:9092", security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                      username="alice", password="s3cret")  # fmt: skip
    conf = producer_config(cfg)
    assert conf["sasl.username"] == "alice"
    assert conf["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(cfg)


def test_overrides_accept_underscored_keys() -> None:
    conf = consumer_config(KafkaConfig("h:1"), "g", fetch_wait_max_ms=50)
    assert conf["fetch.wait.max.ms"] == 50

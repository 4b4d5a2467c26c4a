from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.settings import Settings


def test_defaults_point_at_the_embedded_warehouse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSTREAM_DATA_DIR", "/srv/ms")
    settings = Settings()
    assert settings.clickhouse_dsn == "chdb:///srv/ms/warehouse"
    assert settings.kafka is None
    assert settings.topic_prefix == "modelstream"
    assert settings.kafka_dir == Path("/srv/ms/kafka")


def test_server_dsn_and_kafka_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSTREAM_CLICKHOUSE", "http://u:p@ch:8123/db")
    monkeypatch.setenv("MODELSTREAM_KAFKA", "k1:9092,k2:9092")
    settings = Settings()
    assert settings.clickhouse_dsn == "http://u:p@ch:8123/db"
    assert settings.kafka == "k1:9092,k2:9092"


@pytest.mark.parametrize(
    ("var", "value"),
    [("MODELSTREAM_TOPIC_PARTITIONS", "0"), ("MODELSTREAM_TOPIC_PREFIX", "a/b"),
     ("MODELSTREAM_CLICKHOUSE_TTL_DAYS", "-1")],
)  # fmt: skip
def test_bad_values_fail_fast(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError):
        Settings()


def test_password_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSTREAM_KAFKA_PASSWORD", "hunter2")
    assert "hunter2" not in repr(Settings())

"""Session fixtures: ONE real Kafka broker per test session, per-test topics and groups.

The broker is started through ``services.localstack`` on free ports in a temporary
directory. If it cannot start, every integration test errors: these tests never skip.
``MODELSTREAM_KAFKA`` points the suite at an existing cluster instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.localstack import LocalBroker, resolve_jars
from services.settings import Settings
from streams.kafka import KafkaConfig, TopicSpec, ensure_topics, make_admin


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | None]:
    """The session's broker (None when MODELSTREAM_KAFKA names an existing cluster)."""
    if os.environ.get("MODELSTREAM_KAFKA"):
        yield None
        return
    settings = Settings()
    libs = resolve_jars(settings.kafka_version, settings.cache_dir)
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), libs, heap_mb=512)
    try:
        broker.start(timeout=120)
    except Exception as exc:  # noqa: BLE001 - any start failure fails the session
        pytest.fail(f"the test broker did not start: {exc}", pytrace=False)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka(kafka_broker: LocalBroker | None) -> KafkaConfig:
    """Connection config for the session's broker."""
    if kafka_broker is None:
        return KafkaConfig(os.environ["MODELSTREAM_KAFKA"], client_id="tests")
    status = kafka_broker.status()
    assert status.bootstrap, "the session broker is not running"
    return KafkaConfig(status.bootstrap, client_id="tests")


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names unique to this test (topic prefixes, group ids, transactional ids)."""
    tag = uuid.uuid4().hex[:10]
    return lambda stem: f"{stem}-{tag}"


@pytest.fixture
def make_topic(kafka: KafkaConfig, unique: Callable[[str], str]) -> Callable[..., str]:
    """Create a fresh topic for this test; returns its name."""
    admin = make_admin(kafka)

    def create(stem: str = "t", partitions: int = 3, **config: str) -> str:
        name = unique(stem)
        ensure_topics(admin, [TopicSpec(name, partitions, config)])
        return name

    return create


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"

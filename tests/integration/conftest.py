"""Integration tier: a real Kafka broker and the real ClickHouse engine, no mocks."""

import os

import pytest

from tests.integration.fixtures_warehouse import *  # noqa: F403  (fixtures)
from tests.integration.kafka_fixtures import *  # noqa: F403  (fixtures)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against a ClickHouse server (MODELSTREAM_TEST_CLICKHOUSE), tests about the embedded
    engine's process model are deselected, visibly, rather than skipped."""
    if not os.environ.get("MODELSTREAM_TEST_CLICKHOUSE"):
        return
    dropped = [item for item in items if "embedded_only" in item.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if "embedded_only" not in item.keywords]

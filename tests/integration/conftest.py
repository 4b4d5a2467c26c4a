"""Integration tier: a real Kafka broker and the real ClickHouse engine, no mocks."""

from tests.integration.fixtures_warehouse import *  # noqa: F403  (fixtures)
from tests.integration.kafka_fixtures import *  # noqa: F403  (fixtures)

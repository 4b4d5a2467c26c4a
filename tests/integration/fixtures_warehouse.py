"""pytest fixtures for the warehouse: one embedded ClickHouse per session, a database per test.

chDB lets a process hold ONE engine directory at a time (any number of handles on it), and
a directory belongs to one process. So the session opens a single chDB directory and keeps
a handle on it for the whole run; tests are isolated by database, not by directory. Any
test that needs ClickHouse must use ``warehouse_dsn`` (or the fixtures built on it): a
second chDB directory opened in the same pytest process fails with ``WarehouseLocked``.

Set ``MODELSTREAM_TEST_CLICKHOUSE=http://user:pass@host:8123`` to run the same tests
against a ClickHouse server instead.

Use from a conftest: ``from tests.integration.fixtures_warehouse import *``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.warehouse import Warehouse, connect

__all__ = [
    "SAMPLE_ROWS",
    "as_insert",
    "empty_warehouse",
    "sample_row",
    "warehouse",
    "warehouse_database",
    "warehouse_dsn",
    "warehouse_engine",
    "warehouse_path",
]

_TS = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)

# One realistic row per table, keyed by column: tests insert them and read them back.
SAMPLE_ROWS: dict[str, dict[str, Any]] = {
    "predictions": {
        "request_id": "req-0001",
        "model": "churn",
        "ts": _TS,
        "client_id": "crm-backend",
        "source_topic": "modelstream.churn.requests",
        "source_partition": 3,
        "source_offset": 41_977,
        "features": {"age": "42", "plan": "pro", "tenure_months": "17.5", "tags": '["a","b"]'},
        "champion_version": "7",
        "champion_output": "stay",
        "champion_probabilities": {"stay": 0.83, "churn": 0.17},
        "champion_latency_ms": 1.9,
        "champion_error": "",
        "challenger_version": "8",
        "challenger_output": "churn",
        "challenger_probabilities": {"stay": 0.41, "churn": 0.59},
        "challenger_latency_ms": 2.4,
        "challenger_error": "",
        "challenger_skipped": False,
        "served_by": "champion",
        "backup_version": None,
        "backup_output": None,
        "backup_probabilities": {},
        "backup_latency_ms": None,
        "backup_error": "",
        "sensitive": {"gender": "f", "age_band": "40-49"},
        "schema_fingerprint": "9c1e3a7fd2b04a11",
        "training_data_fingerprint": "sha256:5be0c1",
        "latency_ms": 4.7,
        "source": "stream",
    },
    "feedback": {
        "request_id": "req-0001",
        "model": "churn",
        "ts": datetime(2024, 5, 20, 8, 0, tzinfo=UTC),
        "label_string": "churn",
        "label_number": None,
        "source": "billing-system",
    },
    "metrics": {
        "ts": _TS,
        "model": "churn",
        "model_version": "7",
        "role": "champion",
        "kind": "drift",
        "name": "psi",
        "feature": "age",
        "group": "",
        "window_start": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "window_end": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        "value": 0.27,
        "count": 5_000,
        "labels": {"reference": "training"},
    },
    "alerts": {
        "ts": _TS,
        "alert_id": "churn/drift/psi/age",
        "model": "churn",
        "model_version": "7",
        "role": "champion",
        "kind": "drift",
        "name": "psi",
        "feature": "age",
        "group": "",
        "severity": "warning",
        "status": "firing",
        "value": 0.27,
        "threshold": 0.2,
        "window_start": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "window_end": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        "message": "psi of age is 0.27, expected below 0.2",
        "labels": {},
    },
    "dlq": {
        "request_id": "",
        "model": "churn",
        "ts": _TS,
        "reason": "decode_error",
        "message": "expected Avro single-object encoding (c3 01), got bytes starting 7b 22",
        "stage": "decode",
        "source_topic": "modelstream.churn.requests",
        "source_partition": 0,
        "source_offset": 12,
        "headers": {"content-type": "application/avro", "client-id": "legacy"},
        "payload": b'{"age": \xff\x00 "42"',
    },
    "model_events": {
        "ts": _TS,
        "model": "churn",
        "version": "8",
        "action": "set_challenger",
        "actor": "ana@example.com",
        "reason": "retrained on April data",
        "details": '{"traffic": 1.0, "previous": null}',
    },
    "window_summaries": {
        "model": "churn",
        "partition": 3,
        "window_start": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        "window_end": datetime(2024, 5, 1, 12, 31, tzinfo=UTC),
        "kind": "numeric",
        "model_version": "7",
        "role": "",
        "feature": "age",
        "group": "",
        "counts": [0.0, 4.0, 11.0, 9.0, 3.0, 1.0],
        "stats": {
            "missing": 2.0,
            "below": 0.0,
            "below_sum": 0.0,
            "above": 1.0,
            "above_sum": 97.0,
            "count": 28.0,
            "sum": 1302.5,
            "sum_sq": 65210.25,
        },
        "source_topic": "modelstream.summaries",
        "source_partition": 1,
        "source_offset": 5_120,
    },
    "reference_profiles": {
        "model": "churn",
        "version": "7",
        "feature": "age",
        "kind": "numeric",
        "edges": [18.0, 31.0, 44.0, 58.0, 90.0],
        "ref_counts": [250, 250, 250, 250],
        "points": [18.0, 22.0, 31.0, 44.0, 58.0, 79.0, 90.0],
        "cdf": [0.0, 0.05, 0.25, 0.5, 0.75, 0.99, 1.0],
        "ref_fine": [0.05, 0.2, 0.25, 0.25, 0.24, 0.01],
        "starts": [0, 2, 3, 4],
        "categories": [],
        "total": 1_000,
        "std": 15.2,
        "wasserstein_scale": 15.2,
        "registered_at": _TS,
        "training_data_fingerprint": "sha256:5be0c1",
        "source_offset": 12,
    },
}


def sample_row(table: str, **overrides: Any) -> dict[str, Any]:
    """A copy of ``SAMPLE_ROWS[table]`` with some columns replaced."""
    return {**SAMPLE_ROWS[table], **overrides}


def as_insert(rows: Sequence[Mapping[str, Any]]) -> tuple[list[list[Any]], list[str]]:
    """Rows as dicts -> (rows as lists, column names), the shape ``Warehouse.insert`` takes."""
    columns = list(rows[0])
    return [[row[c] for c in columns] for row in rows], columns


@pytest.fixture(scope="session")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's chDB directory (the only one this process may open)."""
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def warehouse_dsn(warehouse_path: Path) -> str:
    """DSN of the session's warehouse; pass ``database=`` to ``connect`` to isolate."""
    return os.environ.get("MODELSTREAM_TEST_CLICKHOUSE") or f"chdb://{warehouse_path}"


@pytest.fixture(scope="session")
def warehouse_engine(warehouse_dsn: str) -> Iterator[Warehouse]:
    """A handle on the default database, open all session: the engine starts once."""
    with connect(warehouse_dsn) as handle:
        yield handle


@pytest.fixture
def warehouse_database(warehouse_engine: Warehouse) -> Iterator[str]:
    """A fresh database name for this test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    warehouse_engine.command(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.fixture
def empty_warehouse(warehouse_dsn: str, warehouse_database: str) -> Iterator[Warehouse]:
    """A warehouse on this test's own, empty database."""
    with connect(warehouse_dsn, database=warehouse_database) as handle:
        yield handle


@pytest.fixture
def warehouse(empty_warehouse: Warehouse) -> Warehouse:
    """A warehouse on this test's own database, with every migration applied (no TTL)."""
    empty_warehouse.migrate()
    return empty_warehouse

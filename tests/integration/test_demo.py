"""`modelstream demo` end to end, as a user runs it (against the session's broker)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from streams.kafka import KafkaConfig
from tests.integration.scoring_support import MODELSTREAM


def test_demo_runs_end_to_end_and_writes_its_summary(kafka: KafkaConfig, tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [MODELSTREAM, "demo", "--events", "3000", "--rate", "1000", "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["events"] == 3000
    assert summary["replies"] + summary["dlq"] == 3000  # requests in = replies + DLQ
    assert summary["dlq"] > 0  # the demo sends a few malformed requests on purpose
    assert summary["drift"] == {"feature": "x3", "at_event": 1500}
    drift = [a for a in summary["alerts"] if a["kind"] == "drift" and a["feature"] == "x3"]
    assert drift and drift[0]["at_event"] >= 1400, summary["alerts"]  # after the injection
    assert {"champion", "challenger"} <= set(summary["performance"])
    assert 0.5 < summary["performance"]["champion"]["accuracy"] <= 1.0
    assert summary["fairness"]["attribute"] == "group"
    assert "demographic_parity_difference" in summary["fairness"]
    assert "equalized_odds_difference" in summary["fairness"]
    gateway = summary["gateway"]
    assert gateway["served"] == 400 + 100 + 10  # predictions, batch minus its bad record, infer
    assert gateway["batch"] == {"count": 101, "succeeded": 100, "failed": 1}
    assert gateway["refused"] == {"unauthenticated": 401, "invalid_input": 422}
    assert gateway["status"]["200"] == 400 + 2
    # everything the scorer answered, over Kafka or HTTP, landed once in the warehouse
    assert summary["warehouse_rows"]["predictions"] == summary["replies"] + gateway["served"]
    assert "modelstream sql" in done.stdout

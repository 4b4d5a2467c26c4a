"""Kafka that is not there fails a command in one line; Kafka that is there prints no raw
librdkafka lines (``%4|...|GETPID|...``) on stderr. Real commands as subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import orjson
import pytest
from sklearn.linear_model import LogisticRegression

from services.localstack import free_port
from streams.kafka import KafkaConfig, make_producer

RAW_LIBRDKAFKA = re.compile(r"^%\d\|", re.M)  # librdkafka's own stderr format
CLOSED = f"127.0.0.1:{free_port()}"


def modelstream(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the command; the 20 s timeout bounds the wait (it raises if the command hangs)."""
    started = time.monotonic()
    done = subprocess.run(
        [Path(sys.executable).with_name("modelstream"), *args],
        capture_output=True, text=True, env=os.environ | env, timeout=120, check=False,
    )  # fmt: skip
    return done, time.monotonic() - started


@pytest.mark.parametrize(
    ("bootstrap", "command", "reason"),
    [
        (CLOSED, ["models", "list"], r"connection refused"),
        (CLOSED, ["run", "monitor", "--instance", "reach"], r"connection refused"),
        ("nohost.invalid:9092", ["topics", "create"], r"host not found|name lookup failed"),
    ],
    ids=["closed-port-models-list", "closed-port-run-monitor", "unknown-host"],  # stable
)
def test_an_unreachable_bootstrap_fails_in_one_line(
    bootstrap: str, command: list[str], reason: str, tmp_path: Path
) -> None:
    env = {"MODELSTREAM_KAFKA": bootstrap, "MODELSTREAM_DATA_DIR": str(tmp_path)}
    done, seconds = modelstream(env, *command)
    print(f"{' '.join(command)} against {bootstrap}: exit {done.returncode} in {seconds:.1f} s")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert re.match(rf"error: cannot reach Kafka at {bootstrap} \(({reason})\): ", lines[0])
    assert "MODELSTREAM_KAFKA" in lines[0] and "`modelstream kafka start`" in lines[0]
    assert not RAW_LIBRDKAFKA.search(done.stderr)


def test_a_transactional_write_prints_no_raw_librdkafka_line(
    kafka: KafkaConfig, unique: Callable[[str], str], tmp_path: Path
) -> None:
    """The first transactional write of a broker is often answered "coordinator load in
    progress" (GETPID, retried): that is INFO in Python logging, not a line on stderr."""
    schema, artifact = tmp_path / "s.avsc", tmp_path / "m.pkl"
    schema.write_bytes(orjson.dumps({"type": "record", "name": "R", "fields": [
        {"name": "a", "type": "double"}, {"name": "b", "type": "double"}]}))  # fmt: skip
    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]], [0, 1, 0, 1])
    artifact.write_bytes(cloudpickle.dumps(model))
    env = {"MODELSTREAM_KAFKA": kafka.bootstrap, "MODELSTREAM_TOPIC_PREFIX": unique("reach"),
           "MODELSTREAM_DATA_DIR": str(tmp_path)}  # fmt: skip
    done, _ = modelstream(env, "models", "register", "m", "--artifact", str(artifact),
                          "--input-schema", str(schema))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not RAW_LIBRDKAFKA.search(done.stderr), done.stderr
    assert "GETPID" not in done.stderr


def test_a_transactional_producer_logs_through_python(
    kafka: KafkaConfig,
    unique: Callable[[str], str],
    make_topic: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic("reach", 1)
    caplog.set_level("DEBUG", logger="modelstream.kafka")
    producer = make_producer(kafka, transactional_id=unique("reach-tx"))
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"x")
    producer.commit_transaction(30)
    assert producer.flush(10) == 0
    assert not RAW_LIBRDKAFKA.search(capfd.readouterr().err)
    loud = [r.getMessage() for r in caplog.records if r.levelno >= 30]
    assert loud == [], loud

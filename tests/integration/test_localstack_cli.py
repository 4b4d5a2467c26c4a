"""`modelstream kafka start|status|stop` as a user runs them, and topic admin."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka.admin import ConfigResource

from streams.kafka import (
    KafkaConfig,
    Topics,
    ensure_topics,
    make_admin,
    make_consumer,
    make_producer,
)


def modelstream(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"MODELSTREAM_DATA_DIR": str(data_dir)}
    env.pop("MODELSTREAM_KAFKA", None)
    return subprocess.run(
        [Path(sys.executable).with_name("modelstream"), *args],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )  # fmt: skip


def alive(pid: int) -> bool:
    """Running and not a zombie waiting for its (re)parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_kafka_start_status_stop(data_dir: Path) -> None:
    assert modelstream(data_dir, "kafka", "status").returncode == 3
    started = modelstream(data_dir, "kafka", "start")
    assert started.returncode == 0, started.stderr
    bootstrap = re.search(r"^bootstrap=(127\.0\.0\.1:\d+)$", started.stdout, re.M)
    assert bootstrap, started.stdout
    status = modelstream(data_dir, "kafka", "status")
    assert status.returncode == 0 and bootstrap.group(1) in status.stdout
    pid = int(re.search(r"pid=(\d+)", status.stdout).group(1))  # type: ignore[union-attr]
    again = modelstream(data_dir, "kafka", "start", "--port", "1")  # says what it did not do
    assert again.returncode == 0 and f"bootstrap={bootstrap.group(1)}" in again.stdout
    assert "already running" in again.stdout and "--port 1 is ignored" in again.stdout
    # users and ACLs need a secure broker: said before anything is changed
    refused = modelstream(data_dir, "kafka", "users", "add", "bob", "--role", "scorer")
    assert refused.returncode == 1 and "has no security" in refused.stderr
    assert "modelstream kafka start --secure" in refused.stderr

    cfg = KafkaConfig(bootstrap.group(1))
    created = ensure_topics(make_admin(cfg), Topics("cli").model_specs("m", 1))
    assert len(created) == 5
    producer = make_producer(cfg)
    producer.produce("cli.m.requests", b"hello")
    assert producer.flush(10) == 0
    consumer = make_consumer(cfg, "cli-g")
    consumer.subscribe(["cli.m.requests"])
    deadline, got = time.monotonic() + 20, []
    while not got and time.monotonic() < deadline:
        got = [m.value() for m in consumer.consume(10, 0.5) if m.error() is None]
    consumer.close()
    assert got == [b"hello"]

    stopped = modelstream(data_dir, "kafka", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not alive(pid), "the broker process is still there"
    assert modelstream(data_dir, "kafka", "status").returncode == 3


def test_ensure_topics_is_idempotent_and_compacts_registry(
    kafka: KafkaConfig, unique: Callable[[str], str]
) -> None:
    names = Topics(unique("p"))
    specs = names.global_specs(2) + names.model_specs("demo", 2)
    admin = make_admin(kafka)
    assert sorted(ensure_topics(admin, specs)) == sorted(s.name for s in specs)
    assert ensure_topics(admin, specs) == []
    resource = ConfigResource("topic", names.routing)
    config = admin.describe_configs([resource])[resource].result()
    assert config["cleanup.policy"].value == "compact"

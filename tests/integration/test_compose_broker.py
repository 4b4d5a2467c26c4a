"""docker-compose.yml's Kafka, run for real: its `KAFKA_*` environment turned into
server.properties the way the apache/kafka image does, its JAAS file from
`modelstream compose-secrets`, the same Kafka release from Maven Central. Then the compose
`kafka-users` step, and a part logging in as its role (no Docker needed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka import KafkaError, Producer
from typer.testing import CliRunner

from services.cli import app
from services.localstack import free_port, resolve_jars
from services.security.compose import compose_secrets
from services.settings import Settings
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin

ROOT = Path(__file__).resolve().parents[2]
NOT_PROPERTIES = {"KAFKA_OPTS", "KAFKA_HEAP_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS"}


def image_properties(env: dict[str, object]) -> dict[str, str]:
    """The apache/kafka image's rule: KAFKA_FOO_BAR=v becomes foo.bar=v."""
    return {
        key.removeprefix("KAFKA_").lower().replace("__", "-").replace("_", "."): str(value)
        for key, value in env.items()
        if key.startswith("KAFKA_") and key not in NOT_PROPERTIES
    }


@pytest.fixture(scope="module")
def compose_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The compose broker on loopback ports; yields (bootstrap, secrets dir)."""
    base = tmp_path_factory.mktemp("compose")
    secrets = base / "secrets"
    compose_secrets(secrets)
    kafka = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["kafka"]
    env = kafka["environment"]
    port, controller = free_port(), free_port()
    props = image_properties(env) | {
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "log.dirs": str(base / "data"),
    }
    (base / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    jaas = env["KAFKA_OPTS"].split("=", 1)[1].replace("/run/secrets", str(secrets))
    libs = resolve_jars(Settings().kafka_version, Settings().cache_dir)
    java = shutil.which("java") or "java"
    classpath = f"{libs}/*"
    tool = [java, "-cp", classpath, "kafka.tools.StorageTool"]
    cluster = subprocess.run([*tool, "random-uuid"], capture_output=True, text=True, check=True)
    subprocess.run([*tool, "format", "-t", cluster.stdout.strip(), "-c",
                    str(base / "server.properties")], capture_output=True, check=True)  # fmt: skip
    log = (base / "broker.log").open("wb")
    broker = subprocess.Popen(
        [java, "-Xmx384m", f"-Djava.security.auth.login.config={jaas}", "-cp", classpath,
         "kafka.Kafka", str(base / "server.properties")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        bootstrap = f"127.0.0.1:{port}"
        wait_for_admin(bootstrap, secrets, broker, base / "broker.log")
        yield bootstrap, secrets
    finally:
        os.killpg(broker.pid, signal.SIGKILL)
        broker.wait(10)
        log.close()


def admin_config(bootstrap: str, secrets: Path) -> KafkaConfig:
    password = (secrets / "kafka_admin").read_text().strip()
    return KafkaConfig(bootstrap, "tests-admin", "SASL_PLAINTEXT", "PLAIN", "admin", password)


def wait_for_admin(bootstrap: str, secrets: Path, broker: subprocess.Popen[bytes],
                   log: Path) -> None:  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert broker.poll() is None, f"the broker exited:\n{log.read_text()[-3000:]}"
        try:
            make_admin(admin_config(bootstrap, secrets)).list_topics(timeout=2)
            return
        except Exception:  # noqa: BLE001 - not ready yet
            time.sleep(0.5)
    pytest.fail(f"the compose broker never answered its admin:\n{log.read_text()[-3000:]}")


def produce_one(cfg: KafkaConfig, topic: str) -> KafkaError | None:
    reports: list[KafkaError | None] = []
    producer = Producer(cfg.common() | {"message.timeout.ms": 10_000})
    producer.produce(topic, b"{}", on_delivery=lambda e, _m: reports.append(e))
    assert producer.flush(15) == 0, "no delivery report within 15 s"
    return reports[0]


def test_the_compose_broker_admits_each_role_to_its_topics_only(
    compose_broker: tuple[str, Path],
) -> None:
    bootstrap, secrets = compose_broker
    setup = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["kafka-users"]
    args = [a.replace("/run/secrets", str(secrets)).replace("${MODELSTREAM_MODEL:-churn}", "m")
            for a in setup["command"]]  # fmt: skip
    env = {k: str(v) for k, v in setup["environment"].items()} | {
        "MODELSTREAM_KAFKA": bootstrap,
        "MODELSTREAM_KAFKA_PASSWORD_FILE": str(secrets / "kafka_admin"),
        "MODELSTREAM_TOPIC_PREFIX": "cmp",
    }
    done = CliRunner().invoke(app, args, env=env)
    assert done.exit_code == 0, done.output
    names = Topics("cmp")
    ensure_topics(make_admin(admin_config(bootstrap, secrets)),
                  names.model_specs("m", 1) + names.global_specs(1))  # fmt: skip

    def user(role: str) -> KafkaConfig:
        password = (secrets / f"kafka_{role}").read_text().strip()
        return KafkaConfig(bootstrap, f"tests-{role}", "SASL_PLAINTEXT", "SCRAM-SHA-256", role,
                           password)  # fmt: skip

    assert produce_one(user("scorer"), names.replies("m")) is None
    denied = produce_one(user("scorer"), names.models)
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_one(user("gateway"), names.requests("m")) is None
    denied = produce_one(user("sink"), names.requests("m"))
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    wrong = KafkaConfig(bootstrap, "tests-x", "SASL_PLAINTEXT", "SCRAM-SHA-256", "scorer", "no")
    errors: list[KafkaError] = []
    producer = Producer(wrong.common() | {"error_cb": errors.append})
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        producer.poll(0.1)
    assert [e for e in errors if e.code() == KafkaError._AUTHENTICATION], errors

"""Local stack logic that needs no broker: tool checks, config (secure too), ports."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.localstack import (
    BrokerError,
    LocalBroker,
    MissingToolError,
    _server_properties,
    free_port,
    resolve_jars,
)
from services.security import SecurityModeError
from services.security.local import (
    CREDENTIALS_FILE,
    AdminCredentials,
    check_running_mode,
    create_credentials,
    credentials_for_start,
    load_credentials,
    write_private,
)


def test_missing_maven_names_the_tool_and_the_alternative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError) as info:
        resolve_jars("4.1.1", tmp_path / "cache")
    assert "'mvn'" in str(info.value)
    assert "MODELSTREAM_KAFKA=host:port" in str(info.value)


def test_missing_java_names_the_tool_and_the_alternative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError) as info:
        LocalBroker(tmp_path / "state", tmp_path / "libs").start(timeout=1)
    assert "'java'" in str(info.value)
    assert "MODELSTREAM_KAFKA" in str(info.value)


def test_resolved_jars_are_reused_without_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libs = tmp_path / "kafka-4.1.1" / "libs"
    libs.mkdir(parents=True)
    (libs / ".complete").write_text("4.1.1")
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn: a warm cache must not need it
    assert resolve_jars("4.1.1", tmp_path) == libs


def test_server_properties_support_transactions_on_one_node(tmp_path: Path) -> None:
    props = dict(
        line.split("=", 1) for line in _server_properties(tmp_path, 9092, 9093).splitlines()
    )
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["node.id"] in props["controller.quorum.voters"].split("@")[0]


def test_status_of_a_never_started_broker(tmp_path: Path) -> None:
    status = LocalBroker(tmp_path, tmp_path).status()
    assert not status.running
    assert status.pid is None


def test_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    (tmp_path / "broker.json").write_text('{"pid": 1, "port": 1, "bootstrap": "127.0.0.1:1"}')
    assert not LocalBroker(tmp_path, tmp_path).status().running  # pid 1 is not our broker


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_secure_server_properties_use_sasl_and_the_standard_authorizer(tmp_path: Path) -> None:
    admin = AdminCredentials("admin", "s3cret-pw")
    props = _props(_server_properties(tmp_path, 9092, 9093, admin))
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:9092"
    assert props["inter.broker.listener.name"] == "SASL_PLAINTEXT"
    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
    )
    mechanisms = props["sasl.enabled.mechanisms"].split(",")
    assert set(mechanisms) == {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
    for mechanism in mechanisms:  # no JAAS file: one entry per enabled mechanism
        assert props[f"listener.name.sasl_plaintext.{mechanism.lower()}.sasl.jaas.config"]
    assert props["sasl.mechanism.inter.broker.protocol"] == "PLAIN"
    assert props["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"  # no ANONYMOUS: the controller uses SASL
    assert props["transaction.state.log.replication.factor"] == "1"  # still one node


def test_the_admin_password_is_only_in_the_plain_jaas_entries(tmp_path: Path) -> None:
    admin = AdminCredentials("admin", "s3cret-pw")
    props = _props(_server_properties(tmp_path, 9092, 9093, admin))
    holding = {key for key, value in props.items() if "s3cret-pw" in value}
    assert holding == {
        "listener.name.controller.plain.sasl.jaas.config",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config",
    }
    assert 'user_admin="s3cret-pw"' in props["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert props["listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    )


def test_insecure_server_properties_have_no_sasl(tmp_path: Path) -> None:
    props = _props(_server_properties(tmp_path, 9092, 9093))
    assert not [key for key in props if "sasl" in key or "authorizer" in key]
    assert props["listeners"].startswith("PLAINTEXT://")


def test_credentials_are_generated_once_and_kept_owner_only(tmp_path: Path) -> None:
    created = create_credentials(tmp_path)
    path = tmp_path / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(tmp_path) == created
    assert len(created.password) >= 24
    assert created.password not in repr(created)
    assert credentials_for_start(tmp_path, secure=True) == created  # reused, not regenerated


def test_write_private_tightens_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_secure_state_dir_refuses_to_start_without_security(tmp_path: Path) -> None:
    create_credentials(tmp_path)
    with pytest.raises(SecurityModeError) as info:
        credentials_for_start(tmp_path, secure=False)
    assert "--secure" in str(info.value)
    assert credentials_for_start(tmp_path / "fresh", secure=False) is None


def test_a_running_broker_of_the_other_mode_is_not_handed_out(tmp_path: Path) -> None:
    with pytest.raises(SecurityModeError, match="--secure"):
        check_running_mode(tmp_path, False, True)
    with pytest.raises(SecurityModeError, match="kafka stop"):
        check_running_mode(tmp_path, True, False)
    check_running_mode(tmp_path, True, True)


def test_an_unreadable_credentials_file_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / CREDENTIALS_FILE).write_text("{not json")
    with pytest.raises(BrokerError, match="remove it"):
        LocalBroker(tmp_path, tmp_path).admin_credentials()

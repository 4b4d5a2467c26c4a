"""Local stack logic that needs no broker: tool checks, config, ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.localstack import (
    LocalBroker,
    MissingToolError,
    _server_properties,
    free_port,
    resolve_jars,
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

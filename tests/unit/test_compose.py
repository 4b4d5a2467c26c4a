"""docker-compose.yml stays consistent with the code: every modelstream service runs a
real CLI command, and every setting it passes is one the services read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main
import yaml

from services.cli import app
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def modelstream_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in compose()["services"].items()
        if svc.get("image", "").startswith("modelstream")
    }  # fmt: skip


def _is_group(node: Any) -> bool:
    # duck-typed: typer may bring its own copy of click, whose Group is not click.Group
    return hasattr(node, "list_commands")


def resolve(command: list[str]) -> Any:
    """Walk the CLI tree along ``command``; fail if a word is not a (sub)command."""
    node: Any = typer.main.get_command(app)
    words = [w for w in command if not w.startswith("-")]
    for word in words:
        if not _is_group(node):
            break  # the rest are arguments of a leaf command
        sub = node.get_command(node.context_class(node), word)
        assert sub is not None, f"'modelstream {' '.join(command)}': no command {word!r}"
        node = sub
    assert not _is_group(node), f"'{' '.join(command)}' names a group, not a command"
    return node


def test_there_are_modelstream_services() -> None:
    assert {"migrate", "topics", "scorer", "monitor", "sink", "gateway"} <= set(
        modelstream_services()
    )


def test_every_service_command_is_a_real_cli_command() -> None:
    for name, svc in modelstream_services().items():
        command = svc["command"]
        assert isinstance(command, list), f"{name}: use the exec form for command"
        resolve(command)


def test_environment_names_are_settings() -> None:
    fields = {f"MODELSTREAM_{name.upper()}" for name in Settings.model_fields}
    for name, svc in modelstream_services().items():
        unknown = set(svc.get("environment", {})) - fields
        assert not unknown, f"{name}: unknown settings {unknown}"


def test_kafka_service_supports_transactions_on_one_node() -> None:
    env = compose()["services"]["kafka"]["environment"]
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 1


def test_gateway_listens_on_the_published_port_for_other_containers() -> None:
    gateway = modelstream_services()["gateway"]
    command = gateway["command"]
    port = command[command.index("--port") + 1]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert f"{port}:{port}" in gateway["ports"]
    assert f":{port}/v2/health/ready" in " ".join(gateway["healthcheck"]["test"])
    resolve(command).make_context("gateway", command[2:])  # the options parse


def test_resolve_refuses_what_the_cli_does_not_have() -> None:
    import pytest

    with pytest.raises(AssertionError, match="no command 'nosuch'"):
        resolve(["run", "nosuch"])
    with pytest.raises(AssertionError, match="names a group"):
        resolve(["run"])

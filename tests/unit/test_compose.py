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


# -- secure by default ------------------------------------------------------------------

RUN_ROLE = {"scorer": "scorer", "monitor": "monitor", "merger": "merger", "sink": "sink",
            "gateway": "gateway", "lifecycle": "registry"}  # fmt: skip


def test_only_the_gateway_is_published() -> None:
    """Other machines reach the gateway only; Grafana is published on the loopback
    interface, for a browser on the Docker host (it has a login, not the API's tokens)."""
    published = {name for name, svc in compose()["services"].items() if svc.get("ports")}
    assert published == {"gateway", "grafana"}
    assert compose()["services"]["grafana"]["ports"] == ["127.0.0.1:3000:3000"]


def test_grafana_reads_the_warehouse_with_its_own_admin_secret() -> None:
    grafana = compose()["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env, "a password in the file"
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert set(grafana["secrets"]) == {"grafana_admin_password", "clickhouse_password"}
    mounts = {m.split(":")[0]: m.split(":")[1:] for m in grafana["volumes"]}
    for source in ("./deploy/grafana/provisioning", "./deploy/grafana/dashboards"):
        assert (ROOT / source).is_dir() and mounts[source][-1] == "ro", source
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yml").read_text()
    )["datasources"][0]
    assert datasource["jsonData"]["host"] == "clickhouse"
    assert datasource["secureJsonData"]["password"] == (
        "$__file{/run/secrets/clickhouse_password}")  # fmt: skip
    holders = {name for name, svc in compose()["services"].items()
               if "grafana_admin_password" in svc.get("secrets", [])}  # fmt: skip
    assert holders == {"grafana"}


def test_each_part_logs_in_as_its_role_with_a_secret_password() -> None:
    secrets = set(compose()["secrets"])
    for name, svc in modelstream_services().items():
        env = svc["environment"]
        assert "MODELSTREAM_KAFKA_PASSWORD" not in env, f"{name}: a password in the file"
        assert env["MODELSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name
        if svc["command"][:1] == ["run"]:
            role = RUN_ROLE[svc["command"][1]]
            assert env["MODELSTREAM_KAFKA_USERNAME"] == role, name
            assert env["MODELSTREAM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256", name
        password_file = env.get("MODELSTREAM_KAFKA_PASSWORD_FILE")
        if "MODELSTREAM_KAFKA_USERNAME" in env:
            secret = password_file.removeprefix("/run/secrets/")
            assert secret in svc["secrets"] and secret in secrets, name
            expected = "admin" if env["MODELSTREAM_KAFKA_USERNAME"] == "admin" else (
                env["MODELSTREAM_KAFKA_USERNAME"])  # fmt: skip
            assert secret == f"kafka_{expected}", name
        assert ":" not in env["MODELSTREAM_CLICKHOUSE"].split("@")[0].removeprefix("http://")
        if "MODELSTREAM_CLICKHOUSE_PASSWORD_FILE" in env:
            assert "clickhouse_password" in svc["secrets"], name


def test_the_broker_authenticates_and_authorizes() -> None:
    kafka = compose()["services"]["kafka"]
    env = kafka["environment"]
    assert "PLAINTEXT:PLAINTEXT" not in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert set(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")) == {
        "CONTROLLER:SASL_PLAINTEXT", "SASL_PLAINTEXT:SASL_PLAINTEXT"}  # fmt: skip
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:admin"
    assert "/run/secrets/kafka_jaas.conf" in env["KAFKA_OPTS"]
    assert "kafka_jaas.conf" in kafka["secrets"]
    clickhouse = compose()["services"]["clickhouse"]["environment"]
    assert "CLICKHOUSE_PASSWORD" not in clickhouse
    assert clickhouse["CLICKHOUSE_PASSWORD_FILE"] == "/run/secrets/clickhouse_password"


def test_kafka_users_creates_every_user_the_parts_log_in_as() -> None:
    from services.security.compose import ROLE_USERS

    setup = compose()["services"]["kafka-users"]
    resolve(setup["command"])
    users = {svc["environment"].get("MODELSTREAM_KAFKA_USERNAME")
             for svc in modelstream_services().values()} - {None, "admin"}  # fmt: skip
    assert users <= set(ROLE_USERS)
    assert {f"kafka_{u}" for u in ROLE_USERS} <= set(setup["secrets"])


def test_every_secret_is_generated_private_and_kept(tmp_path: Path) -> None:
    from services.security.compose import compose_secrets

    target = tmp_path / "secrets"
    created = compose_secrets(target)
    files = {name: Path(spec["file"]).name for name, spec in compose()["secrets"].items()}
    assert set(files.values()) == {p.name for p in created}
    assert target.stat().st_mode & 0o777 == 0o700
    before = {p.name: p.read_text() for p in target.iterdir()}
    assert compose_secrets(target) == []  # idempotent: nothing replaced
    assert {p.name: p.read_text() for p in target.iterdir()} == before
    admin = before["kafka_admin"].strip()
    assert f'user_admin="{admin}"' in before["kafka_jaas.conf"]
    assert len({before[f] for f in before if f.startswith("kafka_") and "." not in f}) == len(
        [f for f in before if f.startswith("kafka_") and "." not in f]
    ), "every user has its own password"


def test_the_image_runs_as_a_non_root_user() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}


def test_only_registry_writers_hold_the_signing_key_and_servers_trust_it() -> None:
    services = modelstream_services()
    holders = {name for name, svc in services.items()
               if "registry_signing_key" in svc.get("secrets", [])}  # fmt: skip
    assert holders == {"registry", "lifecycle"}  # the lifecycle registers retrained versions
    for name in holders:
        assert services[name]["environment"]["MODELSTREAM_SIGNING_KEY"] == (
            "/run/secrets/registry_signing_key")  # fmt: skip
        assert services[name]["environment"]["MODELSTREAM_KAFKA_USERNAME"] == "registry"
    for name in ("scorer", "gateway", "lifecycle"):
        env = services[name]["environment"]
        assert env["MODELSTREAM_TRUSTED_KEYS"] == "/run/secrets/registry_signing_key.pub"
        assert "registry_signing_key.pub" in services[name]["secrets"]
        assert env.get("MODELSTREAM_ALLOW_UNSIGNED") in (None, False, "false")


def test_no_two_services_share_a_data_volume() -> None:
    """Keys and tokens a service keeps in its data dir stay its own."""
    seen: dict[str, str] = {}
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            assert source not in seen, f"{name} and {seen.get(source)} share {source}"
            seen[source] = name

"""What each role may do, exactly; names match the code that uses them; docs match."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from services.deployment import global_needs
from services.registry._view import RegistryView
from services.security import ROLES, AclSpec, RoleError, acls_for, table_rows, to_binding
from services.security.acls import MONITOR_RESTORE_GROUP, REGISTRY_VIEW_GROUP, permits
from services.security.admin import check_user, from_binding
from services.sink import SinkConfig
from streams.kafka import Topics
from streams.monitoring.stream import MonitorConfig
from streams.scoring import ScorerConfig

Rule = tuple[str, str, str, str]  # resource, pattern, name, operation
DOCS = Path(__file__).resolve().parents[3] / "docs" / "security.md"
P = "ms"
GLOBALS = [spec.name for spec in Topics(P).global_specs(1)]


def rules(specs: list[AclSpec]) -> set[Rule]:
    found = [(s.resource, s.pattern, s.name, s.operation) for s in specs]
    assert len(found) == len(set(found)), "a rule is listed twice"
    return set(found)


def topic(name: str, *ops: str, pattern: str = "LITERAL") -> set[Rule]:
    return {("TOPIC", pattern, name, op) for op in ops}


def created(names: list[str], seen: set[str]) -> set[Rule]:
    """ensure_topics: CREATE each, DESCRIBE those not already visible."""
    return {r for n in names for r in topic(n, "CREATE", *(() if n in seen else ("DESCRIBE",)))}


REGISTRY_READER = (
    topic(f"{P}._models", "READ")
    | topic(f"{P}._routing", "READ")
    | {("GROUP", "LITERAL", f"{P}._registry-view", "DESCRIBE")}
)


def test_scorer_reads_its_models_and_writes_anywhere_in_the_deployment() -> None:
    got = rules(acls_for("scorer", P, "User:s", models=["a"], instance="1"))
    assert got == (
        topic(f"{P}.a.requests", "READ")
        | REGISTRY_READER
        | topic(f"{P}.", "WRITE", "CREATE", "DESCRIBE_CONFIGS", pattern="PREFIXED")
        | topic(f"{P}._", "WRITE", pattern="PREFIXED")  # the DENY
        | {("GROUP", "LITERAL", f"{P}.scorer", "READ")}
        | {("TRANSACTIONAL_ID", "LITERAL", f"{P}.scorer.1", op) for op in ("WRITE", "DESCRIBE")}
    )


INTERNAL_OWNERS = {
    f"{P}._models": {"registry"},
    f"{P}._routing": {"registry"},
    f"{P}._model_events": {"registry"},
    f"{P}._clients": {"clients-admin"},
    f"{P}._monitor_state": {"monitor"},
}
# internal topics created on first use rather than with the deployment
LATE_INTERNAL_OWNERS = {f"{P}._redrives": {"dlq"}}


def role_specs(role: str) -> list[AclSpec]:
    found = ROLES[role]
    kwargs: dict = {"models": ["a"]} if found.models == "required" else {}
    return acls_for(role, P, f"User:{role}", **kwargs)


def test_internal_topics_are_written_by_their_owners_only() -> None:
    """Every ``<prefix>._*`` topic: the roles the broker lets WRITE it are its owners;
    the scorer's prefixed WRITE is cut back by an explicit DENY."""
    internal = {s.name for s in Topics(P).global_specs(1) if s.name.startswith(f"{P}._")}
    assert internal == set(INTERNAL_OWNERS), "a new internal topic needs an owner here"
    for name, owners in (INTERNAL_OWNERS | LATE_INTERNAL_OWNERS).items():
        writers = {role for role in ROLES if permits(role_specs(role), "WRITE", "TOPIC", name)}
        assert writers == owners, name
    scorer = role_specs("scorer")
    assert permits(scorer, "WRITE", "TOPIC", f"{P}.a.replies")
    assert not permits(scorer, "WRITE", "TOPIC", f"{P}._anything_added_later")
    deny = [s for s in scorer if s.permission == "DENY"]
    assert [(s.operation, s.name, s.pattern) for s in deny] == [("WRITE", f"{P}._", "PREFIXED")]


def test_a_deny_rule_reaches_the_broker_as_a_deny() -> None:
    (deny,) = [s for s in role_specs("scorer") if s.permission == "DENY"]
    binding = to_binding(deny)
    assert binding.permission_type.name == "DENY"
    assert from_binding(binding) == deny


def test_scorer_of_every_model_and_instance_is_prefixed() -> None:
    got = rules(acls_for("scorer", P, "User:s"))
    assert ("TOPIC", "PREFIXED", f"{P}.", "READ") in got  # the pattern subscription
    assert {
        ("TRANSACTIONAL_ID", "PREFIXED", f"{P}.scorer.", op) for op in ("WRITE", "DESCRIBE")
    } <= got


def test_monitor() -> None:
    got = rules(acls_for("monitor", P, "User:m", models=["a"], instance="0"))
    visible = {
        f"{P}._models",
        f"{P}._routing",
        f"{P}._monitor_state",
        f"{P}.metrics",
        f"{P}.alerts",
        f"{P}.summaries",
    }
    assert got == (
        topic(f"{P}.a.predictions", "READ") | topic(f"{P}.a.feedback", "READ")
        | topic(f"{P}.a.dlq", "READ") | REGISTRY_READER
        | topic(f"{P}._monitor_state", "READ", "WRITE")
        | topic(f"{P}.metrics", "WRITE") | topic(f"{P}.alerts", "WRITE")
        | topic(f"{P}.summaries", "WRITE")
        | created([s.name for s in global_needs("monitor", Topics(P), 1)], visible)
        | {("GROUP", "LITERAL", f"{P}.monitor", "READ"),
           ("GROUP", "LITERAL", f"{P}.monitor.restore", "DESCRIBE")}
        | {("TRANSACTIONAL_ID", "LITERAL", f"{P}.monitor.0", op) for op in ("WRITE", "DESCRIBE")}
    )  # fmt: skip


def test_sink_only_reads() -> None:
    got = rules(acls_for("sink", P, "User:k", models=["a"]))
    assert got == (
        topic(f"{P}.a.predictions", "READ") | topic(f"{P}.a.feedback", "READ")
        | topic(f"{P}.a.dlq", "READ") | topic(f"{P}.metrics", "READ")
        | topic(f"{P}.alerts", "READ") | topic(f"{P}.summaries", "READ")
        | topic(f"{P}._model_events", "READ") | topic(f"{P}._models", "READ")
        | {("GROUP", "LITERAL", f"{P}.sink", "READ")}
    )  # fmt: skip
    assert {op for *_, op in rules(acls_for("sink", P, "User:k"))} == {"READ"}


def test_registry_writes_its_topics_with_per_model_transactional_ids() -> None:
    got = rules(acls_for("registry", P, "User:r"))
    written = {f"{P}._models", f"{P}._routing", f"{P}._model_events"}
    assert got == (
        REGISTRY_READER
        | topic(f"{P}._models", "WRITE") | topic(f"{P}._routing", "WRITE")
        | topic(f"{P}._model_events", "WRITE", "READ")  # READ: `models show`
        | topic(f"{P}.", "CREATE", pattern="PREFIXED")  # the model's topic set, globals
        | {("TOPIC", "LITERAL", name, "DESCRIBE") for name in GLOBALS if name not in written}
        | {("TRANSACTIONAL_ID", "PREFIXED", f"{P}._registry.", op) for op in ("WRITE", "DESCRIBE")}
    )  # fmt: skip


def test_gateway_writes_only_its_models_requests_dlq_and_log_and_its_journal() -> None:
    got = rules(acls_for("gateway", P, "User:g", models=["a"], instance="0"))
    reply, journal = f"{P}.gateway-0.replies", f"{P}.gateway-0.journal"
    model_set = [spec.name for spec in Topics(P).model_specs("a", 1)]
    written = {f"{P}.a.requests", f"{P}.a.dlq", f"{P}.a.predictions"}
    assert got == (
        topic(f"{P}.a.requests", "WRITE") | topic(f"{P}.a.dlq", "WRITE")
        | topic(f"{P}.a.predictions", "WRITE")
        | topic(reply, "READ", "CREATE") | topic(journal, "READ", "WRITE", "CREATE")
        | topic(f"{P}._clients", "READ", "CREATE")
        | topic(f"{P}._models", "CREATE") | topic(f"{P}._routing", "CREATE")
        | REGISTRY_READER | created(model_set, written)
        | {("GROUP", "LITERAL", f"{P}.gateway-0", "DESCRIBE"),
           ("GROUP", "PREFIXED", f"{P}._clients-directory", "DESCRIBE"),
           ("GROUP", "LITERAL", f"{journal}.writer", "READ"),
           ("TRANSACTIONAL_ID", "LITERAL", journal, "WRITE"),
           ("TRANSACTIONAL_ID", "LITERAL", journal, "DESCRIBE")}
    )  # fmt: skip
    writes = {name for resource, _, name, op in got if op == "WRITE"}
    assert writes == written | {journal}


def test_producer_writes_requests_and_reads_replies_of_its_models() -> None:
    got = rules(acls_for("producer", P, "User:shop", models=["a", "b"]))
    assert got == (
        topic(f"{P}.a.requests", "WRITE") | topic(f"{P}.b.requests", "WRITE")
        | topic(f"{P}.a.replies", "READ") | topic(f"{P}.b.replies", "READ")
        | {("GROUP", "PREFIXED", f"{P}.shop", "READ")}
    )  # fmt: skip


def test_clients_admin() -> None:
    assert rules(acls_for("clients-admin", P, "User:c")) == (
        topic(f"{P}._clients", "READ", "WRITE", "CREATE")
        | {("GROUP", "LITERAL", f"{P}._clients-store", "DESCRIBE")}
    )


@pytest.mark.parametrize("role", ["gateway", "producer"])
def test_roles_writing_for_others_must_name_their_models(role: str) -> None:
    with pytest.raises(RoleError, match="needs --model"):
        acls_for(role, P, "User:x")


@pytest.mark.parametrize(
    ("role", "kwargs", "message"),
    [
        ("nope", {}, "unknown role"),
        ("registry", {"models": ["a"]}, "drop --model"),
        ("sink", {"instance": "0"}, "drop --instance"),
        ("scorer", {"models": ["a.b"]}, "not valid"),
    ],
)
def test_bad_role_arguments_say_what_to_change(role: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        acls_for(role, P, "User:x", **kwargs)


def test_deny_only_where_an_allow_reaches_too_far_and_every_rule_says_why() -> None:
    for role, found in ROLES.items():
        kwargs = {"models": ["a"]} if found.models != "none" else {}
        for spec in acls_for(role, P, "User:x", **kwargs):
            assert spec.principal == "User:x"
            assert spec.permission == "ALLOW" or (role, spec.name) == ("scorer", f"{P}._")
            assert spec.why, f"{role}: {spec} has no reason"


def test_names_match_the_code_that_uses_them() -> None:
    topics = Topics(P)
    assert ScorerConfig(topics).group_id == f"{P}.scorer"
    assert ScorerConfig(topics, instance_id="1").transactional_id == f"{P}.scorer.1"
    assert MonitorConfig(topics).group_id == f"{P}.monitor"
    assert MONITOR_RESTORE_GROUP.format(prefix=P) == f"{MonitorConfig(topics).group_id}.restore"
    assert SinkConfig(topics).group_id == f"{P}.sink"
    source = inspect.getsource(RegistryView._new_consumer)
    assert REGISTRY_VIEW_GROUP.replace("{prefix}", "{self._topics.prefix}") in source


def test_gateway_names_match_the_gateway() -> None:
    from services.gateway import bridge
    from services.gateway.clients import _reader as reader

    config = bridge.BridgeConfig(Topics(P), instance_id="0")
    specs = acls_for("gateway", P, "User:g", models=["a"], instance="0")
    assert any(s.name == config.reply_topic and s.operation == "READ" for s in specs)
    assert '"{topics.prefix}._clients-{role}"' in inspect.getsource(reader.new_consumer)
    assert Topics(P).clients == f"{P}._clients"


def test_specs_become_confluent_bindings_and_back() -> None:
    spec = acls_for("registry", P, "User:r")[-1]
    binding = to_binding(spec)
    assert binding.restype == ResourceType.TRANSACTIONAL_ID
    assert binding.resource_pattern_type == ResourcePatternType.PREFIXED
    assert binding.operation == AclOperation.DESCRIBE
    assert from_binding(binding) == spec  # `why` is not part of the rule


@pytest.mark.parametrize("name", ["", "a b", "a=b", "a,b", "x" * 65])
def test_user_names_scram_cannot_carry_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not valid"):
        check_user(name)


def test_a_label_source_writes_only_its_models_feedback() -> None:
    got = rules(acls_for("labels", P, "User:l", models=["a", "b"]))
    assert got == topic(f"{P}.a.feedback", "WRITE") | topic(f"{P}.b.feedback", "WRITE")


def test_the_docs_table_is_what_acls_for_says() -> None:
    """docs/security.md lists every rule of every role (rendered with <prefix>, <model>,
    <instance> placeholders), so the docs cannot drift from the code."""
    text = DOCS.read_text()
    for role in ROLES:
        for row in doc_rows(role):
            line = "| " + " | ".join(row) + " |"
            assert line in text, f"{role}: docs/security.md lacks the row\n{line}"


def doc_rows(role: str) -> list[list[str]]:
    """The rows of ``role``'s table in docs/security.md."""
    found = ROLES[role]
    kwargs: dict = {"models": ["MDL"]} if found.models != "none" else {}
    if found.instance:
        kwargs["instance"] = "INST"
    rows = []
    for resource, pattern, name, op, why in table_rows(acls_for(role, "PFX", "User:x", **kwargs)):
        name = name.replace("PFX", "<prefix>").replace("MDL", "<model>").replace("INST", "<i>")
        rows.append([resource, pattern, f"`{name}`", op, why])
    return rows


def test_the_admin_password_is_printed_only_by_the_start_that_creates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import _print_admin
    from services.security.local import PASSWORD_FILE, create_credentials

    admin = create_credentials(tmp_path)
    _print_admin(admin, tmp_path, created=True)
    first = capsys.readouterr().out
    assert f"MODELSTREAM_KAFKA_PASSWORD={admin.password}" in first
    _print_admin(admin, tmp_path, created=False)
    again = capsys.readouterr().out
    assert admin.password not in again
    assert f"MODELSTREAM_KAFKA_PASSWORD_FILE={(tmp_path / PASSWORD_FILE).absolute()}" in again
    assert (tmp_path / PASSWORD_FILE).stat().st_mode & 0o777 == 0o600


def test_the_runtime_reads_a_password_file(tmp_path: Path) -> None:
    from services.runtime import _password
    from services.settings import Settings

    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    assert _password(Settings(kafka_password_file=secret)) == "s3cret"
    assert _password(Settings(kafka_password="given", kafka_password_file=secret)) == "given"
    with pytest.raises(Exception, match="cannot be read"):
        _password(Settings(kafka_password_file=tmp_path / "missing"))

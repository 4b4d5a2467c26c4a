"""A real secure broker (SASL/SCRAM, StandardAuthorizer): who gets in, who may write what,
and every part of modelstream running with only its role's ACLs.

The module starts its own broker (fresh state dir, free ports) with ``secure=True``; a
broker that cannot start fails the module, it never skips.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from services.cli import app
from services.deployment import prepare
from services.gateway.clients import ClientStore
from services.localstack import BrokerError, LocalBroker, resolve_jars
from services.monitor import watch_factory
from services.registry import Registry, RegistryView, local_signer
from services.runtime import CredentialsRequiredError, kafka_config
from services.scorer import RegistryFollower
from services.security import AdminCredentials, acls_for, add_user, grant
from services.settings import Settings
from streams.kafka import (
    KafkaConfig,
    Topics,
    TopicSpec,
    consumer_config,
    ensure_topics,
    make_admin,
)
from streams.monitoring.stream import MonitorConfig, MonitorLoop
from streams.scoring import DeploymentTable, Scorer, ScorerConfig
from tests.integration.gateway_support import GatewayProcess, bearer, wait_until_known
from tests.integration.scoring_support import SCHEMA, Stack

pytestmark = pytest.mark.integration
SASL = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256"}


@dataclass(frozen=True)
class Secure:
    broker: LocalBroker
    data_dir: Path  # the broker's state dir is <data_dir>/kafka, as for the CLI
    bootstrap: str
    admin: AdminCredentials
    started_in: float

    def config(self, user: str, password: str, mechanism: str = "SCRAM-SHA-256") -> KafkaConfig:
        return KafkaConfig(self.bootstrap, f"tests-{user}", "SASL_PLAINTEXT", mechanism, user,
                           password)  # fmt: skip

    @property
    def admin_config(self) -> KafkaConfig:
        return self.config(self.admin.username, self.admin.password, "SCRAM-SHA-512")


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    settings = Settings()
    data_dir = tmp_path_factory.mktemp("secure") / "data"
    broker = LocalBroker(data_dir / "kafka", resolve_jars(settings.kafka_version,
                         settings.cache_dir), secure=True)  # fmt: skip
    started = time.monotonic()
    try:
        bootstrap = broker.start(timeout=150)
    except Exception as exc:  # noqa: BLE001 - any start failure fails the module
        pytest.fail(f"the secure test broker did not start: {exc}", pytrace=False)
    elapsed = time.monotonic() - started
    admin = broker.admin_credentials()
    assert admin is not None
    yield Secure(broker, data_dir, bootstrap, admin, elapsed)
    broker.stop()


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def make_user(secure: Secure, tag: str) -> Callable[..., KafkaConfig]:
    """A fresh SCRAM user with one role's ACLs (none if ``role`` is None)."""
    admin = make_admin(secure.admin_config)

    def create(name: str, role: str | None, prefix: str, **kwargs: object) -> KafkaConfig:
        user, password = f"{name}-{tag}", f"pw-{uuid.uuid4().hex}"
        add_user(admin, user, password, "SCRAM-SHA-256")
        if role is not None:
            grant(admin, acls_for(role, prefix, f"User:{user}", **kwargs))  # type: ignore[arg-type]
        return secure.config(user, password)

    return create


def produce_one(
    cfg: KafkaConfig, topic: str, value: bytes = b"{}", **kw: object
) -> KafkaError | None:
    """Produce one message and wait for its delivery report; returns its error."""
    reports: list[KafkaError | None] = []
    producer = Producer(cfg.common() | {"enable.idempotence": True, "message.timeout.ms": 10_000})
    producer.produce(topic, value, on_delivery=lambda e, _m: reports.append(e), **kw)  # type: ignore[arg-type]
    assert producer.flush(15) == 0, "no delivery report within 15 s"
    return reports[0]


def test_the_broker_is_secure_and_never_logs_the_admin_password(secure: Secure) -> None:
    status = secure.broker.status()
    assert status.running and status.secure
    logs = secure.data_dir / "kafka" / "logs"
    for log in logs.glob("*.log"):
        assert secure.admin.password not in log.read_text(errors="replace"), log.name
    print(f"secure broker ready in {secure.started_in:.1f}s")


def test_a_wrong_password_fails_authentication(secure: Secure) -> None:
    errors: list[KafkaError] = []
    cfg = secure.config(secure.admin.username, "not-the-password")
    producer = Producer(cfg.common() | {"error_cb": errors.append})
    producer.produce("anything", b"x")
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        producer.poll(0.1)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, f"expected an authentication error, got {errors}"
    assert "invalid credentials" in auth[0].str()


def test_a_plaintext_client_is_disconnected(secure: Secure) -> None:
    admin = AdminClient({"bootstrap.servers": secure.bootstrap, "broker.address.family": "v4"})
    with pytest.raises(KafkaException) as info:
        admin.list_topics(timeout=5)
    assert info.value.args[0].code() == KafkaError._TRANSPORT
    server_log = (secure.data_dir / "kafka" / "logs" / "server.log").read_text()
    assert "during SASL handshake" in server_log  # the broker refused the unauthenticated request


def test_a_producer_writes_only_the_requests_of_its_models(
    secure: Secure, make_user: Callable[..., KafkaConfig], tag: str
) -> None:
    names = Topics(f"p-{tag}")
    ensure_topics(
        make_admin(secure.admin_config), names.model_specs("a", 1) + names.model_specs("b", 1)
    )
    shop = make_user("shop", "producer", names.prefix, models=["a"])
    assert produce_one(shop, names.requests("a")) is None
    refused = produce_one(shop, names.requests("b"))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    refused = produce_one(shop, names.replies("a"))  # it may read replies, not forge them
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    assert produce_one(secure.admin_config, names.replies("a"), b"reply") is None
    reader = Consumer(consumer_config(shop, f"{names.prefix}.{shop.username}-1"))
    reader.subscribe([names.replies("a")])
    assert [m.value() for m in consume(reader, 1)] == [b"reply"]


def test_a_scorer_writes_replies_but_never_an_internal_topic(
    secure: Secure, make_user: Callable[..., KafkaConfig], tag: str
) -> None:
    """The scorer's prefixed WRITE (any reply-to) stops at ``<prefix>._``: a leaked scorer
    credential cannot rewrite the registry, routing, clients or monitor state."""
    names = Topics(f"s-{tag}")
    ensure_topics(make_admin(secure.admin_config),
                  names.model_specs("a", 1) + names.global_specs(1))  # fmt: skip
    scorer = make_user("scorer", "scorer", names.prefix)
    assert produce_one(scorer, names.replies("a")) is None
    for internal in (names.models, names.routing, names.clients, names.monitor_state):
        refused = produce_one(scorer, internal)
        assert refused is not None, f"the scorer wrote {internal}"
        assert refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, internal


def test_a_user_without_acls_sees_and_writes_nothing(
    secure: Secure, make_user: Callable[..., KafkaConfig], tag: str
) -> None:
    names = Topics(f"n-{tag}")
    ensure_topics(make_admin(secure.admin_config), names.model_specs("a", 1))
    nobody = make_user("nobody", None, names.prefix)
    refused = produce_one(nobody, names.requests("a"))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert not [t for t in make_admin(nobody).list_topics(timeout=10).topics if tag in t]
    reader = Consumer(consumer_config(nobody, f"{names.prefix}.nobody"))
    reader.subscribe([names.requests("a")])
    codes = first_errors(reader)
    assert (
        KafkaError.GROUP_AUTHORIZATION_FAILED in codes
        or KafkaError.TOPIC_AUTHORIZATION_FAILED in codes
    )


def test_each_part_runs_with_only_its_role(
    secure: Secure, make_user: Callable[..., KafkaConfig], tag: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """registry → gateway → scorer → producer app and gateway replies → monitor, each as
    its own user: a missing ACL fails here, and no part logs an authorization error."""
    caplog.set_level(logging.WARNING)
    names, model = Topics(f"e-{tag}"), "churn"
    registry = make_user("registry", "registry", names.prefix)
    ensure_topics(make_admin(registry), names.global_specs(1))  # as `models register` does
    with Registry(registry, names, actor="tests", timeout=30) as writer:
        writer.register(model, tiny_model(), SCHEMA, task="classification", role="champion")

    gateway = make_user("gateway", "gateway", names.prefix, models=[model], instance="0")
    reply_topic = names.model_topic("gateway-0", "replies")
    clients = [spec for spec in names.global_specs(1) if spec.name.endswith("._clients")]
    at_start = [TopicSpec(reply_topic, 1), *clients]  # as the bridge does, then per model
    ensure_topics(make_admin(gateway), at_start + names.model_specs(model, 1))

    scorer_cfg = make_user("scorer", "scorer", names.prefix, instance="0")
    with serving(scorer_cfg, names):
        shop = make_user("shop", "producer", names.prefix, models=[model])
        row = orjson.dumps({f"x{i}": 0.1 for i in range(10)} | {"group": "a"})
        assert produce_one(shop, names.requests(model), row, key=b"shop-1") is None
        assert produce_one(gateway, names.requests(model), row, key=b"gw-1",
                           headers=[("reply-to", reply_topic.encode())]) is None  # fmt: skip
        replies = Consumer(consumer_config(shop, f"{names.prefix}.{shop.username}"))
        replies.subscribe([names.replies(model)])
        gw_replies = Consumer(consumer_config(gateway, f"{names.prefix}.gateway-0"))
        gw_replies.assign([TopicPartition(reply_topic, 0, OFFSET_BEGINNING)])
        for reader, request_id in ((replies, "shop-1"), (gw_replies, "gw-1")):
            (reply,) = [orjson.loads(m.value() or b"") for m in consume(reader, 1)]
            assert reply["request_id"] == request_id and reply["error"] is None, reply

    monitor_cfg = make_user("monitor", "monitor", names.prefix, instance="0")
    assert monitored(monitor_cfg, names) >= 2
    denied = [r.getMessage() for r in caplog.records if "AUTHORIZATION" in r.getMessage()]
    assert not denied, denied


def test_the_gateway_serves_only_what_its_principal_may_write(
    secure: Secure, make_user: Callable[..., KafkaConfig], tag: str, tmp_path: Path
) -> None:
    """`modelstream run gateway` as a gateway user of model a: a is served over HTTP;
    model b, registered and routed but not granted, is refused by the broker, and the
    client is told which ACL is missing."""
    names = Topics(f"g-{tag}")
    registry = make_user("registry", "registry", names.prefix)
    ensure_topics(make_admin(secure.admin_config), names.global_specs(1)
                  + names.model_specs("a", 1) + names.model_specs("b", 1))  # fmt: skip
    signer = local_signer(tmp_path / "data" / "keys" / "registry.key", create=True)
    with Registry(registry, names, actor="tests", timeout=30, signer=signer) as writer:
        for model in ("a", "b"):
            writer.register(model, tiny_model(), SCHEMA, task="classification", role="champion")
    gateway_user = make_user("gw", "gateway", names.prefix, models=["a"], instance="t")
    stack = Stack(gateway_user, names, None, tmp_path)  # type: ignore[arg-type]  # no registry
    with ClientStore(secure.admin_config, names) as store:
        _, token = store.create("app", ["predict:*"])
    row = {f"x{i}": 0.1 for i in range(10)} | {"group": "a"}
    with serving(make_user("scorer", "scorer", names.prefix, instance="0"), names):
        gateway = GatewayProcess(stack, "--timeout-ms", "20000").start()
        try:
            wait_until_known(gateway.url, token)
            served = httpx.post(f"{gateway.url}/v1/models/a/predict", json=row,
                                headers=bearer(token), timeout=30)  # fmt: skip
            refused = httpx.post(f"{gateway.url}/v1/models/b/predict", json=row,
                                 headers=bearer(token), timeout=30)  # fmt: skip
        finally:
            log = gateway.stop()
    assert served.status_code == 200, served.text
    assert served.json()["served_by"] == "champion"
    assert refused.status_code == 503, refused.text
    message = refused.json()["error"]["message"]
    assert "topic_authorization_failed" in message and "--role gateway --model b" in message
    assert secure.admin.password not in log and gateway_user.password not in log  # type: ignore[operator]


def test_runtime_needs_credentials_for_a_secure_local_broker(secure: Secure) -> None:
    plain = Settings(data_dir=secure.data_dir, kafka=None, kafka_security_protocol="PLAINTEXT",
                     kafka_sasl_mechanism=None)  # fmt: skip
    with pytest.raises(CredentialsRequiredError, match="grep \\^export"):
        kafka_config(plain)
    given = plain.model_copy(update={"kafka_security_protocol": "SASL_PLAINTEXT",
                                     "kafka_sasl_mechanism": "SCRAM-SHA-256"})  # fmt: skip
    assert kafka_config(given).bootstrap == secure.bootstrap
    with pytest.raises(BrokerError, match="is secure"):  # a running secure broker, asked plain
        LocalBroker(secure.data_dir / "kafka", secure.broker.libs).start()


def test_cli_start_secure_users_add_and_acls_list(secure: Secure, tag: str) -> None:
    runner = CliRunner()
    local = {"MODELSTREAM_DATA_DIR": str(secure.data_dir), "MODELSTREAM_KAFKA": ""}
    started = runner.invoke(app, ["kafka", "start", "--secure"], env=local)
    assert started.exit_code == 0, started.output
    assert f"bootstrap={secure.bootstrap}" in started.output
    (export,) = [line for line in started.output.splitlines() if line.startswith("export ")]
    # the fixture's start created the password: this start never prints it, only its file
    assert secure.admin.password not in started.output
    password_file = (secure.data_dir / "kafka" / "admin.password").absolute()
    assert f"MODELSTREAM_KAFKA_PASSWORD_FILE={password_file}" in export
    assert password_file.read_text() == secure.admin.password
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert "SUPER USER" in started.output
    env = local | dict(pair.split("=", 1) for pair in export.split()[1:])
    env["MODELSTREAM_TOPIC_PREFIX"] = prefix = f"c-{tag}"
    ensure_topics(make_admin(secure.admin_config), Topics(prefix).model_specs("m", 1))

    added = runner.invoke(app, ["kafka", "users", "add", f"app-{tag}", "--role", "producer",
                                "--model", "m"], env=env)  # fmt: skip
    assert added.exit_code == 0, added.output
    (password,) = [ln[9:] for ln in added.output.splitlines() if ln.startswith("password=")]
    app_cfg = secure.config(f"app-{tag}", password, "SCRAM-SHA-512")  # both mechanisms exist
    assert produce_one(app_cfg, Topics(prefix).requests("m")) is None

    listed = runner.invoke(app, ["kafka", "acls", "list", "--principal", f"User:app-{tag}"],
                           env=env)  # fmt: skip
    assert listed.exit_code == 0 and "3 ACL(s)" in listed.output, listed.output
    refused = runner.invoke(app, ["kafka", "users", "add", f"gw-{tag}", "--role", "gateway"],
                            env=env)  # fmt: skip
    assert refused.exit_code == 1 and "needs --model" in refused.output
    plain = runner.invoke(app, ["kafka", "start"], env=local)
    assert plain.exit_code == 1 and "is secure" in plain.output


def test_compose_users_setup_gives_each_role_its_user(
    secure: Secure, tag: str, tmp_path: Path
) -> None:
    """docker-compose's one-shot `kafka users setup`: the generated secrets become one
    SCRAM user per role with its role's ACLs (run twice: idempotent)."""
    from services.security.compose import compose_secrets

    secrets = tmp_path / "secrets"
    compose_secrets(secrets)
    prefix = f"k-{tag}"
    admin_password = secure.data_dir / "kafka" / "admin.password"
    env = {
        "MODELSTREAM_DATA_DIR": str(secure.data_dir),
        "MODELSTREAM_KAFKA": secure.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": prefix,
        "MODELSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "MODELSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "MODELSTREAM_KAFKA_USERNAME": secure.admin.username,
        "MODELSTREAM_KAFKA_PASSWORD_FILE": str(admin_password),
    }
    for _ in range(2):
        done = CliRunner().invoke(app, ["kafka", "users", "setup", "--secrets", str(secrets),
                                        "--model", "m"], env=env)  # fmt: skip
        assert done.exit_code == 0, done.output
    names = Topics(prefix)
    specs = names.model_specs("m", 1) + names.global_specs(1)
    ensure_topics(make_admin(secure.admin_config), specs)
    scorer = secure.config("scorer", (secrets / "kafka_scorer").read_text().strip())
    assert produce_one(scorer, names.replies("m")) is None
    refused = produce_one(scorer, names.models)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    gateway = secure.config("gateway", (secrets / "kafka_gateway").read_text().strip())
    assert produce_one(gateway, names.requests("m")) is None


# -- helpers ----------------------------------------------------------------------------


def consume(consumer: Consumer, count: int, timeout: float = 20.0) -> list[object]:
    got: list[object] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        for message in consumer.consume(10, 0.5):
            error = message.error()
            assert error is None or error.code() == KafkaError._PARTITION_EOF, error
            if error is None:
                got.append(message)
    consumer.close()
    assert len(got) == count, f"{len(got)} of {count} messages within {timeout}s"
    return got


def first_errors(consumer: Consumer, timeout: float = 10.0) -> set[int]:
    deadline, codes = time.monotonic() + timeout, set()
    while not codes and time.monotonic() < deadline:
        codes = {m.error().code() for m in consumer.consume(10, 0.5) if m.error() is not None}
    consumer.close()
    return codes


def tiny_model() -> object:
    from services.synthetic import labelled_rows, river_champion

    return river_champion(labelled_rows(100))


class serving:  # noqa: N801 - used as a context manager
    """The scorer process's parts (follower + loop) in a thread, as one principal."""

    def __init__(self, kafka: KafkaConfig, names: Topics) -> None:
        table = DeploymentTable()
        self.follower = RegistryFollower(RegistryView(kafka, names), table)
        self.follower.sync()
        self.scorer = Scorer(kafka, ScorerConfig(names, instance_id="0"), table)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.scorer.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Scorer:
        self.thread.start()
        return self.scorer

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        self.scorer.close()
        assert self.scorer.stats["aborts"] == 0, self.scorer.stats


def monitored(kafka: KafkaConfig, names: Topics, timeout: float = 30.0) -> int:
    """Run the monitor's parts as one principal until it committed a transaction with
    the predictions; returns how many it read."""
    prepare("monitor", kafka, names, 1)  # as `modelstream run monitor` does
    view = RegistryView(kafka, names)
    view.sync()
    loop = MonitorLoop(kafka, MonitorConfig(names, instance_id="0", max_interval=0.5),
                       watch_factory(view))  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while loop.stats["predictions"] < 2 or not loop.stats["transactions"]:
            assert time.monotonic() < deadline, f"the monitor is stuck: {dict(loop.stats)}"
            loop.step()
    finally:
        loop.close()
        view.close()
    assert loop.stats["aborts"] == 0
    return loop.stats["predictions"]


def test_the_merger_runs_with_only_its_role(
    secure: Secure, make_user: Callable[..., KafkaConfig], tag: str, tmp_path: Path
) -> None:
    """`modelstream run merger` (faust-streaming, exactly once) as a merger user: it
    creates its changelogs, joins its group, merges a summary and writes the model's
    metric, and no authorization error reaches its log."""
    import os
    import subprocess

    from tests.integration.gateway_support import kafka_env
    from tests.integration.scoring_support import MODELSTREAM

    names, model = Topics(f"m-{tag}"), "churn"
    registry = make_user("registry", "registry", names.prefix)
    ensure_topics(make_admin(registry), names.global_specs(1))
    with Registry(registry, names, actor="tests", timeout=30) as writer:
        writer.register(model, tiny_model(), SCHEMA, task="classification", role="champion")
    merger = make_user("merger", "merger", names.prefix)
    env = os.environ | kafka_env(merger) | {
        "MODELSTREAM_TOPIC_PREFIX": names.prefix, "MODELSTREAM_DATA_DIR": str(tmp_path / "d"),
        "MODELSTREAM_TOPIC_PARTITIONS": "1",
    }  # fmt: skip
    log = tmp_path / "merger.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([MODELSTREAM, "run", "merger"], stdout=out,
                                stderr=subprocess.STDOUT, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "merger ready" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        summary = {
            "model": model, "partition": 0, "window_start": 1_800_000_000_000,
            "window_end": 1_800_000_060_000, "kind": "latency", "counts": [0, 4],
            "stats": {"count": 4, "sum": 2.0}, "last": True,
        }  # fmt: skip
        admin = secure.admin_config
        assert (
            produce_one(admin, names.summaries, orjson.dumps(summary), key=model.encode()) is None
        )
        metrics = Consumer(consumer_config(admin, f"{names.prefix}.check"))
        metrics.assign([TopicPartition(names.metrics, 0, OFFSET_BEGINNING)])
        from schemas.contracts import codec_for

        got = [codec_for("metric").decode_avro(m.value() or b"")  # type: ignore[attr-defined]
               for m in consume(metrics, 2, timeout=60)]  # fmt: skip
        assert {(m["model"], m["name"], m["labels"]["scope"]) for m in got} == {
            (model, "requests", "model"),
            (model, "latency_mean_ms", "model"),
        }
    finally:
        proc.terminate()
        proc.wait(30)
    text = log.read_text()
    assert "AuthorizationFailed" not in text and "AUTHORIZATION" not in text, text[-3000:]

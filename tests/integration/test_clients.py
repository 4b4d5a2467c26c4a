"""The client registry against the real broker: create, revoke, rotate and list through
the compacted clients topic, a live directory following them, and ``modelstream clients``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource
from typer.testing import CliRunner

from services.gateway.cli import clients_app
from services.gateway.clients import (
    ClientDirectory,
    ClientExistsError,
    ClientRecord,
    ClientStore,
    ClientStoreUnavailableError,
    Limits,
    UnknownClientError,
)
from streams.kafka import KafkaConfig, Topics, make_admin, make_consumer

pytestmark = pytest.mark.integration
SOON = 30.0  # how long a test waits for a running directory to see a change: a bound


@pytest.fixture
def names(unique: Callable[[str], str]) -> Topics:
    return Topics(unique("clients"))


@pytest.fixture
def store(kafka: KafkaConfig, names: Topics) -> Iterator[ClientStore]:
    with ClientStore(kafka, names, timeout=20) as store:
        yield store


@pytest.fixture
def follow(kafka: KafkaConfig, names: Topics) -> Iterator[Callable[[], ClientDirectory]]:
    """Started directories, stopped at the end of the test."""
    started: list[ClientDirectory] = []

    def start() -> ClientDirectory:
        directory = ClientDirectory(kafka, names)
        directory.start()
        started.append(directory)
        return directory

    yield start
    for directory in started:
        directory.stop()


def eventually(check: Callable[[], bool], timeout: float = SOON) -> None:
    """Wait until ``check()`` holds; fails after ``timeout`` (a bound, not a measurement)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not true within {timeout:g}s")
        time.sleep(0.05)


def test_a_fresh_directory_authenticates_a_created_client(
    store: ClientStore, follow: Callable[[], ClientDirectory]
) -> None:
    limits = Limits(rate_per_s=5, burst=10, quota=1_000)
    record, token = store.create("billing", "predict:churn,catalogue:read", limits, actor="ana")
    assert (record.created_by, record.limits, record.active) == ("ana", limits, True)
    directory = follow()
    directory.sync(timeout=30)
    assert directory.ready
    client = directory.authenticate(token)
    assert client == record
    assert client is not None and client.allows("predict:churn")
    assert not client.allows("predict:iris")
    assert directory.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None


def test_the_topic_holds_digests_only_compacted_on_one_partition(
    kafka: KafkaConfig, names: Topics, store: ClientStore
) -> None:
    _, token = store.create("ana", "admin")
    admin = make_admin(kafka)
    resource = ConfigResource("topic", names.clients)
    config = admin.describe_configs([resource])[resource].result()
    assert config["cleanup.policy"].value == "compact"
    assert len(admin.list_topics(names.clients).topics[names.clients].partitions) == 1
    raw = _read_all(kafka, names)
    assert len(raw) == 1 and token.encode() not in raw[0]
    assert orjson.loads(raw[0])["token_sha256"]


def _read_all(kafka: KafkaConfig, names: Topics) -> list[bytes]:
    """Every value on the clients topic, as stored."""
    consumer = make_consumer(kafka, "test-read-all")
    consumer.assign([TopicPartition(names.clients, 0, OFFSET_BEGINNING)])
    try:
        end = consumer.get_watermark_offsets(TopicPartition(names.clients, 0), 10)[1]
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(values) < end and time.monotonic() < deadline:
            values += [msg.value() or b"" for msg in consumer.consume(64, 0.2) if not msg.error()]
    finally:
        consumer.close()
    return values


def test_revoke_stops_a_running_directory(
    store: ClientStore, follow: Callable[[], ClientDirectory]
) -> None:
    _, token = store.create("ana", "predict:*")
    directory = follow()
    directory.sync()
    assert directory.authenticate(token) is not None
    revoked = store.revoke("ana", actor="ops")
    assert (revoked.active, revoked.revoked_by) == (False, "ops")
    eventually(lambda: directory.authenticate(token) is None)
    record = directory.get("ana")
    assert record is not None and record.revoked_at == revoked.revoked_at  # audit trail kept
    assert store.revoke("ana") == revoked  # idempotent: nothing new written
    assert [r.name for r in store.list()] == ["ana"]


def test_rotate_swaps_the_token_on_a_running_directory(
    store: ClientStore, follow: Callable[[], ClientDirectory]
) -> None:
    before, old = store.create("ana", "predict:demo")
    directory = follow()
    directory.sync()
    after, new = store.rotate("ana", actor="ops")
    assert new != old and after.token_id != before.token_id
    assert (after.created_at, after.scopes, after.rotated_by) == (
        before.created_at, before.scopes, "ops",
    )  # fmt: skip
    eventually(lambda: directory.authenticate(new) is not None)
    assert directory.authenticate(old) is None


def test_create_refuses_an_active_name_and_reissues_a_revoked_one(
    store: ClientStore, kafka: KafkaConfig, names: Topics, follow: Callable[[], ClientDirectory]
) -> None:
    _, first = store.create("ana", "admin")
    other = ClientStore(kafka, names)  # another admin's machine
    with other, pytest.raises(ClientExistsError, match="rotate"):
        other.create("ana", "predict:demo")
    store.revoke("ana")
    with pytest.raises(UnknownClientError, match="revoked"):
        store.rotate("ana")
    again, second = store.create("ana", "predict:demo")
    directory = follow()
    directory.sync()
    assert directory.authenticate(first) is None
    assert directory.authenticate(second) == again


def test_unknown_clients_are_refused(store: ClientStore) -> None:
    store.create("ana", "admin")
    for change in (store.revoke, store.rotate):
        with pytest.raises(UnknownClientError, match="ana"):  # lists the known ones
            change("bob")
    assert store.get("bob") is None


def test_list_and_get_see_every_change_made_elsewhere(
    store: ClientStore, kafka: KafkaConfig, names: Topics
) -> None:
    store.create("bob", "predict:demo")
    store.create("ana", "batch:*", Limits(max_batch=10), description="nightly")
    store.revoke("bob")
    with ClientStore(kafka, names) as fresh:
        listed = fresh.list()
        ana = fresh.get("ana")
    assert [(r.name, r.active) for r in listed] == [("ana", True), ("bob", False)]
    assert ana is not None and (ana.description, ana.limits.max_batch) == ("nightly", 10)


def test_a_directory_started_before_the_topic_exists_picks_up_the_first_client(
    kafka: KafkaConfig, names: Topics, follow: Callable[[], ClientDirectory]
) -> None:
    directory = follow()
    time.sleep(1.0)  # the follower has met the missing topic
    assert not directory.ready
    with ClientStore(kafka, names) as store:
        _, token = store.create("ana", "admin")
    eventually(lambda: directory.authenticate(token) is not None, timeout=30)
    assert directory.ready


def test_sync_without_the_topic_says_how_to_create_it(
    follow: Callable[[], ClientDirectory],
) -> None:
    directory = follow()
    with pytest.raises(ClientStoreUnavailableError, match="modelstream topics create"):
        directory.sync(timeout=8)


def test_an_unreadable_record_is_skipped(
    store: ClientStore, kafka: KafkaConfig, names: Topics, follow: Callable[[], ClientDirectory]
) -> None:
    store.create("ana", "admin")
    producer = Producer(kafka.common())
    producer.produce(names.clients, b"{not json", b"mallory")
    producer.produce(names.clients, orjson.dumps({"name": "eve"}), b"eve")
    producer.flush(10)
    _, token = store.create("bob", "predict:demo")
    directory = follow()
    directory.sync()
    assert directory.authenticate(token) is not None
    assert directory.names() == ["ana", "bob"]
    assert [r.name for r in store.list()] == ["ana", "bob"]


def test_an_unreachable_broker_is_a_clear_error(names: Topics) -> None:
    with pytest.raises(ClientStoreUnavailableError, match=r"(?s)127\.0\.0\.1:1.*Is Kafka up"):
        ClientStore(KafkaConfig("127.0.0.1:1"), names, timeout=2)


# -- modelstream clients (the typer app; the top-level command wires it in)


@pytest.fixture
def cli(kafka: KafkaConfig, names: Topics) -> Callable[..., tuple[int, str, str]]:
    runner = CliRunner()
    env = {"MODELSTREAM_KAFKA": kafka.bootstrap, "MODELSTREAM_TOPIC_PREFIX": names.prefix}

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(clients_app, list(args), env=env)
        return result.exit_code, result.stdout, result.stderr

    return run


def _token(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("token=")]
    assert len(lines) == 1, stdout
    return lines[0].removeprefix("token=")


def test_cli_create_prints_the_token_once_and_it_authenticates(
    cli: Callable[..., tuple[int, str, str]], follow: Callable[[], ClientDirectory]
) -> None:
    code, out, err = cli(
        "create", "billing", "--scopes", "predict:churn,catalogue:read", "--rate", "5",
        "--quota", "1000", "--description", "the billing job", "--actor", "ana",
    )  # fmt: skip
    assert code == 0, err
    token = _token(out)
    assert f"API token (shown once): {token}" in out
    assert "cannot be shown again" in err
    directory = follow()
    directory.sync()
    client = directory.authenticate(token)
    assert client is not None
    assert (client.created_by, client.limits.rate_per_s, client.limits.quota) == ("ana", 5, 1000)

    code, out, err = cli("create", "billing", "--scopes", "admin")
    assert code == 1 and "exists" in err and "token=" not in out


def test_cli_list_revoke_rotate(
    cli: Callable[..., tuple[int, str, str]], follow: Callable[[], ClientDirectory]
) -> None:
    assert cli("list")[1].startswith("no clients yet")
    assert cli("create", "ana", "--scopes", "admin")[0] == 0
    assert cli("create", "bob", "--scopes", "predict:*")[0] == 0
    code, out, _ = cli("rotate", "ana")
    new = _token(out)
    code, out, _ = cli("revoke", "bob")
    assert code == 0 and "revoked bob" in out

    code, out, _ = cli("list", "--json")
    rows = orjson.loads(out)
    assert [(row["name"], row["revoked_at"] is None) for row in rows] == [
        ("ana", True), ("bob", False),
    ]  # fmt: skip
    assert all("token_sha256" not in row for row in rows)
    code, out, _ = cli("list")
    assert code == 0 and "revoked" in out and "rotated" in out
    directory = follow()
    directory.sync()
    record = directory.get("ana")
    assert isinstance(record, ClientRecord) and record.token_sha256 not in out
    assert directory.authenticate(new) == record

    assert cli("revoke", "nobody")[0] == 1


def test_cli_refuses_bad_input_before_connecting(
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    code, _, err = cli("create", "ana", "--scopes", "deploy:x")
    assert code == 1 and "predict:<model>" in err
    code, _, err = cli("create", "ana", "--scopes", "admin", "--burst", "0")
    assert code == 1 and "burst" in err
    code, _, err = cli("create", "a.b", "--scopes", "admin")
    assert code == 1 and "not valid" in err

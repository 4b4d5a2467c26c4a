"""The model registry against the real broker: rebuild, chunking, integrity, live routing,
events, atomicity, fencing, and the ``modelstream models`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import joblib
import numpy as np
import orjson
import pandas as pd
import pytest
from confluent_kafka import Producer
from river import linear_model, preprocessing
from sklearn.linear_model import LogisticRegression

from services.registry import (
    Archive,
    ArtifactTooLargeError,
    ConcurrentChangeError,
    IntegrityError,
    InvalidModelError,
    NoPreviousChampionError,
    Registry,
    RegistryView,
    Routing,
    RoutingChanged,
    RoutingError,
    Signer,
    Trust,
    UntrustedVersionError,
    VersionAdded,
    load_public_keys,
    recent_events,
)
from services.registry._archive import write_archive
from services.registry._wire import chunk_key, chunk_record, codec
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin, make_consumer

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Churn",
    "fields": [
        {"name": "age", "type": "double"},
        {"name": "spend", "type": ["null", "double"], "default": None},
        {"name": "sex", "type": {"type": "enum", "name": "Sex", "symbols": ["f", "m"]}},
    ],
}
rng = np.random.default_rng(3)
TRAIN = pd.DataFrame(
    {
        "age": rng.uniform(18, 80, 300),
        "spend": rng.gamma(2.0, 30.0, 300),
        "sex": rng.choice(["f", "m"], 300),
    }
)
LABELS = (TRAIN["age"] > 45).astype(int)
NUMERIC = ["age", "spend"]


def river_model() -> Any:
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for row, label in zip(TRAIN[NUMERIC].to_dict("records"), LABELS, strict=True):
        model.learn_one(row, bool(label))
    return model


def sklearn_model() -> LogisticRegression:
    return LogisticRegression().fit(TRAIN[NUMERIC], LABELS)


class BigModel:
    """A predictor whose pickle is several megabytes (weights that do not compress)."""

    def __init__(self, size: int) -> None:
        self.weights = np.random.default_rng(0).bytes(size)

    def predict(self, rows: Any) -> list[int]:
        return [self.weights[0] % 2 for _ in range(len(rows))]


@pytest.fixture
def topics(kafka: KafkaConfig, unique: Callable[[str], str]) -> Topics:
    names = Topics(unique("reg"))
    ensure_topics(make_admin(kafka), names.global_specs(1))
    return names


@pytest.fixture
def registry(kafka: KafkaConfig, topics: Topics) -> Iterator[Registry]:
    with Registry(kafka, topics, actor="ana") as writer:
        yield writer


@pytest.fixture
def view(kafka: KafkaConfig, topics: Topics) -> Iterator[RegistryView]:
    with RegistryView(kafka, topics) as reader:
        reader.sync()
        yield reader


def events(kafka: KafkaConfig, topics: Topics, group: str) -> list[dict[str, Any]]:
    """Every committed model event, in order."""
    consumer = make_consumer(kafka, group)
    consumer.subscribe([topics.model_events])
    got: list[dict[str, Any]] = []
    quiet = time.monotonic() + 3.0
    while time.monotonic() < quiet:
        for msg in consumer.consume(100, 0.2):
            if msg.error() is None:
                got.append(codec("model_event").decode_avro(msg.value() or b""))
                quiet = time.monotonic() + 1.0
    consumer.close()
    return got


def test_a_fresh_view_rebuilds_river_and_sklearn_versions(
    kafka: KafkaConfig, topics: Topics, registry: Registry
) -> None:
    river, sklearn = river_model(), sklearn_model()
    v1 = registry.register("churn", river, SCHEMA, task="classification", reference=TRAIN)
    v2 = registry.register(
        "churn", sklearn, SCHEMA, reference=TRAIN, sensitive=["sex"], role="challenger",
        hyperparameters={"C": 1.0}, training_metrics={"auc": 0.93}, code_version="abc123",
        fmt="joblib", description="scikit-learn baseline",
    )  # fmt: skip
    assert (v1.version, v2.version, v2.task, v2.classes) == (1, 2, "classification", ("0", "1"))
    assert (v1.positive_label, v2.positive_label) == ("True", "1")  # River: no classes_

    with RegistryView(kafka, topics) as fresh:
        fresh.sync()
        assert fresh.models() == ["churn"]
        assert fresh.versions("churn") == [v1, v2]
        assert fresh.routing("churn") == registry.routing("churn")
        routing = fresh.routing("churn")
        assert routing is not None and (routing.champion, routing.challenger) == (1, 2)
        row = TRAIN[NUMERIC].iloc[0].to_dict()
        assert fresh.load_model("churn", 1).predict_proba_one(row) == river.predict_proba_one(row)  # type: ignore[attr-defined]
        loaded = fresh.load_model("churn", 2)
        assert list(loaded.predict(TRAIN[NUMERIC])) == list(sklearn.predict(TRAIN[NUMERIC]))  # type: ignore[attr-defined]
        assert fresh.load_model("churn", 2) is loaded  # cached per version
    profile = v2.reference_profile
    assert profile is not None and sum(profile["numeric"]["age"]["histogram"]["counts"]) == 300
    assert profile["categorical"]["sex"]["count"] == 300
    assert v2.training_data_fingerprint == v1.training_data_fingerprint


def test_a_3_mb_artifact_is_chunked_and_round_trips(registry: Registry, view: RegistryView) -> None:
    model = BigModel(3 * 1024 * 1024)
    progress: list[tuple[int, int]] = []  # what a progress bar is told, chunk by chunk
    version = registry.register(
        "big", model, SCHEMA, task="regression",
        on_progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    assert version.chunk_count == 7  # 3 MiB of weights + the pickle's own bytes, 512 KiB each
    assert progress == [(done, 7) for done in range(1, 8)]  # acknowledged before the commit
    # commit_transaction returns before the partitions' commit markers are written: wait
    # for them (the last stable offset may still be behind a just-committed write)
    view.sync(include_pending=True)
    assert view.artifact("big", 1) == cloudpickle.dumps(model)
    assert view.load_model("big", 1).weights == model.weights  # type: ignore[attr-defined]


def test_a_tampered_artifact_is_refused(
    kafka: KafkaConfig, topics: Topics, registry: Registry
) -> None:
    registry.register("churn", sklearn_model(), SCHEMA)
    with RegistryView(kafka, topics) as honest:
        honest.sync()
        original = honest.artifact("churn", 1)
    forged = original[:-1] + bytes([original[-1] ^ 0xFF])  # one byte changed
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    record = chunk_record("churn", 1, 0, 1, forged)  # a later record of the same key wins
    producer.produce(
        topics.models,
        key=chunk_key("churn", 1, 0).encode(),
        value=codec("chunk").encode_avro(record),
    )
    producer.flush(10)
    with RegistryView(kafka, topics) as reader:
        reader.sync()
        with pytest.raises(IntegrityError, match="does not match its SHA-256"):
            reader.load_model("churn", 1)


def test_versions_load_only_where_their_signing_key_is_trusted(
    kafka: KafkaConfig, topics: Topics, registry: Registry
) -> None:
    key_a, key_b = Signer.generate(), Signer.generate()
    with Registry(kafka, topics, actor="ana", signer=key_a) as signing:
        signed = signing.register("churn", sklearn_model(), SCHEMA)
    unsigned = registry.register("churn", sklearn_model(), SCHEMA)  # no signer: bypassed
    assert (signed.version, unsigned.version) == (1, 2)

    with RegistryView(kafka, topics, trust=Trust.of(key_b.public_key)) as only_b:
        only_b.sync()
        with pytest.raises(
            UntrustedVersionError, match=f"churn v1 is signed by key {key_a.key_id}"
        ):
            only_b.load_model("churn", 1)
        with pytest.raises(UntrustedVersionError, match="churn v2 is unsigned"):
            only_b.load_model("churn", 2)
    with RegistryView(kafka, topics, trust=Trust.of(key_a.public_key)) as only_a:
        only_a.sync()
        assert getattr(only_a.signature("churn", 1), "key_id", None) == key_a.key_id
        assert only_a.signature("churn", 2) is None
        assert hasattr(only_a.load_model("churn", 1), "predict")
        with pytest.raises(UntrustedVersionError, match="churn v2 is unsigned"):
            only_a.load_model("churn", 2)
    lenient = Trust.of(key_b.public_key, allow_unsigned=True)
    with RegistryView(kafka, topics, trust=lenient) as development:
        development.sync()
        assert hasattr(development.load_model("churn", 2), "predict")


def wait_for_routing(
    view: RegistryView, expect: Callable[[Routing], bool], timeout: float = 30.0
) -> None:
    """Until the view polled a routing change satisfying ``expect`` (``timeout``: a bound;
    how fast a promotion reaches the traffic is `modelstream bench`'s swap_gap_ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for change in view.poll(0.1):
            if isinstance(change, RoutingChanged) and change.routing and expect(change.routing):
                return
    raise AssertionError(f"the routing change never arrived within {timeout:g}s")


def test_routing_changes_reach_a_follower_in_order(
    kafka: KafkaConfig, topics: Topics, registry: Registry, view: RegistryView,
    unique: Callable[[str], str],
) -> None:  # fmt: skip
    for _ in range(3):
        registry.register("churn", sklearn_model(), SCHEMA)
    view.sync()
    steps: list[tuple[Callable[[], Routing], Callable[[Routing], bool]]] = [
        (lambda: registry.promote("churn", 2, reason="better auc"), lambda r: r.champion == 2),
        (lambda: registry.set_challenger("churn", 3, fraction=0.5), lambda r: r.challenger == 3),
        (lambda: registry.set_backup("churn", 1), lambda r: r.backup == 1),
        (lambda: registry.set_backup("churn", None), lambda r: r.backup is None),
        (lambda: registry.rollback("churn", reason="latency"), lambda r: r.champion == 1),
        (lambda: registry.set_challenger("churn", None), lambda r: r.challenger is None),
        (lambda: registry.promote("churn", 3), lambda r: r.champion == 3),
        (lambda: registry.set_backup("churn", 2), lambda r: r.backup == 2),
    ]
    for change, expect in steps:
        written = change()
        assert expect(written)
        wait_for_routing(view, expect)
        assert view.routing("churn") == written
    final = view.routing("churn")
    assert final is not None
    assert (final.champion, final.challenger, final.backup) == (3, None, 2)
    assert (final.previous_champions, final.updated_by, final.shadow_fraction) == ((1,), "ana", 1.0)

    trail = events(kafka, topics, unique("events"))
    assert [(e["action"], e["version"]) for e in trail] == [
        ("register", 1), ("promote", 1), ("register", 2), ("register", 3),
        ("promote", 2), ("set_challenger", 3), ("set_backup", 1), ("clear_backup", 1),
        ("rollback", 1), ("clear_challenger", 3), ("promote", 3), ("set_backup", 2),
    ]  # fmt: skip
    assert {e["actor"] for e in trail} == {"ana"} and trail[4]["reason"] == "better auc"
    assert (trail[8]["reason"], orjson.loads(trail[8]["details"])) == ("latency", {"from": 2})
    assert orjson.loads(trail[0]["details"])["sha256"] == view.version("churn", 1).artifact_sha256


def test_new_versions_reach_a_follower(registry: Registry, view: RegistryView) -> None:
    registry.register("churn", sklearn_model(), SCHEMA)
    changes: list[Any] = []
    deadline = time.monotonic() + 30  # a bound on the wait, not a speed
    while time.monotonic() < deadline and not any(isinstance(c, VersionAdded) for c in changes):
        changes += view.poll(0.2)
    added = [c.version for c in changes if isinstance(c, VersionAdded)]
    assert [(v.name, v.version) for v in added] == [("churn", 1)]
    assert view.load_model("churn", 1) is not None


def test_a_refused_change_writes_nothing(
    kafka: KafkaConfig, topics: Topics, registry: Registry, unique: Callable[[str], str]
) -> None:
    with pytest.raises(RoutingError, match="has no champion yet"):
        registry.register("churn", sklearn_model(), SCHEMA, role="challenger")
    small = Registry(kafka, topics, actor="ana", max_artifact_bytes=1000)
    with pytest.raises(ArtifactTooLargeError, match="over the registry's limit"):
        small.register("churn", BigModel(5000), SCHEMA, task="regression")
    small.close()
    registry.register("churn", sklearn_model(), SCHEMA)
    with pytest.raises(NoPreviousChampionError):
        registry.rollback("churn")
    assert [v.version for v in registry.versions("churn")] == [1]  # nothing half-written
    assert [e["action"] for e in events(kafka, topics, unique("events"))] == ["register", "promote"]


def test_concurrent_writers_of_one_model_cannot_both_win(
    kafka: KafkaConfig, topics: Topics, registry: Registry, view: RegistryView
) -> None:
    registry.register("churn", sklearn_model(), SCHEMA)
    other = Registry(kafka, topics, actor="bob")

    def plan_racing_with_bob() -> tuple[list[tuple[str, str, bytes]], None]:
        # ana decided; bob starts and commits his change before ana writes hers
        other.register("churn", sklearn_model(), SCHEMA, role="challenger")
        return [(topics.routing, "churn", b"ana's stale decision")], None

    with pytest.raises(ConcurrentChangeError, match="another writer changed churn"):
        registry._transact("churn", plan_racing_with_bob)
    other.close()
    view.sync()
    assert [(v.version, v.author) for v in view.versions("churn")] == [(1, "ana"), (2, "bob")]
    routing = view.routing("churn")
    assert routing is not None and routing.challenger == 2  # ana's record never landed
    assert registry.register("churn", sklearn_model(), SCHEMA).version == 3


def test_archive_remove_restore_returns_the_same_signed_version(
    kafka: KafkaConfig, topics: Topics, unique: Callable[[str], str], tmp_path: Path
) -> None:
    signer = Signer.generate()
    with Registry(kafka, topics, actor="ana", signer=signer) as writer:
        writer.register("churn", sklearn_model(), SCHEMA)
        writer.register("churn", sklearn_model(), SCHEMA, role="champion")  # v1 -> history
        before, signature = writer.view.artifact("churn", 1), writer.view.signature("churn", 1)
        with pytest.raises(RoutingError, match="churn v2 is the champion, so it was not removed"):
            writer.remove("churn", 2)
        path = writer.archive("churn", 1, tmp_path)
        assert writer.archive("churn", 1, tmp_path) == path  # idempotent
        writer.remove("churn", 1, reason="retired", archived_to=str(path))

        with RegistryView(kafka, topics) as fresh:
            fresh.sync(include_pending=True)
            assert [v.version for v in fresh.versions("churn")] == [2]
            routing = fresh.routing("churn")
            assert routing is not None and routing.previous_champions == ()
        with pytest.raises(InvalidModelError, match="churn/2 is already registered"):
            writer.restore(
                write_archive(
                    tmp_path,
                    Archive(
                        writer.view.version("churn", 2), None, writer.view.artifact("churn", 2)
                    ),
                )
            )
        assert writer.restore(path, reason="audit").version == 1

    with RegistryView(kafka, topics, trust=Trust.of(signer.public_key)) as trusting:
        trusting.sync(include_pending=True)
        assert [v.version for v in trusting.versions("churn")] == [1, 2]
        assert trusting.artifact("churn", 1) == before
        assert trusting.signature("churn", 1) == signature
        assert hasattr(trusting.load_model("churn", 1), "predict")
    actions = [e["action"] for e in events(kafka, topics, unique("events"))]
    assert actions[-2:] == ["removed", "restored"]


# ----------------------------------------------------------------------------- the CLI


def models(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "services.registry.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_policies_and_decisions_are_stored_and_read_back(
    kafka: KafkaConfig, topics: Topics, registry: Registry
) -> None:
    registry.register("churn", river_model(), SCHEMA, task="classification")
    registry.register("churn", river_model(), SCHEMA, task="classification", role="challenger")
    registry.set_policy("churn", {"min_labels": 700, "auto_retrain": False}, reason="first")
    registry.record("churn", 2, "wait", "312 of 700 labelled requests", {"evidence": {"n": 312}})
    with pytest.raises(RoutingError, match="churn v1 is not the challenger"):
        registry.retire("churn", 1)
    routing = registry.retire("churn", 2, reason="worse", details={"evidence": {"p": 0.001}})
    assert routing.challenger is None and routing.champion == 1
    with RegistryView(kafka, topics) as fresh:
        fresh.sync()
        assert fresh.policy("churn") == {"min_labels": 700, "auto_retrain": False}
        assert fresh.policy("fraud") is None
        assert fresh.routing("churn") == routing  # the policy key is no routing
    trail = recent_events(kafka, topics, "churn", limit=3)
    assert [(e.action, e.version, e.reason) for e in trail] == [
        ("policy", 1, "first"), ("wait", 2, "312 of 700 labelled requests"), ("retire", 2, "worse"),
    ]  # fmt: skip
    assert trail[1].details == {"evidence": {"n": 312}}
    assert trail[2].details == {"previous": 2, "evidence": {"p": 0.001}}
    assert trail[2].actor == "ana"


def test_models_commands(kafka: KafkaConfig, unique: Callable[[str], str], tmp_path: Path) -> None:
    prefix = unique("cli")
    env = os.environ | {"MODELSTREAM_KAFKA": kafka.bootstrap, "MODELSTREAM_TOPIC_PREFIX": prefix,
                        "COLUMNS": "200", "MODELSTREAM_DATA_DIR": str(tmp_path / "data"),
                        }  # fmt: skip
    schema, reference = tmp_path / "churn.avsc", tmp_path / "train.parquet"
    schema.write_bytes(orjson.dumps(SCHEMA))
    TRAIN.to_parquet(reference)
    (tmp_path / "m.pkl").write_bytes(cloudpickle.dumps(sklearn_model()))
    joblib.dump(sklearn_model(), tmp_path / "m.joblib")

    first = models(env, "register", "churn", "--artifact", str(tmp_path / "m.pkl"),
                   "--input-schema", str(schema), "--reference", str(reference),
                   "--sensitive", "sex", "--description", "baseline")  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "version=1" and "(champion;" in first.stdout
    assert "positive '1')" in first.stdout  # inferred from the classes 0 and 1
    # the first registration made the data dir's signing key, trusted there by default
    (local_key,) = load_public_keys([tmp_path / "data" / "keys"])
    signer_id = Signer.load(tmp_path / "data" / "keys" / "registry.key").key_id
    assert f"signed by key {signer_id}" in first.stdout and "created the registry signing key" in (
        first.stderr
    )
    # registering created the model's topic set: producers can write at once
    model_topics = {spec.name for spec in Topics(prefix).model_specs("churn", 1)}
    assert model_topics <= set(make_admin(kafka).list_topics(timeout=10).topics)
    second = models(
        env,
        "register",
        "churn",
        "--artifact",
        str(tmp_path / "m.joblib"),
        "--input-schema",
        str(schema),
        "--role",
        "challenger",
        "--task",
        "classification",
    )  # fmt: skip  (.joblib: read as joblib)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == "version=2"

    for args, expected in [
        (("promote", "churn", "2", "--reason", "better"), "champion v2, challenger -"),
        (("set-challenger", "churn", "1", "--fraction", "0.25"), "challenger v1 (25%)"),
        (("clear-challenger", "churn"), "challenger -"),
        (("set-backup", "churn", "v1"), "backup v1"),  # versions as printed work too
        (("rollback", "churn"), "champion v1"),
        (("list",), "churn"),
        (("show", "churn"), "baseline"),
    ]:
        done = models(env, *args)
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout, (args, done.stdout)

    refused = models(env, "rollback", "churn")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: churn has no previous champion to roll back to; promote a version instead"
    ]
    unknown = models(env, "show", "fraud")
    assert unknown.returncode == 1 and "fraud is not registered (known:" in unknown.stderr
    bad = models(env, "register", "churn", "--artifact", str(schema), "--input-schema", str(schema))
    assert bad.returncode == 1 and "could not be loaded as cloudpickle" in bad.stderr
    wrong = models(env, "register", "churn", "--artifact", str(tmp_path / "m.joblib"),
                   "--format", "cloudpickle", "--input-schema", str(schema))  # fmt: skip
    assert wrong.returncode == 1 and "try --format joblib" in wrong.stderr
    typo = models(env, "promote", "churn", "two")
    assert typo.returncode == 2 and "give a number such as 2 or v2" in typo.stderr

    words = LogisticRegression().fit(TRAIN[NUMERIC], np.where(LABELS == 1, "leave", "stay"))
    (tmp_path / "words.pkl").write_bytes(cloudpickle.dumps(words))
    register_words = ("register", "churn", "--artifact", str(tmp_path / "words.pkl"),
                      "--input-schema", str(schema))  # fmt: skip
    undecided = models(env, *register_words)
    assert undecided.returncode == 1, undecided.stdout
    assert "(classes: leave, stay; none reads as true, 1 or yes); pass --positive-label" in (
        " ".join(undecided.stderr.split())
    )
    third = models(env, *register_words, "--positive-label", "leave")
    assert third.returncode == 0, third.stderr
    assert third.stdout.splitlines()[-1] == "version=3" and "positive 'leave')" in third.stdout
    shown = models(env, "show", "churn").stdout.splitlines()
    table = [
        line.split()[:4] for line in shown if line.split()[2:3] in (["task"], ["classification"])
    ]
    assert table == [
        ["version", "role", "task", "positive"], ["v1", "champion", "classification", "1"],
        ["v2", "-", "classification", "1"], ["v3", "-", "classification", "leave"],
    ], shown  # fmt: skip
    assert sum(line.rstrip().endswith(signer_id) for line in shown) == 3, shown

    for args, expected in [
        (("policy", "churn", "--min-labels", "500", "--max-shadow", "2d", "--loop", "--trainer",
          "pkg.train:fit"), "min-labels               500"),
        (("policy", "churn"), "max-shadow               2d"),
        (("set-challenger", "churn", "2"), "challenger v2"),
        (("veto", "churn", "--reason", "looks wrong"), "churn v2 vetoed"),
        (("pin", "churn", "--reason", "audit week"), "churn: pinned"),
    ]:  # fmt: skip
        done = models(env, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert expected in done.stdout, (args, done.stdout)
    bad_policy = models(env, "policy", "churn", "--alpha", "2")
    assert bad_policy.returncode == 1 and "alpha must be between 0 and 1" in bad_policy.stderr
    trail = models(env, "show", "churn").stdout
    assert "policy: min-labels 500, max-shadow 2d, pinned True, auto-retrain True" in trail, trail
    assert "veto" in trail and "looks wrong" in trail and "audit week" in trail, trail

    with RegistryView(kafka, Topics(prefix)) as reader:
        reader.sync()
        routing = reader.routing("churn")
        assert routing is not None and (routing.champion, routing.backup) == (1, None)
        assert reader.version("churn", 1).sensitive_attributes == ("sex",)
        assert [v.positive_label for v in reader.versions("churn")] == ["1", "1", "leave"]
    with RegistryView(kafka, Topics(prefix), trust=Trust.of(local_key)) as trusting:
        trusting.sync()
        signatures = [trusting.signature("churn", number) for number in (1, 2, 3)]
        assert [s.key_id if s else None for s in signatures] == [signer_id] * 3
        assert hasattr(trusting.load_model("churn", 2), "predict")

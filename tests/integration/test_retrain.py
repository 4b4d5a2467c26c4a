"""Retraining against the real broker and the real ClickHouse engine: a champion trained
before a concept change, labelled requests logged after it, and `retrain` registering a
signed challenger with its full lineage -- or refusing, with nothing registered."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from services.cli import app
from services.lifecycle._errors import (
    ModelContractError,
    RetrainError,
    TooFewRowsError,
    TrainerError,
)
from services.lifecycle._retrain import retrain
from services.lifecycle._trainer import code_version
from services.lifecycle._training_data import labelled_query
from services.lifecycle.trainers import river_logistic
from services.registry import (
    Registry,
    RegistryView,
    Signer,
    Trust,
    data_fingerprint,
    local_signer,
)
from services.sink.rows import _text as sink_text  # the text the sink logs a feature as
from services.sink.sqlserver import SqlServer
from services.synthetic import input_schema, labelled_rows, river_champion, rows
from services.warehouse import Warehouse
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from tests.integration.fixtures_warehouse import as_insert, sample_row

SCHEMA = input_schema()
TRAINER = "services.lifecycle.trainers:river_logistic"
START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
CHANGED = (-1.0, 0.8, 0.6, 0.5, -0.4, 0.3, 0.2, -0.2, 0.1, 0.05)  # x0, x1 flipped
IN_WINDOW = 1000

_CHAMPION: list[Any] = []


def champion_model() -> Any:
    """The champion, trained once per session on the concept before the change."""
    if not _CHAMPION:
        _CHAMPION.append(river_champion(labelled_rows(1500, seed=1)))
    return _CHAMPION[0]


def changed_label(row: dict[str, Any], rng: random.Random) -> str:
    score = sum(w * row[f"x{i}"] for i, w in enumerate(CHANGED))
    return "True" if score + rng.gauss(0.0, 0.3) > 0 else "False"


@dataclass
class Deployment:
    kafka: KafkaConfig
    topics: Topics
    registry: Registry
    warehouse: Warehouse
    name: str
    signer_key: Path
    expected: pd.DataFrame  # the training data as logged: features, label, in ts order


@pytest.fixture
def deployment(
    kafka: KafkaConfig, unique: Callable[[str], str], warehouse: Warehouse, tmp_path: Path
) -> Iterator[Deployment]:
    names = Topics(unique("rt"))
    ensure_topics(make_admin(kafka), names.global_specs(1))
    key = tmp_path / "data" / "keys" / "registry.key"
    with Registry(kafka, names, actor="ana", signer=local_signer(key, create=True)) as registry:
        name = "churn"
        registry.register(name, champion_model(), SCHEMA, task="classification",
                          sensitive=["group"], role="champion")  # fmt: skip
        expected = log_requests(warehouse, name)
        yield Deployment(kafka, names, registry, warehouse, name, key, expected)


def log_requests(warehouse: Warehouse, name: str) -> pd.DataFrame:
    """1,000 labelled requests inside the window (after the concept change) as the sink
    lands them, with what must not be trained on around them; returns the training data
    they should give."""
    rng, champion = random.Random(5), champion_model()
    predictions, feedback, expected = [], [], []
    features = list(rows(IN_WINDOW + 60, seed=11))
    for i, row in enumerate(features):
        ts, model = START + timedelta(seconds=6 * i), name
        if i >= IN_WINDOW:  # after the window, another model's in it, or before it
            ts, model = [
                (END + timedelta(seconds=i), name),
                (ts - timedelta(minutes=90), f"{name}_other"),
                (START - timedelta(seconds=i), name),
            ][i % 3]
        request_id = f"r{i:05d}"
        predictions.append(sample_row(
            "predictions", request_id=request_id, model=model, ts=ts,
            features={k: sink_text(v) for k, v in row.items()},
            champion_version="1", champion_output=str(champion.predict_one(row)),
            challenger_version=None, challenger_output=None, challenger_probabilities={},
            challenger_latency_ms=None,
        ))  # fmt: skip
        label = changed_label(row, rng)
        if i < 50:  # labelled wrong first, corrected later: the correction is trained on
            wrong = "False" if label == "True" else "True"
            feedback.append(label_row(request_id, model, ts + timedelta(seconds=30), wrong))
        feedback.append(label_row(request_id, model, ts + timedelta(minutes=1), label))
        if i < IN_WINDOW:
            expected.append(row | {"label": label})
    unlabelable = sample_row("predictions", request_id="r-null", model=name,
                             ts=START + timedelta(seconds=1), features={"x0": "0.5"})  # fmt: skip
    predictions.append(unlabelable)
    feedback.append(label_row("r-null", name, START + timedelta(minutes=2), None))
    warehouse.insert("predictions", *as_insert(predictions))
    warehouse.insert("feedback", *as_insert(feedback))
    return pd.DataFrame(expected)


def label_row(request_id: str, model: str, ts: datetime, label: str | None) -> dict[str, Any]:
    return sample_row("feedback", request_id=request_id, model=model, ts=ts,
                      label_string=label, label_number=None, source="test")  # fmt: skip


def exploding(frame: pd.DataFrame, params: dict[str, str]) -> Any:
    raise RuntimeError(f"no column named income among {len(frame.columns)}")


def not_a_model(frame: pd.DataFrame, params: dict[str, str]) -> Any:
    return {"weights": [0.1] * 10}


class NeedsIncome:
    def predict_one(self, x: dict[str, Any]) -> bool:
        return bool(x["income"] > 0)


def needs_income(frame: pd.DataFrame, params: dict[str, str]) -> Any:
    return NeedsIncome()


def test_a_retrained_version_shadows_with_its_full_lineage(deployment: Deployment) -> None:
    d = deployment
    params = {"lr": "0.1", "epochs": "2"}
    result = retrain(d.registry, d.warehouse, d.name, trainer=TRAINER, start=START, end=END,
                     params=params, trigger={"by": "test", "alert": "concept"})  # fmt: skip

    train = d.expected.iloc[:800].reset_index(drop=True)
    fingerprint = data_fingerprint(train)
    query = labelled_query(d.name, "classification", START, END)
    lineage = copy.deepcopy(dict(result.version.lineage))
    read_at = datetime.fromisoformat(lineage["data"].pop("read_at"))
    assert abs(datetime.now(UTC) - read_at) < timedelta(minutes=2)
    assert lineage == {
        "kind": "retrain",
        "trainer": TRAINER,
        "code_version": code_version(river_logistic),
        "parent_version": 1,
        "seed": 0,
        "trigger": {"by": "test", "alert": "concept"},
        "data": {
            "start": "2026-11-30T09:00:00+00:00",
            "end": "2026-11-30T11:00:00+00:00",
            "rows": 1000,
            "train_rows": 800,
            "holdout_rows": 200,
            "fingerprint": fingerprint,
            "sql": query.sql,
            "params": {
                "model": d.name,
                "start": "2026-11-30 09:00:00.000",
                "end": "2026-11-30 11:00:00.000",
            },
        },
    }
    assert (result.rows, result.train_rows, result.holdout_rows) == (1000, 800, 200)

    routing = d.registry.routing(d.name)
    assert routing is not None and (routing.champion, routing.challenger) == (1, 2)
    trust = Trust.of(local_signer(d.signer_key, create=False).public_key)
    with RegistryView(d.kafka, d.topics, trust=trust) as view:
        view.sync()
        stored = view.version(d.name, 2)
        view.load_model(d.name, 2)  # signed by the writer's key, and it loads
    assert stored.lineage == result.version.lineage
    assert stored.training_data_fingerprint == fingerprint
    assert stored.code_version == lineage["code_version"]
    assert dict(stored.hyperparameters) == params
    assert stored.sensitive_attributes == ("group",) and stored.positive_label == "True"
    assert stored.reference_profile is not None
    assert stored.reference_profile["rows"] == 800
    assert set(stored.reference_profile["numeric"]) == {f"x{i}" for i in range(10)}
    assert "retrained from v1" in stored.description

    metrics = stored.training_metrics
    assert set(metrics) == {
        "holdout_accuracy", "holdout_f1", "holdout_log_loss", "parent_holdout_accuracy",
        "parent_holdout_f1", "parent_holdout_log_loss", "parent_holdout_failed",
    }  # fmt: skip
    holdout = d.expected.iloc[800:]
    champion = champion_model()
    parent_right = sum(str(champion.predict_one(r)) == r["label"]
                       for r in holdout.to_dict("records"))  # fmt: skip
    assert metrics["parent_holdout_accuracy"] == pytest.approx(parent_right / 200)
    assert metrics["holdout_accuracy"] > metrics["parent_holdout_accuracy"] + 0.2
    assert metrics["holdout_accuracy"] > 0.8


FAILURES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    (TRAINER, {"min_rows": 1001}, TooFewRowsError,
     r"^found 1000 labelled requests of churn between 2026-11-30T09:00:00\+00:00 and "
     r"2026-11-30T11:00:00\+00:00; need 1001: wait for more labels, widen --since or lower "
     r"--min-rows$"),
    (TRAINER, {"trust": Trust.of(Signer.generate().public_key)}, RetrainError,
     r"^the champion cannot be scored on the holdout, so nothing was retrained: churn v1 is "
     r"signed by key \w+, which is not trusted here"),
    ("tests.integration.test_retrain:exploding", {}, TrainerError,
     r"^trainer tests\.integration\.test_retrain:exploding raised RuntimeError: no column "
     r"named income among 12 \(test_retrain\.py:\d+ in exploding <- "),
    ("tests.integration.test_retrain:not_a_model", {}, ModelContractError,
     "dict has no predict_proba_one/predict_one .River. or predict_proba/predict"),
    ("tests.integration.test_retrain:needs_income", {}, ModelContractError,
     r"^the model tests\.integration\.test_retrain:needs_income returned failed on 200 of "
     r"200 holdout requests \(row 0: KeyError: 'income'\)"),
]  # fmt: skip


def test_too_few_rows_a_failing_trainer_or_a_model_off_contract_register_nothing(
    deployment: Deployment,
) -> None:
    """One deployment for every refusal (each leaves it as it was)."""
    d = deployment
    for trainer, options, error, message in FAILURES:
        with pytest.raises(error, match=message):
            retrain(d.registry, d.warehouse, d.name, trainer=trainer, start=START, end=END,
                    **options)  # fmt: skip
        assert [v.version for v in d.registry.versions(d.name)] == [1], trainer
        routing = d.registry.routing(d.name)
        assert routing is not None and routing.challenger is None


def test_the_command_retrains_and_says_what_it_did(
    deployment: Deployment, warehouse_dsn: str, tmp_path: Path
) -> None:
    d = deployment
    env = {
        "MODELSTREAM_KAFKA": d.kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": d.topics.prefix,
        "MODELSTREAM_DATA_DIR": str(tmp_path / "data"),  # its keys/registry.key signed v1
        "MODELSTREAM_CLICKHOUSE": f"{warehouse_dsn}?database={d.warehouse.database}",
        "COLUMNS": "300",
    }
    window = ["--from", "2026-11-30T09:00:00", "--to", "2026-11-30T11:00:00Z"]
    done = CliRunner().invoke(app, ["retrain", "churn", "--trainer", TRAINER, *window,
                                    "--param", "lr=0.1", "--no-shadow"], env=env)  # fmt: skip
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0].startswith(
        "registered churn v2 (no role: `modelstream models set-challenger` to shadow it), "
        f"retrained from champion v1 by {TRAINER} (code "
    )
    assert lines[1].startswith(
        "data: 1000 labelled requests, 2026-11-30T09:00:00+00:00 .. "
        "2026-11-30T11:00:00+00:00 (train 800, holdout 200 latest)"
    )
    assert lines[2].startswith("holdout: accuracy ") and "(champion " in lines[2]
    assert lines[-1] == "version=2"
    stored = d.registry.versions(d.name)[-1]
    assert stored.lineage["trigger"] == {"by": "cli", "actor": stored.author}
    assert stored.hyperparameters == {"lr": "0.1"}
    routing = d.registry.routing(d.name)
    assert routing is not None and routing.challenger is None  # --no-shadow

    refused = CliRunner().invoke(app, ["retrain", "churn", "--trainer", TRAINER, *window,
                                       "--min-rows", "5000"], env=env)  # fmt: skip
    assert refused.exit_code == 1
    assert "error: found 1000 labelled requests of churn between" in refused.output
    assert "need 5000: wait for more labels" in refused.output

    # with the sink holding the embedded warehouse (`modelstream up`), through its endpoint
    sink = SqlServer.open(env["MODELSTREAM_CLICKHOUSE"], tmp_path / "data" / "sink.json")
    sink.start()
    try:
        through = CliRunner().invoke(app, ["retrain", "churn", "--trainer", TRAINER, *window,
                                           "--param", "lr=0.1"],
                                     env=env | {"MODELSTREAM_CLICKHOUSE": ""})  # fmt: skip
    finally:
        sink.stop()
    assert through.exit_code == 0, through.output
    assert through.output.splitlines()[-1] == "version=3"
    v2, v3 = d.registry.versions(d.name)[-2:]
    assert v3.training_data_fingerprint == v2.training_data_fingerprint  # the same rows
    assert v3.training_metrics == v2.training_metrics  # the same model (seeded, same order)
    routing = d.registry.routing(d.name)
    assert routing is not None and routing.challenger == 3

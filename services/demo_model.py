"""The demo's model, ``churn``: how it is registered, and how a newcomer calls it after
the demo (the same commands as the README's "Calling a model over HTTP").

With ``--keep`` (the default), ``modelstream demo`` leaves the local broker running and
``churn`` registered under the deployment's own prefix, so that ``modelstream up`` and
the README's ``curl`` work right after it, as printed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console

from services.clikit import sql_state_file
from services.localstack import LocalStackError
from services.registry import Registry
from services.registry.cli import signer_from
from services.runtime import kafka_config, topics
from services.settings import Settings
from services.sink.sqlserver import remote_query
from services.synthetic import input_schema, labelled_rows, river_challenger, river_champion
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin

__all__ = [
    "HTTP_STEPS",
    "MODEL",
    "DemoError",
    "check_warehouse_free",
    "keep_churn",
    "next_steps",
    "register_churn",
]

MODEL = "churn"
# calling the demo's model over HTTP, after `modelstream demo` (the README shows the same)
HTTP_STEPS = (
    "modelstream up",
    "token=$(modelstream clients create shop --scopes 'predict:*,batch:*,catalogue:read' "
    "| sed -n 's/^token=//p')",
    """curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' """
    """-d '{"x0": 0.1, "x1": -0.3, "x2": 0.0, "x3": 1.2, "x4": 0.5, "x5": 0.0, "x6": 0.2, """
    """"x7": -1.0, "x8": 0.3, "x9": 0.0, "group": "a"}' """
    "http://127.0.0.1:8080/v1/models/churn/predict",
)
DRIFT_FEATURE = "x3"


class DemoError(LocalStackError):
    """The demo cannot run here as things are (the message says what to change)."""


def check_warehouse_free(settings: Settings) -> None:
    """The embedded warehouse opens in one process: a running sink (`modelstream up`)
    holds it, and the demo lands its own rows."""
    if settings.clickhouse is None and remote_query(sql_state_file(settings), "SELECT 1"):
        raise DemoError(
            "the local services are up (`modelstream up`): their sink holds the embedded "
            "warehouse the demo writes to. Stop them with `modelstream down --keep-kafka`, "
            "then run the demo again."
        )


def keep_churn(settings: Settings, console: Console) -> None:
    """``churn`` under the deployment's own prefix, and what to type next."""
    kafka = kafka_config(settings, client_id="demo")
    names = topics(settings)
    ensure_topics(
        make_admin(kafka),
        names.global_specs(settings.topic_partitions)
        + names.model_specs(MODEL, settings.topic_partitions),
    )
    with Registry(kafka, names, actor="demo") as registry:
        routing = registry.routing(MODEL)
    if routing is None:
        register_churn(kafka, names, console)
    else:
        console.print(
            f"[bold]registry[/]  {MODEL} is already registered under {names.prefix} "
            f"(champion v{routing.champion}): kept as it is"
        )
    console.print(
        f"\n[bold]Next[/]: call {MODEL} yourself. The broker keeps running "
        "(`modelstream down` stops everything); in a new shell, from this directory:"
    )
    for line in next_steps(settings):
        print(f"  {line}")


def next_steps(settings: Settings) -> list[str]:
    """The commands that call the demo's model over HTTP, exactly as the README has them."""
    steps = []
    venv = Path(sys.prefix)
    if venv != Path(sys.base_prefix):  # the CLI runs from a virtualenv: put it on PATH
        where = os.path.relpath(venv) if venv.is_relative_to(Path.cwd()) else str(venv)
        steps.append(f"source {where}/bin/activate")
    if settings.data_dir != Settings.model_fields["data_dir"].default:
        steps.append(f"export MODELSTREAM_DATA_DIR={settings.data_dir}")
    return steps + list(HTTP_STEPS)


def register_churn(kafka: KafkaConfig, names: Topics, console: Console) -> tuple[int, int]:
    """A River champion and a different challenger, trained on the same synthetic rows
    (deterministic: every run registers the same models)."""
    train = labelled_rows(3_000, seed=21, group_effect=0.7)
    reference = pd.DataFrame([row for row, _ in train])
    schema = input_schema()
    # signed with this deployment's key: the demo's scorer and gateway trust <data dir>/keys
    with Registry(kafka, names, actor="demo", signer=signer_from(Settings())) as registry:
        champion = registry.register(
            MODEL,
            river_champion(train),
            schema,
            task="classification",
            reference=reference,
            sensitive=["group"],
            role="champion",
            description="churn risk, logistic regression",
        )
        challenger = registry.register(
            MODEL,
            river_challenger(train),
            schema,
            task="classification",
            reference=reference,
            sensitive=["group"],
            role="challenger",
            description="churn risk, SGD lr=0.1 + L2",
        )
    console.print(
        f"[bold]registry[/]  {MODEL} under {names.prefix}: champion v{champion.version}, "
        f"challenger v{challenger.version}"
    )
    return champion.version, challenger.version

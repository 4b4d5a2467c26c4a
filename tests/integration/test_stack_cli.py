"""``modelstream up|status|down`` on an empty deployment: every long-running part starts
with no topic and no model, creates what it needs, and serves a model registered after."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import httpx

from services.localstack import free_port
from services.registry import Registry
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from tests.integration.scoring_support import MODELSTREAM, SCHEMA, trained


def test_every_part_starts_on_an_empty_deployment_and_serves_what_comes(
    kafka: KafkaConfig, unique: Callable[[str], str], tmp_path: Path
) -> None:
    names = Topics(unique("empty"))
    port = free_port()
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": names.prefix,
        "MODELSTREAM_DATA_DIR": str(tmp_path / "data"),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MODELSTREAM, *args], env=env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip

    assert not [t for t in make_admin(kafka).list_topics(timeout=10).topics if names.prefix in t]
    try:
        up = cli("up", "--port", str(port))
        assert up.returncode == 0, up.stdout + up.stderr
        assert cli("status").returncode == 0
        created = set(make_admin(kafka).list_topics(timeout=10).topics)
        assert {names.models, names.routing, names.clients, names.metrics} <= created
        for part in ("sink", "scorer", "monitor", "gateway"):
            log = (tmp_path / "data" / "logs" / f"{part}.log").read_text()
            assert " ERROR " not in log and "Traceback" not in log, f"{part}:\n{log}"

        # a model registered now is served by the parts already running
        artifact, schema = tmp_path / "m.pkl", tmp_path / "m.avsc"
        artifact.write_bytes(cloudpickle.dumps(trained()[0]))
        schema.write_text(json.dumps(SCHEMA))
        registered = cli("models", "register", "m", "--artifact", str(artifact),
                         "--input-schema", str(schema), "--role", "champion")  # fmt: skip
        assert registered.returncode == 0, registered.stderr
        model_topics = {spec.name for spec in names.model_specs("m", 1)}
        assert model_topics <= set(make_admin(kafka).list_topics(timeout=10).topics)
        made = cli("clients", "create", "c", "--scopes", "predict:m")
        token = next(line[6:] for line in made.stdout.splitlines() if line.startswith("token="))
        row = {
            field["name"]: 0.5 if field["name"] != "group" else "a" for field in SCHEMA["fields"]
        }
        deadline = time.monotonic() + 60  # until the running scorer picked the model up
        while True:
            answer = httpx.post(
                f"http://127.0.0.1:{port}/v1/models/m/predict",
                json=row,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            if answer.status_code != 504 or time.monotonic() > deadline:
                break
        assert answer.status_code == 200, answer.text
        assert answer.json()["served_by"] == "champion"
        # the same model over Kafka, from the shell: one reply line per record
        lines = "\n".join(json.dumps(row | {"x0": x}) for x in (0.1, 0.9)) + "\n"
        sent = subprocess.run([MODELSTREAM, "predict", "m", "--file", "-"], input=lines,
                              env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        replies = [json.loads(line) for line in sent.stdout.splitlines()]
        assert [r["served_by"] for r in replies] == ["champion", "champion"], replies
        bad = cli("predict", "m", '{"x0": "not a number"}')  # the scorer's error reply
        assert bad.returncode == 1 and '"wrong_type"' in bad.stdout, bad.stdout + bad.stderr

        # SQL through the running sink: read-only, ClickHouse's own errors
        typo = cli("sql", "SELEC 1")
        assert typo.returncode == 1 and "Syntax error" in typo.stderr, typo.stderr
        write = cli("sql", "DROP TABLE predictions")
        assert write.returncode == 2 and "only read statements" in write.stderr
        sneaky = cli("sql", "SELECT 1 FROM predictions SETTINGS readonly = 0")
        assert sneaky.returncode == 1, sneaky.stdout  # the engine keeps it read-only
        rows = cli("sql", "SELECT count() AS n FROM predictions WHERE model = 'm'",
                   "--output", "json")  # fmt: skip
        assert rows.returncode == 0 and json.loads(rows.stdout)[0]["n"] >= 0
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    assert cli("status").returncode == 3


def test_a_scorer_told_a_misspelt_model_says_so_and_waits_for_it(
    kafka: KafkaConfig, unique: Callable[[str], str], tmp_path: Path
) -> None:
    names = Topics(unique("typo"))
    ensure_topics(make_admin(kafka), names.global_specs(1))
    with Registry(kafka, names, actor="tests") as registry:
        registry.register("loan", trained()[0], SCHEMA, task="classification")
    env = os.environ | {
        "MODELSTREAM_KAFKA": kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": names.prefix,
    }
    log = tmp_path / "scorer.log"
    with log.open("wb") as out:
        scorer = subprocess.Popen([MODELSTREAM, "run", "scorer", "--model", "laon"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while " ready" not in log.read_text() and time.monotonic() < deadline:
            assert scorer.poll() is None, log.read_text()
            time.sleep(0.2)
    finally:
        scorer.terminate()
        scorer.wait(30)
    text = log.read_text()
    assert "WARNING" in text and "laon is not registered (known: loan; did you mean loan?)" in text
    assert "serving it as soon as it is registered" in text
    sent = subprocess.run([MODELSTREAM, "predict", "laon", '{"x0": 1.0}'], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert sent.returncode == 1 and sent.stdout == ""
    assert "laon is not registered (known: loan; did you mean loan?): nothing was sent" in (
        " ".join(sent.stderr.split())
    )
    assert "Traceback" not in text and " ERROR " not in text, text

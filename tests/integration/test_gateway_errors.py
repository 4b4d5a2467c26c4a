"""The gateway's answers at the edges a newcomer hits first, end to end (real broker, real
scorer subprocess, ``modelstream run gateway``): a typo'd model name, an Authorization
header without ``Bearer``, the catalogue's Kafka example, and the batch size that
``modelstream clients create`` prints.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from services.gateway import cli as gateway_cli
from services.gateway.cli import clients_app
from services.registry import Registry
from services.synthetic import rows
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from tests.integration.gateway_support import Running, bearer, kafka_env, running, wait_until_known
from tests.integration.scoring_support import Stack, trained

pytestmark = pytest.mark.integration
ROWS = list(rows(10, seed=3))
EXPECTED = "the Authorization header must be `Bearer <token>`"
MODEL_ROUTES = [  # (method, path, body)
    ("POST", "/v1/models/{}/predict", ROWS[0]),
    ("POST", "/v1/models/{}/batch", ROWS[:2]),
    ("GET", "/v2/models/{}", None),
    ("GET", "/v2/models/{}/ready", None),
    ("POST", "/v2/models/{}/infer", {"inputs": []}),
]


@pytest.fixture(scope="module")
def gw(kafka: KafkaConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    topics = Topics(f"gwerr-{uuid.uuid4().hex[:8]}")
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    registry = Registry(kafka, topics, actor="tests")
    stack = Stack(kafka, topics, registry, Path(tmp_path_factory.mktemp("gwerr")))
    stack.add_model("loan", trained()[0])
    with running(stack, "--timeout-ms", "10000") as handle:
        yield handle
    registry.close()


def send(gw: Running, method: str, path: str, token: str | None, body: Any = None) -> Any:
    headers = bearer(token) if token else {}
    return httpx.request(method, f"{gw.url}{path}", json=body, headers=headers, timeout=30)


def error_of(answer: httpx.Response) -> tuple[str, str]:
    """(code, message) of a /v1 or a /v2 error body."""
    body = answer.json()
    if isinstance(body["error"], str):
        return body["code"], body["error"]
    return body["error"]["code"], body["error"]["message"]


def test_a_typo_is_404_unknown_model_on_every_model_route(gw: Running) -> None:
    caller = gw.client("newcomer", ["predict:loan", "batch:loan"])
    reader = gw.client("analyst", ["catalogue:read"])
    for method, path, body in MODEL_ROUTES:
        typo = send(gw, method, path.format("laon"), caller, body)
        assert typo.status_code == 404, (path, typo.text)
        assert error_of(typo) == ("unknown_model", "laon is not registered"), path
        told = send(gw, method, path.format("laon"), reader, body)
        assert told.status_code == 404, (path, told.text)
        assert error_of(told) == (
            "unknown_model",
            "laon is not registered (known: loan; did you mean loan?)",
        ), path
        assert send(gw, method, path.format("laon"), None, body).status_code == 401, path


def test_a_registered_model_without_the_scope_stays_403(gw: Running) -> None:
    outsider = gw.client("outsider", ["predict:fraud", "batch:fraud"])
    for method, path, body in MODEL_ROUTES:
        answer = send(gw, method, path.format("loan"), outsider, body)
        assert answer.status_code == 403, (path, answer.text)
        assert error_of(answer)[0] == "forbidden"


def test_the_catalogue_and_its_documents_suggest_the_closest_model(gw: Running) -> None:
    reader = gw.client("librarian", ["catalogue:read"])
    caller = gw.client("caller-only", ["predict:loan"])
    for path in ("/v1/catalogue/laon", "/v1/models/laon/openapi.json"):
        missing = send(gw, "GET", path, reader)
        assert missing.status_code == 404
        assert error_of(missing) == (
            "unknown_model",
            "laon is not registered (known: loan; did you mean loan?)",
        )
        assert send(gw, "GET", path, caller).status_code == 403  # the catalogue scope first
    page = httpx.get(f"{gw.url}/catalogue/laon", headers=bearer(reader), timeout=30)
    assert (
        page.status_code == 404 and 'Did you mean <a href="/catalogue/loan">loan</a>' in page.text
    )
    listed = {e["code"] for e in send(gw, "GET", "/v1/catalogue", reader).json()["error_codes"]}
    assert {"unknown_model", "unknown_version"} <= listed


def test_a_header_without_the_bearer_scheme_says_so(gw: Running) -> None:
    token = gw.client("forgetful", ["predict:loan"])
    path = f"{gw.url}/v1/models/loan/predict"
    cases = {
        token: f"{EXPECTED} (the scheme is missing)",
        "Basic dXNlcjpwYXNz": f"{EXPECTED} (it uses the Basic scheme)",
        "Bearer": f"{EXPECTED} (the token is missing)",
    }
    for header, message in cases.items():
        answer = httpx.post(path, json=ROWS[0], headers={"Authorization": header}, timeout=30)
        assert answer.status_code == 401
        assert error_of(answer) == ("unauthenticated", message)
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="modelstream"'
        assert token[16:] not in answer.text  # the secret: after "ms_<12 hex id>_"
    nothing = httpx.post(path, json=ROWS[0], timeout=30)
    assert error_of(nothing)[1].startswith("no API token was sent")
    right = httpx.post(path, json=ROWS[0], headers={"Authorization": f"bearer {token}"}, timeout=30)
    assert right.status_code == 200, right.text


def test_the_kafka_example_runs_as_written_on_the_gateways_broker(gw: Running) -> None:
    reader = gw.client("copier", ["catalogue:read"])
    card = send(gw, "GET", "/v1/catalogue/loan", reader).json()
    kafka = gw.stack.kafka
    assert card["kafka"]["bootstrap_servers"] == kafka.bootstrap
    assert card["kafka"]["security_protocol"] == kafka.security_protocol
    snippet = card["examples"]["kafka"]
    assert f'BOOTSTRAP = "{kafka.bootstrap}"' in snippet
    if kafka.password:
        assert kafka.password not in snippet and kafka.password not in orjson.dumps(card).decode()
    whole = send(gw, "GET", "/v1/catalogue", reader).json()
    assert whole["kafka"] == card["kafka"]
    done = subprocess.run(
        [sys.executable, "-c", snippet], env=kafka_env(kafka), capture_output=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert "'served_by': 'champion'" in done.stdout.decode()


def test_clients_create_prints_the_batch_size_the_gateway_enforces(
    gw: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = kafka_env(gw.stack.kafka) | {"MODELSTREAM_TOPIC_PREFIX": gw.stack.topics.prefix}
    runner = CliRunner()
    created = runner.invoke(
        clients_app,
        ["create", "nightly", "--scopes", "batch:loan", "--burst", "5", "--max-batch", "50"],
        env=env,
    )
    assert created.exit_code == 0, created.stderr
    assert "batch 5 (max-batch 50, but the burst is 5: a batch takes a token per record)" in (
        created.stdout
    )
    token = re.search(r"^token=(\S+)$", created.stdout, re.MULTILINE)
    assert token is not None
    wait_until_known(gw.url, token[1])
    over = send(gw, "POST", "/v1/models/loan/batch", token[1], ROWS[:6])
    assert over.status_code == 422
    assert error_of(over) == (
        "batch_too_large",
        "6 records; at most 5 per batch (this client's burst: a batch takes a token per "
        "record, all at once)",
    )
    assert send(gw, "POST", "/v1/models/loan/batch", token[1], ROWS[:5]).json()["succeeded"] == 5
    listed = runner.invoke(clients_app, ["list", "--json"], env=env)
    (row,) = [r for r in orjson.loads(listed.stdout) if r["name"] == "nightly"]
    assert (row["limits"]["max_batch"], row["largest_batch"]) == (50, 5)
    # rich fixes a console's width when it is made (COLUMNS then): set it, not COLUMNS now
    monkeypatch.setattr(gateway_cli.console, "width", 400)
    table = runner.invoke(clients_app, ["list"], env=env)
    assert "batch 5 (max-batch 50, but the burst is 5" in table.stdout

"""The catalogue and portal without a network: cards over a plain directory, the examples,
the per-model OpenAPI document, the statistics' cache, the pages' sign-in."""

from __future__ import annotations

import ast
import json
import re
import shlex
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

from services.gateway.app import create_app
from services.gateway.bridge import BridgeConfig
from services.gateway.context import GatewayConfig, GatewayContext
from services.gateway.contract import InputContract
from services.gateway.directory import ModelEntry
from services.gateway.errors import ERROR_CODES
from services.gateway.policy import Limits, PolicyManager
from services.gateway.routes.catalogue import (
    catalogue,
    examples,
    kafka_access,
    model_card,
    reply_schema,
)
from services.gateway.routes.portal import model_openapi, openapi_30
from services.gateway.stats import (
    ModelStats,
    SinkQuery,
    StatsReport,
    StatsUnavailableError,
    WarehouseStats,
)
from services.registry import ModelVersion, Routing
from streams.kafka import KafkaConfig, Topics

BASE = "http://127.0.0.1:8080"
BROKER = KafkaConfig("127.0.0.1:40123")
KAFKA = kafka_access(BROKER)
SCHEMA = {
    "type": "record", "name": "Customer", "doc": "one customer",
    "fields": [
        {"name": "age", "type": "int", "doc": "years"},
        {"name": "plan", "type": {"type": "enum", "name": "Plan", "symbols": ["basic", "pro"]}},
        {"name": "spend", "type": ["null", "double"], "default": None},
        {"name": "note", "type": "string", "doc": "it's free text"},
    ],
}  # fmt: skip


def version(number: int, **extra: Any) -> ModelVersion:
    return ModelVersion(
        name="churn", version=number, task="classification", input_schema=SCHEMA,
        features=("age", "plan", "spend", "note"), author="ana",
        created_at=datetime(2025, 3, number, tzinfo=UTC), artifact_format="cloudpickle",
        artifact_sha256="0" * 64, artifact_size=10, chunk_count=1,
        description=f"gradient boosting v{number}", training_metrics={"accuracy": 0.9},
        classes=("no", "yes"), **extra,
    )  # fmt: skip


def entry() -> ModelEntry:
    versions = (version(1), version(2), version(3))
    routing = Routing("churn", champion=2, challenger=3, backup=1, shadow_fraction=0.5)
    return ModelEntry("churn", routing, versions, versions[1], InputContract(SCHEMA))


class Directory:
    """The part of ModelDirectory the catalogue reads."""

    def __init__(self, *entries: ModelEntry) -> None:
        self._entries = {e.name: e for e in entries}
        self.synced = threading.Event()

    def entries(self) -> list[ModelEntry]:
        return sorted(self._entries.values(), key=lambda e: e.name)

    def get(self, name: str) -> ModelEntry | None:
        return self._entries.get(name)


class Clients:
    """Tokens → records, like ClientDirectory.authenticate (and get, by name)."""

    def __init__(self, **tokens: tuple[str, ...]) -> None:
        self._tokens = {
            token: SimpleNamespace(name=f"client-{token}", limits=Limits(), active=True,
                                   token_sha256=f"{token:0>64}"[-64:],
                                   allows=lambda scope, s=scopes: scope in s)
            for token, scopes in tokens.items()
        }  # fmt: skip

    def authenticate(self, token: str) -> Any:
        return self._tokens.get(token)

    def get(self, name: str) -> Any:
        return next((r for r in self._tokens.values() if r.name == name), None)


def form_csrf(html: str) -> str:
    """The CSRF token a rendered page's forms post."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "the page has no form with a CSRF token"
    return match.group(1)


STATS = ModelStats("churn", 3600, 7200, 2.0, 1.25, 3.5, 9.0, 0.001, 0.0, "2025-03-02 10:00:00")


def context(public: bool = False, stats: Any = None) -> GatewayContext:
    bridge = SimpleNamespace(
        config=BridgeConfig(Topics("acme")),
        topics=Topics("acme"),
        ready=True,
        mode="kafka",
        kafka=BROKER,
        max_record_bytes=995_904,
    )
    clients = Clients(reader=("catalogue:read",), caller=("predict:churn",))
    return GatewayContext(
        GatewayConfig(public_catalogue=public), bridge, Directory(entry()),  # type: ignore[arg-type]
        clients, PolicyManager(), stats,  # type: ignore[arg-type]
    )  # fmt: skip


# -- the cards


def test_card_has_schemas_roles_versions_and_stats() -> None:
    body = catalogue([entry()], StatsReport({"churn": STATS}), BASE, "acme", KAFKA)
    (card,) = body["models"]
    assert card["name"] == "churn" and card["task"] == "classification"
    assert card["description"] == "gradient boosting v2"
    assert card["input_schema"] == entry().contract.json_schema()
    assert [(v["version"], v["role"]) for v in card["versions"]] == [
        (3, "challenger"), (2, "champion"), (1, "backup")]  # fmt: skip
    assert card["versions"][1]["author"] == "ana"
    assert card["versions"][1]["training_metrics"] == {"accuracy": 0.9}
    assert card["routing"]["shadow_fraction"] == 0.5
    assert card["stats"]["p99_ms"] == 9.0 and card["stats"]["qps"] == 2.0
    assert card["topics"]["requests"] == "acme.churn.requests"
    assert card["endpoints"]["portal"] == f"{BASE}/portal/models/churn"
    assert {e["code"] for e in body["error_codes"]} == set(ERROR_CODES)
    assert body["stats"]["unavailable"] is None


def test_unavailable_stats_say_why() -> None:
    body = catalogue(
        [entry()], StatsReport({}, unavailable="no sink is running"), BASE, "acme", KAFKA
    )
    assert body["models"][0]["stats"] is None
    assert body["stats"]["unavailable"] == "no sink is running"


def test_output_schema_is_the_reply_typed_for_the_task() -> None:
    schema = reply_schema("classification", ["no", "yes"])
    assert schema["properties"]["prediction"]["enum"] == ["no", "yes", None]
    assert schema["properties"]["served_by"]["enum"] == ["champion", "backup", "none"]
    assert {"request_id", "latency_ms", "served_by", "created_at"} <= set(schema["required"])
    assert schema["properties"]["probabilities"]["additionalProperties"] == {"type": "number"}
    reply = {"request_id": "r1", "model": "churn", "model_version": 2, "task": "classification",
             "prediction": "yes", "probabilities": {"no": 0.2, "yes": 0.8},
             "served_by": "champion", "latency_ms": 1.5, "error": None,
             "created_at": 1}  # fmt: skip
    jsonschema_rs.validate(schema, reply)
    assert reply_schema("regression")["properties"]["prediction"]["type"] == ["number", "null"]


def test_example_record_fits_the_schema_and_the_contract() -> None:
    card = model_card(entry(), None, BASE, "acme", KAFKA)
    jsonschema_rs.validate(card["input_schema"], card["example"])
    assert entry().contract.check(card["example"])


# -- examples


def test_curl_examples_send_a_valid_record_to_this_gateway() -> None:
    snippets = examples(entry(), BASE, "acme", KAFKA)
    words = shlex.split(snippets["curl_predict"].replace("\\\n", " "))
    assert f"{BASE}/v1/models/churn/predict" in words
    assert entry().contract.check(json.loads(words[words.index("-d") + 1]))
    batch = shlex.split(snippets["curl_batch"].split("\n\n")[0].replace("\\\n", " "), comments=True)
    records = json.loads(batch[batch.index("-d") + 1])
    assert len(records) == 2 and all(entry().contract.check(r) for r in records)
    infer = shlex.split(snippets["curl_infer"].replace("\\\n", " "), comments=True)
    assert f"{BASE}/v2/models/churn/infer" in infer
    tensors = json.loads(infer[infer.index("-d") + 1])["inputs"]
    assert {t["name"]: t["data"][0] for t in tensors} == entry().contract.example()


@pytest.mark.parametrize("kind", ["python", "kafka"])
def test_python_examples_compile_and_carry_the_record(kind: str) -> None:
    code = examples(entry(), BASE, "acme", KAFKA)[kind]
    tree = ast.parse(code)
    assigned = {
        node.targets[0].id: node.value for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }  # fmt: skip
    assert ast.literal_eval(assigned["record"]) == entry().contract.example()
    if kind == "kafka":
        assert ast.literal_eval(assigned["REQUESTS"]) == "acme.churn.requests"
        assert '"isolation.level": "read_committed"' in code
        assert '"reply-to": REPLIES' in code and '"content-type": "application/json"' in code
    else:
        assert ast.literal_eval(assigned["BASE_URL"]) == BASE
        assert "/v1/models/churn/predict" in code


def test_the_kafka_example_uses_the_gateways_bootstrap_servers() -> None:
    code = examples(entry(), BASE, "acme", KAFKA)["kafka"]
    assigned = {
        node.targets[0].id: node.value for node in ast.parse(code).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }  # fmt: skip
    assert ast.literal_eval(assigned["BOOTSTRAP"]) == "127.0.0.1:40123"
    assert "localhost:9092" not in code and "security.protocol" not in code


def test_the_kafka_example_on_sasl_names_the_mechanism_never_the_credentials() -> None:
    secure = KafkaConfig("user:hunter2@k1:9096,k2:9096", "gateway-0", "SASL_SSL",
                         "SCRAM-SHA-512", "gw-user", "hunter2")  # fmt: skip
    access = kafka_access(secure)
    code = examples(entry(), BASE, "acme", access)["kafka"]
    compile(code, "kafka.py", "exec")
    assert 'BOOTSTRAP = "k1:9096,k2:9096"' in code
    assert '"security.protocol": "SASL_SSL"' in code
    assert '"sasl.mechanism": "SCRAM-SHA-512"' in code
    assert 'os.environ["MODELSTREAM_KAFKA_PASSWORD"]' in code
    card = model_card(entry(), None, BASE, "acme", access)
    shown = json.dumps(catalogue([entry()], StatsReport({}), BASE, "acme", access), default=str)
    for text in (code, json.dumps(card, default=str), shown):
        assert "hunter2" not in text and "gw-user" not in text
    assert card["kafka"] == {"bootstrap_servers": "k1:9096,k2:9096",
                             "security_protocol": "SASL_SSL",
                             "sasl_mechanism": "SCRAM-SHA-512"}  # fmt: skip
    ssl_only = examples(entry(), BASE, "acme", kafka_access(KafkaConfig("k:9093", "x", "SSL")))
    assert 'KAFKA["security.protocol"] = "SSL"' in ssl_only["kafka"]
    assert "os.environ" not in ssl_only["kafka"]


# -- OpenAPI


def test_model_openapi_is_valid_openapi_30_with_the_models_schema() -> None:
    doc = model_openapi(entry(), BASE)
    OPENAPI_30_VALIDATOR.validate(doc)
    assert set(doc["paths"]) == {
        "/v1/models/churn/predict", "/v1/models/churn/batch", "/v2/models/churn/infer"}  # fmt: skip
    assert doc["servers"] == [{"url": BASE}]
    body = doc["paths"]["/v1/models/churn/predict"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/Input"}
    assert entry().contract.check(body["application/json"]["example"])
    schemas = doc["components"]["schemas"]
    assert set(schemas["Input"]["properties"]) == {"age", "plan", "spend", "note"}
    assert schemas["Input"]["properties"]["spend"] == {"type": "number", "nullable": True,
                                                       "default": None}  # fmt: skip
    assert schemas["Prediction"]["properties"]["prediction"]["enum"] == ["no", "yes"]
    assert "gateway_latency_ms" in schemas["Prediction"]["required"]
    responses = doc["paths"]["/v1/models/churn/predict"]["post"]["responses"]
    assert {"200", "401", "403", "422", "429", "504"} <= set(responses)


def test_fields_named_like_keywords_survive_the_conversion() -> None:
    fields = [{"name": "const", "type": "string"}, {"name": "type", "type": ["null", "int"]}]
    schema = {"type": "record", "name": "K", "fields": fields}
    odd = ModelEntry("odd", Routing("odd", champion=1), (version(1),), version(1),
                     InputContract(schema))  # fmt: skip
    doc = model_openapi(odd, BASE)
    OPENAPI_30_VALIDATOR.validate(doc)
    assert doc["components"]["schemas"]["Input"]["properties"] == {
        "const": {"type": "string"}, "type": {"type": "integer", "nullable": True}}  # fmt: skip


def test_the_apps_document_as_openapi_30_is_valid() -> None:
    doc = create_app(context()).openapi()
    assert doc["openapi"].startswith("3.1")
    converted = openapi_30(doc)
    OPENAPI_30_VALIDATOR.validate(converted)
    assert {"/v1/catalogue", "/v1/models/{name}/predict"} <= set(converted["paths"])
    assert "/catalogue" not in converted["paths"]  # pages are not API


# -- statistics


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


COLUMNS = ["model", "requests", "p50_ms", "p95_ms", "p99_ms", "error_rate", "backup_rate",
           "last_at"]  # fmt: skip


def test_stats_are_cached_for_the_ttl() -> None:
    calls: list[str] = []

    def query(sql: str) -> tuple[list[str], list[list[Any]]]:
        calls.append(sql)
        return COLUMNS, [["churn", 3600, 1.0, 2.0, 3.0, 0.0, 0.0, "2025-03-02"]]

    clock = Clock()
    stats = WarehouseStats(query, ttl=10, clock=clock)
    first = stats.for_models(["churn", "other"])
    assert first["churn"] is not None and first["churn"].qps == 1.0 and first["other"] is None
    clock.now = 9.0
    stats.for_models(["churn"])
    assert len(calls) == 1
    clock.now = 10.5
    stats.for_models(["churn"])
    assert len(calls) == 2 and "FROM predictions" in calls[0]


def test_a_slow_warehouse_does_not_hold_the_page() -> None:
    release = threading.Event()

    def slow(sql: str) -> tuple[list[str], list[list[Any]]]:
        release.wait(10)
        return COLUMNS, []

    stats = WarehouseStats(slow, timeout=0.05)
    report = stats.report()
    assert report.unavailable is not None and "did not answer within 0.05 s" in report.unavailable
    release.set()


def test_failures_become_a_reason() -> None:
    def down(sql: str) -> Any:
        raise StatsUnavailableError("the server is down")

    def broken(sql: str) -> Any:
        raise KeyError("columns")

    assert WarehouseStats(down).report().unavailable == "the server is down"
    assert "KeyError" in str(WarehouseStats(broken).report().unavailable)
    assert WarehouseStats(None, reason="not configured").report().unavailable == "not configured"


def test_no_sink_running_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StatsUnavailableError, match="no sink is running"):
        SinkQuery(tmp_path / "sink.json")("SELECT 1")


# -- routes and pages


def test_json_catalogue_needs_the_scope() -> None:
    client = TestClient(create_app(context()))
    assert client.get("/v1/catalogue").status_code == 401
    denied = client.get("/v1/catalogue", headers={"Authorization": "Bearer caller"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    body = client.get("/v1/catalogue", headers={"Authorization": "Bearer reader"}).json()
    assert body["models"][0]["name"] == "churn"
    assert body["stats"]["unavailable"] == "the gateway was started without warehouse statistics"
    assert body["models"][0]["endpoints"]["predict"] == "http://testserver/v1/models/churn/predict"
    assert body["kafka"]["bootstrap_servers"] == BROKER.bootstrap
    assert body["serving"]["mode"] == "kafka" and "scorer" in body["serving"]["how"]
    one = client.get("/v1/catalogue/churn", headers={"Authorization": "Bearer reader"})
    assert one.json()["champion"] == 2
    missing = client.get("/v1/catalogue/nope", headers={"Authorization": "Bearer reader"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_model"


def test_pages_redirect_to_sign_in_then_render() -> None:
    client = TestClient(create_app(context()), follow_redirects=False)
    redirect = client.get("/catalogue/churn")
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/portal/login?next=%2Fcatalogue%2Fchurn&why=signin"
    csrf = form_csrf(client.get("/portal/login").text)
    refused = client.post("/portal/login", data={"token": "wrong", "next": "/catalogue/churn",
                                                 "csrf": csrf})  # fmt: skip
    assert refused.status_code == 401 and "not valid" in refused.text
    forbidden = client.post("/portal/login", data={"token": "caller", "csrf": csrf})
    assert forbidden.status_code == 403 and "catalogue:read" in forbidden.text
    signed = client.post("/portal/login", data={"token": "reader", "next": "/catalogue/churn",
                                                "csrf": csrf})  # fmt: skip
    assert signed.status_code == 303 and signed.headers["location"] == "/catalogue/churn"
    cookie = signed.headers["set-cookie"]
    assert "ms_session=" in cookie and "reader" not in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get("/catalogue/churn")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/v1/models/churn/predict" in page.text and "it&#39;s free text" in page.text
    out = client.post("/portal/logout", data={"csrf": form_csrf(page.text)})
    assert out.status_code == 303 and 'ms_session=""' in out.headers["set-cookie"]


def test_public_catalogue_and_portal_pages() -> None:
    client = TestClient(create_app(context(public=True)), follow_redirects=False)
    pages = ("/catalogue", "/catalogue/churn", "/portal", "/portal/docs", "/portal/models/churn")
    for path in pages:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "churn" in answer.text or path == "/portal/docs"
    assert client.get("/catalogue/nope").status_code == 404
    spec = client.get("/v1/models/churn/openapi.json").json()
    OPENAPI_30_VALIDATOR.validate(spec)
    assert client.get("/portal/openapi.json").json()["openapi"] == "3.0.3"
    assert client.get("/portal/static/swagger/swagger-ui-bundle.js").status_code == 200
    assert client.get("/portal/static/modelstream/portal.css").status_code == 200


def test_sign_in_only_returns_to_this_site() -> None:
    client = TestClient(create_app(context()), follow_redirects=False)
    csrf = form_csrf(client.get("/portal/login").text)
    signed = client.post("/portal/login", data={"token": "reader", "next": "//evil.example/x",
                                                "csrf": csrf})  # fmt: skip
    assert signed.headers["location"] == "/catalogue"
    wrong_type = client.post("/portal/login", json={"token": "reader"})
    assert wrong_type.status_code == 415

"""Who is calling, and in which order the gateway checks: token (401) → model (404) →
scope (403) → limits, on every per-model route, over a plain directory (no Kafka)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app
from services.gateway.auth import parse_authorization
from services.gateway.bridge import BridgeConfig
from services.gateway.clients import ClientRecord, Limits
from services.gateway.context import GatewayConfig, GatewayContext
from services.gateway.directory import ModelEntry
from services.gateway.policy import PolicyManager
from services.gateway.routes.serving import unknown_model_message
from services.registry import closest
from streams.kafka import KafkaConfig, Topics
from tests.unit.services.gateway.test_catalogue import entry, form_csrf

EXPECTED = "the Authorization header must be `Bearer <token>`"
SCOPES = {
    "caller": ("predict:churn",),
    "batcher": ("batch:churn",),
    "other": ("predict:fraud", "batch:fraud"),
    "reader": ("catalogue:read",),
    "admin": ("admin",),
    "small": ("batch:churn",),
}


class Directory:
    def __init__(self, *entries: ModelEntry) -> None:
        self._entries = {e.name: e for e in entries}
        self.synced = threading.Event()

    def entries(self) -> list[ModelEntry]:
        return sorted(self._entries.values(), key=lambda e: e.name)

    def get(self, name: str) -> ModelEntry | None:
        return self._entries.get(name)


class Clients:
    """Tokens → real records (real scope rules: admin, wildcards)."""

    def __init__(self) -> None:
        limits = {"small": Limits(burst=3, max_batch=4)}
        self._records = {
            token: ClientRecord(token, "0123456789ab", "0" * 64, scopes,
                                limits=limits.get(token, Limits()))
            for token, scopes in SCOPES.items()
        }  # fmt: skip
        self.ready = True

    def authenticate(self, token: str) -> ClientRecord | None:
        return self._records.get(token)

    def get(self, name: str) -> ClientRecord | None:
        return next((r for r in self._records.values() if r.name == name), None)


def app(public: bool = False, max_batch: int = 1_000) -> TestClient:
    bridge = SimpleNamespace(
        config=BridgeConfig(Topics("acme")),
        topics=Topics("acme"),
        ready=True,
        mode="kafka",
        kafka=KafkaConfig("127.0.0.1:1"),
        max_record_bytes=995_904,
    )
    ctx = GatewayContext(
        GatewayConfig(public_catalogue=public, max_batch=max_batch), bridge,  # type: ignore[arg-type]
        Directory(entry()), Clients(), PolicyManager(),  # type: ignore[arg-type]
    )  # fmt: skip
    return TestClient(create_app(ctx), follow_redirects=False)


def call(client: TestClient, method: str, path: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, path, headers=headers, json={})


def message(answer: Any) -> str:
    body = answer.json()
    return str(body["error"] if isinstance(body["error"], str) else body["error"]["message"])


def code(answer: Any) -> str:
    body = answer.json()
    return str(body["code"] if isinstance(body["error"], str) else body["error"]["code"])


# -- the Authorization header


@pytest.mark.parametrize(
    ("header", "token", "problem"),
    [
        ("Bearer ms_abc", "ms_abc", None),
        ("bearer\tms_abc", "ms_abc", None),
        ("BEARER   ms_abc  ", "ms_abc", None),
        ("ms_0123456789ab_secret", None, f"{EXPECTED} (the scheme is missing)"),
        ("Basic YWxhZGRpbjpvcGVu", None, f"{EXPECTED} (it uses the Basic scheme)"),
        ("Token ms_abc", None, f"{EXPECTED} (it uses the Token scheme)"),
        ("Bearer", None, f"{EXPECTED} (the token is missing)"),
        ("Bearer   ", None, f"{EXPECTED} (the token is missing)"),
        ("   ", None, f"{EXPECTED} (it is empty)"),
        ("ms_0123456789ab_SECRET more", None, f"{EXPECTED} (it uses another scheme)"),
    ],
)
def test_parse_authorization(header: str, token: str | None, problem: str | None) -> None:
    assert parse_authorization(header) == (token, problem)


def test_a_malformed_header_is_named_never_echoed() -> None:
    client = app()
    cases = {
        "ms_0123456789ab_SECRET": "(the scheme is missing)",
        "Basic U0VDUkVU": "(it uses the Basic scheme)",
        "ms_0123456789ab_SECRET x": "(it uses another scheme)",
        "Bearer": "(the token is missing)",
    }
    for header, says in cases.items():
        answer = client.get("/v1/catalogue", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert message(answer) == f"{EXPECTED} {says}"
        assert "SECRET" not in answer.text and "U0VDUkVU" not in answer.text
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="modelstream"'


def test_no_token_and_a_bad_token_keep_their_messages() -> None:
    client = app()
    missing = client.get("/v1/catalogue")
    assert missing.status_code == 401
    assert message(missing) == "no API token was sent: send Authorization: Bearer <token>"
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="modelstream"'
    wrong = client.get("/v1/catalogue", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "is not valid (or revoked)" in message(wrong)


def test_a_non_bearer_header_still_lets_the_portal_session_through() -> None:
    """A proxy's Basic login in front of the portal must not sign browsers out."""
    client = app()
    sign_in(client, "reader")
    answer = client.get("/v1/catalogue", headers={"Authorization": "Basic cHJveHk6cHc="})
    assert answer.status_code == 200


def sign_in(client: TestClient, token: str) -> None:
    csrf = form_csrf(client.get("/portal/login").text)
    signed = client.post("/portal/login", data={"token": token, "csrf": csrf})
    assert signed.status_code == 303, signed.text


# -- the check order on every per-model route

MODEL_ROUTES = [
    ("POST", "/v1/models/{}/predict", "caller"),
    ("POST", "/v1/models/{}/batch", "batcher"),
    ("GET", "/v2/models/{}", "caller"),
    ("GET", "/v2/models/{}/ready", "caller"),
    ("POST", "/v2/models/{}/infer", "caller"),
    ("POST", "/v2/models/{}/versions/2/infer", "caller"),
]


@pytest.mark.parametrize(("method", "path", "holder"), MODEL_ROUTES)
def test_a_typo_is_404_unknown_model_not_403(method: str, path: str, holder: str) -> None:
    client = app()
    typo = call(client, method, path.format("chrun"), holder)
    assert (typo.status_code, code(typo)) == (404, "unknown_model")
    assert message(typo) == "chrun is not registered"  # no catalogue rights: no names
    for who in ("reader", "admin"):
        told = call(client, method, path.format("chrun"), who)
        assert told.status_code == 404
        assert message(told) == "chrun is not registered (known: churn; did you mean churn?)"


@pytest.mark.parametrize(("method", "path", "holder"), MODEL_ROUTES)
def test_no_token_is_401_whatever_the_name(method: str, path: str, holder: str) -> None:
    client = app()
    for name in ("chrun", "churn"):
        answer = call(client, method, path.format(name), None)
        assert (answer.status_code, code(answer)) == (401, "unauthenticated"), name


@pytest.mark.parametrize(("method", "path", "holder"), MODEL_ROUTES)
def test_a_registered_model_without_the_scope_is_403(method: str, path: str, holder: str) -> None:
    answer = call(app(), method, path.format("churn"), "other")
    assert (answer.status_code, code(answer)) == (403, "forbidden")
    assert "lacks the scope" in message(answer)


def test_a_public_catalogue_names_the_models_to_everyone() -> None:
    answer = call(app(public=True), "POST", "/v1/models/chrun/predict", "caller")
    assert message(answer) == "chrun is not registered (known: churn; did you mean churn?)"


def test_catalogue_routes_check_their_scope_before_the_model() -> None:
    """catalogue:read names no model: a client without it learns nothing of the names."""
    client = app()
    for path in ("/v1/catalogue/{}", "/v1/models/{}/openapi.json"):
        for name in ("chrun", "churn"):
            assert call(client, "GET", path.format(name), "caller").status_code == 403
        missing = call(client, "GET", path.format("chrun"), "reader")
        assert (missing.status_code, code(missing)) == (404, "unknown_model")
        assert "did you mean churn?" in message(missing)


def test_the_missing_page_suggests_the_closest_model() -> None:
    client = app(public=True)
    for path in ("/catalogue/chrun", "/portal/models/chrun"):
        page = client.get(path)
        assert page.status_code == 404
        assert "Did you mean" in page.text
        assert f'href="{path.rsplit("/", 1)[0]}/churn"' in page.text


def test_the_unknown_version_of_v2_infer_is_listed() -> None:
    answer = call(app(), "POST", "/v2/models/churn/versions/9/infer", "caller")
    assert (answer.status_code, code(answer)) == (404, "unknown_version")
    codes = {e["code"] for e in call(app(), "GET", "/v1/catalogue", "reader").json()["error_codes"]}
    assert {"unknown_model", "unknown_version"} <= codes


# -- the unknown model's message


def test_unknown_model_message_caps_the_list() -> None:
    known = [f"model-{i:02d}" for i in range(30)]
    text = unknown_model_message("model-07x", known)
    assert "model-19" in text and "model-20" not in text
    assert "and 10 more (GET /v1/catalogue)" in text and "did you mean model-07?" in text
    assert unknown_model_message("zzz", ["loan"]) == "zzz is not registered (known: loan)"
    odd = unknown_model_message("a.b" * 100, None)  # not a model name: quoted, cut short
    assert odd == f"{('a.b' * 100)[:100]!r} is not registered"


def test_closest_is_none_when_nothing_is_close() -> None:
    assert closest("laon", []) is None
    assert closest("fraud", ["loan", "churn"]) is None
    assert closest("chrun", ["churn", "chum"]) == "churn"


# -- batch size: one limit, named


def test_a_batch_above_the_burst_is_refused_before_the_limits_are_charged() -> None:
    client = app()
    four: list[dict[str, object]] = [{}] * 4
    answer = client.post(
        "/v1/models/churn/batch", json=four, headers={"Authorization": "Bearer small"}
    )
    assert (answer.status_code, code(answer)) == (422, "batch_too_large")
    assert message(answer) == (
        "4 records; at most 3 per batch (this client's burst: a batch takes a token per "
        "record, all at once)"
    )
    gateway = app(max_batch=2).post(
        "/v1/models/churn/batch", json=[{}] * 3, headers={"Authorization": "Bearer small"}
    )
    assert message(gateway) == "3 records; at most 2 per batch (this gateway's --max-batch)"

"""The portal's sign-in: a server-side session in the cookie (never the token), good for
the catalogue only, Secure over TLS, and a CSRF token on every form."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.gateway.app import create_app
from services.gateway.context import GatewayContext
from services.gateway.sessions import Sessions
from tests.unit.services.gateway.test_catalogue import Clients, context, form_csrf


@pytest.fixture
def ctx() -> GatewayContext:
    ctx = context()
    ctx.clients = Clients(reader=("catalogue:read",), caller=("predict:churn",),  # type: ignore[assignment]
                          both=("catalogue:read", "predict:churn"))  # fmt: skip
    return ctx


def browser(ctx: GatewayContext, base_url: str = "http://testserver") -> TestClient:
    return TestClient(create_app(ctx), base_url=base_url, follow_redirects=False)


def sign_in(client: TestClient, token: str = "reader") -> Any:
    csrf = form_csrf(client.get("/portal/login").text)
    return client.post("/portal/login", data={"token": token, "csrf": csrf})


def test_the_cookie_holds_a_session_id_never_the_token(ctx: GatewayContext) -> None:
    client = browser(ctx)
    login_page = client.get("/portal/login")
    csrf_cookie = login_page.headers["set-cookie"]
    assert "ms_csrf=" in csrf_cookie and "HttpOnly" in csrf_cookie and "SameSite=lax" in csrf_cookie
    signed = client.post("/portal/login", data={"token": "reader",
                                                "csrf": form_csrf(login_page.text)})  # fmt: skip
    assert signed.status_code == 303
    session_id = client.cookies["ms_session"]
    assert "reader" not in session_id and len(session_id) >= 40
    assert ctx.sessions.get(session_id).client == "client-reader"  # type: ignore[union-attr]
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert client.get("/v1/catalogue").status_code == 200


def test_over_tls_the_cookies_are_secure(ctx: GatewayContext) -> None:
    client = browser(ctx, "https://testserver")
    assert "Secure" in client.get("/portal/login").headers["set-cookie"]
    assert "Secure" in sign_in(client).headers["set-cookie"]


@pytest.mark.parametrize(("trusted", "secure"), [("testclient", True), ("10.9.9.9", False)])
def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(
    ctx: GatewayContext, trusted: str, secure: bool
) -> None:
    """uvicorn's proxy headers (``forwarded_allow_ips``) decide the scheme the portal sees."""
    app = ProxyHeadersMiddleware(create_app(ctx), trusted_hosts=trusted)  # type: ignore[arg-type]
    client = TestClient(app, follow_redirects=False)  # type: ignore[arg-type]
    page = client.get("/portal/login", headers={"X-Forwarded-Proto": "https"})
    assert ("Secure" in page.headers["set-cookie"]) is secure


def test_a_post_without_the_right_csrf_token_is_403(ctx: GatewayContext) -> None:
    client = browser(ctx)
    client.get("/portal/login")  # the browser has its ms_csrf cookie
    for form in ({"token": "reader"}, {"token": "reader", "csrf": "forged"}):
        refused = client.post("/portal/login", data=form)
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert "ms_session" not in client.cookies
    sign_in(client)
    page = client.get("/catalogue")
    assert client.post("/portal/logout", data={"csrf": "forged"}).status_code == 403
    assert client.get("/catalogue").status_code == 200  # still signed in
    out = client.post("/portal/logout", data={"csrf": form_csrf(page.text)})
    assert out.status_code == 303 and len(ctx.sessions) == 0


def test_every_form_carries_the_csrf_token(ctx: GatewayContext) -> None:
    client = browser(ctx)
    sign_in(client)
    session = ctx.sessions.get(client.cookies["ms_session"])
    assert session is not None
    for path in ("/portal", "/catalogue", "/catalogue/churn", "/portal/docs"):
        html = client.get(path).text
        assert html.count("<form") == html.count(f'name="csrf" value="{session.csrf}"'), path


def test_a_session_never_calls_a_model(ctx: GatewayContext) -> None:
    client = browser(ctx)
    assert sign_in(client, "both").status_code == 303
    answer = client.post("/v1/models/churn/predict", json={})
    assert answer.status_code == 401  # the cookie is not a credential here
    assert client.get("/v1/catalogue").status_code == 200


def test_rotating_or_revoking_the_token_ends_the_session(ctx: GatewayContext) -> None:
    client = browser(ctx)
    sign_in(client)
    record = ctx.clients.authenticate("reader")
    record.token_sha256 = "f" * 64  # rotated: a new token, a new digest
    redirect = client.get("/catalogue")
    assert redirect.status_code == 303 and "why=expired" in redirect.headers["location"]
    assert len(ctx.sessions) == 0


def test_sessions_expire_and_are_capped() -> None:
    now = [0.0]
    store = Sessions(ttl_s=10, most=2, clock=lambda: now[0])
    first, second, third = (store.open(f"c{i}", "0" * 64) for i in range(3))
    assert store.get(first.id) is None and store.get(third.id) is third  # oldest evicted
    now[0] = 10.0
    assert store.get(second.id) is None and len(store) == 1

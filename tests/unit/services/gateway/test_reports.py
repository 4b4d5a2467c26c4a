"""The live report pages without a network: who may read them, the window, the 404, 400
and 503 pages, the page's headers, and the render cache (one render per reload storm)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app
from services.gateway.reporting import (
    LiveReports,
    Rendered,
    ReportUnavailableError,
    ServerSource,
    Window,
)
from services.gateway.routes.reports import CSP
from services.reports import Report
from services.warehouse import WarehouseUnavailable, parse_dsn
from tests.unit.services.gateway.test_catalogue import Clients, context, form_csrf

READER = {"Authorization": "Bearer reader"}
HTML = "<!doctype html><html><body><h1>Model report: {model}</h1></body></html>"


class Source:
    """A reader source that counts what the renders asked of it."""

    def __init__(self) -> None:
        self.reader_object = object()
        self.failures: list[Exception] = []
        self.closed = False

    def reader(self) -> Any:
        return self.reader_object

    def failed(self, exc: Exception) -> str:
        self.failures.append(exc)
        return f"no sink answers: start `modelstream run sink` ({exc})"

    def close(self) -> None:
        self.closed = True


class Renders:
    """A render_report stand-in: records its calls, may fail or wait for a gate."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.gate: threading.Event | None = None

    def __call__(self, reader: Any, model: str, **window: Any) -> Report:
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        self.calls.append({"reader": reader, "model": model, **window})
        if self.fail is not None:
            raise self.fail
        return Report(HTML.format(model=model), ["DLQ rate 2.0 %"], {"traffic": "ok"})


def app_with(renders: Renders, public: bool = False, **options: Any) -> tuple[TestClient, Any]:
    ctx = context(public=public)
    live = LiveReports(Source(), render=renders, **options)
    return TestClient(create_app(ctx, reports=live), follow_redirects=False), ctx


# -- who may read a report


def test_a_reader_gets_the_report_with_a_csp_that_forbids_fetches() -> None:
    renders = Renders()
    client, _ = app_with(renders)
    page = client.get("/reports/churn", headers=READER)
    assert page.status_code == 200 and page.text == HTML.format(model="churn")
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert CSP.startswith("default-src 'none'; script-src 'unsafe-inline'")
    assert "connect-src" not in CSP and "img-src data:;" in CSP  # default-src 'none' covers it
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    (call,) = renders.calls
    assert call["model"] == "churn" and call["start"] is None and call["end"] is None
    assert call["now"].tzinfo is UTC


def test_the_page_goes_gzipped_to_a_browser_that_takes_it() -> None:
    client, _ = app_with(Renders())
    zipped = client.get("/reports/churn", headers=READER)  # httpx sends gzip, deflate
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == (
        "Accept-Encoding"
    )  # fmt: skip
    assert zipped.text == HTML.format(model="churn")  # decoded by the client
    plain = client.get("/reports/churn", headers={**READER, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == zipped.text


def test_a_token_without_the_scope_gets_403_a_bad_one_401() -> None:
    client, _ = app_with(Renders())
    denied = client.get("/reports/churn", headers={"Authorization": "Bearer caller"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    assert "catalogue:read" in denied.json()["error"]["message"]
    wrong = client.get("/reports/churn", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "WWW-Authenticate" in wrong.headers


def test_a_browser_signs_in_then_reads_it_with_its_session() -> None:
    client, _ = app_with(Renders())
    redirect = client.get("/reports/churn?from=2026-05-01")
    assert redirect.status_code == 303
    assert redirect.headers["location"] == (
        "/portal/login?next=%2Freports%2Fchurn%3Ffrom%3D2026-05-01&why=signin"
    )
    csrf = form_csrf(client.get("/portal/login").text)
    client.post("/portal/login", data={"token": "reader", "csrf": csrf})
    assert client.get("/reports/churn").status_code == 200


def test_a_public_catalogue_does_not_make_reports_public() -> None:
    client, ctx = app_with(Renders(), public=True)
    assert client.get("/catalogue/churn").status_code == 200
    assert client.get("/reports/churn").status_code == 303
    ctx.clients = Clients(caller=("predict:churn",))
    denied = client.get("/reports/churn", headers={"Authorization": "Bearer caller"})
    assert denied.status_code == 403


# -- what the page says when there is no report


def test_an_unknown_model_gets_the_catalogue_404_with_a_suggestion() -> None:
    renders = Renders()
    client, _ = app_with(renders)
    missing = client.get("/reports/chrun", headers=READER)
    assert missing.status_code == 404
    assert "Did you mean" in missing.text and 'href="/reports/churn"' in missing.text
    assert renders.calls == []


@pytest.mark.parametrize(
    ("query", "says"),
    [("from=yesterday", "`from` is not an ISO 8601 time"),
     ("from=2026-05-02&to=2026-05-01", "must be before `to`")],
)  # fmt: skip
def test_a_bad_window_is_a_400_page_that_shows_the_form(query: str, says: str) -> None:
    renders = Renders()
    client, _ = app_with(renders)
    page = client.get(f"/reports/churn?{query}", headers=READER)
    assert page.status_code == 400 and says in page.text
    assert "?from=2026-05-01T00:00Z&amp;to=2026-05-02T00:00Z" in page.text
    assert renders.calls == []


def test_the_window_reaches_the_render_in_utc() -> None:
    renders = Renders()
    client, _ = app_with(renders)
    url = "/reports/churn?from=2026-05-01T12:00:00%2B02:00&to=2026-05-01T18:00"
    assert client.get(url, headers=READER).status_code == 200
    (call,) = renders.calls
    assert call["start"] == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert call["end"] == datetime(2026, 5, 1, 18, tzinfo=UTC)


def test_an_unavailable_warehouse_is_a_503_page_that_says_what_to_do() -> None:
    renders = Renders(fail=WarehouseUnavailable("connection refused"))
    client, _ = app_with(renders)
    page = client.get("/reports/churn", headers=READER)
    assert page.status_code == 503 and page.headers["retry-after"] == "5"
    assert "start `modelstream run sink`" in page.text and "Reload this page" in page.text
    assert client.get("/reports/churn", headers=READER).status_code == 503
    assert len(renders.calls) == 2  # a failure is not kept: the next request tries again


def test_a_render_that_breaks_is_a_500_page_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, _ = app_with(Renders(fail=KeyError("kind")))
    page = client.get("/reports/churn", headers=READER)
    assert page.status_code == 500 and "text/html" in page.headers["content-type"]
    assert "KeyError: &#39;kind&#39;" in page.text and "gateway&#39;s log" in page.text
    assert "drawing the report of churn" in caplog.text and "Traceback" in caplog.text


def test_without_a_reader_the_page_says_reports_are_off() -> None:
    client = TestClient(create_app(context()), follow_redirects=False)
    page = client.get("/reports/churn", headers=READER)
    assert page.status_code == 503 and "modelstream report churn --out" in page.text


def test_the_catalogue_and_the_portal_link_to_the_report() -> None:
    client, _ = app_with(Renders())
    csrf = form_csrf(client.get("/portal/login").text)
    client.post("/portal/login", data={"token": "reader", "csrf": csrf})
    for path in ("/catalogue", "/catalogue/churn", "/portal"):
        page = client.get(path)
        assert 'href="/reports/churn">Monitoring report</a>' in page.text, path


def test_the_page_is_not_in_the_api_document() -> None:
    """Like the catalogue's pages: an HTML page for people, not an API operation (the
    API document's every ``{name}`` operation answers 401 without a token)."""
    client, _ = app_with(Renders())
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(path.startswith("/reports") for path in paths)


# -- the render cache


def test_a_reload_storm_costs_one_render_until_the_ttl_passes() -> None:
    now = [0.0]
    renders = Renders()
    renders.gate = threading.Event()
    live = LiveReports(Source(), render=renders, ttl=5.0, clock=lambda: now[0])

    async def storm() -> list[Rendered]:
        waiting = [asyncio.ensure_future(live.report("churn", Window())) for _ in range(20)]
        await asyncio.sleep(0.05)
        renders.gate.set()  # type: ignore[union-attr]
        return await asyncio.gather(*waiting)

    reports = asyncio.run(storm())
    assert len(renders.calls) == 1 and all(r is reports[0] for r in reports)
    now[0] = 4.9
    assert asyncio.run(live.report("churn", Window())) is reports[0]
    later = Window(start=datetime(2026, 5, 1, tzinfo=UTC))
    asyncio.run(live.report("churn", later))  # another window: its own render
    now[0] = 5.0
    asyncio.run(live.report("churn", Window()))
    assert len(renders.calls) == 3


def test_a_waiter_that_leaves_does_not_cancel_the_render() -> None:
    renders = Renders()
    renders.gate = threading.Event()
    live = LiveReports(Source(), render=renders)

    async def leave_then_come_back() -> Rendered:
        first = asyncio.ensure_future(live.report("churn", Window()))
        await asyncio.sleep(0.05)
        first.cancel()
        renders.gate.set()  # type: ignore[union-attr]
        return await live.report("churn", Window())

    report = asyncio.run(leave_then_come_back())
    assert report.report.html == HTML.format(model="churn") and len(renders.calls) == 1


def test_the_cache_holds_few_reports() -> None:
    now = [0.0]
    live = LiveReports(Source(), render=Renders(), clock=lambda: now[0], max_cached=2)
    for hour in range(4):
        now[0] = hour * 0.1
        asyncio.run(live.report("churn", Window(start=datetime(2026, 5, 1, hour, tzinfo=UTC))))
    assert len(live._cache) == 2  # the newest two


def test_a_failed_render_says_what_the_source_says() -> None:
    source = Source()
    live = LiveReports(source, render=Renders(fail=WarehouseUnavailable("refused")))
    with pytest.raises(ReportUnavailableError, match="start `modelstream run sink`"):
        asyncio.run(live.report("churn", Window()))
    assert [str(e) for e in source.failures] == ["refused"]
    live.close()
    assert source.closed


def test_a_server_reader_reconnects_after_a_failure() -> None:
    opened: list[Any] = []

    class Handle:
        closed = False

        def close(self) -> None:
            self.closed = True

    def opener(dsn: Any) -> Any:
        opened.append(Handle())
        return opened[-1]

    server = ServerSource(parse_dsn("http://u:secret@ch.example:8123/db"), opener)
    assert server.reader() is server.reader() is opened[0]
    why = server.failed(WarehouseUnavailable("timed out"))
    assert "timed out" in why and "secret" not in why and "MODELSTREAM_CLICKHOUSE" in why
    assert opened[0].closed and server.reader() is opened[1]

"""The catalogue and the developer portal in a real browser.

The real stack (session broker, registry, scorer, sink owning the embedded warehouse,
``modelstream run gateway``) serves one model; headless Chromium, driven over the
DevTools protocol, signs in through the form, reads the pages (and the live monitoring
report, from the warehouse the sink fills) and takes full-page screenshots. They are
kept in the test's tmp dir and copied to ``.modelstream/screenshots/`` for a human to
look at. Chromium comes from ``scripts/install-chromium``; without it these
tests fail (they never skip).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from services.registry import Registry
from services.synthetic import rows
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin
from tests.integration.gateway_support import Running, bearer, running
from tests.integration.scoring_support import MODELSTREAM, SCHEMA, Stack, trained

pytestmark = pytest.mark.integration

SHOTS = Path(__file__).resolve().parents[2] / ".modelstream" / "screenshots"
MODEL = "churn"
# no traffic but loopback: nothing Chromium would fetch on its own (updates, safe browsing)
QUIET = (
    "--no-first-run", "--no-default-browser-check", "--no-proxy-server",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--safebrowsing-disable-auto-update",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--metrics-recording-only", "--mute-audio", "--hide-scrollbars",
)  # fmt: skip


class Browser:
    """One headless Chromium page over the DevTools protocol."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 900) -> None:
        binary = shutil.which("chromium")
        if binary is None:
            pytest.fail("chromium is not installed: run scripts/install-chromium", pytrace=False)
        self.log = profile.with_suffix(".log")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
                 f"--window-size={width},{height}", "--remote-debugging-port=0",
                 f"--user-data-dir={profile}", *QUIET, "about:blank"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        port = self._port(profile / "DevToolsActivePort")
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        target = next(p for p in pages if p["type"] == "page")
        self._exit = ExitStack()
        self.ws: ClientConnection = self._exit.enter_context(
            connect(target["webSocketDebuggerUrl"], max_size=None, proxy=None)
        )
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.call("Page.enable")
        self.call("Network.enable")

    def _port(self, active: Path, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if active.exists() and active.read_text().strip():
                return int(active.read_text().split()[0])
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"chromium did not start:\n{self.log.read_text()[-2000:]}")

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        self.ws.send(orjson.dumps({"id": ident, "method": method, "params": params}).decode())
        while True:
            message = orjson.loads(self.ws.recv(timeout))
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def eval(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)  # fmt: skip
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        text = self.eval("document.body ? document.body.innerText.slice(0, 1500) : ''")
        raise AssertionError(f"not true within {timeout} s: {expression}\npage:\n{text}")

    def texts(self, selector: str) -> list[str]:
        """The innerText of every element ``selector`` matches."""
        found = self.eval(f"[...document.querySelectorAll({orjson.dumps(selector).decode()})]"
                          ".map(e => e.innerText)")  # fmt: skip
        return list(found)

    def click(self, selector: str) -> None:
        """Click the element once it is there."""
        element = f"document.querySelector({orjson.dumps(selector).decode()})"
        self.wait_for(f"!!{element}")
        self.eval(f"{element}.click()")

    def screenshot(self, path: Path) -> Path:
        """The whole page (not only the window) as PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.call("Page.captureScreenshot", format="png", clip=clip,
                         captureBeyondViewport=True)["data"]  # fmt: skip
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._exit.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Site:
    run: Running
    token: str
    shots: Path

    @property
    def url(self) -> str:
        return self.run.url


def _register(stack: Stack) -> None:
    ensure_topics(make_admin(stack.kafka), stack.topics.model_specs(MODEL, 3))
    champion, challenger = trained()
    stack.registry.register(
        MODEL, champion, SCHEMA, task="classification", sensitive=["group"], role="champion",
        description="Will the customer leave this month? Logistic regression on ten usage "
        "features.", training_metrics={"accuracy": 0.912, "log_loss": 0.241},
        hyperparameters={"l2": "0.01"},
    )  # fmt: skip
    stack.registry.register(
        MODEL, challenger, SCHEMA, task="classification", sensitive=["group"],
        role="challenger", description="Logistic regression, faster learning rate and L2: the "
        "candidate in the shadow.",
        training_metrics={"accuracy": 0.897, "log_loss": 0.268},
    )  # fmt: skip


def _sink(stack: Stack) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "MODELSTREAM_KAFKA": stack.kafka.bootstrap,
        "MODELSTREAM_TOPIC_PREFIX": stack.topics.prefix,
        "MODELSTREAM_DATA_DIR": str(stack.tmp / "data"),
    }
    log = stack.tmp / "sink.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([MODELSTREAM, "run", "sink", "--max-age-ms", "200"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    deadline = time.monotonic() + 120
    while b"sink ready" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the sink did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return proc


def _traffic(site: Site, count: int = 60) -> None:
    """Predictions through the gateway, then wait until the warehouse shows them."""
    with httpx.Client(base_url=site.url, headers=bearer(site.token), timeout=10) as http:
        for row in rows(count, seed=7):
            answer = http.post(f"/v1/models/{MODEL}/predict", json=row)
            assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            card = http.get(f"/v1/catalogue/{MODEL}").json()
            if card["stats"] and card["stats"]["requests"] >= count:
                return
            time.sleep(1.0)
    raise AssertionError(f"the catalogue never showed the traffic: {card['stats_unavailable']}")


@pytest.fixture(scope="module")
def site(kafka: KafkaConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("pages")
    topics = Topics(f"pages-{uuid.uuid4().hex[:8]}")
    ensure_topics(make_admin(kafka), topics.global_specs(1))
    registry = Registry(kafka, topics, actor="tests")
    stack = Stack(kafka, topics, registry, tmp)
    _register(stack)
    sink = _sink(stack)
    try:
        with running(stack) as run:
            token = run.client("browser", ["catalogue:read", f"predict:{MODEL}", f"batch:{MODEL}"])
            site = Site(run, token, tmp / "screenshots")
            site.shots.mkdir()
            _traffic(site)
            yield site
    finally:
        sink.terminate()
        sink.wait(30)
        registry.close()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Browser]:
    chromium = Browser(site.shots.parent / "chromium-profile")
    try:
        yield chromium
    finally:
        chromium.close()


def shoot(browser: Browser, site: Site, name: str) -> None:
    """A full-page screenshot in the tmp dir, copied to .modelstream/screenshots/."""
    path = browser.screenshot(site.shots / f"{name}.png")
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_sign_in_then_the_catalogue(site: Site, browser: Browser) -> None:
    browser.goto(f"{site.url}/catalogue")
    assert browser.eval("location.pathname") == "/portal/login"
    shoot(browser, site, "login")
    browser.eval(f"document.querySelector('#token').value = {orjson.dumps(site.token).decode()};"
                 "document.querySelector('form[action=\"/portal/login\"]').submit()")  # fmt: skip
    browser.wait_for("location.pathname === '/catalogue' && document.readyState === 'complete'")
    cookies = browser.call("Network.getCookies", urls=[site.url])["cookies"]
    (cookie,) = [c for c in cookies if c["name"] == "ms_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert site.token not in cookie["value"]  # a session id, never the token
    assert browser.eval("document.cookie") == ""  # HttpOnly: scripts cannot read the session
    card = f"document.querySelector('#model-{MODEL}')"
    assert MODEL in browser.eval(f"{card}.querySelector('h2').innerText")
    assert browser.eval(f"{card}.querySelectorAll('dl.mini dd').length") == 5  # p50 … errors
    assert "Will the customer leave" in browser.eval(f"{card}.innerText")
    assert browser.eval("document.querySelectorAll('table.errors tbody tr').length") >= 10
    shoot(browser, site, "catalogue")


def test_model_page_has_schemas_versions_stats_and_examples(site: Site, browser: Browser) -> None:
    browser.goto(f"{site.url}/catalogue/{MODEL}")
    assert browser.texts("h1")[0].startswith(MODEL)
    fields = browser.texts("#input table.fields tbody tr td:first-child")
    assert fields == [f["name"] for f in SCHEMA["fields"]]
    assert sorted(r.lower() for r in browser.texts("#versions .role")) == ["challenger", "champion"]
    assert len(browser.texts("#traffic .tile")) == 6  # the warehouse's numbers, via the sink
    codes = browser.texts("#examples pre code")
    assert len(codes) == 5
    assert f"{site.url}/v1/models/{MODEL}/predict" in codes[0] and '"x0":0.0' in codes[0]
    assert f'"{site.run.stack.topics.prefix}.{MODEL}.requests"' in codes[4]
    assert "read_committed" in codes[4] and "reply-to" in codes[4]
    shoot(browser, site, "model")


def test_api_reference_renders_from_local_assets(site: Site, browser: Browser) -> None:
    browser.goto(f"{site.url}/portal/docs")
    browser.wait_for("document.querySelectorAll('.opblock').length > 10")
    paths = [p.replace("\u200b", "") for p in browser.texts(".opblock-summary-path")]
    assert "/v1/models/{name}/predict" in paths and "/v1/catalogue" in paths
    loaded = browser.eval("performance.getEntriesByType('resource').map(r => r.name)")
    assert any(name.endswith("/portal/static/swagger/swagger-ui-bundle.js") for name in loaded)
    assert all(name.startswith(site.url) for name in loaded), loaded  # no CDN, nothing outside
    shoot(browser, site, "portal-docs")


def test_model_reference_tries_a_real_call(site: Site, browser: Browser) -> None:
    browser.goto(f"{site.url}/portal/models/{MODEL}")
    browser.wait_for("document.querySelectorAll('.opblock').length === 3")
    paths = [p.replace("\u200b", "") for p in browser.texts(".opblock-summary-path")]
    assert f"/v1/models/{MODEL}/predict" in paths
    # Authorize with the token (the sign-in session reads the catalogue only), open
    # "predict", "Try it out" with the example body, "Execute": the real scorer answers
    token = orjson.dumps(site.token).decode()
    browser.eval("window.ui.authActions.authorize({bearer: {name: 'bearer', value: "
                 f"{token}, schema: {{type: 'http', scheme: 'bearer'}}}}}})")  # fmt: skip
    op = f"#operations-predict-predict_{MODEL}"
    browser.click(f"{op} .opblock-summary-control")
    browser.click(f"{op} .try-out__btn")
    assert '"x0": 0' in browser.wait_for(f"document.querySelector('{op} textarea')?.value")
    browser.click(f"{op} .execute")
    status = browser.wait_for(
        f"document.querySelector('{op} .live-responses-table tr.response .response-col_status')"
        "?.innerText"
    )
    answer = browser.texts(f"{op} .live-responses-table .response-col_description .microlight")[0]
    assert status.strip() == "200", answer
    assert '"served_by": "champion"' in answer
    shoot(browser, site, "portal-model")


def test_live_report_renders_every_chart_offline(site: Site, browser: Browser) -> None:
    """From the catalogue's link to the report, with a bearer token: every chart drawn,
    nothing fetched from anywhere but this gateway, no console error (a CSP violation
    is one)."""
    auth = bearer(site.token)
    browser.call("Runtime.enable")
    browser.call("Log.enable")
    browser.call("Network.setExtraHTTPHeaders", headers=auth)
    try:
        browser.goto(f"{site.url}/catalogue")
        browser.events.clear()
        browser.click(f"#model-{MODEL} a.report")
        browser.wait_for(f"location.pathname === '/reports/{MODEL}'"
                         " && document.readyState === 'complete'")  # fmt: skip
        charts = browser.wait_for(
            "document.querySelectorAll('.chart').length > 0 && [...document.querySelectorAll"
            "('.chart')].every(c => c.querySelector('.main-svg')) && [...document."
            "querySelectorAll('.chart .main-svg')].map(s => s.getBoundingClientRect())"
            ".map(r => [r.width, r.height])"
        )
        path = browser.screenshot(site.shots / "live_report.png")
        browser.eval("1")  # drain the events that came with the last answers
    finally:
        browser.call("Network.setExtraHTTPHeaders", headers={})
    print(f"live report screenshot: {path}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    assert all(width > 100 and height > 100 for width, height in charts), charts
    assert f"Model report: {MODEL}" in browser.texts("h1")[0]
    requested = [e["params"]["request"]["url"] for e in browser.events
                 if e.get("method") == "Network.requestWillBeSent"]  # fmt: skip
    assert requested and all(url.startswith(site.url) or url.startswith("data:")
                             for url in requested), requested  # fmt: skip
    errors = [e["params"] for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
              or (e.get("method") == "Log.entryAdded"
                  and e["params"]["entry"]["level"] == "error")]  # fmt: skip
    assert errors == [], errors


def test_live_report_access_headers_and_missing_model(site: Site) -> None:
    page = httpx.get(f"{site.url}/reports/{MODEL}", headers=bearer(site.token), timeout=60)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert page.headers["content-encoding"] == "gzip"  # ~1.5 MB on the wire, not 4.8
    assert page.headers["content-security-policy"].startswith("default-src 'none';")
    assert page.text.startswith("<!DOCTYPE html>") and "Plotly" in page.text  # plotly.js inline
    caller = site.run.client("no-catalogue", [f"predict:{MODEL}"])
    denied = httpx.get(f"{site.url}/reports/{MODEL}", headers=bearer(caller), timeout=10)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    missing = httpx.get(f"{site.url}/reports/chrun", headers=bearer(site.token), timeout=10)
    assert missing.status_code == 404 and "Did you mean" in missing.text
    assert f'href="/reports/{MODEL}"' in missing.text


def test_examples_run_as_written(site: Site) -> None:
    """The snippets the page offers work when pasted: curl, Python requests, Kafka."""
    card = httpx.get(f"{site.url}/v1/catalogue/{MODEL}", headers=bearer(site.token)).json()
    snippets = card["examples"]
    env = os.environ | {"MODELSTREAM_TOKEN": site.token}
    reply = orjson.loads(_run(["sh", "-c", snippets["curl_predict"]], env))
    assert reply["served_by"] == "champion" and reply["model"] == MODEL
    assert "champion" in _run([sys.executable, "-c", snippets["python"]], env)
    kafka = snippets["kafka"].replace('"localhost:9092"', repr(site.run.stack.kafka.bootstrap))
    assert "'served_by': 'champion'" in _run([sys.executable, "-c", kafka], env)


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, f"{command[:2]} failed:\n{done.stdout!r}\n{done.stderr.decode()}"
    return done.stdout.decode()

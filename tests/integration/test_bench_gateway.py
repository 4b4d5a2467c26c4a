"""``modelstream bench --gateway`` without MLServer (CI never installs it): the load
generator against a loopback HTTP server, then the scorer and gateway phases end to end
on the session broker with MLServer reported missing. Speed is not asserted."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from services.bench import (
    GatewayConfig,
    LoadSpec,
    MLServerUnavailableError,
    _gateway_run,
    run_gateway_bench,
)
from services.bench._http_load import run_load
from services.settings import Settings
from streams.kafka import KafkaConfig
from tests.integration.test_bench import children_of

RELEASE = threading.Event()  # set when the server goes: /slow answers only then


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the generator expects

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/slow":
            RELEASE.wait(120)
        status = 503 if self.path == "/fail" else 200
        payload = json.dumps({"echo": json.loads(body), "auth": self.headers["Authorization"]})
        data = payload.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up on a slow answer
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    RELEASE.set()
    httpd.shutdown()
    httpd.server_close()


def spec(url: str, **changes: Any) -> LoadSpec:
    base: dict[str, Any] = {"bodies": [b'{"i":1}', b'{"i":2}'], "headers": {"Authorization": "t"},
                            "concurrency": 4, "seconds": 1.0, "warmup": 0.3}  # fmt: skip
    return LoadSpec(url, **(base | changes))


def test_load_generator_measures_a_loopback_server(server: str) -> None:
    ticks: list[int] = []
    # ticks come once a second: 2 s of load leave room for a slow scheduler
    result = run_load(spec(f"{server}/ok", seconds=2.0), on_tick=ticks.append)
    assert result.ok > 0 and result.failed == {}
    # a window, not a speed: summarize_load's unit tests pin where it starts and ends
    assert result.seconds > 0 and result.rps == pytest.approx(result.ok / result.seconds)
    assert result.latency is not None and 0 < result.latency.p50 <= result.latency.p99
    assert ticks and ticks == sorted(ticks)
    assert json.loads(result.samples[0])["auth"] == "t"
    assert result.client_cpu_seconds > 0


def test_load_generator_counts_errors_and_timeouts_apart(server: str) -> None:
    failing = run_load(spec(f"{server}/fail"))
    assert failing.ok == 0 and failing.latency is None and failing.failed["503"] > 0
    # /slow never answers while the load runs: only the generator's timeout ends a request
    slow = run_load(spec(f"{server}/slow", request_timeout=0.1, seconds=0.8, warmup=0.0))
    assert slow.ok == 0 and slow.failed.get("timeout", 0) > 0


def test_gateway_bench_without_mlserver_measures_the_rest(
    kafka: KafkaConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(cache_dir: Path) -> Path:
        raise MLServerUnavailableError("not installed on CI")

    monkeypatch.setattr(_gateway_run, "ensure_environment", unavailable)
    config = GatewayConfig(events=1_000, mlserver_events=100, concurrency=8, seconds=1.5,
                           warmup=0.5)  # fmt: skip
    out, screen = tmp_path / "gw.json", io.StringIO()
    settings = Settings(kafka=kafka.bootstrap, topic_partitions=3)
    console = Console(file=screen, width=160)
    returned = run_gateway_bench(settings, config, json_path=out, console=console)
    report = json.loads(out.read_text())
    assert report == json.loads(json.dumps(returned))

    assert report["scorer_sklearn_eps"] > 0
    assert report["kafka"]["scorer"]["answered"] == 1_000
    assert report["gateway_rps"] > 0 and report["http"]["gateway"]["failed"] == {}
    assert 0 < report["gateway_p50_ms"] <= report["gateway_p99_ms"]
    sample = json.loads(report["http"]["gateway"]["samples"][0])
    assert sample["served_by"] == "champion" and set(sample["probabilities"]) == {"False", "True"}
    for key in ("mlserver_rps", "mlserver_p50_ms", "mlserver_p99_ms", "mlserver_kafka_eps"):
        assert report[key] is None, key
    assert "not installed on CI" in report["errors"]["mlserver"]
    assert not any(t["met"] for t in report["targets"].values())
    assert "MLServer virtualenv could not be measured" in screen.getvalue()
    ours = ("run scorer", "run gateway", "_http_driver")
    left = [cmd for cmd in children_of(os.getpid()) if any(name in cmd for name in ours)]
    assert not left, f"the bench left processes running: {left}"

"""``modelstream bench --gateway`` without MLServer (CI never installs it): the HTTP and
gRPC load generators against loopback servers, then the scorer and the three gateway
phases (``--via-kafka``, direct REST and gRPC, the prediction log read back) end to end
on the session broker with MLServer reported missing. Speed is not asserted."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from rich.console import Console
from tritonclient.grpc import service_pb2

from services.bench import (
    GatewayConfig,
    LoadSpec,
    MLServerUnavailableError,
    _gateway_run,
    run_gateway_bench,
)
from services.bench._grpc_load import GrpcSpec, infer_request, run_grpc_load
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


class Inference:
    """A loopback ``ModelInfer``: bytes in, bytes out, as the load generator sends them."""

    def __init__(self) -> None:
        self.peers: set[str] = set()

    def infer(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        if ("authorization", "Bearer ok") not in context.invocation_metadata():
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "no token")
        self.peers.add(context.peer())
        asked = service_pb2.ModelInferRequest.FromString(request)
        response = service_pb2.ModelInferResponse(model_name=asked.model_name)
        out = response.outputs.add(name="predict_proba", datatype="FP64", shape=[1, 2])
        out.contents.fp64_contents.extend([0.25, 0.75])
        return bytes(response.SerializeToString())


@pytest.fixture(scope="module")
def inference() -> Iterator[tuple[str, Inference]]:
    servicer = Inference()
    handler = grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {
        "ModelInfer": grpc.unary_unary_rpc_method_handler(servicer.infer)})  # fmt: skip
    server = grpc.server(ThreadPoolExecutor(max_workers=8), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(grace=None)


def test_grpc_load_generator_measures_a_loopback_server(inference: tuple[str, Inference]) -> None:
    target, servicer = inference
    requests = [infer_request("m", [float(i)] * 10) for i in range(3)]
    spec = GrpcSpec(target, requests, {"authorization": "Bearer ok"}, concurrency=12,
                    seconds=1.5, warmup=0.3)  # fmt: skip
    ticks: list[int] = []
    result = run_grpc_load(spec, on_tick=ticks.append)
    assert result.ok > 0 and result.failed == {} and result.ok_total >= result.ok
    assert result.latency is not None and 0 < result.latency.p50 <= result.latency.p99
    assert ticks and ticks == sorted(ticks)
    assert json.loads(result.samples[0])["outputs"][0]["values"] == [0.25, 0.75]
    assert len(servicer.peers) == spec.channels == 2  # a connection per channel, not one
    refused = run_grpc_load(GrpcSpec(target, requests, {"authorization": "Bearer no"},
                                     concurrency=2, seconds=0.5, warmup=0.0))  # fmt: skip
    assert refused.ok == 0 and refused.failed.get("UNAUTHENTICATED", 0) > 0


def test_gateway_bench_without_mlserver_measures_the_rest(
    kafka: KafkaConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(cache_dir: Path) -> Path:
        raise MLServerUnavailableError("not installed on CI")

    monkeypatch.setattr(_gateway_run, "ensure_environment", unavailable)
    config = GatewayConfig(events=1_000, mlserver_events=100, concurrency=8, seconds=1.5,
                           warmup=0.5, log_quiet=1.0)  # fmt: skip
    out, screen = tmp_path / "gw.json", io.StringIO()
    settings = Settings(kafka=kafka.bootstrap, topic_partitions=3)
    console = Console(file=screen, width=160)
    returned = run_gateway_bench(settings, config, json_path=out, console=console)
    report = json.loads(out.read_text())
    assert report == json.loads(json.dumps(returned))

    assert report["scorer_sklearn_eps"] > 0
    assert report["kafka"]["scorer"]["answered"] == 1_000
    for system in ("gateway", "gateway_kafka"):  # direct, and through the scorer
        assert report[f"{system}_rps"] > 0 and report["http"][system]["failed"] == {}, system
        assert 0 < report[f"{system}_p50_ms"] <= report[f"{system}_p99_ms"], system
        sample = json.loads(report["http"][system]["samples"][0])
        assert sample["served_by"] == "champion", system
        assert set(sample["probabilities"]) == {"False", "True"}, system
    assert report["grpc_rps"] > 0 and report["grpc"]["gateway"]["failed"] == {}
    grpc_answer = json.loads(report["grpc"]["gateway"]["samples"][0])
    assert {o["name"] for o in grpc_answer["outputs"]} >= {"predict", "probabilities"}
    # every answer of the direct gateway, check rows and probe included, is in the log
    assert report["logged"]["answered"] > report["http"]["gateway"]["ok"]
    assert report["logged_ratio"] == 1.0 and report["logged"]["other_clients"] == 0
    assert report["agreement"]["gateway_vs_gateway_kafka"]["max_probability_difference"] == 0.0
    for key in ("mlserver_rps", "mlserver_p99_ms", "mlserver_grpc_rps", "mlserver_kafka_eps"):
        assert report[key] is None, key
    assert report["mlserver_configs"] == [] and set(report["errors"]) == {
        "mlserver",
        "mlserver_kafka",
    }
    assert "not installed on CI" in report["errors"]["mlserver"]
    met = {name for name, t in report["targets"].items() if t["met"]}
    assert met == {"every direct gateway answer logged"}
    assert "MLServer virtualenv could not be measured" in screen.getvalue()
    ours = ("run scorer", "run gateway", "_http_driver", "_grpc_driver")
    left = [cmd for cmd in children_of(os.getpid()) if any(name in cmd for name in ours)]
    assert not left, f"the bench left processes running: {left}"

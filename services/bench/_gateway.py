"""The HTTP phases of ``modelstream bench --gateway``: the same closed-loop load
(:mod:`services.bench._http_load`) against the gateway and against MLServer's REST
server, one after the other, each serving the same scikit-learn model.

- **gateway**: ``modelstream run gateway`` as a subprocess in front of the running
  scorer: ``POST /v1/models/<name>/predict`` with ``{"x0": ..., "x9": ...}`` and an API
  token made by ``modelstream clients create`` (rate and burst high enough never to
  throttle), access log off like MLServer's. Each request crosses Kafka twice (requests
  topic → scorer → reply topic).
- **MLServer REST**: ``mlserver start`` from its own virtualenv, ``POST
  /v2/models/<name>/infer`` with one ``[1, 10]`` FP64 tensor.

Both are awaited until ``GET /v2/health/ready`` answers 200. Before the load, a few
rows are sent one by one and their class probabilities kept, so the report can show
that both systems give the same answers for the same rows. Every 10th gateway answer is
kept for the times it reports itself (in the gateway, in the scorer): where a request's
time goes. The CPU each server process spent per request during its load is read from
``/proc`` (the broker's is not counted: the gateway's path uses it, MLServer's does not).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.bench._cpu import CpuMeter
from services.bench._errors import ServiceError
from services.bench._http_load import LoadResult, LoadSpec, run_load
from services.bench._latency import summarize
from services.bench._mlserver import (
    ServerPorts,
    free_port,
    mlserver_service,
    oip_body,
    server_settings,
    write_repository,
)
from services.bench._progress import Display
from services.bench._service import Service
from services.bench._sklearn import FEATURES, SklearnModel
from services.bench._stack import BenchStack

__all__ = ["HttpLoad", "HttpRun", "gateway_body", "parse_token", "run_gateway_http",
           "run_mlserver_rest"]  # fmt: skip

TOKEN = re.compile(r"^token=(\S+)$", re.MULTILINE)
CHECK_ROWS = 5  # rows sent one by one before the load, to compare the answers
KEEP_EVERY = 10  # every 10th gateway answer is kept for the times it reports


@dataclass(frozen=True)
class HttpLoad:
    """How hard the HTTP phases push: ``concurrency`` connections for ``seconds``."""

    concurrency: int
    seconds: float
    warmup: float
    rows: Sequence[Sequence[float]]  # feature vectors, cycled


@dataclass(frozen=True)
class HttpRun:
    """One HTTP system's load result and its answers to the check rows."""

    load: LoadResult
    probabilities: list[list[float]]  # per check row, class probabilities in class order
    inside: dict[str, dict[str, float]] | None = None  # the gateway's own timings (ms)
    server_cpu_ms: dict[str, float | None] = field(default_factory=dict)  # per request


def inside_timings(bodies: Sequence[str]) -> dict[str, dict[str, float]] | None:
    """p50 / p99 of the times a gateway answer reports: ``gateway_latency_ms`` (body read
    → reply, in the gateway) and ``latency_ms`` (the scorer's time).

    >>> bodies = ['{"latency_ms": 1.0, "gateway_latency_ms": 4.0}', "not json",
    ...           '{"latency_ms": 3.0, "gateway_latency_ms": 8.0}']
    >>> inside_timings(bodies)["gateway"], inside_timings(bodies)["scorer"]["p50"]
    ({'p50': 6.0, 'p99': 7.96, 'count': 2}, 2.0)
    """
    found: dict[str, list[float]] = {"gateway": [], "scorer": []}
    for body in bodies:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            answer = json.loads(body)
            gateway, scorer = float(answer["gateway_latency_ms"]), float(answer["latency_ms"])
            found["gateway"].append(gateway)
            found["scorer"].append(scorer)
    if not found["gateway"]:
        return None
    summaries = {name: summarize(values) for name, values in found.items()}
    return {name: {"p50": round(s.p50, 3), "p99": round(s.p99, 3), "count": s.count}
            for name, s in summaries.items()}  # fmt: skip


def gateway_body(values: Sequence[float]) -> bytes:
    """The gateway's ``/v1`` predict body: the record itself.

    >>> gateway_body([0.25, -1.5])
    b'{"x0":0.25,"x1":-1.5}'
    """
    record = dict(zip(FEATURES, (float(v) for v in values), strict=False))
    return json.dumps(record, separators=(",", ":")).encode()


def parse_token(output: str) -> str:
    """The token of ``modelstream clients create``'s output.

    >>> parse_token("client bench created\\ntoken=ms_abc123\\n")
    'ms_abc123'
    """
    found = TOKEN.search(output)
    if found is None:
        raise ServiceError(f"`modelstream clients create` printed no token=...: {output[-500:]}")
    return found.group(1)


def modelstream_argv(stack: BenchStack, *args: str) -> list[str]:
    """``modelstream <args>``, found like the scorer's (whose argv ends ``run scorer``)."""
    return [*stack.scorer_argv()[:-2], *args]


def wait_http_ready(url: str, service: Service, timeout: float) -> None:
    """Poll ``url`` until it answers 200; raise :class:`ServiceError` if the process dies
    or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.check_alive()
        with contextlib.suppress(OSError), _open(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise ServiceError(f"{service.name} was not ready at {url} within {timeout:.0f}s; "
                       f"last log lines:\n{service.tail()}")  # fmt: skip


def _open(request: str | urllib.request.Request, timeout: float) -> Any:
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - our loopback URLs


def post_json(url: str, body: bytes, headers: Mapping[str, str]) -> Any:
    """POST ``body`` and decode the JSON answer; :class:`ServiceError` unless 2xx."""
    headers = {"Content-Type": "application/json", **headers}
    request = urllib.request.Request(url, body, headers)  # noqa: S310 - a loopback http URL
    try:
        with _open(request, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise ServiceError(f"POST {url} answered {exc.code}: {detail}") from exc
    except OSError as exc:
        raise ServiceError(f"POST {url} failed: {exc}") from exc


@contextlib.contextmanager
def _running(service: Service, ready_url: str, display: Display, what: str) -> Iterator[None]:
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(service.stop)
        with display.step(f"{what} ready"):
            service.start(timeout=120)
            wait_http_ready(ready_url, service, timeout=120)
        yield


def _load(
    display: Display, label: str, url: str, load: HttpLoad, bodies: list[bytes],
    headers: Mapping[str, str] | None = None, keep_every: int = 0,
) -> LoadResult:  # fmt: skip
    spec = LoadSpec(url, bodies, dict(headers or {}), load.concurrency, load.seconds,
                    load.warmup, keep_every=keep_every)  # fmt: skip
    total = round(load.warmup + load.seconds)
    ticks = [0]

    def tick(_: int) -> None:
        if ticks[0] < total:
            ticks[0] += 1
            step(1)

    with display.phase(f"{label}: {load.concurrency} connections, {total} s", total) as step:
        result = run_load(spec, on_tick=tick)
        step(total - ticks[0])  # the last second ends before its tick
    return result


def _check_rows(
    url: str, bodies: list[bytes], headers: Mapping[str, str], timeout: float = 30.0
) -> list[Any]:
    """The answers to the first :data:`CHECK_ROWS` bodies, one by one. The first is
    retried for ``timeout`` seconds: ready may come a moment before the model is served."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            first = post_json(url, bodies[0], headers)
            break
        except ServiceError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    return [first, *(post_json(url, body, headers) for body in bodies[1:CHECK_ROWS])]


def run_gateway_http(
    stack: BenchStack, model: SklearnModel, load: HttpLoad, display: Display, *, scorer_pid: int
) -> HttpRun:
    """Token, gateway process, check rows, load; the gateway is stopped on the way out.
    The scorer serving ``model`` (``scorer_pid``) must be running."""
    token = create_token(stack, model.name)
    port = free_port()
    argv = modelstream_argv(stack, "run", "gateway", "--host", "127.0.0.1", "--port", str(port),
                            "--instance", "bench", "--no-access-log")  # fmt: skip
    service = Service("gateway", argv, stack.child_env(), stack.workdir / "gateway.log", b"")
    base = f"http://127.0.0.1:{port}"
    url, headers = f"{base}/v1/models/{model.name}/predict", {"Authorization": f"Bearer {token}"}
    bodies = [gateway_body(row) for row in load.rows]
    with _running(service, f"{base}/v2/health/ready", display, "gateway"):
        answers = _check_rows(url, bodies, headers)
        meter = CpuMeter({"gateway": service.pid, "scorer": scorer_pid}).start()
        result = _load(display, "gateway", url, load, bodies, headers, keep_every=KEEP_EVERY)
        meter.stop()
        service.check_alive()
    probabilities = [_gateway_probabilities(a) for a in answers]
    return HttpRun(result, probabilities, inside_timings(result.samples),
                   meter.per_request_ms(result.total))  # fmt: skip


def create_token(stack: BenchStack, model: str) -> str:
    argv = modelstream_argv(stack, "clients", "create", "bench", "--scopes",
                            f"predict:{model},batch:{model}", "--rate", "1000000", "--burst",
                            "1000000")  # fmt: skip
    try:
        done = subprocess.run(argv, env=stack.child_env(), capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"`modelstream clients create` failed: {exc}") from exc
    if done.returncode != 0:
        raise ServiceError(f"`modelstream clients create` exited {done.returncode}: "
                           f"{(done.stderr or done.stdout)[-800:]}")  # fmt: skip
    return parse_token(done.stdout)


def _gateway_probabilities(answer: Mapping[str, Any]) -> list[float]:
    """Class probabilities of a ``/v1`` answer, in class order (``False``, ``True``).

    >>> _gateway_probabilities({"probabilities": {"True": 0.8, "False": 0.2}})
    [0.2, 0.8]
    """
    probabilities = answer.get("probabilities") or {}
    return [float(probabilities[k]) for k in sorted(probabilities)]


def run_mlserver_rest(
    stack: BenchStack, model: SklearnModel, venv: Path, load: HttpLoad, display: Display, *,
    workers: int,
) -> HttpRun:  # fmt: skip
    """MLServer REST on free ports, check rows, load; stopped on the way out."""
    root = stack.workdir / "mlserver-rest"
    ports = ServerPorts(free_port(), free_port())
    write_repository(root, model.name, model.artifact,
                     server_settings(root, ports, workers=workers))  # fmt: skip
    service = mlserver_service(venv, root, stack.workdir / "mlserver-rest.log")
    base = f"http://127.0.0.1:{ports.http}"
    url = f"{base}/v2/models/{model.name}/infer"
    bodies = [oip_body(row) for row in load.rows]
    with _running(service, f"{base}/v2/health/ready", display, "MLServer (REST)"):
        answers = _check_rows(url, bodies, {})
        meter = CpuMeter({"mlserver": service.pid}).start()
        result = _load(display, "MLServer REST", url, load, bodies)
        meter.stop()
        service.check_alive()
    probabilities = [_oip_probabilities(a) for a in answers]
    return HttpRun(result, probabilities, None, meter.per_request_ms(result.total))


def _oip_probabilities(answer: Mapping[str, Any]) -> list[float]:
    """The ``predict_proba`` output of an OIP response.

    >>> _oip_probabilities({"outputs": [{"name": "predict_proba", "data": [0.2, 0.8]}]})
    [0.2, 0.8]
    """
    outputs = [o for o in answer.get("outputs", []) if o.get("name") == "predict_proba"]
    return [float(v) for v in outputs[0]["data"]] if outputs else []

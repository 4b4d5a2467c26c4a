"""The pieces every served phase of ``modelstream bench --gateway`` shares: the load
settings, what a phase measured, the gateway's process and token, readiness, the check
rows sent one by one before a load, and a phase's progress line.

- **gateway**: ``modelstream run gateway`` as a subprocess (:func:`gateway_service`):
  ``POST /v1/models/<name>/predict`` with ``{"x0": ..., "x9": ...}`` and an API token
  made by ``modelstream clients create`` (rate and burst high enough never to throttle),
  access log off like MLServer's. Scoring in-process by default
  (:mod:`services.bench._gateway_direct`); with ``--via-kafka`` each request crosses
  Kafka twice, requests topic → scorer → reply topic
  (:mod:`services.bench._gateway_kafka`).
- **MLServer**: :mod:`services.bench._mlserver_serve`.

Servers are awaited until ``GET /v2/health/ready`` answers 200. Before the load, a few
rows are sent one by one and their class probabilities kept, so the report can show
that every system gives the same answers for the same rows. Every 10th gateway answer is
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import KafkaException

from services.bench._cpu import CpuMeter
from services.bench._errors import BenchError, ServiceError
from services.bench._grpc_load import GrpcSpec, probe, run_grpc_load
from services.bench._http_load import LoadResult, LoadSpec, run_load
from services.bench._latency import summarize
from services.bench._progress import Display
from services.bench._service import Service
from services.bench._sklearn import FEATURES
from services.bench._stack import BenchStack

__all__ = ["CLIENT", "GatewayClient", "GrpcRun", "HttpRun", "Load", "attempt", "check_rows",
           "create_client",
           "gateway_body", "gateway_probabilities", "gateway_request", "gateway_service",
           "grpc_phase", "http_phase", "measure_grpc", "measure_rest", "parse_token",
           "ready_url", "running"]  # fmt: skip

T = TypeVar("T")
TOKEN = re.compile(r"^token=(\S+)$", re.MULTILINE)
CHECK_ROWS = 5  # rows sent one by one before the load, to compare the answers
KEEP_EVERY = 10  # every 10th gateway answer is kept for the times it reports
CLIENT = "bench"  # the gateway client of every gateway phase: its name is the log's client_id
GRPC_READY_TIMEOUT = 15.0  # a gRPC server may listen a moment after HTTP says ready


@dataclass(frozen=True)
class Load:
    """How hard every served phase pushes: ``concurrency`` requests in flight (HTTP
    connections, gRPC calls) for ``warmup + seconds``."""

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

    @property
    def answered(self) -> int:
        """Every good answer the bench got: the check rows' and the load's."""
        return len(self.probabilities) + self.load.ok_total


@dataclass(frozen=True)
class GrpcRun:
    """One gRPC system's load result (``ModelInfer``, one row per call)."""

    load: LoadResult
    server_cpu_ms: dict[str, float | None] = field(default_factory=dict)  # per call
    probes: int = 0  # calls answered before the load

    @property
    def answered(self) -> int:
        """Every ``OK`` answer the bench got: the probes' and the load's."""
        return self.probes + self.load.ok_total


def attempt(display: Display, what: str, action: Callable[[], T]) -> T | str:
    """``action()``, or the reason it failed: one missing system is a finding, not a
    reason to lose the other measurements."""
    try:
        return action()
    except (BenchError, KafkaException, OSError) as exc:
        display.say(f"[red]{what} could not be measured:[/] {exc}")
        return f"{what}: {exc}"


def inside_timings(bodies: Sequence[str]) -> dict[str, dict[str, float]] | None:
    """p50 / p99 of the times a gateway answer reports: ``gateway_latency_ms`` (body read
    → reply, in the gateway) and ``latency_ms`` (queued → scored: in the scorer behind
    ``--via-kafka``, in the direct gateway's scoring thread), as ``scorer``.

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
def running(service: Service, ready_url: str, display: Display, what: str) -> Iterator[None]:
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(service.stop)
        with display.step(f"{what} ready"):
            service.start(timeout=120)
            wait_http_ready(ready_url, service, timeout=120)
        yield


def http_phase(
    display: Display, label: str, url: str, load: Load, bodies: list[bytes],
    headers: Mapping[str, str] | None = None, keep_every: int = 0,
) -> LoadResult:  # fmt: skip
    """The HTTP load of one system, a progress bar of its seconds."""
    spec = LoadSpec(url, bodies, dict(headers or {}), load.concurrency, load.seconds,
                    load.warmup, keep_every=keep_every)  # fmt: skip
    what = f"{label}: {load.concurrency} connections"
    return _seconds_phase(display, what, load, lambda tick: run_load(spec, on_tick=tick))


def grpc_phase(
    display: Display, label: str, target: str, load: Load, requests: list[bytes],
    metadata: Mapping[str, str] | None = None,
) -> LoadResult:  # fmt: skip
    """The gRPC load of one system, a progress bar of its seconds."""
    spec = GrpcSpec(target, requests, dict(metadata or {}), load.concurrency, load.seconds,
                    load.warmup)  # fmt: skip
    what = f"{label}: {load.concurrency} calls in flight on {spec.channels} channels"
    return _seconds_phase(display, what, load, lambda tick: run_grpc_load(spec, on_tick=tick))


def _seconds_phase(
    display: Display, what: str, load: Load,
    run: Callable[[Callable[[int], None]], LoadResult],
) -> LoadResult:  # fmt: skip
    total = round(load.warmup + load.seconds)
    ticks = [0]

    def tick(_: int) -> None:
        if ticks[0] < total:
            ticks[0] += 1
            step(1)

    with display.phase(f"{what}, {total} s", total) as step:
        result = run(tick)
        step(total - ticks[0])  # the last second ends before its tick
    return result


def check_rows(
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


def gateway_service(stack: BenchStack, port: int, instance: str, *flags: str) -> Service:
    """``modelstream run gateway`` on loopback ``port``, access log off, plus ``flags``."""
    argv = modelstream_argv(stack, "run", "gateway", "--host", "127.0.0.1", "--port", str(port),
                            "--instance", instance, "--no-access-log", *flags)  # fmt: skip
    return Service(f"gateway ({instance})", argv, stack.child_env(),
                   stack.workdir / f"gateway-{instance}.log", b"")  # fmt: skip


def gateway_request(model: str, client: GatewayClient, port: int) -> tuple[str, dict[str, str]]:
    """The ``/v1`` predict URL of ``model`` and the headers carrying ``client``'s token."""
    return (f"http://127.0.0.1:{port}/v1/models/{model}/predict",
            {"Authorization": client.authorization})  # fmt: skip


def ready_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v2/health/ready"


def measure_rest(
    display: Display, label: str, service: Service, url: str, bodies: list[bytes], load: Load,
    *, headers: Mapping[str, str], probabilities: Callable[[Any], list[float]],
    cpu: Mapping[str, int], keep_every: int = 0,
) -> HttpRun:  # fmt: skip
    """Check rows, then the load, the ``cpu`` processes metered; ``service`` must still
    be alive at the end."""
    answers = check_rows(url, bodies, headers)
    meter = CpuMeter(cpu).start()
    result = http_phase(display, label, url, load, bodies, headers, keep_every)
    meter.stop()
    service.check_alive()
    return HttpRun(result, [probabilities(a) for a in answers], inside_timings(result.samples),
                   meter.per_request_ms(result.total))  # fmt: skip


def measure_grpc(
    display: Display, label: str, service: Service, target: str, requests: list[bytes],
    load: Load, *, metadata: Mapping[str, str], cpu: Mapping[str, int],
) -> GrpcRun:  # fmt: skip
    """A probe call until answered (:data:`GRPC_READY_TIMEOUT`), then the load, the
    ``cpu`` processes metered; ``service`` must still be alive at the end."""
    probe(target, requests[0], metadata, timeout=GRPC_READY_TIMEOUT, alive=service.check_alive)
    meter = CpuMeter(cpu).start()
    result = grpc_phase(display, label, target, load, requests, metadata)
    meter.stop()
    service.check_alive()
    return GrpcRun(result, meter.per_request_ms(result.total), probes=1)


@dataclass(frozen=True)
class GatewayClient:
    """The gateway client every gateway phase calls as: its name is the ``client_id`` its
    calls leave in the prediction log."""

    name: str
    token: str

    @property
    def authorization(self) -> str:
        return f"Bearer {self.token}"


def create_client(stack: BenchStack, model: str) -> GatewayClient:
    """``modelstream clients create`` :data:`CLIENT`, with rate and burst that never
    throttle."""
    argv = modelstream_argv(stack, "clients", "create", CLIENT, "--scopes",
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
    return GatewayClient(CLIENT, parse_token(done.stdout))


def gateway_probabilities(answer: Mapping[str, Any]) -> list[float]:
    """Class probabilities of a ``/v1`` answer, in class order (``False``, ``True``).

    >>> gateway_probabilities({"probabilities": {"True": 0.8, "False": 0.2}})
    [0.2, 0.8]
    """
    probabilities = answer.get("probabilities") or {}
    return [float(probabilities[k]) for k in sorted(probabilities)]

"""The direct gateway's phases of ``modelstream bench --gateway``: ``modelstream run
gateway`` scoring in-process (its default; no scorer running), one process for

- **REST**: ``POST /v1/models/<name>/predict``, the HTTP load (``gateway_rps``);
- **gRPC**: ``--grpc-port``, ``ModelInfer`` with the bearer token in the ``authorization``
  metadata, one row per call (``grpc_rps``);
- **the prediction log**: the end offsets of ``<prefix>.<model>.predictions`` are taken
  before the first call; after both loads, what the bench's client wrote there is
  counted against every answer the bench got (``logged_ratio``,
  :mod:`services.bench._logged`).

If the gateway cannot start with ``--grpc-port``, it is started again without it: the
REST numbers are measured and gRPC is reported missing with the first start's reason.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from services.bench._errors import ServiceError
from services.bench._gateway import (
    KEEP_EVERY,
    GatewayClient,
    GrpcRun,
    HttpRun,
    Load,
    attempt,
    gateway_body,
    gateway_probabilities,
    gateway_request,
    gateway_service,
    measure_grpc,
    measure_rest,
    ready_url,
    running,
)
from services.bench._grpc_load import infer_request
from services.bench._logged import QUIET, Logged, count_logged, end_offsets
from services.bench._mlserver import free_port
from services.bench._progress import Display
from services.bench._service import Service
from services.bench._sklearn import SklearnModel
from services.bench._stack import BenchStack

__all__ = ["DirectRun", "run_gateway_direct"]


@dataclass(frozen=True)
class DirectRun:
    """What the direct gateway measured, or why it could not."""

    rest: HttpRun | str
    grpc: GrpcRun | str
    logged: Logged | str | None  # why it could not be counted; None: REST not measured


@dataclass(frozen=True)
class _Started:
    service: Service
    port: int
    grpc_port: int | None
    grpc_missing: str | None  # why gRPC is not served


def run_gateway_direct(
    stack: BenchStack, model: SklearnModel, load: Load, display: Display, *,
    client: GatewayClient, log_quiet: float = QUIET,
) -> DirectRun:  # fmt: skip
    """Start the direct gateway, measure REST then gRPC, count the prediction log; the
    gateway is stopped on the way out. :class:`ServiceError` if it does not start."""
    topic = model.topics.predictions(model.name)
    with contextlib.ExitStack() as cleanup:
        started = _start(stack, display, cleanup)
        service = started.service
        start = end_offsets(stack.kafka, topic)
        url, headers = gateway_request(model.name, client, started.port)
        rest = attempt(display, "gateway (direct) REST", lambda: measure_rest(
            display, "gateway (direct) REST", service, url,
            [gateway_body(row) for row in load.rows], load, headers=headers,
            probabilities=gateway_probabilities, cpu={"gateway": service.pid},
            keep_every=KEEP_EVERY))  # fmt: skip
        target = f"127.0.0.1:{started.grpc_port}"
        grpc = started.grpc_missing if started.grpc_missing is not None else attempt(
            display, "gateway (direct) gRPC",
            lambda: _grpc(display, service, target, model, load, client))  # fmt: skip
        if isinstance(rest, str):
            return DirectRun(rest, grpc, None)
        answered = rest.answered + (grpc.answered if isinstance(grpc, GrpcRun) else 0)
        logged = attempt(display, "prediction log", lambda: _logged(
            stack, display, topic, start, client, answered, log_quiet))  # fmt: skip
    return DirectRun(rest, grpc, logged)


def _logged(
    stack: BenchStack, display: Display, topic: str, start: dict[int, int],
    client: GatewayClient, answered: int, quiet: float,
) -> Logged:  # fmt: skip
    with display.step(f"prediction log read back ({answered:,} answers to find)"):
        logged = count_logged(stack.kafka, topic, start, client.name, answered=answered,
                              quiet=quiet)  # fmt: skip
    display.say(f"  prediction log: {logged.logged:,} records of {client.name!r} for "
                f"{logged.answered:,} answers")  # fmt: skip
    return logged


def _grpc(
    display: Display, service: Service, target: str, model: SklearnModel, load: Load,
    client: GatewayClient,
) -> GrpcRun:  # fmt: skip
    requests = [infer_request(model.name, row) for row in load.rows]
    return measure_grpc(display, "gateway (direct) gRPC", service, target, requests, load,
                        metadata={"authorization": client.authorization},
                        cpu={"gateway_grpc": service.pid})  # fmt: skip


def _start(stack: BenchStack, display: Display, cleanup: contextlib.ExitStack) -> _Started:
    """The gateway with ``--grpc-port``; without it if it cannot start with it."""
    port, grpc_port = free_port(), free_port()
    service = gateway_service(stack, port, "bench-direct", "--grpc-port", str(grpc_port))
    try:
        cleanup.enter_context(running(service, ready_url(port), display,
                                      "gateway (direct, REST and gRPC)"))  # fmt: skip
        return _Started(service, port, grpc_port, None)
    except ServiceError as exc:
        why = f"gateway (direct) gRPC: the gateway did not start with --grpc-port: {exc}"
        display.say(f"[red]{why.splitlines()[0]}[/]; starting it again without gRPC")
    port = free_port()
    service = gateway_service(stack, port, "bench-direct-rest")
    cleanup.enter_context(running(service, ready_url(port), display, "gateway (direct, REST)"))
    return _Started(service, port, None, why)

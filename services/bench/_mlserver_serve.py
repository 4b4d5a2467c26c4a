"""MLServer's REST and gRPC phases of ``modelstream bench --gateway``, once per
configuration of the grid (:mod:`services.bench._mlserver_grid`).

Each configuration is one ``mlserver start`` on free loopback ports (its own repository:
``settings.json`` with its ``parallel_workers``, ``model-settings.json`` with or without
adaptive batching), awaited until ``/v2/health/ready``; then, one after the other, the
check rows and the HTTP load on ``POST /v2/models/<name>/infer``, a probe and the gRPC
load on ``ModelInfer``, the same loads as the gateway's. Then it is stopped. A
configuration that cannot start or be measured is reported with its reason; the others
are still measured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.bench._gateway import (
    GrpcRun,
    HttpRun,
    Load,
    attempt,
    measure_grpc,
    measure_rest,
    ready_url,
    running,
)
from services.bench._grpc_load import infer_request
from services.bench._mlserver import (
    ServerPorts,
    free_port,
    mlserver_service,
    oip_body,
    server_settings,
    write_repository,
)
from services.bench._mlserver_grid import MLServerConfig
from services.bench._progress import Display
from services.bench._sklearn import SklearnModel
from services.bench._stack import BenchStack

__all__ = ["ConfigRun", "oip_probabilities", "run_mlserver_config"]


@dataclass(frozen=True)
class ConfigRun:
    """One configuration's REST and gRPC results, or why each could not be measured."""

    config: MLServerConfig
    rest: HttpRun | str
    grpc: GrpcRun | str


def run_mlserver_config(
    stack: BenchStack, model: SklearnModel, venv: Path, load: Load, display: Display,
    config: MLServerConfig,
) -> ConfigRun:  # fmt: skip
    """MLServer with ``config``: REST, then gRPC; stopped on the way out."""
    root = stack.workdir / f"mlserver-{config.key}"
    ports = ServerPorts(free_port(), free_port())
    write_repository(root, model.name, model.artifact,
                     server_settings(root, ports, workers=config.workers),
                     batch=config.batch)  # fmt: skip
    service = mlserver_service(venv, root, stack.workdir / f"mlserver-{config.key}.log")
    what = f"MLServer ({config.label})"
    with contextlib.ExitStack() as cleanup:
        started = attempt(display, what, lambda: cleanup.enter_context(
            running(service, ready_url(ports.http), display, what)))  # fmt: skip
        if isinstance(started, str):
            return ConfigRun(config, started, started)
        url = f"http://127.0.0.1:{ports.http}/v2/models/{model.name}/infer"
        rest = attempt(display, f"MLServer REST ({config.label})", lambda: measure_rest(
            display, f"MLServer REST ({config.label})", service, url,
            [oip_body(row) for row in load.rows], load, headers={},
            probabilities=oip_probabilities, cpu={"mlserver": service.pid}))  # fmt: skip
        grpc = attempt(display, f"MLServer gRPC ({config.label})", lambda: measure_grpc(
            display, f"MLServer gRPC ({config.label})", service, f"127.0.0.1:{ports.grpc}",
            [infer_request(model.name, row) for row in load.rows], load, metadata={},
            cpu={"mlserver_grpc": service.pid}))  # fmt: skip
    return ConfigRun(config, rest, grpc)


def oip_probabilities(answer: Mapping[str, Any]) -> list[float]:
    """The ``predict_proba`` output of an OIP response.

    >>> oip_probabilities({"outputs": [{"name": "predict_proba", "data": [0.2, 0.8]}]})
    [0.2, 0.8]
    """
    outputs: Sequence[Mapping[str, Any]] = answer.get("outputs", [])
    found = [o for o in outputs if o.get("name") == "predict_proba"]
    return [float(v) for v in found[0]["data"]] if found else []

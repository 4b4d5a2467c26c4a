"""MLServer as the baseline: its model repository, its settings, its wire formats, its
process.

MLServer reads ``settings.json`` (the server) and ``model-settings.json`` (each model)
from the folder given to ``mlserver start``. The bench writes both next to
``model.joblib``, the very bytes the modelstream registry holds for the same model, and
starts MLServer from its own virtualenv (:mod:`services.bench._mlserver_env`) on free
loopback ports, with its metrics server off and access logs off (``debug: false``): it
does no more per request than the inference itself.

All three of MLServer's front doors are measured:

- REST, Open Inference Protocol v2: ``POST /v2/models/<name>/infer`` with one ``[1, 10]``
  FP64 tensor (:func:`oip_body`);
- gRPC, the same protocol: ``inference.GRPCInferenceService/ModelInfer`` on
  ``grpc_port``, the same tensor (:func:`services.bench._grpc_load.infer_request`);
- Kafka (``kafka_enabled``): a JSON ``InferenceRequest`` on its input topic, the model
  named by the ``mlserver-model`` header (:func:`kafka_request`), the
  ``InferenceResponse`` on its output topic keyed by the request id.

The SKLearn runtime answers ``predict_proba`` (``predict_fn``), as the modelstream
scorer does for a classifier, so both do the same work per row.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.bench._service import Service

__all__ = [
    "INPUT_NAME",
    "KafkaMode",
    "ServerPorts",
    "free_port",
    "kafka_request",
    "mlserver_service",
    "model_settings",
    "oip_body",
    "server_settings",
    "write_repository",
]

MODEL_HEADER = "mlserver-model"  # mlserver.kafka.handlers.MLSERVER_MODEL_NAME_HEADER
IMPLEMENTATION = "mlserver_sklearn.SKLearnModel"
READY_LOG = b"HTTP server running on"  # then /v2/health/ready says when models are loaded
INPUT_NAME = "input-0"
# MLServer's Kafka server logs one INFO line per message; the scorer logs none
QUIET_KAFKA_LOG = {"version": 1, "disable_existing_loggers": False,
                   "loggers": {"mlserver.kafka": {"level": "WARNING"}}}  # fmt: skip
Headers = list[tuple[str, str | bytes | None]]  # confluent-kafka's produce(headers=...)


@dataclass(frozen=True)
class ServerPorts:
    http: int
    grpc: int  # MLServer always starts its gRPC server too


@dataclass(frozen=True)
class KafkaMode:
    """MLServer's Kafka server: where it reads requests and writes responses."""

    servers: str
    input_topic: str
    output_topic: str


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def oip_body(values: Sequence[float]) -> bytes:
    """An Open Inference Protocol v2 request with one row as a ``[1, n]`` FP64 tensor.

    >>> oip_body([0.5, -1.0])
    b'{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"FP64","data":[0.5,-1.0]}]}'
    """
    tensor = {"name": INPUT_NAME, "shape": [1, len(values)], "datatype": "FP64",
              "data": [float(v) for v in values]}  # fmt: skip
    return json.dumps({"inputs": [tensor]}, separators=(",", ":")).encode()


def kafka_request(
    request_id: str, values: Sequence[float], model: str
) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` of one request for MLServer's Kafka server.

    >>> key, value, headers = kafka_request("m7", [1.0], "iris")
    >>> key, headers
    (b'm7', [('mlserver-model', b'iris')])
    >>> json.loads(value)["id"], json.loads(value)["inputs"][0]["shape"]
    ('m7', [1, 1])
    """
    body = json.loads(oip_body(values)) | {"id": request_id}
    value = json.dumps(body, separators=(",", ":")).encode()
    return request_id.encode(), value, [(MODEL_HEADER, model.encode())]


def model_settings(
    name: str, *, version: str = "v1", batch: tuple[int, float] | None = None
) -> dict[str, Any]:
    """``model-settings.json`` of the SKLearn runtime serving ``model.joblib``; ``batch``
    = ``(max_batch_size, max_batch_time)`` turns MLServer's adaptive batching on.

    >>> s = model_settings("bench-sklearn")
    >>> s["implementation"], s["parameters"]["uri"], s["parameters"]["extra"]
    ('mlserver_sklearn.SKLearnModel', './model.joblib', {'predict_fn': 'predict_proba'})
    >>> "max_batch_size" in s
    False
    >>> b = model_settings("bench-sklearn", batch=(32, 0.005))
    >>> b["max_batch_size"], b["max_batch_time"]
    (32, 0.005)
    """
    settings: dict[str, Any] = {
        "name": name,
        "implementation": IMPLEMENTATION,
        "parameters": {"uri": "./model.joblib", "version": version,
                       "extra": {"predict_fn": "predict_proba"}},
    }  # fmt: skip
    if batch is not None:
        settings |= {"max_batch_size": batch[0], "max_batch_time": batch[1]}
    return settings


def server_settings(
    root: Path, ports: ServerPorts, *, workers: int, kafka: KafkaMode | None = None
) -> dict[str, Any]:
    """``settings.json``: loopback only, no metrics server, no access log, no log line
    per Kafka message.

    ``workers`` is MLServer's ``parallel_workers``: 0 runs inference in the server's own
    process; n > 0 in n worker processes fed over IPC.

    >>> s = server_settings(Path("/r"), ServerPorts(8080, 8081), workers=0)
    >>> s["host"], s["http_port"], s["grpc_port"], s["metrics_endpoint"], s["kafka_enabled"]
    ('127.0.0.1', 8080, 8081, None, False)
    >>> k = server_settings(Path("/r"), ServerPorts(1, 2), workers=1,
    ...                     kafka=KafkaMode("127.0.0.1:9092", "in", "out"))
    >>> k["kafka_servers"], k["kafka_topic_input"], k["kafka_topic_output"]
    ('127.0.0.1:9092', 'in', 'out')
    """
    settings: dict[str, Any] = {
        "debug": False, "host": "127.0.0.1", "http_port": ports.http, "grpc_port": ports.grpc,
        "metrics_endpoint": None, "parallel_workers": workers,
        "metrics_dir": str(root / ".metrics"), "environments_dir": str(root / ".envs"),
        "kafka_enabled": kafka is not None, "logging_settings": QUIET_KAFKA_LOG,
    }  # fmt: skip
    if kafka is not None:
        settings |= {"kafka_servers": kafka.servers, "kafka_topic_input": kafka.input_topic,
                     "kafka_topic_output": kafka.output_topic}  # fmt: skip
    return settings


def write_repository(
    root: Path, name: str, artifact: bytes, settings: Mapping[str, Any], *,
    batch: tuple[int, float] | None = None,
) -> Path:  # fmt: skip
    """``root/settings.json`` and ``root/<name>/{model.joblib,model-settings.json}``."""
    model_dir = root / name
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.joblib").write_bytes(artifact)
    model = model_settings(name, batch=batch)
    (model_dir / "model-settings.json").write_text(json.dumps(model, indent=2))
    (root / "settings.json").write_text(json.dumps(dict(settings), indent=2))
    return root


def mlserver_service(venv: Path, root: Path, log: Path) -> Service:
    """``mlserver start root`` from ``venv``, with none of this process's Python paths."""
    hidden = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in hidden and not k.startswith("MLSERVER")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Service("mlserver", [str(venv / "bin" / "mlserver"), "start", str(root)], env, log,
                   READY_LOG)  # fmt: skip

"""Closed-loop gRPC load: Open Inference Protocol v2 ``ModelInfer``, one row per call, at
a fixed number of calls in flight, and what it measured.

The same generator drives every gRPC server under test (the gateway, MLServer), with the
same pre-serialized requests (:func:`infer_request`: one ``[1, 10]`` FP64 tensor named
``input-0``, MLServer's name and the gateway's ``[N, F]`` form), in a process of its own
(:mod:`services.bench._grpc_driver`). One channel, its own HTTP/2 connection, per
:data:`CALLS_PER_CHANNEL` calls in flight, so one connection is not the bottleneck. It
is counted like the HTTP load (:func:`services.bench._http_load.summarize_load`): only
calls sent after the warm-up, answered ``OK``::

    calls/s   = OK answers to post-warm-up calls / (last answer - warm-up end)
    latency   = call started → answer decoded, on the generator's clock

The request and answer messages come from tritonclient's generated ``service_pb2`` (the
same ``inference`` package as MLServer's and the gateway's), imported here in the
parent only.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from services.bench import _grpc_driver
from services.bench._driver import run_driver
from services.bench._errors import LoadError, ServiceError
from services.bench._http_load import LoadResult, summarize_load
from services.bench._mlserver import INPUT_NAME

__all__ = ["METHOD", "GrpcSpec", "describe_answer", "grpc_ok", "infer_request", "parse_result",
           "probe", "run_grpc_load"]  # fmt: skip

METHOD = "/inference.GRPCInferenceService/ModelInfer"
CALLS_PER_CHANNEL = 8
RAW_DTYPES = {"FP64": "<f8", "FP32": "<f4", "INT64": "<i8", "INT32": "<i4"}  # little-endian


@dataclass(frozen=True)
class GrpcSpec:
    """``concurrency`` calls in flight sending ``requests`` (cycled) to ``target``."""

    target: str  # host:port
    requests: Sequence[bytes]  # serialized ModelInferRequest messages
    metadata: Mapping[str, str] = field(default_factory=dict)
    concurrency: int = 32
    seconds: float = 8.0
    warmup: float = 2.0
    request_timeout: float = 10.0
    per_channel: int = CALLS_PER_CHANNEL
    method: str = METHOD

    def __post_init__(self) -> None:
        if not self.requests:
            raise ValueError("a load needs at least one request")
        if min(self.concurrency, self.per_channel) < 1 or self.seconds <= 0 or self.warmup < 0:
            raise ValueError(
                f"need concurrency and calls per channel ≥ 1, seconds > 0, warmup ≥ 0; got "
                f"{self.concurrency}, {self.per_channel}, {self.seconds}, {self.warmup}"
            )

    @property
    def channels(self) -> int:
        """One channel per :attr:`per_channel` calls in flight.

        >>> [GrpcSpec("h:1", [b"x"], concurrency=c).channels for c in (32, 9, 1)]
        [4, 2, 1]
        """
        return math.ceil(self.concurrency / self.per_channel)

    def to_json(self) -> bytes:
        """The spec as the driver reads it: requests base64, metadata as pairs.

        >>> data = json.loads(GrpcSpec("h:1", [b"\\x00\\x01"], {"authorization": "t"}).to_json())
        >>> data["requests"], data["metadata"], data["channels"]
        (['AAE='], [['authorization', 't']], 4)
        """
        data = asdict(self) | {
            "requests": [base64.b64encode(r).decode() for r in self.requests],
            "metadata": [[k, v] for k, v in self.metadata.items()], "channels": self.channels,
        }  # fmt: skip
        return json.dumps(data).encode()


def grpc_ok(status: int | str) -> bool:
    """An answered call: status ``OK``."""
    return status == "OK"


def run_grpc_load(spec: GrpcSpec, on_tick: Callable[[int], None] | None = None) -> LoadResult:
    """Run ``spec`` in the driver's process; ``on_tick(calls_so_far)`` once a second."""
    return parse_result(spec, run_driver(_grpc_driver.__file__, spec.to_json(), "gRPC", on_tick))


def parse_result(spec: GrpcSpec, raw: Mapping[str, Any]) -> LoadResult:
    """The driver's output as a :class:`LoadResult`: ``failed`` by status code name,
    ``samples`` the first answers described as JSON (:func:`describe_answer`)."""
    try:
        records = [(float(s), float(d), str(code)) for s, d, code in raw["records"]]
        samples = [base64.b64decode(s) for s in raw["samples"]]
        cpu = float(raw["client_cpu_seconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LoadError(f"the gRPC load generator's result is not [sent, done, code] "
                        f"records with samples and CPU time: {exc!r}") from exc  # fmt: skip
    summary = summarize_load(records, warmup=spec.warmup, concurrency=spec.concurrency,
                             ok=grpc_ok)  # fmt: skip
    described = [json.dumps(describe_answer(s), separators=(",", ":")) for s in samples]
    return replace(summary, client_cpu_seconds=cpu, samples=described)


def infer_request(model: str, values: Sequence[float]) -> bytes:
    """A serialized ``ModelInferRequest``: one row as a ``[1, n]`` FP64 tensor named
    ``input-0``, its values in ``contents.fp64_contents``."""
    pb = _service_pb2()
    request = pb.ModelInferRequest(model_name=model)
    tensor = request.inputs.add(name=INPUT_NAME, datatype="FP64", shape=[1, len(values)])
    tensor.contents.fp64_contents.extend(float(v) for v in values)
    return bytes(request.SerializeToString())


def describe_answer(data: bytes) -> dict[str, Any]:
    """A ``ModelInferResponse`` as plain data: each output's name, datatype, shape and
    values (from ``contents``, or FP64 / INT64 ``raw_output_contents``)."""
    pb = _service_pb2()
    try:
        answer = pb.ModelInferResponse.FromString(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError has no stable home
        return {"undecodable": f"{len(data)} bytes: {exc}"}
    outputs = []
    for i, out in enumerate(answer.outputs):
        raw = answer.raw_output_contents[i] if i < len(answer.raw_output_contents) else b""
        outputs.append({"name": out.name, "datatype": out.datatype, "shape": list(out.shape),
                        "values": _values(out.datatype, out.contents, raw)})  # fmt: skip
    return {"model_name": answer.model_name, "outputs": outputs}


def _values(datatype: str, contents: Any, raw: bytes) -> list[Any]:
    import numpy as np

    if raw and datatype in RAW_DTYPES:
        return [v.item() for v in np.frombuffer(raw, dtype=RAW_DTYPES[datatype])]
    if raw and datatype == "BYTES":
        return _raw_strings(raw)
    for name in ("fp64_contents", "fp32_contents", "int64_contents", "int_contents",
                 "bool_contents", "bytes_contents"):  # fmt: skip
        values = list(getattr(contents, name))
        if values:
            return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
    return []


def _raw_strings(raw: bytes) -> list[str]:
    """BYTES elements of a raw output: each a 4-byte little-endian length, then its bytes.

    >>> _raw_strings(b"\\x05\\x00\\x00\\x00False\\x04\\x00\\x00\\x00True")
    ['False', 'True']
    """
    found, at = [], 0
    while at + 4 <= len(raw):
        size = int.from_bytes(raw[at : at + 4], "little")
        found.append(raw[at + 4 : at + 4 + size].decode(errors="replace"))
        at += 4 + size
    return found


def probe(
    target: str, request: bytes, metadata: Mapping[str, str], *, timeout: float,
    alive: Callable[[], None] | None = None,
) -> bytes:  # fmt: skip
    """One ``ModelInfer`` call, retried until answered ``OK`` or ``timeout`` seconds pass
    (then :class:`ServiceError` with the last status): the server may listen a moment
    after its HTTP side says ready."""
    import grpc

    deadline, last = time.monotonic() + timeout, "no call made"
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD)
        while time.monotonic() < deadline:
            if alive is not None:
                alive()
            try:
                answer: bytes = call(request, timeout=2.0, metadata=tuple(metadata.items()))
                return answer
            except grpc.RpcError as exc:
                last = f"{exc.code().name}: {exc.details()}"
            time.sleep(0.25)
    raise ServiceError(f"no gRPC ModelInfer answer on {target} within {timeout:.0f}s; "
                       f"last: {last}")  # fmt: skip


def _service_pb2() -> Any:
    try:
        from tritonclient.grpc import service_pb2
    except ImportError as exc:
        raise LoadError("the gRPC phases build their requests with tritonclient's "
                        "service_pb2: pip install 'tritonclient[grpc]'") from exc  # fmt: skip
    return service_pb2

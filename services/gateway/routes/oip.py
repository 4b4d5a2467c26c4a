"""``/v2``: the Open Inference Protocol (REST), so KServe, Seldon and Triton clients can
call modelstream unchanged.

Tabular inputs map to the model's features in one of two ways:

- one tensor per feature, named like the feature, shape ``[N]`` or ``[N, 1]``;
- one tensor of shape ``[N, F]`` whose columns are the features in schema order.

Each of the N rows becomes one request on the model's requests topic. Outputs:
``predict`` (labels as BYTES, or FP64 for regression), ``probabilities`` (FP64 ``[N,
C]``, classes in ``parameters.classes``) and ``served_by`` (BYTES). A row that fails fails
the call: the protocol has no per-row errors (use ``/v1/.../batch`` for those).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel

from services.gateway.auth import admit, read_body
from services.gateway.bridge import TIMEOUT, PublishError
from services.gateway.context import Ctx, GatewayContext
from services.gateway.contract import InvalidInputError
from services.gateway.directory import ModelEntry
from services.gateway.errors import ApiError, JsonResponse, error_responses
from services.gateway.routes.serving import (
    authorized_model,
    check_batch,
    check_fits,
    check_record,
    invalid,
    parse_json,
    publish_failed,
    reply_error,
    request_id,
    timed_out,
)

__all__ = ["metadata_body", "raise_for", "response_body", "router", "rows_from_inputs"]

router = APIRouter(tags=["open inference protocol v2"])
_ERRORS = error_responses(400, 401, 403, 404, 408, 413, 422, 429, 502, 503, 504, oip=True)
_DATATYPES = {"double": "FP64", "float": "FP32", "int": "INT32", "long": "INT64",
              "string": "BYTES", "boolean": "BOOL", "enum": "BYTES"}  # fmt: skip
_INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": {"type": "object"}},
                "outputs": {"type": "array", "items": {"type": "object"}},
            },
        }}},
    }
}  # fmt: skip


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None
    id: str
    parameters: dict[str, Any] | None = None
    outputs: list[Tensor]


@router.get("/v2", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata(ctx: Ctx) -> dict[str, Any]:
    return {"name": "modelstream", "version": ctx.config.version, "extensions": []}


@router.get("/v2/health/live", response_model=Live, summary="Liveness")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get(
    "/v2/health/ready", response_model=Ready, responses={503: {"model": Ready}},
    summary="Readiness: Kafka bridge running and registry read",
)  # fmt: skip
async def ready(ctx: Ctx) -> JsonResponse:
    is_ready = ctx.serving.ready and ctx.models.synced.is_set() and ctx.clients.ready
    return JsonResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


@router.get("/v2/models/{name}", response_model=ModelMetadata, responses=_ERRORS)
async def model_metadata(name: str, request: Request, ctx: Ctx) -> dict[str, Any]:
    _, entry = authorized_model(ctx, request, name, f"predict:{name}", "catalogue:read")
    return metadata_body(entry)


@router.get("/v2/models/{name}/ready", response_model=ModelReady, responses=_ERRORS)
async def model_ready(name: str, request: Request, ctx: Ctx) -> dict[str, Any]:
    authorized_model(ctx, request, name, f"predict:{name}", "catalogue:read")
    return {"name": name, "ready": ctx.serving.ready}


@router.post(
    "/v2/models/{name}/infer", response_model=InferenceResponse, responses=_ERRORS,
    openapi_extra=_INFER_BODY, summary="Infer (rows of a tabular model)",
)  # fmt: skip
async def infer(name: str, request: Request, ctx: Ctx) -> JsonResponse:
    return await _infer(name, None, request, ctx)


@router.post(
    "/v2/models/{name}/versions/{version}/infer", response_model=InferenceResponse,
    responses=_ERRORS, openapi_extra=_INFER_BODY, summary="Infer with a named version",
)  # fmt: skip
async def infer_version(name: str, version: str, request: Request, ctx: Ctx) -> JsonResponse:
    return await _infer(name, version, request, ctx)


async def _infer(
    name: str, version: str | None, request: Request, ctx: GatewayContext
) -> JsonResponse:
    client, entry = authorized_model(ctx, request, name, f"predict:{name}")
    if version is not None and version != str(entry.champion.version):
        raise ApiError("unknown_version", f"the gateway serves {name}'s champion, "
                       f"v{entry.champion.version}, not v{version}", status=404)  # fmt: skip
    headers = admit(ctx, client)  # the first row, before the body is read or parsed
    body = parse_json(
        await read_body(request, client.limits.max_body_bytes, ctx.config.body_timeout)
    )
    if not isinstance(body, dict):
        raise ApiError("malformed", "an inference request is a JSON object with 'inputs'")
    rows = rows_from_inputs(body.get("inputs"), entry.contract.fields)
    headers = check_batch(ctx, client, name, len(rows), headers)
    base, started = str(body.get("id") or request_id(request)), time.perf_counter()
    ids = [f"{base}-{i}" for i in range(len(rows))]
    raws = [orjson.dumps(row) for row in rows]
    check_fits(ctx, raws)
    values = []
    for rid, row, raw in zip(ids, rows, raws, strict=True):
        try:
            values.append((rid, check_record(ctx, entry, row, raw, rid, client.name)))
        except InvalidInputError as exc:
            raise invalid(exc, rid) from None
    replies = await ctx.serving.request_many(name, values, client.name, ctx.config.request_timeout)
    for rid, reply in zip(ids, replies, strict=True):
        raise_for(reply, rid, ctx)
    response = response_body(entry, base, replies, body.get("outputs"))
    response["parameters"] = {"gateway_latency_ms": (time.perf_counter() - started) * 1e3}
    return JsonResponse(response, headers=headers)


def raise_for(reply: Any, rid: str, ctx: GatewayContext) -> None:
    if reply is TIMEOUT:
        raise timed_out(ctx, rid, ctx.config.request_timeout)
    if isinstance(reply, PublishError):
        raise publish_failed(reply, rid)
    if reply.get("error"):
        raise reply_error(reply, rid)


def rows_from_inputs(inputs: Any, features: Sequence[str]) -> list[dict[str, Any]]:
    """Input tensors → one record per row (see the module docstring).

    >>> rows_from_inputs([{"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]},
    ...                   {"name": "b", "shape": [2, 1], "datatype": "BYTES", "data": ["x", "y"]}],
    ...                  ["a", "b"])
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]
    >>> rows_from_inputs([{"name": "input-0", "shape": [1, 2], "datatype": "FP64",
    ...                    "data": [[3.0, 4.0]]}], ["a", "b"])
    [{'a': 3.0, 'b': 4.0}]
    """
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, dict) for t in inputs):
        raise ApiError("malformed", "'inputs' must be a non-empty list of tensors", status=400)
    if len(inputs) == 1 and inputs[0].get("name") not in features:
        return _matrix_rows(inputs[0], features)
    columns = {}
    for tensor in inputs:
        tensor_name, data = tensor.get("name"), _flat(tensor)
        if tensor_name not in features:
            raise ApiError("malformed", f"input {tensor_name!r} is not a feature of the model "
                           f"(features: {', '.join(features)})", status=400)  # fmt: skip
        columns[str(tensor_name)] = data
    sizes = {len(data) for data in columns.values()}
    if len(sizes) != 1:
        raise ApiError("malformed", f"every input needs the same row count, got {sorted(sizes)}",
                       status=400)  # fmt: skip
    (count,) = sizes
    return [{name: data[i] for name, data in columns.items()} for i in range(count)]


def _matrix_rows(tensor: dict[str, Any], features: Sequence[str]) -> list[dict[str, Any]]:
    shape, data = tensor.get("shape"), _flat(tensor)
    width = len(features)
    if not isinstance(shape, list) or len(shape) != 2 or shape[1] != width:
        raise ApiError("malformed", f"a single input tensor must have shape [N, {width}] (the "
                       f"features {', '.join(features)}), got {shape}", status=400)  # fmt: skip
    if len(data) % width:
        raise ApiError("malformed", f"{len(data)} values do not fill rows of {width}", status=400)
    return [dict(zip(features, data[i : i + width], strict=True))
            for i in range(0, len(data), width)]  # fmt: skip


def _flat(tensor: dict[str, Any]) -> list[Any]:
    data = tensor.get("data")
    if not isinstance(data, list):
        raise ApiError("malformed", f"input {tensor.get('name')!r} has no 'data' list", status=400)
    while data and all(isinstance(item, list) for item in data):
        data = [value for item in data for value in item]
    return data


def metadata_body(entry: ModelEntry) -> dict[str, Any]:
    inputs = [{"name": f["name"], "datatype": _datatype(f["type"]), "shape": [-1]}
              for f in entry.champion.input_schema["fields"]]  # fmt: skip
    label = "BYTES" if entry.champion.task == "classification" else "FP64"
    outputs = [{"name": "predict", "datatype": label, "shape": [-1]},
               {"name": "served_by", "datatype": "BYTES", "shape": [-1]}]  # fmt: skip
    if entry.champion.task == "classification":
        outputs.insert(1, {"name": "probabilities", "datatype": "FP64", "shape": [-1, -1]})
    versions = [str(v.version) for v in entry.versions]
    return {"name": entry.name, "versions": versions, "platform": "modelstream",
            "inputs": inputs, "outputs": outputs}  # fmt: skip


def _datatype(node: Any) -> str:
    if isinstance(node, list):
        node = next((branch for branch in node if branch != "null"), "null")
    name = node.get("type") if isinstance(node, dict) else node
    return _DATATYPES.get(str(name), "BYTES")


def response_body(
    entry: ModelEntry, rid: str, replies: list[dict[str, Any]], wanted: Any
) -> dict[str, Any]:
    count = len(replies)
    label = "BYTES" if entry.champion.task == "classification" else "FP64"
    outputs: list[dict[str, Any]] = [
        {"name": "predict", "shape": [count], "datatype": label,
         "data": [r["prediction"] for r in replies]},
        {"name": "served_by", "shape": [count], "datatype": "BYTES",
         "data": [r["served_by"] for r in replies]},
    ]  # fmt: skip
    probabilities: list[dict[str, float]] = [r.get("probabilities") or {} for r in replies]
    if count and all(probabilities):
        classes = sorted(probabilities[0])
        data = [float(p.get(c, 0.0)) for p in probabilities for c in classes]
        outputs.insert(1, {"name": "probabilities", "shape": [count, len(classes)],
                           "datatype": "FP64", "data": data,
                           "parameters": {"classes": classes}})  # fmt: skip
    if isinstance(wanted, list) and wanted:
        names = {o.get("name") for o in wanted if isinstance(o, dict)}
        outputs = [o for o in outputs if o["name"] in names]
    versions = {r["model_version"] for r in replies}
    version = str(versions.pop()) if len(versions) == 1 else None
    return {"model_name": entry.name, "model_version": version, "id": rid, "outputs": outputs}

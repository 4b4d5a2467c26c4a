"""``/v1``: one prediction, or a batch, as JSON over HTTP.

``POST /v1/models/{name}/predict`` takes one input record (a JSON object that fits the
champion's input schema) and answers with the scorer's reply. ``POST
/v1/models/{name}/batch`` takes up to the client's largest batch (``Limits.largest_batch``:
its ``max_batch``, burst and quota; and the gateway's ``--max-batch``), as a JSON array or
JSON lines (``Content-Type: application/x-ndjson``), and answers every one in input
order; an item that fails carries its own error and does not fail the batch.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from services.gateway.auth import admit, read_body
from services.gateway.bridge import PublishError
from services.gateway.context import Ctx
from services.gateway.contract import InvalidInputError
from services.gateway.errors import ApiError, JsonResponse, error_responses
from services.gateway.routes.serving import (
    authorized_model,
    check_batch_size,
    check_fits,
    check_record,
    invalid,
    item_result,
    parse_json,
    publish_failed,
    reply_error,
    request_id,
    success,
    timed_out,
)

__all__ = ["router"]

router = APIRouter(tags=["predict"])
_LINES = frozenset({"application/x-ndjson", "application/jsonl", "application/json-lines"})
_ERRORS = error_responses(401, 403, 404, 408, 413, 422, 429, 502, 503, 504)
_RECORD_BODY = {
    "requestBody": {
        "required": True,
        "description": "One input record; its fields are the model's input schema "
        "(GET /v1/catalogue/{name}).",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "description": "Input records: a JSON array, or JSON lines with "
        "Content-Type: application/x-ndjson.",
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


class Prediction(BaseModel):
    """The answer to one request."""

    request_id: str
    model: str
    model_version: int | None = Field(description="the version that answered")
    task: str
    prediction: str | float | None
    probabilities: dict[str, float] | None
    served_by: Literal["champion", "backup", "none"]
    latency_ms: float = Field(description="the scorer's time, reading to reply")
    gateway_latency_ms: float = Field(description="the gateway's time, body read to reply")


class BatchItem(BaseModel):
    """One record's result: ``ok`` with the prediction fields, or an ``error``."""

    index: int
    ok: bool
    request_id: str
    model: str | None = None
    model_version: int | None = None
    task: str | None = None
    prediction: str | float | None = None
    probabilities: dict[str, float] | None = None
    served_by: Literal["champion", "backup", "none"] | None = None
    latency_ms: float | None = None
    gateway_latency_ms: float | None = None
    error: dict[str, Any] | None = None


class BatchResult(BaseModel):
    model: str
    count: int
    succeeded: int
    failed: int
    results: list[BatchItem]


@router.post(
    "/v1/models/{name}/predict", response_model=Prediction, responses=_ERRORS,
    openapi_extra=_RECORD_BODY, summary="Score one record",
)  # fmt: skip
async def predict(name: str, request: Request, ctx: Ctx) -> JsonResponse:
    client, entry = authorized_model(ctx, request, name, f"predict:{name}")
    headers = admit(ctx, client)
    # one record, one Kafka message: a body that could never be produced is refused too
    limit = min(client.limits.max_body_bytes, ctx.serving.max_record_bytes)
    body = await read_body(request, limit, ctx.config.body_timeout)
    rid = request_id(request)
    started = time.perf_counter()
    try:
        value = check_record(ctx, entry, parse_json(body), body, rid, client.name)
    except InvalidInputError as exc:
        raise invalid(exc, rid) from None
    timeout = ctx.config.request_timeout
    try:
        reply = await ctx.serving.request(name, value, rid, client.name, timeout)
    except PublishError as exc:
        raise publish_failed(exc, rid) from None
    if reply is None:
        raise timed_out(ctx, rid, timeout)
    if reply.get("error"):
        raise reply_error(reply, rid)
    return JsonResponse(success(reply, started), headers=headers)


@router.post(
    "/v1/models/{name}/batch", response_model=BatchResult, responses=_ERRORS,
    openapi_extra=_BATCH_BODY, summary="Score many records, results in input order",
)  # fmt: skip
async def batch(name: str, request: Request, ctx: Ctx) -> JsonResponse:
    client, entry = authorized_model(ctx, request, name, f"batch:{name}")
    headers = admit(ctx, client)  # the first record, before the body is read or parsed
    body = await read_body(request, client.limits.max_body_bytes, ctx.config.body_timeout)
    records = _records(body, request.headers.get("content-type", ""))
    check_batch_size(len(records), ctx.config.max_batch, client.limits)
    check_fits(ctx, [raw for _, raw in records])
    if len(records) > 1:
        headers = admit(ctx, client, len(records) - 1)
    base, started = request_id(request), time.perf_counter()
    ids = [f"{base}-{i}" for i in range(len(records))]
    outcomes: list[Any] = [None] * len(records)
    publish: list[tuple[int, str, bytes]] = []
    for i, (record, raw) in enumerate(records):
        try:
            publish.append((i, ids[i], check_record(ctx, entry, record, raw, ids[i], client.name)))
        except InvalidInputError as exc:
            outcomes[i] = invalid(exc, ids[i])
    if publish:
        replies = await ctx.serving.request_many(
            name, [(rid, raw) for _, rid, raw in publish], client.name, ctx.config.batch_timeout
        )
        for (i, _, _), reply in zip(publish, replies, strict=True):
            outcomes[i] = reply
    results = [item_result(i, ids[i], o, ctx, started) for i, o in enumerate(outcomes)]
    ok = sum(1 for r in results if r["ok"])
    summary = {"model": name, "count": len(results), "succeeded": ok,
               "failed": len(results) - ok, "results": results}  # fmt: skip
    return JsonResponse(summary, headers=headers)


def _records(body: bytes, content_type: str) -> list[tuple[Any, bytes]]:
    """``(record, its bytes)`` per input record, from a JSON array or JSON lines."""
    if content_type.partition(";")[0].strip().lower() in _LINES:
        lines = [line for line in body.splitlines() if line.strip()]
        return [(parse_json(line), line) for line in lines]
    parsed = parse_json(body)
    if not isinstance(parsed, list):
        raise ApiError(
            "malformed",
            "a batch is a JSON array of records (or JSON lines with "
            "Content-Type: application/x-ndjson)",
        )
    return [(record, orjson.dumps(record)) for record in parsed]

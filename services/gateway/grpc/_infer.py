"""``ModelInfer``: REST's ``POST /v2/models/{name}/infer`` over protobuf, step for step.

Checks run in REST's order (:mod:`services.gateway.auth`): token (401), model (404),
scope ``predict:<model>`` (403), a version other than the champion's (404
``unknown_version``), the request's serialized size against the client's
``max_body_bytes`` (413), the first row's rate and quota (429, before the tensors are
decoded), the tensors (400); more than one row then needs ``batch:<model>`` (403) and
fits the client's batch limits (422), and the other rows are charged (429); a row larger
than one Kafka record may be is 413; then each row's contract (422; a refused row is
recorded on the model's DLQ).
The rows are served together (``ctx.serving.request_many``) and any row's failure fails
the call: the protocol has no per-row errors. Row ``i``'s request id is
``<request id or a fresh one>-<i>``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from services.gateway.auth import admit
from services.gateway.context import GatewayContext
from services.gateway.contract import InvalidInputError
from services.gateway.directory import ModelEntry
from services.gateway.errors import ApiError
from services.gateway.grpc import inference_pb2 as pb
from services.gateway.grpc._access import authorized
from services.gateway.grpc._tensors import decode_inputs, encode_outputs, parameter
from services.gateway.routes.oip import (  # REST's: both answer alike
    raise_for,
    response_body,
    rows_from_inputs,
)
from services.gateway.routes.serving import (
    check_batch,
    check_fits,
    check_record,
    fresh_id,
    invalid,
)

__all__ = ["infer"]


async def infer(
    ctx: GatewayContext, request: pb.ModelInferRequest, header: str | None
) -> tuple[pb.ModelInferResponse, dict[str, str]]:
    """The response to ``request`` from the caller whose ``authorization`` is ``header``,
    and the rate-limit headers to send with it."""
    name = request.model_name
    client, entry = authorized(ctx, header, name, f"predict:{name}")
    _check_version(entry, request.model_version)
    _check_size(request, client.limits.max_body_bytes)
    headers = admit(ctx, client)  # the first row, before the tensors are decoded
    rows = rows_from_inputs(decode_inputs(request), entry.contract.fields)
    headers = check_batch(ctx, client, name, len(rows), headers)
    base, started = request.id or fresh_id(), time.perf_counter()
    ids = [f"{base}-{i}" for i in range(len(rows))]
    values = _checked(ctx, entry, ids, rows, client.name)
    replies = await ctx.serving.request_many(name, values, client.name, ctx.config.request_timeout)
    for rid, reply in zip(ids, replies, strict=True):
        raise_for(reply, rid, ctx)
    body = response_body(entry, base, replies, [{"name": o.name} for o in request.outputs])
    outputs, raws = encode_outputs(body["outputs"])
    latency = parameter((time.perf_counter() - started) * 1e3)
    response = pb.ModelInferResponse(
        model_name=entry.name, model_version=body["model_version"] or "", id=base,
        outputs=outputs, raw_output_contents=raws, parameters={"gateway_latency_ms": latency},
    )  # fmt: skip
    return response, headers


def _check_version(entry: ModelEntry, version: str) -> None:
    if version and version != str(entry.champion.version):
        raise ApiError("unknown_version", f"the gateway serves {entry.name}'s champion, "
                       f"v{entry.champion.version}, not v{version}", status=404)  # fmt: skip


def _check_size(request: pb.ModelInferRequest, limit: int) -> None:
    size = request.ByteSize()
    if size > limit:
        raise ApiError("payload_too_large", f"the request has {size} bytes; this client may "
                       f"send at most {limit} (split the rows over several calls)")  # fmt: skip


def _checked(
    ctx: GatewayContext, entry: ModelEntry, ids: Sequence[str],
    rows: Sequence[dict[str, Any]], client: str,
) -> list[tuple[str, bytes]]:  # fmt: skip
    raws = [orjson.dumps(row) for row in rows]
    check_fits(ctx, raws)
    values = []
    for rid, row, raw in zip(ids, rows, raws, strict=True):
        try:
            values.append((rid, check_record(ctx, entry, row, raw, rid, client)))
        except InvalidInputError as exc:
            raise invalid(exc, rid) from None
    return values

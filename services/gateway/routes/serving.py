"""What every serving route does between HTTP and Kafka: find the caller and the model
(token → model → scope, see :mod:`services.gateway.auth`), check a record against its
contract (refusals are recorded on the model's DLQ), turn scorer replies into responses."""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Final

import orjson
from fastapi import Request

from services.gateway.auth import admit, authenticate, may_list_models, require
from services.gateway.bridge import TIMEOUT, PublishError, too_large
from services.gateway.context import GatewayContext
from services.gateway.contract import FieldError, InvalidInputError
from services.gateway.directory import ModelEntry
from services.gateway.errors import ApiError
from services.gateway.policy import Limits
from services.registry import not_registered

__all__ = [
    "DECODE_REASONS",
    "authorized_model",
    "check_batch",
    "check_batch_size",
    "check_fits",
    "check_record",
    "item_result",
    "model_entry",
    "parse_json",
    "reply_error",
    "request_id",
    "unknown_model_message",
]

# the scorer's decode reasons: the request was at fault (422), not the model (502)
DECODE_REASONS: Final = frozenset({
    "decode", "oversize", "unsupported_content_type", "truncated", "malformed",
    "unknown_fingerprint", "wrong_type", "missing_field", "unknown_field", "not_finite",
})  # fmt: skip
_MAX_ID: Final = 128
_BOUND_WHY: Final = {
    "max_batch": "this client's max_batch",
    "burst": "this client's burst: a batch takes a token per record, all at once",
    "quota": "this client's whole quota",
}
log = logging.getLogger(__name__)


def authorized_model(
    ctx: GatewayContext, request: Request, name: str, *scopes: str
) -> tuple[Any, ModelEntry]:
    """The caller's record and the model, checked in that order and then the scope:
    401, then 404 ``unknown_model``, then 403 (a typo'd name is a 404, not "lacks the
    scope predict:<typo>")."""
    record = authenticate(ctx, request)
    entry = model_entry(ctx, name, reveal=may_list_models(ctx, record))
    return require(record, *scopes), entry


def model_entry(ctx: GatewayContext, name: str, *, reveal: bool) -> ModelEntry:
    """The routable model ``name``, else 404 ``unknown_model``; the message names the
    known models only when ``reveal`` (the caller may read the catalogue)."""
    entry = ctx.models.get(name)
    if entry is None:
        known = [e.name for e in ctx.models.entries()] if reveal else None
        raise ApiError("unknown_model", unknown_model_message(name, known))
    return entry


def unknown_model_message(name: str, known: Sequence[str] | None) -> str:
    """Why ``name`` cannot be served; ``known`` is None when the caller may not be told
    which models exist (:func:`services.registry.not_registered`)."""
    return not_registered(name, known, more_at="GET /v1/catalogue")


def request_id(request: Request) -> str:
    """The caller's ``X-Request-Id`` when it is usable, else a fresh one."""
    given = request.headers.get("x-request-id")
    if given and len(given) <= _MAX_ID and given.isprintable():
        return given
    return fresh_id()


_PROCESS = uuid.uuid4().hex[:16]  # random per process: ids of two gateways never meet
_COUNTER = itertools.count()


def fresh_id() -> str:
    """A request id unique to this process run: 16 random hex digits, then a counter
    (uuid4 per request cost ~6 % of the gateway's event loop: a system call each).

    >>> a, b = fresh_id(), fresh_id()
    >>> a != b and a[:16] == b[:16] and len(a) > 17
    True
    """
    return f"{_PROCESS}-{next(_COUNTER):x}"


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError("malformed", f"the body is not valid JSON: {exc}") from None


def check_record(
    ctx: GatewayContext, entry: ModelEntry, record: Any, raw: bytes, rid: str, client: str
) -> bytes:
    """The request bytes to publish, or :class:`InvalidInputError` after the refusal was
    put on the model's DLQ (original bytes, reason, ``ms-stage: gateway``)."""
    try:
        entry.contract.check(record)
    except InvalidInputError as exc:
        _dlq(ctx, entry.name, raw, rid, client, exc)
        raise
    return raw


def _dlq(
    ctx: GatewayContext, model: str, raw: bytes, rid: str, client: str, exc: InvalidInputError
) -> None:
    headers = [
        ("content-type", b"application/json"),
        ("client-id", client.encode()),
        ("ms-reason", exc.reason.encode()),
        ("ms-stage", b"gateway"),
        ("ms-error", str(exc)[:1000].encode()),
        ("ms-model", model.encode()),
        ("ms-request-id", rid.encode()),
        ("ms-source-topic", f"http:gateway-{ctx.config.instance_id}".encode()),
    ]
    try:
        ctx.serving.publish_dlq(model, raw, headers)
    except PublishError as exc:  # the client still gets its 422
        log.error("could not record refused request %s on the DLQ: %s", rid, exc)


def invalid(exc: InvalidInputError, rid: str) -> ApiError:
    fields = [f.as_dict() for f in exc.fields]
    return ApiError("invalid_input", str(exc), request_id=rid, fields=fields)


def reply_error(reply: dict[str, Any], rid: str) -> ApiError:
    """The HTTP error for a scorer reply that carries one."""
    error = reply.get("error") or {}
    code, message = str(error.get("code", "model_failed")), str(error.get("message", ""))
    if code in DECODE_REASONS:
        fields = [FieldError(None, code, message).as_dict()]
        return ApiError("invalid_input", message, request_id=rid, fields=fields)
    if code == "unknown_model":
        return ApiError("unknown_model", message, request_id=rid)
    return ApiError("model_failed", f"{code}: {message}", request_id=rid)


def success(reply: dict[str, Any], started: float) -> dict[str, Any]:
    """The response body of a served request (the reply, plus the gateway's time)."""
    return {
        "request_id": reply["request_id"], "model": reply["model"],
        "model_version": reply["model_version"], "task": reply["task"],
        "prediction": reply["prediction"], "probabilities": reply["probabilities"],
        "served_by": reply["served_by"], "latency_ms": reply["latency_ms"],
        "gateway_latency_ms": (time.perf_counter() - started) * 1e3,
    }  # fmt: skip


def publish_failed(exc: PublishError, rid: str) -> ApiError:
    return ApiError("publish_failed", f"{exc} ({exc.code})", request_id=rid)


def timed_out(ctx: GatewayContext, rid: str, timeout: float) -> ApiError:
    return ApiError(
        "timeout",
        f"no reply within {timeout:g} s; the request may still be scored (look it up by "
        "request_id in the prediction log)",
        request_id=rid,
    )


def item_result(
    index: int, rid: str, outcome: Any, ctx: GatewayContext, started: float
) -> dict[str, Any]:
    """One batch item's result: the reply, or the error it would have had alone."""
    if isinstance(outcome, ApiError):
        error = {"code": outcome.code, "message": outcome.message, **outcome.extra}
        return {"index": index, "request_id": rid, "ok": False, "error": error}
    if outcome is TIMEOUT:
        return item_result(index, rid, timed_out(ctx, rid, ctx.config.batch_timeout), ctx, 0)
    if isinstance(outcome, PublishError):
        return item_result(index, rid, publish_failed(outcome, rid), ctx, 0)
    if outcome.get("error"):
        return item_result(index, rid, reply_error(outcome, rid), ctx, 0)
    return {"index": index, "ok": True, **success(outcome, started)}


def check_batch_size(count: int, gateway_max: int, limits: Limits) -> None:
    """422 ``batch_too_large`` above the most records a batch can carry: this gateway's
    ``--max-batch``, the client's ``max_batch``, or its burst or quota (a batch takes a
    token and a unit of quota per record, all at once)."""
    limit, bound = limits.largest_batch, _BOUND_WHY[limits.batch_bound]
    if gateway_max < limit:
        limit, bound = gateway_max, "this gateway's --max-batch"
    if count > limit:
        raise ApiError("batch_too_large", f"{count} records; at most {limit} per batch ({bound})")


def check_fits(ctx: GatewayContext, raws: Sequence[bytes]) -> None:
    """413 when any record is larger than one Kafka record may be: it could never be
    served, so nothing of the call is queued."""
    most = ctx.serving.max_record_bytes
    for i, raw in enumerate(raws):
        if len(raw) > most:
            raise ApiError("payload_too_large", f"record {i}: {too_large(len(raw), most)}")


def check_batch(
    ctx: GatewayContext, client: Any, name: str, count: int, headers: dict[str, str]
) -> dict[str, str]:
    """The rest of a call of ``count`` rows, once its first row was charged (before its
    body was read): more than one row needs ``batch:<model>`` (403) and fits the batch
    limits (422); then the other rows are charged (429). Returns the rate headers."""
    if count <= 1:
        return headers
    require(client, f"batch:{name}")
    check_batch_size(count, ctx.config.max_batch, client.limits)
    return admit(ctx, client, count - 1)

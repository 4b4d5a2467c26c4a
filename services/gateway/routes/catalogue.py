"""The model catalogue: every model the gateway routes, what it takes and answers, how fast
it answers, and how to call it; as JSON (``/v1/catalogue``) and as pages (``/catalogue``).

A model's card holds its description and task, the champion's input schema (JSON Schema)
and the reply's schema, every version with its role, author, training metrics and
description, the latency and QPS the warehouse measured, and examples to copy (curl,
Python ``requests``, a Kafka producer) filled with a valid record, this gateway's URL,
the deployment's topic names and the Kafka bootstrap servers this gateway uses (with its
security protocol; never its credentials).

Reading it needs the ``catalogue:read`` scope (an API token, or the session the portal's
sign-in opens), unless the gateway serves it publicly (``--public-catalogue``). A page
without a valid session redirects to the sign-in page instead of answering 401. Every
page carries the CSRF token its forms post back (:func:`csrf_token`).
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from schemas.contracts import load_schema
from services.gateway.auth import CATALOGUE_SCOPE, catalogue_client
from services.gateway.context import Ctx, GatewayContext
from services.gateway.directory import ModelEntry
from services.gateway.errors import ERROR_CODES, ApiError, JsonResponse, error_responses
from services.gateway.routes.serving import model_entry
from services.gateway.sessions import CSRF_COOKIE, SESSION_COOKIE, TTL_S, new_token
from services.gateway.stats import ModelStats, StatsReport, stats_sql
from services.registry import ModelVersion, Routing, closest
from streams.kafka import KafkaConfig

__all__ = [
    "JSON_OBJECT",
    "SCOPE",
    "TEMPLATES",
    "base_url",
    "catalogue",
    "cookie_options",
    "csrf_token",
    "error_codes",
    "examples",
    "kafka_access",
    "model_card",
    "page",
    "page_reader",
    "reader",
    "reply_schema",
    "router",
]

SCOPE: Final = CATALOGUE_SCOPE
router = APIRouter(tags=["catalogue"])
JSON_OBJECT: Final[dict[int | str, dict[str, Any]]] = {
    200: {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
}
_AVRO_JSON: Final = {"string": "string", "int": "integer", "long": "integer",
                     "double": "number", "float": "number", "boolean": "boolean",
                     "null": "null"}  # fmt: skip


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value or "")


def _json_type(prop: Mapping[str, Any]) -> str:
    kind = prop.get("type", "any")
    return " | ".join(kind) if isinstance(kind, list) else str(kind)


TEMPLATES: Final = Environment(
    loader=PackageLoader("services.gateway", "templates"),
    autoescape=select_autoescape(["html"], disabled_extensions=["txt"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
TEMPLATES.filters |= {
    "shell": shlex.quote,
    "pystr": json.dumps,
    "pretty": lambda value: json.dumps(value, indent=2, default=str),
    "when": _when,
    "jtype": _json_type,
}


# -- the cards (pure: entries, stats and the base URL in, plain dicts out)


def reply_schema(
    task: str = "classification", classes: Sequence[str] | None = None
) -> dict[str, Any]:
    """The reply as JSON Schema (from ``schemas/avro/reply.avsc``), with ``prediction``
    typed for the task: a class label (one of ``classes`` when known) or a number.

    >>> schema = reply_schema("regression")
    >>> schema["properties"]["prediction"]["type"], schema["properties"]["served_by"]["enum"]
    (['number', 'null'], ['champion', 'backup', 'none'])
    """
    schema = _from_avro(load_schema("reply"))
    label: dict[str, Any] = {"type": ["string", "null"]}
    if task == "regression":
        label = {"type": ["number", "null"]}
    elif classes:
        label["enum"] = [*classes, None]
    prediction = schema["properties"]["prediction"]
    schema["properties"]["prediction"] = {**label, "description": prediction["description"]}
    return schema


def _from_avro(node: Any) -> dict[str, Any]:
    """An Avro type as JSON Schema (the shapes reply.avsc uses)."""
    if isinstance(node, list):
        branches = [_from_avro(branch) for branch in node if branch != "null"]
        if len(branches) == 1 and isinstance(branches[0].get("type"), str) and "null" in node:
            return {**branches[0], "type": [branches[0]["type"], "null"]}
        options = [*branches, {"type": "null"}] if "null" in node else branches
        return {"anyOf": options}
    if isinstance(node, str):
        return {"type": _AVRO_JSON.get(node, "string")}
    kind = node["type"]
    out: dict[str, Any]
    if kind == "record":
        props = {f["name"]: {**_from_avro(f["type"]), "description": f.get("doc", "")}
                 for f in node["fields"]}  # fmt: skip
        required = [f["name"] for f in node["fields"] if "default" not in f]
        out = {"type": "object", "title": node["name"], "properties": props, "required": required}
    elif kind == "enum":
        out = {"type": "string", "enum": list(node["symbols"])}
    elif kind == "map":
        out = {"type": "object", "additionalProperties": _from_avro(node["values"])}
    else:  # a primitive with attributes, e.g. a timestamp-millis long
        out = _from_avro(kind)
    if node.get("doc"):
        out.setdefault("description", node["doc"])
    return out


def error_codes() -> list[dict[str, Any]]:
    """Every error code the gateway answers: code, HTTP status, meaning."""
    return [{"code": code, "status": status, "meaning": meaning}
            for code, (status, meaning) in ERROR_CODES.items()]  # fmt: skip


def _routing(routing: Routing) -> dict[str, Any]:
    return {
        "champion": routing.champion, "challenger": routing.challenger,
        "backup": routing.backup, "shadow_fraction": routing.shadow_fraction,
        "previous_champions": list(routing.previous_champions),
        "updated_at": routing.updated_at, "updated_by": routing.updated_by,
        "reason": routing.reason,
    }  # fmt: skip


def _version(entry: ModelEntry, version: ModelVersion) -> dict[str, Any]:
    return {
        "version": version.version, "role": entry.role_of(version.version),
        "task": version.task, "description": version.description, "author": version.author,
        "created_at": version.created_at, "training_metrics": dict(version.training_metrics),
        "hyperparameters": dict(version.hyperparameters), "features": list(version.features),
        "sensitive_attributes": list(version.sensitive_attributes),
        "classes": list(version.classes) if version.classes else None,
        "artifact_format": version.artifact_format, "code_version": version.code_version,
        "training_data_fingerprint": version.training_data_fingerprint,
    }  # fmt: skip


def endpoints(name: str, base: str) -> dict[str, str]:
    """Where to call ``name`` and read about it, on the gateway at ``base``."""
    return {
        "predict": f"{base}/v1/models/{name}/predict",
        "batch": f"{base}/v1/models/{name}/batch",
        "infer": f"{base}/v2/models/{name}/infer",
        "metadata": f"{base}/v2/models/{name}",
        "openapi": f"{base}/v1/models/{name}/openapi.json",
        "catalogue": f"{base}/v1/catalogue/{name}",
        "page": f"{base}/catalogue/{name}",
        "portal": f"{base}/portal/models/{name}",
    }


def topics(name: str, prefix: str) -> dict[str, str]:
    kinds = ("requests", "replies", "dlq", "feedback", "predictions")
    return {kind: f"{prefix}.{name}.{kind}" for kind in kinds}


def infer_body(record: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """An Open Inference Protocol request of one row: one tensor per feature.

    >>> infer_body({"a": 1.5, "b": "x"}, {"properties": {"a": {"type": "number"},
    ...                                                 "b": {"type": "string"}}})["inputs"][1]
    {'name': 'b', 'shape': [1], 'datatype': 'BYTES', 'data': ['x']}
    """
    kinds = {"number": "FP64", "integer": "INT64", "boolean": "BOOL"}
    inputs = []
    for name, value in record.items():
        kind = _json_type(schema["properties"].get(name, {})).split(" | ")[0]
        inputs.append({"name": name, "shape": [1], "datatype": kinds.get(kind, "BYTES"),
                       "data": [value]})  # fmt: skip
    return {"id": "example-1", "inputs": inputs}


def python_literal(record: Mapping[str, Any], width: int = 88) -> str:
    """``record`` as a Python dict literal, several items to a line.

    >>> print(python_literal({"a": 1.0, "b": "x", "c": None}, width=30))
    {
        "a": 1.0, "b": "x",
        "c": None,
    }
    """
    items = [f"{json.dumps(k)}: {json.dumps(v) if isinstance(v, str) else repr(v)}"
             for k, v in record.items()]  # fmt: skip
    lines, line = [], ""
    for item in items:
        if line and len(line) + len(item) + 2 > width - 4:
            lines.append(line)
            line = ""
        line = f"{line} {item}," if line else f"{item},"
    lines.append(line)
    return "{\n" + "".join(f"    {text}\n" for text in lines if text) + "}"


def kafka_access(kafka: KafkaConfig) -> dict[str, str | None]:
    """How a producer reaches this deployment's Kafka, as the gateway does: bootstrap
    servers, security protocol, SASL mechanism. Never credentials: not the SASL ones, nor
    a ``user:password@`` someone put in a bootstrap address.

    >>> access = kafka_access(KafkaConfig("u:pw@k1:9093, k2:9093", "x", "SASL_SSL", "PLAIN",
    ...                                   "gw", "pw"))
    >>> access["bootstrap_servers"], access["security_protocol"], access["sasl_mechanism"]
    ('k1:9093,k2:9093', 'SASL_SSL', 'PLAIN')
    >>> sorted(access)
    ['bootstrap_servers', 'sasl_mechanism', 'security_protocol']
    """
    servers = ",".join(s.strip().rpartition("@")[2] for s in kafka.bootstrap.split(","))
    return {"bootstrap_servers": servers, "security_protocol": kafka.security_protocol,
            "sasl_mechanism": kafka.sasl_mechanism}  # fmt: skip


def examples(
    entry: ModelEntry, base: str, prefix: str, kafka: Mapping[str, str | None]
) -> dict[str, str]:
    """Code to copy, filled with a valid record: curl (predict, batch, v2 infer), Python
    ``requests``, and a Kafka producer (confluent-kafka) on ``kafka`` (:func:`kafka_access`)."""
    record = entry.contract.example()
    values = {
        "name": entry.name, "base_url": base, "record": record, "kafka": kafka,
        "record_json": json.dumps(record, separators=(",", ":")),
        "record_py": python_literal(record),
        "infer_json": json.dumps(infer_body(record, entry.contract.json_schema()),
                                 separators=(",", ":")),
        "topics": topics(entry.name, prefix), "urls": endpoints(entry.name, base),
    }  # fmt: skip
    kinds = ("curl_predict", "curl_batch", "curl_infer", "python", "kafka")
    return {kind: TEMPLATES.get_template(f"snippets/{kind}.txt").render(values) for kind in kinds}


def model_card(
    entry: ModelEntry, stats: ModelStats | None, base: str, prefix: str,
    kafka: Mapping[str, str | None],
) -> dict[str, Any]:  # fmt: skip
    """Everything the catalogue says about one model (JSON-ready but for datetimes)."""
    champion = entry.champion
    versions = sorted(entry.versions, key=lambda v: v.version, reverse=True)
    return {
        "name": entry.name, "description": champion.description, "task": champion.task,
        "champion": champion.version, "routing": _routing(entry.routing),
        "versions": [_version(entry, v) for v in versions],
        "input_schema": entry.contract.json_schema(),
        "output_schema": reply_schema(champion.task, champion.classes),
        "example": entry.contract.example(),
        "stats": stats.as_dict() if stats else None,
        "endpoints": endpoints(entry.name, base), "topics": topics(entry.name, prefix),
        "kafka": dict(kafka), "examples": examples(entry, base, prefix, kafka),
    }  # fmt: skip


def catalogue(
    entries: Sequence[ModelEntry], report: StatsReport, base: str, prefix: str,
    kafka: Mapping[str, str | None],
) -> dict[str, Any]:  # fmt: skip
    """The whole catalogue: every model's card, the statistics' state, the error codes."""
    stats = report.for_models(entry.name for entry in entries)
    return {
        "models": [model_card(e, stats[e.name], base, prefix, kafka) for e in entries],
        "kafka": dict(kafka),
        "stats": {"window_s": report.window_s, "unavailable": report.unavailable,
                  "sql": stats_sql(report.window_s)},
        "error_codes": error_codes(),
        "links": {"portal": f"{base}/portal", "docs": f"{base}/portal/docs",
                  "openapi": f"{base}/openapi.json", "page": f"{base}/catalogue"},
    }  # fmt: skip


# -- who may read it


def base_url(request: Request) -> str:
    """This gateway's URL as the caller reached it."""
    return str(request.base_url).rstrip("/")


def reader(ctx: GatewayContext, request: Request) -> None:
    """Allow reading the catalogue (a Bearer token or a portal session), else 401/403."""
    if not ctx.config.public_catalogue:
        catalogue_client(ctx, request)


def page_reader(ctx: GatewayContext, request: Request) -> RedirectResponse | None:
    """None when the page may be shown, else the redirect to the sign-in page."""
    try:
        reader(ctx, request)
    except ApiError as exc:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        why = "forbidden" if exc.code == "forbidden" else (
            "expired" if request.cookies.get(SESSION_COOKIE) else "signin")  # fmt: skip
        query = urlencode({"next": target, "why": why})
        return RedirectResponse(f"/portal/login?{query}", status_code=303)
    return None


def page(request: Request, ctx: GatewayContext, template: str, **values: Any) -> HTMLResponse:
    """A rendered page (every page gets the request, the nav state, the version and the
    CSRF token of its forms; a browser without one gets its ``ms_csrf`` cookie here)."""
    session = ctx.sessions.get(request.cookies.get(SESSION_COOKIE))
    csrf = csrf_token(ctx, request)
    fresh = None if csrf is not None else new_token()
    html = TEMPLATES.get_template(template).render(
        request=request, signed_in=session is not None, csrf=csrf or fresh,
        public=ctx.config.public_catalogue, version=ctx.config.version, **values,
    )  # fmt: skip
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}  # fmt: skip
    response = HTMLResponse(html, status_code=values.get("status", 200), headers=headers)
    if fresh is not None:  # rendered with a new one: hand it to the browser too
        response.set_cookie(CSRF_COOKIE, fresh, max_age=int(TTL_S), **cookie_options(request))
    return response


def csrf_token(ctx: GatewayContext, request: Request) -> str | None:
    """The CSRF token this browser's forms must post: its session's, else its
    ``ms_csrf`` cookie's (before sign-in); None when it has neither yet."""
    session = ctx.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        return session.csrf
    return request.cookies.get(CSRF_COOKIE) or None


def cookie_options(request: Request) -> dict[str, Any]:
    """How the portal's cookies are set: this site only, never to scripts, not on
    cross-site subrequests or POSTs (SameSite=Lax), and ``Secure`` when the browser
    reached the gateway over TLS (``https``, or ``X-Forwarded-Proto: https`` from a proxy
    in ``forwarded_allow_ips``: uvicorn applies it to the scheme)."""
    return {"path": "/", "httponly": True, "samesite": "lax",
            "secure": request.url.scheme == "https"}  # fmt: skip


def missing_page(request: Request, ctx: GatewayContext, name: str) -> HTMLResponse:
    """The 404 page for a model the registry does not route."""
    known = [e.name for e in ctx.models.entries()]
    suggestion = closest(name, known)
    again = f"{request.url.path.rsplit('/', 1)[0]}/{suggestion}" if suggestion else None
    return page(request, ctx, "missing.html", name=name, known=known, status=404,
                suggestion=suggestion, suggestion_url=again, title="No such model")  # fmt: skip


async def stats_report(ctx: GatewayContext) -> StatsReport:
    if ctx.stats is None:
        return StatsReport({}, unavailable="the gateway was started without warehouse statistics")
    report: StatsReport = await asyncio.to_thread(ctx.stats.report)
    return report


def _prefix(ctx: GatewayContext) -> str:
    return str(ctx.serving.topics.prefix)


def _kafka(ctx: GatewayContext) -> dict[str, str | None]:
    return kafka_access(ctx.serving.kafka)


def serving_card(ctx: GatewayContext) -> dict[str, Any]:
    """How this gateway answers, for the catalogue: its mode and its gRPC port."""
    direct = ctx.serving.mode == "direct"
    how = (
        "scored in the gateway's own process with the live registry's models; every answer "
        "is in the model's prediction log"
        if direct
        else "published to the model's requests topic and answered by the scorer (exactly once)"
    )
    return {"mode": ctx.serving.mode, "how": how, "grpc_port": ctx.config.grpc_port}


# -- routes


@router.get("/v1/catalogue", summary="Every model: schemas, versions, latency, examples",
            responses={**JSON_OBJECT, **error_responses(401, 403, 503)})  # fmt: skip
async def catalogue_json(request: Request, ctx: Ctx) -> JsonResponse:
    reader(ctx, request)
    body = catalogue(ctx.models.entries(), await stats_report(ctx), base_url(request),
                     _prefix(ctx), _kafka(ctx))  # fmt: skip
    return JsonResponse({**body, "serving": serving_card(ctx)})


@router.get("/v1/catalogue/{name}", summary="One model's card",
            responses={**JSON_OBJECT, **error_responses(401, 403, 404, 503)})  # fmt: skip
async def model_json(name: str, request: Request, ctx: Ctx) -> JsonResponse:
    reader(ctx, request)  # the scope names no model: checked first, then the model
    entry = model_entry(ctx, name, reveal=True)
    report = await stats_report(ctx)
    card = model_card(entry, report.models.get(name), base_url(request), _prefix(ctx),
                      _kafka(ctx))  # fmt: skip
    return JsonResponse({**card, "stats_unavailable": report.unavailable,
                         "error_codes": error_codes()})  # fmt: skip


@router.get("/catalogue", include_in_schema=False)
async def catalogue_page(request: Request, ctx: Ctx) -> Any:
    if (redirect := page_reader(ctx, request)) is not None:
        return redirect
    body = catalogue(ctx.models.entries(), await stats_report(ctx), base_url(request),
                     _prefix(ctx), _kafka(ctx))  # fmt: skip
    body["serving"] = serving_card(ctx)
    return page(request, ctx, "catalogue.html", catalogue=body, title="Model catalogue")


@router.get("/catalogue/{name}", include_in_schema=False)
async def model_page(name: str, request: Request, ctx: Ctx) -> Any:
    if (redirect := page_reader(ctx, request)) is not None:
        return redirect
    entry = ctx.models.get(name)
    if entry is None:
        return missing_page(request, ctx, name)
    report = await stats_report(ctx)
    card = model_card(entry, report.models.get(name), base_url(request), _prefix(ctx),
                      _kafka(ctx))  # fmt: skip
    return page(request, ctx, "model.html", model=card, report=report, errors=error_codes(),
                sql=stats_sql(report.window_s), title=name)  # fmt: skip

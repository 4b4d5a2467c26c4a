"""The developer portal: sign-in, the OpenAPI reference in Swagger UI, and a reference page
per model over an OpenAPI document of that one model.

Everything is served from this process, no CDN: Swagger UI's files come from the
installed ``swagger_ui_bundle`` package (``/portal/static/swagger/``), our stylesheet from
``static/`` (``/portal/static/modelstream/``).

Swagger UI 4 reads OpenAPI 3.0 documents only, and FastAPI writes 3.1; the portal
therefore shows ``/portal/openapi.json``, the app's document written as 3.0
(:func:`openapi_30`), and the per-model documents are 3.0 from the start.

Browsers sign in with an API token (``POST /portal/login``, a form): it is checked like
a bearer token and opens a server-side session (:mod:`services.gateway.sessions`); the
``ms_session`` cookie holds the session's random id, never the token (HttpOnly,
SameSite=Lax, ``Secure`` over TLS). A session reads the catalogue and the portal and
nothing else: the serving routes take ``Authorization: Bearer`` only. Every form carries
a CSRF token (the session's, or the ``ms_csrf`` cookie's before sign-in); a POST without
the right one is refused with 403.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from services.gateway.auth import COOKIE, read_body, session_client
from services.gateway.context import Ctx, GatewayContext
from services.gateway.directory import ModelEntry
from services.gateway.errors import ERROR_CODES, ApiError, JsonResponse, error_responses
from services.gateway.routes.catalogue import (
    JSON_OBJECT,
    SCOPE,
    base_url,
    cookie_options,
    csrf_token,
    infer_body,
    missing_page,
    page,
    page_reader,
    reader,
    reply_schema,
)
from services.gateway.routes.serving import model_entry
from services.gateway.sessions import TTL_S, same

__all__ = ["model_openapi", "openapi_30", "router", "safe_next"]

router = APIRouter()
router.mount("/portal/static/swagger", StaticFiles(directory=str(swagger_ui_path)), "swagger")
router.mount(
    "/portal/static/modelstream",
    StaticFiles(directory=Path(__file__).parent.parent / "static"),
    "portal-static",
)
COOKIE_MAX_AGE: Final = int(TTL_S)
_FORM_BYTES: Final = 16_384
_CSRF_REFUSED: Final = ("This form did not come from this site, or it has expired (CSRF "
                        "check failed): reload the page and try again.")  # fmt: skip
_WHY: Final = {
    "signin": "Sign in to read the catalogue.",
    "expired": "Your sign-in is no longer valid (the token was revoked or rotated).",
    "forbidden": "That client lacks the catalogue:read scope.",
    "signedout": "Signed out.",
}
_REF = "#/components/schemas/"
# maps keyed by names (a field may be called "const"): their keys are not keywords
_NAME_MAPS: Final = frozenset({"properties", "patternProperties", "$defs", "definitions",
                               "schemas", "paths", "responses", "content", "headers",
                               "securitySchemes", "callbacks", "links"})  # fmt: skip


# -- pages


@router.get("/portal", include_in_schema=False)
async def portal(request: Request, ctx: Ctx) -> Any:
    allowed = page_reader(ctx, request) is None
    client = session_client(ctx, request)
    return page(request, ctx, "portal.html", title="Developer portal",
                models=ctx.models.entries() if allowed else [],
                client=client.name if client else None)  # fmt: skip


@router.get("/portal/docs", include_in_schema=False)
async def docs(request: Request, ctx: Ctx) -> Any:
    if (redirect := page_reader(ctx, request)) is not None:
        return redirect
    return page(request, ctx, "swagger.html", title="API reference", model=None,
                heading="API reference", spec_url="/portal/openapi.json",
                lead="Every endpoint of the gateway.")  # fmt: skip


@router.get("/portal/models/{name}", include_in_schema=False)
async def model_docs(name: str, request: Request, ctx: Ctx) -> Any:
    if (redirect := page_reader(ctx, request)) is not None:
        return redirect
    entry = ctx.models.get(name)
    if entry is None:
        return missing_page(request, ctx, name)
    lead = (
        f"{entry.champion.description or entry.champion.task} (champion v{entry.champion.version})."
    )
    return page(request, ctx, "swagger.html", title=f"{name} API", model=name,
                heading=f"{name}: API reference", lead=lead,
                spec_url=f"/v1/models/{name}/openapi.json")  # fmt: skip


# -- sign-in


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, else the catalogue.

    >>> safe_next("/catalogue/churn"), safe_next("//evil.example/"), safe_next("https://x")
    ('/catalogue/churn', '/catalogue', '/catalogue')
    """
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/catalogue"


@router.get("/portal/login", include_in_schema=False)
async def login_page(request: Request, ctx: Ctx, why: str = "", next: str = "/catalogue") -> Any:
    return page(request, ctx, "login.html", title="Sign in", next=safe_next(next),
                message=_WHY.get(why, ""), error=why in ("expired", "forbidden"))  # fmt: skip


@router.post("/portal/login", include_in_schema=False)
async def login(request: Request, ctx: Ctx) -> Any:
    form = await _form(request, ctx)
    token, target = form.get("token", [""])[0].strip(), safe_next(form.get("next", [""])[0])
    if not same(form.get("csrf", [""])[0], csrf_token(ctx, request)):
        return _refused(request, ctx, target, _CSRF_REFUSED, 403)
    record = ctx.clients.authenticate(token) if token else None
    if record is None:
        return _refused(request, ctx, target, "That token is not valid (or was revoked).", 401)
    if not ctx.config.public_catalogue and not record.allows(SCOPE):
        return _refused(request, ctx, target, f"Client {record.name!r} lacks the {SCOPE} scope.",
                        403)  # fmt: skip
    ctx.sessions.close(request.cookies.get(COOKIE))
    session = ctx.sessions.open(record.name, record.token_sha256)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, session.id, max_age=COOKIE_MAX_AGE, **cookie_options(request))
    return response


@router.post("/portal/logout", include_in_schema=False)
async def logout(request: Request, ctx: Ctx) -> Any:
    form = await _form(request, ctx)
    if not same(form.get("csrf", [""])[0], csrf_token(ctx, request)):
        return _refused(request, ctx, "/catalogue", _CSRF_REFUSED, 403)
    ctx.sessions.close(request.cookies.get(COOKIE))
    response = RedirectResponse("/portal/login?why=signedout", status_code=303)
    response.delete_cookie(COOKIE, **cookie_options(request))
    return response


async def _form(request: Request, ctx: GatewayContext) -> dict[str, list[str]]:
    """A posted form's fields (415 for anything but a urlencoded form)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise ApiError("malformed", f"post a form (application/x-www-form-urlencoded), "
                       f"not {kind or 'no content type'}", status=415)  # fmt: skip
    body = await read_body(request, _FORM_BYTES, ctx.config.body_timeout)
    return parse_qs(body.decode(errors="replace"), max_num_fields=8)


def _refused(request: Request, ctx: GatewayContext, target: str, problem: str, status: int
             ) -> HTMLResponse:  # fmt: skip
    return page(request, ctx, "login.html", title="Sign in", next=target, message=problem,
                error=True, status=status)  # fmt: skip


# -- OpenAPI documents


@router.get("/portal/openapi.json", include_in_schema=False)
async def openapi_doc(request: Request) -> JsonResponse:
    """The app's OpenAPI document, as 3.0 for Swagger UI (public like /openapi.json)."""
    return JsonResponse(openapi_30(request.app.openapi()))


@router.get("/v1/models/{name}/openapi.json", tags=["catalogue"],
            summary="OpenAPI 3.0 document of one model",
            responses={**JSON_OBJECT, **error_responses(401, 403, 404, 503)})  # fmt: skip
async def model_openapi_doc(name: str, request: Request, ctx: Ctx) -> JsonResponse:
    reader(ctx, request)  # the scope names no model: checked first, then the model
    return JsonResponse(model_openapi(model_entry(ctx, name, reveal=True), base_url(request)))


def openapi_30(node: Any) -> Any:
    """``node`` (an OpenAPI 3.1 document, or part of one) written as OpenAPI 3.0:
    ``type: [t, "null"]`` and ``anyOf: [..., {type: null}]`` become ``nullable``,
    ``const`` an enum, a list of ``examples`` one ``example``.

    >>> openapi_30({"openapi": "3.1.0", "x": {"anyOf": [{"type": "string"}, {"type": "null"}]}})
    {'openapi': '3.0.3', 'x': {'type': 'string', 'nullable': True}}
    >>> openapi_30({"type": ["integer", "null"], "const": 3, "examples": [1, 2]})
    {'type': 'integer', 'nullable': True, 'enum': [3], 'example': 1}
    >>> openapi_30({"properties": {"const": {"type": "string"}}})
    {'properties': {'const': {'type': 'string'}}}
    """
    if isinstance(node, list):
        return [openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: {name: openapi_30(v) for name, v in value.items()}
        if key in _NAME_MAPS and isinstance(value, dict) else openapi_30(value)
        for key, value in node.items()
    }  # fmt: skip
    if isinstance(out.get("openapi"), str):
        out["openapi"] = "3.0.3"
    kind = out.get("type")
    if isinstance(kind, list):
        rest = [k for k in kind if k != "null"]
        if len(rest) == 1:
            out["type"] = rest[0]
        else:
            del out["type"]
            out["anyOf"] = [{"type": k} for k in rest]
        if "null" in kind:
            out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list) and out["examples"]:
        out["example"] = out.pop("examples")[0]
    if isinstance(out.get("enum"), list) and None in out["enum"]:
        out["enum"] = [value for value in out["enum"] if value is not None]
        out["nullable"] = True
    return _nullable_union(out)


def _nullable_union(out: dict[str, Any]) -> dict[str, Any]:
    for key in ("anyOf", "oneOf"):
        branches = out.get(key)
        if not isinstance(branches, list) or {"type": "null"} not in branches:
            continue
        rest = [b for b in branches if b != {"type": "null"}]
        out.pop(key)
        if len(rest) == 1 and "$ref" not in rest[0]:
            out = {**rest[0], **out}
        elif len(rest) == 1:
            out["allOf"] = rest
        else:
            out[key] = rest
        out["nullable"] = True
    return out


_SECURITY: Final = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An API token: `modelstream clients create NAME --scopes ...`"},
}  # fmt: skip
_ERROR_DETAIL: Final = {
    "type": "object", "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "stable: see the catalogue's error codes"},
        "message": {"type": "string"},
        "request_id": {"type": "string", "nullable": True},
        "fields": {"type": "array", "nullable": True, "description": "one item per problem",
                   "items": {"type": "object", "properties": {
                       "field": {"type": "string", "nullable": True},
                       "code": {"type": "string"}, "message": {"type": "string"}}}},
    },
}  # fmt: skip
_TENSOR: Final = {
    "type": "object", "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string", "description": "a feature name, or any name for [N, F]"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "enum": ["FP64", "FP32", "INT64", "INT32", "BOOL", "BYTES"]},
        "data": {"type": "array", "items": {}},
        "parameters": {"type": "object", "nullable": True},
    },
}  # fmt: skip
_OIP: Final = {
    "Tensor": _TENSOR,
    "InferenceRequest": {
        "type": "object", "required": ["inputs"],
        "properties": {
            "id": {"type": "string"}, "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"$ref": _REF + "Tensor"}},
            "outputs": {"type": "array", "items": {"type": "object",
                                                   "properties": {"name": {"type": "string"}}}},
        },
    },
    "InferenceResponse": {
        "type": "object", "required": ["model_name", "id", "outputs"],
        "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string", "nullable": True},
            "id": {"type": "string"}, "parameters": {"type": "object", "nullable": True},
            "outputs": {"type": "array", "items": {"$ref": _REF + "Tensor"}},
        },
    },
    "OipError": {"type": "object", "required": ["error"],
                 "properties": {"error": {"type": "string"}, "code": {"type": "string"}}},
}  # fmt: skip
_HTTP_FIELDS: Final = ("request_id", "model", "model_version", "task", "prediction",
                       "probabilities", "served_by", "latency_ms")  # fmt: skip


def model_openapi(entry: ModelEntry, base: str) -> dict[str, Any]:
    """An OpenAPI 3.0 document of one model: predict, batch and v2 infer, with the
    model's input schema as the request body and a valid record as the example."""
    name, champion = entry.name, entry.champion
    example = entry.contract.example()
    infer = infer_body(example, entry.contract.json_schema())
    paths = {
        f"/v1/models/{name}/predict": _operation(
            f"predict_{name}", "Score one record", f"predict:{name}", "Prediction",
            {"application/json": {"schema": {"$ref": _REF + "Input"}, "example": example}}),
        f"/v1/models/{name}/batch": _operation(
            f"batch_{name}", "Score many records, results in input order", f"batch:{name}",
            "BatchResult", _batch_body(example)),
        f"/v2/models/{name}/infer": _operation(
            f"infer_{name}", "Open Inference Protocol v2: infer rows", f"predict:{name}",
            "InferenceResponse",
            {"application/json": {"schema": {"$ref": _REF + "InferenceRequest"},
                                  "example": infer}}, errors="OipError",
            tag="open inference protocol v2"),
    }  # fmt: skip
    description = (f"{champion.description or 'A ' + champion.task + ' model'}\n\n"
                   f"Served by champion v{champion.version}. Authenticate with "
                   "`Authorization: Bearer <token>`.")  # fmt: skip
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{name} · modelstream", "version": f"v{champion.version}",
                 "description": description},
        "servers": [{"url": base}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": _components(entry), "securitySchemes": _SECURITY},
    }  # fmt: skip


def _batch_body(example: dict[str, Any]) -> dict[str, Any]:
    lines = "\n".join(orjson.dumps(example).decode() for _ in range(2))
    return {
        "application/json": {"schema": {"type": "array", "items": {"$ref": _REF + "Input"}},
                             "example": [example, example]},
        "application/x-ndjson": {"schema": {"type": "string", "description": "JSON lines"},
                                 "example": lines},
    }  # fmt: skip


def _operation(
    op_id: str, summary: str, scope: str, reply: str, content: dict[str, Any],
    errors: str = "Error", tag: str = "predict",
) -> dict[str, Any]:  # fmt: skip
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": _REF + reply}}}},
    }  # fmt: skip
    by_status: dict[int, list[str]] = {}
    for code, (status, meaning) in ERROR_CODES.items():
        by_status.setdefault(status, []).append(f"`{code}`: {meaning}")
    if errors == "OipError":
        by_status.setdefault(400, []).append("`malformed`: the input tensors do not fit")
    for status, lines in sorted(by_status.items()):
        responses[str(status)] = {"description": "; ".join(lines), "content": {
            "application/json": {"schema": {"$ref": _REF + errors}}}}  # fmt: skip
    return {"post": {
        "operationId": op_id, "summary": summary, "tags": [tag],
        "description": f"Needs the scope `{scope}`.",
        "requestBody": {"required": True, "content": content}, "responses": responses,
    }}  # fmt: skip


def _components(entry: ModelEntry) -> dict[str, Any]:
    reply = reply_schema(entry.champion.task, entry.champion.classes)
    fields = {key: reply["properties"][key] for key in _HTTP_FIELDS}
    fields["gateway_latency_ms"] = {"type": "number", "description": "The gateway's time, "
                                    "body read to reply, milliseconds."}  # fmt: skip
    item = {"index": {"type": "integer"}, "ok": {"type": "boolean"},
            "request_id": {"type": "string"}, **fields,
            "error": {"allOf": [{"$ref": _REF + "ErrorDetail"}], "nullable": True}}  # fmt: skip
    schemas = {
        "Input": {**entry.contract.json_schema(), "example": entry.contract.example()},
        "Prediction": {"type": "object", "properties": fields, "required": list(fields),
                       "example": _reply_example(entry)},
        "BatchItem": {"type": "object", "properties": item,
                      "required": ["index", "ok", "request_id"]},
        "BatchResult": {"type": "object", "required": ["model", "count", "results"],
                        "properties": {"model": {"type": "string"}, "count": {"type": "integer"},
                                       "succeeded": {"type": "integer"},
                                       "failed": {"type": "integer"}, "results": {
                                           "type": "array",
                                           "items": {"$ref": _REF + "BatchItem"}}}},
        "ErrorDetail": _ERROR_DETAIL,
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"$ref": _REF + "ErrorDetail"}}},
        **_OIP,
    }  # fmt: skip
    converted: dict[str, Any] = openapi_30(schemas)
    return converted


def _reply_example(entry: ModelEntry) -> dict[str, Any]:
    champion = entry.champion
    classes = list(champion.classes or ())
    probabilities = {c: round(1 / len(classes), 3) for c in classes} if classes else None
    return {
        "request_id": "3f2a9c0d", "model": entry.name, "model_version": champion.version,
        "task": champion.task, "prediction": classes[0] if classes else 0.0,
        "probabilities": probabilities, "served_by": "champion", "latency_ms": 0.8,
        "gateway_latency_ms": 2.4,
    }  # fmt: skip

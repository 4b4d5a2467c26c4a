"""Live monitoring reports: ``GET /reports/{model}`` answers the model's report (the one
``modelstream report`` writes) rendered from the warehouse on request, over the default
window or ``?from=…&to=…`` (ISO 8601).

Who may read it: a client with ``catalogue:read``, by ``Authorization: Bearer`` or by the
portal's signed-in session, even on a gateway whose catalogue is public
(``--public-catalogue``): a report shows what the model saw and how it treated each group,
which a schema does not. A browser without a valid session is sent to the sign-in page;
a refused bearer token gets 401/403 (a script cannot fill a form).

The report is self-contained (plotly's JS inline), so its page forbids every fetch
(:data:`CSP`), and is never cached by the browser (it refreshes on reload; the gateway
keeps a render a few seconds, :mod:`services.gateway.reporting`). It is sent gzipped to a
browser that takes gzip (about 1.5 MB instead of 4.8). An unknown model gets
the catalogue's 404 page with its "did you mean"; a warehouse that does not answer, a 503
page that says what to do.
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from services.gateway.auth import catalogue_client, parse_authorization
from services.gateway.context import Ctx, GatewayContext
from services.gateway.errors import ApiError
from services.gateway.reporting import (
    BadWindowError,
    LiveReports,
    ReportFailedError,
    ReportUnavailableError,
    Window,
    parse_window,
)
from services.gateway.routes.catalogue import missing_page, page
from services.gateway.sessions import SESSION_COOKIE

__all__ = ["CSP", "RETRY_AFTER_S", "accepts_gzip", "router"]

router = APIRouter()
CSP: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
RETRY_AFTER_S: Final = 5
_WINDOW_TODO: Final = (
    "Give ?from= and ?to= as ISO 8601 times, e.g. "
    "?from=2026-05-01T00:00Z&to=2026-05-02T00:00Z, or leave them out."
)
From = Annotated[str | None, Query(alias="from")]  # ISO 8601; UTC when it has no offset
To = Annotated[str | None, Query(alias="to")]


# a page, like /catalogue/{name}: not in the API's OpenAPI document (README lists it)
@router.get("/reports/{name}", response_class=HTMLResponse, include_in_schema=False)
async def report_page(
    name: str, request: Request, ctx: Ctx, start: From = None, end: To = None
) -> Any:
    """The model's monitoring report (traffic, drift, performance, fairness, alerts and
    model events), rendered from the warehouse on request. Needs ``catalogue:read``."""
    if (redirect := _admitted(ctx, request)) is not None:
        return redirect
    if ctx.models.get(name) is None:
        return missing_page(request, ctx, name)
    try:
        return await _render(request, ctx, name, parse_window(start, end))
    except BadWindowError as exc:
        return _problem(request, ctx, name, 400, "Not a time window", str(exc), _WINDOW_TODO)


async def _render(request: Request, ctx: GatewayContext, name: str, window: Window) -> HTMLResponse:
    live: LiveReports | None = getattr(request.app.state, "reports", None)
    if live is None:
        return _problem(request, ctx, name, 503, "Reports are off on this gateway",
                        "This gateway was started without a warehouse to read reports from.",
                        f"Write the report with `modelstream report {name} --out report.html`, "
                        "or start the gateway with `modelstream run gateway`.")  # fmt: skip
    try:
        rendered = await live.report(name, window)
    except ReportUnavailableError as exc:
        response = _problem(request, ctx, name, 503, "The warehouse did not answer", str(exc),
                            "Reload this page once it does.")  # fmt: skip
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    except ReportFailedError as exc:
        return _problem(request, ctx, name, 500, "The report could not be drawn", str(exc),
                        "This is a bug: please report it with the gateway's log.")  # fmt: skip
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-store",
               "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
               "X-Frame-Options": "DENY", "Vary": "Accept-Encoding"}  # fmt: skip
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        return HTMLResponse(rendered.gzipped, headers={**headers, "Content-Encoding": "gzip"})
    return HTMLResponse(rendered.body, headers=headers)


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip (named, or ``*``, not at q=0).

    >>> accepts_gzip("gzip, deflate, br"), accepts_gzip("br;q=1, gzip;q=0"), accepts_gzip("*")
    (True, False, True)
    """
    for item in header.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            return not q or q.replace(".", "").strip("0") != ""
    return False


def _admitted(ctx: GatewayContext, request: Request) -> RedirectResponse | None:
    """None when the caller may read reports (``catalogue:read``, whether or not the
    catalogue is public); a browser that may not is sent to sign in; a bearer token
    that may not gets its 401/403."""
    header = request.headers.get("authorization")
    token = parse_authorization(header)[0] if header is not None else None
    try:
        catalogue_client(ctx, request)
    except ApiError as exc:
        if token is not None:
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        why = "forbidden" if exc.code == "forbidden" else (
            "expired" if request.cookies.get(SESSION_COOKIE) else "signin")  # fmt: skip
        query = urlencode({"next": target, "why": why})
        return RedirectResponse(f"/portal/login?{query}", status_code=303)
    return None


def _problem(
    request: Request, ctx: GatewayContext, name: str, status: int, heading: str, message: str,
    todo: str,
) -> HTMLResponse:  # fmt: skip
    return page(request, ctx, "problem.html", title=heading, name=name, heading=heading,
                message=message, todo=todo, status=status)  # fmt: skip

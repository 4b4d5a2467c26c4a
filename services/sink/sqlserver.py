"""Read-only SQL over loopback HTTP, served by the process that owns an embedded warehouse.

A chDB directory opens in one process at a time; while the sink runs it is that process,
so ``modelstream sql`` asks the sink. The endpoint listens on 127.0.0.1 only, accepts
``POST /sql`` with the query as the body (or, ``application/json``, an object with the
query, its parameters, bound by the engine, and whether times come back tagged) and
``Authorization: Bearer <token>``, runs it through
:class:`~services.warehouse.ReadOnlySql` (``readonly=1`` on a session of its own, time
and memory bounded) and answers JSON ``{"columns": [...], "rows": [[...]]}``.

While it runs, ``<data dir>/sink.json`` (mode 0600, in a 0700 directory) holds its URL and
a random token made at start: whoever can read that file may query, nobody else on the
machine. A missing or wrong token gets 401.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from services.warehouse import Dsn, ReadOnlySql, SqlLimits, WarehouseError, private_dir

__all__ = ["DATETIME_TAG", "SqlRejectedError", "SqlServer", "remote_query", "write_private"]

DATETIME_TAG = "$datetime"  # a typed answer's time: {"$datetime": "<ISO 8601>"}

UNAUTHORIZED = (
    "this endpoint answers `modelstream sql` with the token in <data dir>/sink.json; "
    "run the command as the user who started the sink"
)


class SqlRejectedError(ValueError):
    """The sink refused the query (not a read, bad token) or ClickHouse rejected it."""


class SqlServer:
    """Serves ``warehouse`` read-only on 127.0.0.1:<port> in a daemon thread.

    The queries run on a session of their own (:class:`ReadOnlySql` on the same DSN), never
    on the handle the sink writes with.
    """

    def __init__(
        self, sql: ReadOnlySql, state_file: Path, port: int = 0, token: str | None = None
    ) -> None:
        self.sql = sql
        self.state_file = state_file
        self.token = token or secrets.token_urlsafe(32)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(sql, self.token))
        self.port = self._server.server_address[1]

    @classmethod
    def open(cls, dsn: str | Dsn, state_file: Path, limits: SqlLimits | None = None) -> SqlServer:
        """A server over a new read-only session on the warehouse at ``dsn``."""
        return cls(ReadOnlySql.open(dsn, limits), state_file)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sql"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="sql").start()
        private_dir(self.state_file.parent)
        write_private(self.state_file, json.dumps({"url": self.url, "token": self.token}))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.state_file.unlink(missing_ok=True)
        self.sql.close()


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by this user only (0600 from creation:
    the file never exists with wider access, not even for a moment)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


def _handler(sql: ReadOnlySql, token: str) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {token}".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            given = self.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return self._send(401, {"error": UNAUTHORIZED})
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                query, params, typed = _request(body, self.headers.get("Content-Type", ""))
                result = sql.run(query, params)
            except WarehouseError as exc:
                return self._send(400, {"error": str(exc)})
            except ValueError as exc:
                return self._send(400, {"error": f"not a query: {exc}"})
            rows = [[_typed(v) for v in row] for row in result.rows] if typed else result.rows
            return self._send(200, {"columns": list(result.columns), "rows": rows})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = orjson.dumps(body, default=str)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # queries are not logged: they may carry customer values

    return Handler


def _request(body: bytes, content_type: str) -> tuple[str, dict[str, Any] | None, bool]:
    """(sql, params, typed) of a request: raw SQL text, or (``application/json``) an
    object ``{"sql": ..., "params": {...}, "typed": true}`` whose params are bound to
    the SQL's ``{name:Type}`` placeholders by the engine.

    >>> _request(b"SELECT 1", "text/plain")
    ('SELECT 1', None, False)
    >>> _request(b'{"sql": "SELECT {n:UInt8}", "params": {"n": 1}}', "application/json")
    ('SELECT {n:UInt8}', {'n': 1}, False)
    """
    if not content_type.startswith("application/json"):
        return body.decode(), None, False
    request = orjson.loads(body)
    if not isinstance(request, dict) or not isinstance(request.get("sql"), str):
        raise ValueError('expected {"sql": "...", "params": {...}}')
    params = request.get("params")
    if params is not None and not isinstance(params, dict):
        raise ValueError("params must be an object")
    return request["sql"], params, bool(request.get("typed"))


def _typed(value: Any) -> Any:
    """A cell as JSON that reads back as the same type: a time is tagged."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {DATETIME_TAG: moment.isoformat()}
    return value


def remote_query(state_file: Path, sql: str, timeout: float = 60.0, *,
                 params: Mapping[str, Any] | None = None, typed: bool = False
                 ) -> dict[str, Any] | None:  # fmt: skip
    """Ask the running sink; None when no sink serves this data dir. ``params`` are
    bound by the engine to ``{name:Type}`` placeholders; ``typed``: times come back
    tagged (:data:`DATETIME_TAG`), for :class:`~services.warehouse.RemoteReader`."""
    try:
        state = json.loads(state_file.read_text())
        url, token = state["url"], state.get("token", "")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    headers = {"Authorization": f"Bearer {token}"}
    data = sql.encode()
    if params is not None or typed:
        data = orjson.dumps({"sql": sql, "params": dict(params or {}), "typed": typed},
                            default=str)  # fmt: skip
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body: dict[str, Any] = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = orjson.loads(exc.read())
        except orjson.JSONDecodeError:
            body = {"error": f"the sink answered HTTP {exc.code}"}
    except OSError:
        return None
    if "error" in body:
        raise SqlRejectedError(body["error"])
    return body

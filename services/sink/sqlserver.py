"""Read-only SQL over loopback HTTP, served by the process that owns an embedded warehouse.

A chDB directory opens in one process at a time; while the sink runs it is that process,
so ``modelstream sql`` asks the sink. The endpoint listens on 127.0.0.1 only, accepts
``POST /sql`` with the query as the body, refuses anything but read statements, and
answers JSON ``{"columns": [...], "rows": [[...]]}``. Its address is written to
``<data dir>/sink.json`` while it runs.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from services.warehouse import QueryError, QueryResult, Warehouse, WarehouseError

READONLY_CODE = 164  # ClickHouse: Cannot execute query in readonly mode

__all__ = ["SqlRejectedError", "SqlServer", "refusal", "remote_query", "run_read_only"]

WRITES = re.compile(
    r"^\s*(INSERT|CREATE|ALTER|DROP|UNDROP|TRUNCATE|DELETE|UPDATE|RENAME|EXCHANGE|OPTIMIZE|"
    r"SYSTEM|KILL|GRANT|REVOKE|SET|USE|ATTACH|DETACH|BACKUP|RESTORE|MOVE)\b",
    re.IGNORECASE,
)
READ_ONLY = (
    "only read statements (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) are run: "
    "the warehouse is changed by the sink and `modelstream db migrate` alone"
)


class SqlRejectedError(ValueError):
    """The sink refused the query (not a read statement) or ClickHouse rejected it."""


def refusal(sql: str) -> str | None:
    """Why ``sql`` is not run at all, or None: it goes to ClickHouse, which runs it
    read-only (``readonly=2``), so a typo gets ClickHouse's own syntax error.

    >>> refusal("select 1") is None, refusal("SELEC 1") is None
    (True, True)
    >>> refusal("DROP TABLE predictions") == READ_ONLY
    True
    >>> refusal("SELECT 1; DROP TABLE x")
    'one statement at a time, please (found a ; inside it)'
    """
    body = sql.strip().rstrip(";")
    if ";" in body:
        return "one statement at a time, please (found a ; inside it)"
    return READ_ONLY if WRITES.match(body) else None


def run_read_only(warehouse: Warehouse, sql: str) -> QueryResult:
    """``sql`` on ``warehouse`` with writes refused by the engine itself."""
    try:
        return warehouse.query(sql, read_only=True)
    except QueryError as exc:
        if exc.code == READONLY_CODE:
            raise SqlRejectedError(READ_ONLY) from exc
        raise SqlRejectedError(tidy(str(exc))) from exc


def tidy(message: str) -> str:
    r"""ClickHouse's error without what the client appended to the query, and its list of
    expected tokens cut short.

    >>> noise = "\n SETTINGS readonly = '2'\n FORMAT Native"
    >>> tidy("Syntax error at 7 (1): 1" + noise + ". Expected one of: a, b, " + "x, " * 80)
    'Syntax error at 7 (1): 1. Expected one of: a, b, x, x, x, ...'
    """
    text = re.sub(r"\s*SETTINGS readonly = '2'(\s*FORMAT \w+)?", "", message)
    head, found, expected = text.partition("Expected one of: ")
    if found and len(expected) > 40:
        expected = expected[:24].rsplit(",", 1)[0] + ", ..."
    return head + found + expected


class SqlServer:
    """Serves ``warehouse`` read-only on 127.0.0.1:<port> in a daemon thread."""

    def __init__(self, warehouse: Warehouse, state_file: Path, port: int = 0) -> None:
        self.warehouse = warehouse
        self.state_file = state_file
        handler = _handler(warehouse)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self._server.server_address[1]

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="sql").start()
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"url": f"http://127.0.0.1:{self.port}/sql"}))

    def stop(self) -> None:
        self._server.shutdown()
        self.state_file.unlink(missing_ok=True)


def _handler(warehouse: Warehouse) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            sql = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            reason = refusal(sql)
            if reason is not None:
                return self._send(400, {"error": reason})
            try:
                result = run_read_only(warehouse, sql)
            except (SqlRejectedError, WarehouseError) as exc:
                return self._send(400, {"error": str(exc)})
            return self._send(200, {"columns": list(result.columns), "rows": result.rows})

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


def remote_query(state_file: Path, sql: str, timeout: float = 60.0) -> dict[str, Any] | None:
    """Ask the running sink; None when no sink serves this data dir."""
    try:
        url = json.loads(state_file.read_text())["url"]
    except (OSError, ValueError, KeyError):
        return None
    request = urllib.request.Request(url, data=sql.encode(), method="POST")  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body: dict[str, Any] = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = orjson.loads(exc.read())
    except OSError:
        return None
    if "error" in body:
        raise SqlRejectedError(body["error"])
    return body

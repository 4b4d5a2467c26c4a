"""The HTTP load generator's own process: standard library, httptools and uvloop only.

:func:`services.bench._http_load.run_load` runs this file as a script (``python -I
<path>``), so it imports nothing of modelstream: it starts in a fraction of a second and
keeps a few MB, on a machine it shares with the systems under test.

``concurrency`` keep-alive HTTP/1.1 connections on one asyncio loop (uvloop when
present), requests pre-encoded as bytes, responses parsed by httptools (C), one request
in flight per connection (no pipelining): each connection sends its next request as soon
as the previous response is complete, for ``warmup + seconds``.

Protocol: the spec as JSON on stdin (:meth:`services.bench._http_load.LoadSpec.to_json`);
on stdout ``tick <requests done>`` once a second, then ``result <json>`` with every
request as ``[sent, done, status]`` (seconds since the start; status an HTTP code,
``"timeout"`` or ``"connection"``), response bodies (the first few, then every
``keep_every``-th) and the CPU time it used.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["drive", "request_bytes"]

SAMPLES = 3  # the first response bodies are always kept, to show what was answered
MAX_KEPT = 2_000  # at most this many bodies in all (every ``keep_every``-th after those)
Record = tuple[float, float, int | str]


def request_bytes(url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """One complete HTTP/1.1 ``POST`` of a JSON ``body`` to ``url``.

    >>> raw = request_bytes("http://127.0.0.1:8080/v2/x", b'{"a":1}', {"Authorization": "t"})
    >>> raw.split(b"\\r\\n")  # doctest: +NORMALIZE_WHITESPACE
    [b'POST /v2/x HTTP/1.1', b'Host: 127.0.0.1:8080', b'Content-Type: application/json',
     b'Content-Length: 7', b'Authorization: t', b'', b'{"a":1}']
    """
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`send` resolves to ``(status, body)``."""

    def __init__(self) -> None:
        import httptools

        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self.closed = False
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, body = self._waiter, b"".join(self._body)
        self._waiter, self._body = None, []
        if not self._parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def send(self, data: bytes, now: float) -> asyncio.Future[tuple[int, bytes]]:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.sent_at = now
        self._transport.write(data)
        return self._waiter

    def expire(self, now: float, timeout: float) -> None:
        """Fail the request in flight if it is older than ``timeout`` seconds."""
        waiter = self._waiter
        if waiter is not None and not waiter.done() and now - self.sent_at > timeout:
            waiter.set_exception(TimeoutError(f"no response within {timeout:g} s"))
            self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class _Driver:
    """The shared state of one load: what to send, until when, what came back."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.url, self.concurrency = spec["url"], int(spec["concurrency"])
        self.timeout = float(spec["request_timeout"])
        self.keep_every = int(spec.get("keep_every", 0))
        self.requests = [request_bytes(self.url, body.encode(), spec["headers"])
                         for body in spec["bodies"]]  # fmt: skip
        self.records: list[Record] = []
        self.samples: list[str] = []
        self.connections: list[_Connection] = []
        self.began = time.perf_counter()
        self.deadline = self.began + float(spec["warmup"]) + float(spec["seconds"])

    async def worker(self, offset: int) -> None:
        """One connection's loop: send, await the response, record, repeat."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        loop, clock = asyncio.get_running_loop(), time.perf_counter
        conn: _Connection | None = None
        i, requests, records = offset, self.requests, self.records
        while (sent := clock()) < self.deadline:
            try:
                if conn is None or conn.closed:
                    _, conn = await loop.create_connection(_Connection, host, port)
                    self.connections.append(conn)
                status, body = await conn.send(requests[i % len(requests)], sent)
            except (TimeoutError, OSError) as exc:  # ConnectionError is an OSError
                records.append((sent, clock(), "timeout" if isinstance(exc, TimeoutError)
                                else "connection"))  # fmt: skip
                await asyncio.sleep(0.01)  # a refused connection must not spin the loop
                continue
            records.append((sent, clock(), status))
            if self._keep(len(records)):
                self.samples.append(body.decode(errors="replace")[:1000])
            i += self.concurrency
        if conn is not None:
            conn.close()

    def _keep(self, done: int) -> bool:
        kept, every = len(self.samples), self.keep_every
        return kept < SAMPLES or (every > 0 and done % every == 0 and kept < MAX_KEPT)

    async def watchdog(self) -> None:
        """Ticks once a second (the parent's progress) and expires stuck requests, within
        a quarter of a second after their timeout: no timer per request."""
        next_tick = self.began + 1.0
        while True:  # until cancelled, once every worker is done
            now = time.perf_counter()
            for conn in self.connections:
                conn.expire(now, self.timeout)
            if now >= next_tick:
                print(f"tick {len(self.records)}", flush=True)
                next_tick += 1.0
            await asyncio.sleep(0.25)

    def relative(self) -> list[Record]:
        """The records in seconds since the start, to the microsecond."""
        t0 = self.began
        return [(round(s - t0, 6), round(d - t0, 6), status) for s, d, status in self.records]


async def drive(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Run the load in this process: records, samples and the CPU seconds it took."""
    cpu_before = _cpu_seconds()
    driver = _Driver(spec)
    watchdog = asyncio.create_task(driver.watchdog())
    try:
        await asyncio.gather(*(driver.worker(i) for i in range(driver.concurrency)))
    finally:
        watchdog.cancel()
    return {"records": driver.relative(), "samples": driver.samples,
            "client_cpu_seconds": _cpu_seconds() - cpu_before}  # fmt: skip


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    spec = json.loads(sys.stdin.buffer.read())
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        result = asyncio.run(drive(spec))
    else:
        result = uvloop.run(drive(spec))
    print("result " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

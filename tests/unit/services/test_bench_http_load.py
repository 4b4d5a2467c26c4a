"""The HTTP load generator of ``modelstream bench --gateway``: its statistics, its
requests, and its response parsing (a fake transport: no socket)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from services.bench import LoadResult, LoadSpec
from services.bench._http_driver import _Connection, request_bytes
from services.bench._http_load import summarize_load


def test_only_requests_sent_after_the_warmup_count() -> None:
    records = [(0.1, 0.2, 200), (0.9, 1.3, 200), (1.0, 1.01, 200), (1.5, 1.52, 200)]
    result = summarize_load(records, warmup=1.0, concurrency=1)
    assert result.ok == 2  # the one sent at 0.9 finished after the warm-up: still left out
    assert result.seconds == pytest.approx(0.52)
    assert result.rps == pytest.approx(2 / 0.52)
    assert result.latency is not None
    assert (result.latency.p50, result.latency.max) == (pytest.approx(15.0), pytest.approx(20.0))


def test_rate_and_percentiles_of_a_steady_run() -> None:
    # 1,000 requests after a 1 s warm-up, one sent every ms, the i-th taking i + 1 ms
    records = [(1.0 + i / 1000, 1.0 + i / 1000 + (i + 1) / 1000, 200) for i in range(1000)]
    result = summarize_load(records, warmup=1.0, concurrency=4)
    assert result.ok == 1000 and result.failed == {}
    assert result.latency is not None
    assert result.latency.p50 == pytest.approx(500.5)
    assert result.latency.p99 == pytest.approx(990.01)
    assert result.rps == pytest.approx(1000 / result.seconds)
    assert result.concurrency == 4


def test_errors_are_counted_apart_and_never_in_the_rate_or_latency() -> None:
    records = [(2.0, 2.001, 200), (2.0, 2.5, 503), (2.0, 12.0, "timeout"),
               (2.1, 2.1, "connection"), (2.2, 2.3, 404)]  # fmt: skip
    result = summarize_load(records, warmup=1.0, concurrency=2)
    assert result.ok == 1
    assert result.failed == {"503": 1, "timeout": 1, "connection": 1, "404": 1}
    assert result.seconds == pytest.approx(1.001)  # to the last *good* response
    assert result.latency is not None and result.latency.count == 1


def test_a_run_with_no_good_response_has_no_latency_and_no_rate() -> None:
    result = summarize_load([(5.0, 5.1, 500)], warmup=1.0, concurrency=1)
    assert (result.ok, result.latency, result.rps, result.seconds) == (0, None, 0.0, 0.0)
    assert summarize_load([], warmup=0.0, concurrency=1).rps == 0.0


def test_result_serialises_with_its_rate() -> None:
    result = summarize_load([(0.0, 0.01, 200), (0.5, 0.52, 200)], warmup=0.0, concurrency=1)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["rps"] == pytest.approx(result.rps)
    assert data["latency"]["p99"] == pytest.approx(result.latency.p99)  # type: ignore[union-attr]
    assert isinstance(result, LoadResult)


@pytest.mark.parametrize(
    "changes",
    [{"bodies": []}, {"concurrency": 0}, {"seconds": 0.0}, {"warmup": -1.0}],
)
def test_spec_rejects_impossible_loads(changes: dict[str, Any]) -> None:
    base: dict[str, Any] = {"url": "http://127.0.0.1:1/x", "bodies": [b"{}"]}
    with pytest.raises(ValueError):
        LoadSpec(**(base | changes))


def test_spec_travels_as_json_with_text_bodies_and_headers() -> None:
    spec = LoadSpec("http://127.0.0.1:9/p", [b'{"a":1}'], {"Authorization": "Bearer x"},
                    concurrency=3, seconds=1.5, warmup=0.5)  # fmt: skip
    data = json.loads(spec.to_json())
    assert data == {"url": "http://127.0.0.1:9/p", "bodies": ['{"a":1}'],
                    "headers": {"Authorization": "Bearer x"}, "concurrency": 3,
                    "seconds": 1.5, "warmup": 0.5, "request_timeout": 10.0,
                    "keep_every": 0}  # fmt: skip


def test_request_is_a_complete_keep_alive_post() -> None:
    raw = request_bytes("http://127.0.0.1:8080/v1/models/m/predict", b'{"x0":1.0}', {})
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/models/m/predict HTTP/1.1\r\n")
    assert b"Host: 127.0.0.1:8080" in head and b"Content-Length: 10" in head
    assert b"Connection: close" not in head
    assert body == b'{"x0":1.0}'


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True


def exchange(*chunks: bytes) -> tuple[Any, _Connection, FakeTransport]:
    """Send one request on a fake connection, feed ``chunks`` back, return the result."""

    async def run() -> tuple[Any, _Connection, FakeTransport]:
        conn, transport = _Connection(), FakeTransport()
        conn.connection_made(transport)
        waiter = conn.send(b"GET / HTTP/1.1\r\n\r\n", 0.0)
        for chunk in chunks:
            conn.data_received(chunk)
        return await asyncio.wait_for(waiter, 1.0), conn, transport

    return asyncio.run(run())


def test_a_response_split_across_reads_is_parsed_whole() -> None:
    response = b'HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{"ok": true }'
    (status, body), conn, transport = exchange(response[:7], response[7:30], response[30:])
    assert (status, body) == (200, b'{"ok": true }')
    assert transport.written == [b"GET / HTTP/1.1\r\n\r\n"]
    assert not conn.closed  # keep-alive: the next request reuses it


def test_chunked_bodies_and_error_statuses_come_back_as_is() -> None:
    response = b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n" \
               b"4\r\nbusy\r\n0\r\n\r\n"  # fmt: skip
    (status, body), _, _ = exchange(response)
    assert (status, body) == (503, b"busy")


def test_a_server_that_closes_the_connection_gets_a_new_one() -> None:
    response = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}"
    (status, _), conn, transport = exchange(response)
    assert status == 200 and conn.closed and transport.closed


def test_a_stuck_request_expires_as_a_timeout() -> None:
    async def run() -> None:
        conn, transport = _Connection(), FakeTransport()
        conn.connection_made(transport)
        waiter = conn.send(b"x", 100.0)
        conn.expire(105.0, 10.0)
        assert not waiter.done()  # not yet
        conn.expire(110.5, 10.0)
        with pytest.raises(TimeoutError):
            await waiter
        assert transport.closed

    asyncio.run(run())


def test_the_first_bodies_then_every_nth_are_kept_up_to_a_cap() -> None:
    from services.bench._http_driver import MAX_KEPT, _Driver

    spec = json.loads(LoadSpec("http://127.0.0.1:1/x", [b"{}"], keep_every=10).to_json())
    driver = _Driver(spec)
    kept = []
    for done in range(1, 101):
        if driver._keep(done):
            driver.samples.append(str(done))
            kept.append(done)
    assert kept == [1, 2, 3, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    driver.samples = ["x"] * MAX_KEPT
    assert not driver._keep(MAX_KEPT * 10)


def test_the_report_shows_only_the_first_bodies() -> None:
    result = LoadResult(1, 5, {}, 1.0, None, 0.1, [str(i) for i in range(50)])
    assert result.to_dict()["samples"] == ["0", "1", "2"]
    assert len(result.samples) == 50  # the rest stays for the gateway's own timings


def test_every_good_answer_counts_in_ok_total_the_warmup_too() -> None:
    records = [(0.1, 0.2, 200), (0.5, 0.6, 503), (1.0, 1.1, 201), (1.2, 1.3, "timeout")]
    result = summarize_load(records, warmup=1.0, concurrency=1)
    assert (result.ok, result.ok_total, result.total) == (1, 2, 4)

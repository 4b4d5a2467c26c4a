"""The bootstrap probe against local sockets: closed, silent, not Kafka. No broker, no DNS."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from services.localstack import free_port
from streams.kafka_probe import parse_bootstrap, probe


@pytest.fixture
def listener() -> Iterator[Callable[[Callable[[socket.socket], None] | None], int]]:
    """A listening socket on 127.0.0.1 that does ``serve(conn)`` with each connection
    (None: accept nothing, so the kernel completes the handshake and nobody answers)."""
    sockets: list[socket.socket] = []

    def start(serve: Callable[[socket.socket], None] | None) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        sockets.append(server)
        if serve is not None:
            threading.Thread(target=_serve_each, args=(server, serve), daemon=True).start()
        return int(server.getsockname()[1])

    yield start
    for server in sockets:
        server.close()


def _serve_each(server: socket.socket, serve: Callable[[socket.socket], None]) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:  # closed at the end of the test
            return
        with conn:
            serve(conn)


@pytest.mark.parametrize(
    ("bootstrap", "expected"),
    [
        ("h:1", [("h", 1)]),
        ("h", [("h", 9092)]),
        ("a:1,b:2", [("a", 1), ("b", 2)]),
        (" SASL_SSL://a:1 ,", [("a", 1)]),
        ("[::1]:9093", [("::1", 9093)]),
    ],
)
def test_bootstrap_lists_parse(bootstrap: str, expected: list[tuple[str, int]]) -> None:
    assert parse_bootstrap(bootstrap) == expected


@pytest.mark.parametrize("bad", ["", " , ", "h:x", ":9092", "h:-1"])
def test_bad_bootstrap_lists_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_bootstrap(bad)


def test_a_closed_port_is_refused_at_once() -> None:
    port = free_port()
    reach = probe(f"127.0.0.1:{port}", timeout=2.0)
    assert not reach.ok
    assert [(f.address, f.kind, f.reason) for f in reach.failures] == [
        (f"127.0.0.1:{port}", "refused", "connection refused")
    ]
    assert reach.describe() == f"127.0.0.1:{port} (connection refused)"


def test_a_port_that_accepts_but_never_answers_is_not_kafka(listener: Callable[..., int]) -> None:
    port = listener(None)
    reach = probe(f"127.0.0.1:{port}", timeout=0.3)
    assert [(f.kind, f.reason) for f in reach.failures] == [
        ("not_kafka", "connected, but no Kafka answer within 0.3 s")
    ]
    assert probe(f"127.0.0.1:{port}", timeout=0.3, kafka_handshake=False).ok  # TCP is enough


def test_a_port_that_answers_http_is_not_kafka(listener: Callable[..., int]) -> None:
    def http(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    reach = probe(f"127.0.0.1:{listener(http)}", timeout=1.0)
    assert [(f.kind, f.reason) for f in reach.failures] == [
        ("not_kafka", "connected, but the answer is not Kafka's")
    ]


def test_a_port_that_hangs_up_is_not_kafka(listener: Callable[..., int]) -> None:
    reach = probe(f"127.0.0.1:{listener(lambda conn: conn.recv(1024))}", timeout=1.0)
    assert [(f.kind, f.reason) for f in reach.failures] == [
        ("not_kafka", "connected, but the connection was closed without a Kafka answer")
    ]


def test_one_answering_address_is_enough(listener: Callable[..., int]) -> None:
    closed, open_ = free_port(), listener(None)
    reach = probe(f"127.0.0.1:{closed},127.0.0.1:{open_}", timeout=1.0, kafka_handshake=False)
    assert reach.ok and reach.answered == f"127.0.0.1:{open_}"


def test_every_address_failing_is_described_in_bootstrap_order() -> None:
    first, second = free_port(), free_port()
    reach = probe(f"127.0.0.1:{first},127.0.0.1:{second}", timeout=1.0)
    assert reach.describe() == (
        f"127.0.0.1:{first} (connection refused), 127.0.0.1:{second} (connection refused)"
    )

"""librdkafka lines through Python logging: the level table on lines seen from real
clients, repeats, outages. No broker: closed and listening ports on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from logging import CRITICAL, DEBUG, ERROR, INFO, WARNING

import pytest
from confluent_kafka import Producer

from services.localstack import free_port
from streams.kafka import KafkaConfig, producer_config
from streams.kafka_logs import LOGGER, LibrdkafkaLog, Outage, client_logging, python_level

GETPID = "Failed to acquire transactional PID from broker TxnCoordinator/1: Broker: "
REFUSED = (
    "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused "
    "(after 0ms in state CONNECT)"
)
SASL_FAILED = (
    "sasl_plaintext://127.0.0.1:9092/bootstrap: SASL authentication error: Authentication "
    "failed during authentication due to invalid credentials with SASL mechanism "
    "SCRAM-SHA-256 (after 5ms in state AUTH_REQ)"
)
WRONG_PROTOCOL = (
    "127.0.0.1:9093/bootstrap: Disconnected while requesting ApiVersion: might be caused by "
    "incorrect security.protocol configuration (connecting to a SSL listener?)"
)
CASES = [
    # self-healing: a broker (re)starting, a coordinator loading or moving, closing
    (WARNING, "GETPID", GETPID + "Coordinator load in progress: retrying", INFO),
    (WARNING, "GETPID", GETPID + "Not coordinator: retrying", INFO),
    (ERROR, "FAIL", REFUSED, DEBUG),
    (ERROR, "FAIL", "sasl_plaintext://" + REFUSED, DEBUG),  # the scheme is no SASL problem
    (ERROR, "FAIL", "127.0.0.1:9092/1: Disconnected (after 5321ms in state UP)", DEBUG),
    (INFO, "FAIL", "h:9092/1: Disconnected (after 600000ms in state UP, 1 identical error(s) "
                   "suppressed)", DEBUG),
    (ERROR, "FAIL", "127.0.0.1:9092/1: Receive failed: Connection reset by peer", DEBUG),
    (INFO, "BGQUEUE", "Purging 1 unserved events from background queue", DEBUG),
    # configuration, not weather: keeps its level
    (ERROR, "FAIL", SASL_FAILED, ERROR),
    (ERROR, "FAIL", "ssl://h:9093/bootstrap: SSL handshake failed: certificate verify", ERROR),
    (ERROR, "FAIL", WRONG_PROTOCOL, ERROR),
    (WARNING, "GETPID", GETPID + "Transactional Id authorization failed: retrying", WARNING),
    (ERROR, "FAIL", "kafka:9092/1: Failed to resolve 'kafka:9092': Name or service not known",
     ERROR),  # an advertised listener this host cannot resolve
    # real problems: as librdkafka says
    (WARNING, "MAXPOLL", "Application maximum poll interval (300000ms) exceeded by 93ms", WARNING),
    (WARNING, "SESSTMOUT", "Consumer group session timed out (in join-state steady)", WARNING),
    (ERROR, "TXNERR", "Current transaction failed in state InTransaction: fenced", ERROR),
    (CRITICAL, "FATAL", "Fatal error: Broker: Producer attempted an operation with an old epoch",
     CRITICAL),
    (INFO, "PARTCNT", "Topic t partition count changed from 1 to 3", INFO),
    (DEBUG, "BROKER", "anything at debug", DEBUG),
]  # fmt: skip


@pytest.mark.parametrize(("level", "facility", "text", "expected"), CASES)
def test_levels(level: int, facility: str, text: str, expected: int) -> None:
    assert python_level(level, facility, text) == expected


def test_warnings_a_broker_outage_causes_are_info_while_it_is_reported() -> None:
    text = "Consumer group session timed out (in join-state steady) after 10009 ms"
    assert python_level(WARNING, "SESSTMOUT", text, outage=True) == INFO
    assert python_level(ERROR, "TXNERR", "Producer fenced", outage=True) == ERROR


def test_a_line_goes_to_the_client_logger_without_the_thread_prefix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bridge = LibrdkafkaLog("unit-a")
    with caplog.at_level(DEBUG, logger=LOGGER):
        bridge.log(ERROR, "%s [%s] %s", "FAIL", "unit-a#producer-1",
                   "[thrd:sasl_plaintext://h:1/bootstrap]: h:1/bootstrap: SASL authentication "
                   "error: Authentication failed")  # fmt: skip
    [record] = caplog.records
    assert record.name == f"{LOGGER}.unit-a" and record.levelno == ERROR
    assert record.getMessage() == (
        "unit-a#producer-1 FAIL: h:1/bootstrap: SASL authentication error: Authentication failed"
    )


def test_a_repeat_within_30_s_is_debug(caplog: pytest.LogCaptureFixture) -> None:
    bridge = LibrdkafkaLog("unit-b")
    auth = "h:1/bootstrap: SASL authentication error: failed (after {}ms in state AUTH_REQ)"
    with caplog.at_level(DEBUG, logger=LOGGER):
        for after in (5, 7, 9):
            bridge.log(ERROR, "%s [%s] %s", "FAIL", "unit-b#consumer-2", auth.format(after))
        bridge.log(
            ERROR, "%s [%s] %s", "FAIL", "unit-b#producer-3", auth.format(5)
        )  # another client
    assert [r.levelno for r in caplog.records] == [ERROR, DEBUG, DEBUG, ERROR]


def test_a_call_not_shaped_like_confluent_kafkas_is_logged_as_given(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(DEBUG, logger=LOGGER):
        LibrdkafkaLog("unit-c").log(WARNING, "plain %s", "message")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(WARNING, "plain message")]


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_an_outage_warns_once_then_says_when_a_broker_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    outage = Outage(f"127.0.0.1:{port}", kafka_handshake=False, warn_after=0.2, every=0.05,
                    probe_timeout=0.2)  # fmt: skip
    caplog.set_level(DEBUG, logger="modelstream.kafka")
    outage.all_brokers_down()
    outage.all_brokers_down()  # a second client, the same outage
    assert wait_for(lambda: any(r.levelno == WARNING for r in caplog.records))
    with socket.create_server(("127.0.0.1", port)):
        assert wait_for(lambda: not outage.watching)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= INFO]
    assert len(lines) == 2, lines
    assert lines[0][0] == "WARNING" and lines[0][1].startswith(
        f"Kafka unreachable for 0 s at 127.0.0.1:{port} (connection refused); clients keep retrying"
    )
    assert lines[1][0] == "INFO"
    assert lines[1][1].startswith(f"Kafka at 127.0.0.1:{port} answers again (unreachable for ")


def test_brokers_reported_down_while_the_bootstrap_answers_is_no_news(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        outage = Outage(f"127.0.0.1:{server.getsockname()[1]}", kafka_handshake=False)
        caplog.set_level(DEBUG, logger="modelstream.kafka")
        outage.all_brokers_down()  # e.g. the broker closed idle connections
        assert wait_for(lambda: not outage.watching)
    assert [r.levelno for r in caplog.records if r.name == "modelstream.kafka"] == [DEBUG]


def polling(producer: Producer, condition: Callable[[], bool]) -> Callable[[], bool]:
    """``condition``, checked after serving the producer's queue (where logs arrive)."""
    return lambda: producer.poll(0.05) >= 0 and condition()


def test_a_real_client_logs_through_python_not_stderr(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """librdkafka calls the bridge with the signature it expects, and an unreachable
    broker starts the outage watch (ended here by opening the port)."""
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    conf = producer_config(KafkaConfig(bootstrap, client_id="unit-real")) | client_logging(
        bootstrap,
        "unit-real",
        tls=True,  # TCP-only probing: a plain listener ends the outage
    )
    caplog.set_level(DEBUG, logger="modelstream")
    producer = Producer(conf)
    producer.produce("t", b"x")
    assert wait_for(polling(producer, lambda: len(caplog.records) > 0))
    assert wait_for(polling(producer, lambda: conf["logger"].outage.watching))
    with socket.create_server(("127.0.0.1", port)):
        assert wait_for(lambda: not conf["logger"].outage.watching)
        producer.purge()
        producer.flush(1)
        del producer  # before the port closes again
    refused = [r for r in caplog.records if "Connection refused" in r.getMessage()]
    assert refused and {r.levelno for r in refused} == {DEBUG}
    assert {r.name for r in refused} == {f"{LOGGER}.unit-real"}
    assert "%3|" not in capfd.readouterr().err


def test_consumer_errors_tell_a_missing_topic_once_and_warn_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from confluent_kafka import KafkaError

    from streams.kafka_logs import ConsumerErrors

    seen = ConsumerErrors(logging.getLogger("test.consumer"), "landing it once it is created")
    missing = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "Subscribed topic not available: a")
    with caplog.at_level(logging.DEBUG, logger="test.consumer"):
        for error in (missing, missing, KafkaError(KafkaError._PARTITION_EOF, "eof"),
                      KafkaError(KafkaError._TRANSPORT, "broken")):  # fmt: skip
            seen(error)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "Subscribed topic not available: a; landing it once it is created"),
        ("WARNING", 'consumer error: KafkaError{code=_TRANSPORT,val=-195,str="broken"}'),
    ]

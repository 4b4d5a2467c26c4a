"""librdkafka's log lines and broker outages, through Python logging.

Left alone, librdkafka prints to stderr (``%4|1796313468.545|GETPID|demo#producer-3|
[thrd:main]: ...``), in the middle of a command's output and at its own levels, where a
broker that restarts is an error. :func:`client_logging` gives a client config a
``logger`` (:class:`LibrdkafkaLog`) and an ``error_cb``; every config made by
:mod:`streams.kafka` carries both. Lines go to ``modelstream.kafka.librdkafka.<client id>``::

    librdkafka (syslog)    Python     but, self-healing, lower
    0-2 emerg..crit        CRITICAL
    3 err                  ERROR      connect refused, connection reset or closed → DEBUG
    4 warning              WARNING    coordinator loading or moving, "...: retrying", and
                                      any while all brokers are down → INFO
    5-6 notice, info       INFO       purging unserved events at close → DEBUG
    7 debug                DEBUG

A line that names TLS, SASL, authentication, authorization or ``security.protocol`` keeps
its level: that is configuration, not weather. A line the same client logged in the last
30 s is DEBUG (librdkafka repeats a failed connect every ~50 ms while requests wait).

A broker outage is told once per bootstrap and process by :class:`Outage`, not once per
reconnect attempt: when a client reports all brokers down, a daemon thread probes the
bootstrap (:func:`streams.kafka_probe.probe`) every second; a WARNING if nothing answers
for ``WARN_AFTER`` seconds (and every ``REMIND_EVERY`` after), an INFO line when a broker
answers again. A broker restart shorter than ``WARN_AFTER`` is one INFO line.

Delivery (confluent-kafka's ``logger``): lines and errors are queued and handed over by
the client's ``poll()``, ``flush()`` (producer) or ``consume()`` (consumer); an
AdminClient's only by ``admin.poll()``, and its failures reach callers as exceptions of
its calls. A line logged while a client is destroyed (BGQUEUE "Purging N unserved events")
is dropped.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from streams.kafka_probe import Reach, probe

__all__ = [
    "LOGGER",
    "REMIND_EVERY",
    "WARN_AFTER",
    "ConsumerErrors",
    "LibrdkafkaLog",
    "Outage",
    "client_logging",
    "python_level",
]

LOGGER = "modelstream.kafka.librdkafka"
WARN_AFTER = 10.0
REMIND_EVERY = 600.0
REPEAT_WINDOW = 30.0

log = logging.getLogger("modelstream.kafka")

_THREAD = re.compile(r"^\[thrd:[^\]]*\]: ")
_SUFFIX = re.compile(r" \(after \d+ms in state \w+(?:, \d+ identical error\(s\) suppressed)?\)")
_SCHEME = re.compile(r"\b[a-z_]+://")
_CONFIG = re.compile(r"SSL|TLS|SASL|[Aa]uthenticat|[Aa]uthoriz|certificate|security\.protocol")
_CONNECTION = re.compile(
    r"Connection refused|Connect to \S+ failed|Disconnected|Connection reset|Broken pipe"
    r"|[Cc]onnection setup timed out|Broker transport failure|Network is unreachable"
    r"|No route to host"
)
_RETRIED = re.compile(
    r"[Cc]oordinator load in progress|[Nn]ot coordinator|[Cc]oordinator not available"
    r"|[Cc]oncurrent transactions|[Ll]eader not available|[Nn]ot leader|: retrying$"
)
_CLOSING = re.compile(r"unserved events")


def python_level(level: int, facility: str, text: str, *, outage: bool = False) -> int:
    """The level of one librdkafka line, given the level confluent-kafka mapped it to;
    ``outage``: every broker is down and :class:`Outage` reports it.

    >>> python_level(logging.WARNING, "GETPID", "Failed to acquire transactional PID from "
    ...     "broker TxnCoordinator/1: Broker: Coordinator load in progress: retrying")
    20
    >>> python_level(logging.ERROR, "FAIL", "127.0.0.1:1/bootstrap: Connect to "
    ...     "ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)")
    10
    >>> python_level(logging.ERROR, "FAIL", "sasl_plaintext://h:9092/bootstrap: SASL "
    ...     "authentication error: Authentication failed (after 5ms in state AUTH_REQ)")
    40
    """
    if level >= logging.CRITICAL or _CONFIG.search(_SCHEME.sub("", text)):
        return level
    if facility == "FAIL" and _CONNECTION.search(text):
        return logging.DEBUG
    if level >= logging.WARNING and _RETRIED.search(text):
        return logging.INFO
    if level == logging.WARNING and outage:  # session and request timeouts it causes
        return logging.INFO
    if level == logging.INFO and _CLOSING.search(text):
        return logging.DEBUG
    return level


class LibrdkafkaLog:
    """A confluent-kafka ``logger``: takes librdkafka's lines, logs them at
    :func:`python_level`, a repeat within 30 s at DEBUG."""

    def __init__(self, client_id: str, outage: Outage | None = None) -> None:
        self.logger = logging.getLogger(f"{LOGGER}.{client_id}")
        self.outage = outage
        self._seen: dict[tuple[str, str], float] = {}

    def log(self, level: int, fmt: str, *args: str) -> None:
        """Called by confluent-kafka as ``log(level, "%s [%s] %s", facility, name, text)``."""
        if len(args) != 3:  # not confluent-kafka's call: log it as given
            self.logger.log(level, fmt, *args)
            return
        facility, name, text = args
        text = _THREAD.sub("", text)
        outage = self.outage is not None and self.outage.watching
        mapped = python_level(level, facility, text, outage=outage)
        if mapped > logging.DEBUG and self._repeated(name, f"{facility} {_SUFFIX.sub('', text)}"):
            mapped = logging.DEBUG
        if self.logger.isEnabledFor(mapped):
            extra = {"librdkafka_facility": facility, "librdkafka_client": name}
            self.logger.log(mapped, "%s %s: %s", name, facility, text, extra=extra)

    def _repeated(self, name: str, key: str) -> bool:
        now = time.monotonic()
        if len(self._seen) > 256:  # keep the memory of one noisy client bounded
            self._seen = {k: t for k, t in self._seen.items() if now - t < REPEAT_WINDOW}
        last = self._seen.get((name, key))
        if last is not None and now - last < REPEAT_WINDOW:
            return True
        self._seen[(name, key)] = now
        return False


class Outage:
    """Connectivity of one bootstrap, watched from the first "all brokers are down" until
    a broker answers again (see the module docstring)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        kafka_handshake: bool = True,
        warn_after: float = WARN_AFTER,
        every: float = 1.0,
        probe_timeout: float = 3.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.kafka_handshake = kafka_handshake
        self.warn_after = warn_after
        self.every = every
        self.probe_timeout = probe_timeout
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    @property
    def watching(self) -> bool:
        with self._lock:
            return self._watcher is not None

    def all_brokers_down(self) -> None:
        """A client says every broker is down: watch, unless already watching."""
        with self._lock:
            if self._watcher is not None:
                return
            self._watcher = threading.Thread(
                target=self._watch, name=f"kafka-outage-{self.bootstrap}", daemon=True
            )
            self._watcher.start()

    def _probe(self) -> Reach:
        return probe(
            self.bootstrap, timeout=self.probe_timeout, kafka_handshake=self.kafka_handshake
        )

    def _watch(self) -> None:
        try:
            started = time.monotonic()
            reach = self._probe()
            if reach.ok:  # e.g. idle connections closed by the broker
                log.debug("all brokers of %s were reported down; it answers", self.bootstrap)
                return
            self._wait_until_back(started, reach)
        finally:
            with self._lock:
                self._watcher = None

    def _wait_until_back(self, started: float, reach: Reach) -> None:
        warned, next_warning = False, started + self.warn_after
        while not reach.ok:
            now = time.monotonic()
            if now >= next_warning:
                log.warning(
                    "Kafka unreachable for %.0f s at %s; clients keep retrying",
                    now - started, reach.describe(),
                )  # fmt: skip
                warned, next_warning = True, now + REMIND_EVERY
            time.sleep(self.every)
            reach = self._probe()
        down = time.monotonic() - started
        if warned:
            log.info("Kafka at %s answers again (unreachable for %.0f s)", self.bootstrap, down)
        else:
            log.info("Kafka at %s was unreachable for %.1f s", self.bootstrap, down)


_outages: dict[tuple[str, bool], Outage] = {}
_outages_lock = threading.Lock()


def _outage(bootstrap: str, kafka_handshake: bool) -> Outage:
    """The process's one watch of this bootstrap (one WARNING for all its clients)."""
    with _outages_lock:
        key = (bootstrap, kafka_handshake)
        if key not in _outages:
            _outages[key] = Outage(bootstrap, kafka_handshake=kafka_handshake)
        return _outages[key]


def _error_callback(outage: Outage) -> Callable[[KafkaError], None]:
    def on_error(error: KafkaError) -> None:
        # per-connection failures are also log lines (FAIL); only the sum is news here
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            outage.all_brokers_down()

    return on_error


def client_logging(bootstrap: str, client_id: str, *, tls: bool = False) -> dict[str, Any]:
    """The ``logger`` and ``error_cb`` entries of a confluent-kafka client config.

    ``tls``: the listener speaks TLS (SSL, SASL_SSL), so outages are probed by TCP only.
    """
    outage = _outage(bootstrap, kafka_handshake=not tls)
    return {"logger": LibrdkafkaLog(client_id, outage), "error_cb": _error_callback(outage)}


class ConsumerErrors:
    """What a consuming loop does with the error events ``consume()`` returns.

    A subscribed topic that does not exist yet (a model not registered, a deployment not
    used yet) is normal at first: said once per topic at INFO, with ``waiting`` (what
    happens when it appears). End-of-partition events are nothing; anything else is a
    WARNING.
    """

    def __init__(self, log: logging.Logger, waiting: str) -> None:
        self._log, self._waiting = log, waiting
        self._told: set[str] = set()

    def __call__(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            self._log.warning("consumer error: %s", error)
        elif error.str() not in self._told:
            self._told.add(error.str())
            self._log.info("%s; %s", error.str(), self._waiting)

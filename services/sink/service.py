"""``modelstream run sink``: the sink loop plus, in embedded mode, the SQL endpoint."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from services.sink.sink import Sink, SinkConfig
from services.sink.sqlserver import SqlServer
from services.warehouse import SqlLimits, Warehouse
from streams.kafka import KafkaConfig

__all__ = ["run_sink"]

log = logging.getLogger("modelstream.sink")


def chaos_exit(spec: str | None) -> Callable[[str], None] | None:
    """``"announced:5"``: die (exit 137, like kill -9) at the 5th announced batch, before
    its insert; ``"inserted:5"``: after the 5th insert, before its commit. For chaos tests.

    >>> chaos_exit(None) is None
    True
    """
    if not spec:
        return None
    point, _, count = spec.partition(":")
    seen = {"n": 0}

    def maybe_exit(where: str) -> None:
        if where == point:
            seen["n"] += 1
            if seen["n"] >= int(count or 1):
                log.warning("chaos: exiting at %s batch %d", where, seen["n"])
                os._exit(137)

    return maybe_exit


def run_sink(
    kafka: KafkaConfig,
    config: SinkConfig,
    warehouse: Warehouse,
    state_file: Path | None,
    chaos: Callable[[str], None] | None = None,
    sql_limits: SqlLimits | None = None,
) -> None:
    """Land events until SIGTERM/SIGINT; the last batches are flushed before exit.

    With an embedded warehouse and a ``state_file``, also serve read-only SQL (bounded by
    ``sql_limits``) on a session of its own: see :mod:`services.sink.sqlserver`.
    """
    server = None
    if state_file is not None and warehouse.dsn.embedded:
        server = SqlServer.open(warehouse.dsn, state_file, sql_limits)
        server.start()
        log.info("read-only SQL for `modelstream sql` on 127.0.0.1:%d", server.port)
    sink = Sink(kafka, config, warehouse, chaos)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("sink ready: landing %s", ", ".join(config.subscription()))
    try:
        sink.run(stop)
    finally:
        sink.close()
        if server is not None:
            server.stop()
        log.info("sink stopped: %s", dict(sink.stats))

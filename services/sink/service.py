"""``modelstream run sink``: the sink loop plus, in embedded mode, the SQL endpoint."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from services.sink.sink import Sink, SinkConfig
from services.sink.sqlserver import SqlServer
from services.warehouse import Warehouse
from streams.kafka import KafkaConfig

__all__ = ["run_sink"]

log = logging.getLogger("modelstream.sink")


def run_sink(
    kafka: KafkaConfig, config: SinkConfig, warehouse: Warehouse, state_file: Path | None
) -> None:
    """Land events until SIGTERM/SIGINT; the last batches are flushed before exit."""
    server = None
    if state_file is not None and warehouse.dsn.scheme == "chdb":
        server = SqlServer(warehouse, state_file)
        server.start()
        log.info("read-only SQL for `modelstream sql` on 127.0.0.1:%d", server.port)
    sink = Sink(kafka, config, warehouse)
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

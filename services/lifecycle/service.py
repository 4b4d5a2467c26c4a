"""``modelstream run lifecycle``: the process edge of :class:`Lifecycle`.

It writes the registry (promotions, retirements, decisions, retrained versions) as the
``lifecycle`` actor, signing what it registers with the deployment's signing key, loads
champions to evaluate them only when signed by a trusted key, and reads ClickHouse for
its evidence. SIGTERM or Ctrl-C ends it after the tick in flight.
"""

from __future__ import annotations

import logging
import signal
import threading

from rich.console import Console

from services.clikit import sql_state_file
from services.lifecycle._process import Lifecycle, Step
from services.registry import Registry, Trust
from services.registry.cli import signer_from, trust_from
from services.runtime import topics
from services.settings import Settings
from services.sink.reader import SinkReader, open_reader
from streams.kafka import KafkaConfig

__all__ = ["run_lifecycle"]

log = logging.getLogger(__name__)


def run_lifecycle(settings: Settings, kafka: KafkaConfig, interval: float, *,
                  once: bool = False) -> None:  # fmt: skip
    """Tick every ``interval`` seconds until a signal (``once``: one tick, printed)."""
    signer, trust = signer_from(settings), trust_from(settings)
    # a champion this process signed is one it may load, as the retrain command does
    trust = Trust.of(*trust.keys.values(), signer.public_key,
                     allow_unsigned=trust.allow_unsigned, sources=trust.sources)  # fmt: skip
    registry = Registry(kafka, topics(settings), actor="lifecycle", timeout=30, signer=signer,
                        trust=trust)  # fmt: skip
    stop = threading.Event()
    if not once:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        if settings.clickhouse is None:
            _await_sink(SinkReader(sql_state_file(settings)), stop)
            if stop.is_set():
                return
    with registry, open_reader(settings) as warehouse:
        lifecycle = Lifecycle(registry, warehouse, trust=trust)
        if once:
            _print(lifecycle.tick())
            return
        log.info("lifecycle ready: a tick every %.0f s", interval)
        lifecycle.run(stop, interval)
        log.info("lifecycle stopped")


def _await_sink(sink: SinkReader, stop: threading.Event) -> None:
    """With the embedded warehouse, a long-running lifecycle reads through the sink that
    holds it (opening it here would lock the sink out): wait for one to answer."""
    waited = 0.0
    while not sink.available() and not stop.is_set():
        if waited % 30 == 0:
            where = sink.state_file
            log.info("waiting for the sink to serve the embedded warehouse (%s); start "
                     "one: `modelstream run sink` or `modelstream up`", where)  # fmt: skip
        stop.wait(1.0)
        waited += 1.0


def _print(steps: list[Step]) -> None:
    console = Console()
    if not steps:
        console.print("nothing to decide: no challenger is shadowing, and no loop is due")
    for step in steps:
        console.print(f"{step.model} v{step.version}: {step.action} - {step.reason}",
                      soft_wrap=True, markup=False)  # fmt: skip

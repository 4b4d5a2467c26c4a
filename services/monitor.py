"""The monitor process (``modelstream run monitor``).

Builds each model's :class:`~streams.monitoring.watch.ModelWatch` from the registry (the
champion's features, sensitive attributes, task and reference profile) the first time the
model's records arrive, and runs the exactly-once :class:`~streams.monitoring.stream.MonitorLoop`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from services.registry import RegistryView, not_registered
from streams.kafka import KafkaConfig
from streams.monitoring.errors import MonitorConfigError
from streams.monitoring.stream import MonitorConfig, MonitorLoop
from streams.monitoring.watch import ModelSpec, ModelWatch

__all__ = ["run_monitor", "watch_factory"]

log = logging.getLogger("modelstream.monitor")


def watch_factory(view: RegistryView) -> Callable[[str], ModelWatch]:
    """``model -> ModelWatch`` from what the registry says about the model's champion."""

    def new_watch(model: str) -> ModelWatch:
        view.poll(0)
        routing = view.routing(model)
        if routing is None:  # its records are refused (counted, summed up in the log)
            raise MonitorConfigError(
                f"{not_registered(model, view.models())}: its records are not monitored"
            )
        meta = view.version(model, routing.champion)
        classes = [c for c in (meta.classes or ()) if c.lower() == "true"]
        spec = ModelSpec(
            model, task=meta.task, features=tuple(meta.features),
            sensitive=tuple(meta.sensitive_attributes),
            reference_profile=meta.reference_profile,
            positive_label=classes[0] if classes else "True",
        )  # fmt: skip
        log.info("watching %s (champion v%d, %d features, sensitive %s)", model,
                 meta.version, len(meta.features), list(meta.sensitive_attributes))  # fmt: skip
        return ModelWatch(spec)

    return new_watch


def run_monitor(kafka: KafkaConfig, config: MonitorConfig) -> None:
    """Monitor until SIGTERM/SIGINT."""
    view = RegistryView(kafka, config.topics)
    view.sync()
    loop = MonitorLoop(kafka, config, watch_factory(view))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("monitor %s ready: %d model(s) restored", config.instance_id, len(loop.watches))
    try:
        loop.run(stop)
    finally:
        loop.close()
        log.info("monitor stopped: %s", dict(loop.stats))

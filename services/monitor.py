"""The monitor process (``modelstream run monitor``).

Builds each model's :class:`~streams.monitoring.watch.ModelWatch` from the registry (the
champion's features and their kinds, sensitive attributes, task, positive class and
reference profile) the first time the model's records arrive, rebases it on a new
champion's profile when that champion's records arrive, and runs the exactly-once
:class:`~streams.monitoring.stream.MonitorLoop`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from services.registry import ModelVersion, RegistryView, feature_kinds, not_registered
from streams.kafka import KafkaConfig
from streams.monitoring.errors import MonitorConfigError
from streams.monitoring.stream import MonitorConfig, MonitorLoop
from streams.monitoring.watch import ModelSpec, ModelWatch

__all__ = ["run_monitor", "spec_for", "watch_factory"]

log = logging.getLogger("modelstream.monitor")


def model_spec(meta: ModelVersion) -> ModelSpec:
    """What the watch needs to know of a champion version."""
    kinds = feature_kinds(meta.input_schema)
    return ModelSpec(
        meta.name, task=meta.task, features=tuple(meta.features),
        sensitive=tuple(meta.sensitive_attributes),
        reference_profile=meta.reference_profile,
        positive_label=positive_label(meta),
        numeric=tuple(f for f in meta.features if kinds.get(f) == "numeric"),
        version=meta.version,
    )  # fmt: skip


def positive_label(meta: ModelVersion) -> str | None:
    """The version's declared positive class (registered, or inferred at registration)."""
    if meta.task != "classification":
        return None
    if meta.positive_label is not None:
        return meta.positive_label
    # a version registered before positive classes were declared: the old guess
    classes = [c for c in (meta.classes or ()) if c.lower() in ("true", "1", "yes")]
    return classes[0] if len(classes) == 1 else "True"


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
        spec = model_spec(meta)
        log.info("watching %s (champion v%d, %d features, %d numeric, sensitive %s, "
                 "positive class %r)", model, meta.version, len(meta.features),
                 len(spec.numeric or ()), list(meta.sensitive_attributes),
                 spec.positive_label)  # fmt: skip
        return ModelWatch(spec)

    return new_watch


def spec_for(view: RegistryView) -> Callable[[str, int], ModelSpec | None]:
    """``(model, version) -> spec`` when ``version`` is the model's champion now."""

    def champion_spec(model: str, version: int) -> ModelSpec | None:
        view.poll(0)
        routing = view.routing(model)
        if routing is None or routing.champion != version:
            return None
        return model_spec(view.version(model, version))

    return champion_spec


def run_monitor(kafka: KafkaConfig, config: MonitorConfig) -> None:
    """Monitor until SIGTERM/SIGINT."""
    view = RegistryView(kafka, config.topics)
    view.sync()
    loop = MonitorLoop(kafka, config, watch_factory(view), spec_for(view))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("monitor %s ready: each task restores as its partition is assigned",
             config.instance_id)  # fmt: skip
    try:
        loop.run(stop)
    finally:
        loop.close()
        log.info("monitor stopped: %s", dict(loop.stats))

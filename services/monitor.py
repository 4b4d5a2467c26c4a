"""The monitor process (``modelstream run monitor``).

Builds each model's :class:`~streams.monitoring.watch.ModelWatch` from the registry (the
champion's features and their kinds, sensitive attributes, task, positive class and
reference profile) the first time the model's records arrive, rebases it on a new
champion's profile when that champion's records arrive, and runs the exactly-once
:class:`~streams.monitoring.stream.MonitorLoop`, its state snapshots signed with the
deployment's key (:func:`snapshot_key`).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from services.registry import ModelVersion, RegistryView, feature_kinds, not_registered
from services.settings import Settings
from streams.kafka import KafkaConfig
from streams.monitoring.errors import MonitorConfigError
from streams.monitoring.snapshots import MIN_KEY_BYTES
from streams.monitoring.stream import MonitorConfig, MonitorLoop
from streams.monitoring.watch import ModelSpec, ModelWatch

__all__ = ["KEY_FILE", "run_monitor", "snapshot_key", "spec_for", "watch_factory"]

log = logging.getLogger("modelstream.monitor")
KEY_FILE = "monitor.key"


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


def snapshot_key(settings: Settings) -> bytes:
    """The key that signs the monitor's snapshots: ``MODELSTREAM_MONITOR_SNAPSHOT_KEY``,
    else the one in ``<data dir>/monitor.key``, made (0600, in a 0700 directory) by the
    first monitor that needs it. Instances on other machines need the setting."""
    if settings.monitor_snapshot_key is not None:
        key = settings.monitor_snapshot_key.get_secret_value().encode()
        if len(key) < MIN_KEY_BYTES:
            raise MonitorConfigError(
                f"expected MODELSTREAM_MONITOR_SNAPSHOT_KEY of at least {MIN_KEY_BYTES} "
                f"characters, got {len(key)}: make one with `openssl rand -hex 32`"
            )
        return key
    return _local_key(settings.data_dir / KEY_FILE)


def _local_key(path: Path) -> bytes:
    """The key in ``path``, made once: written aside, then linked into place, so that
    instances starting together all end up with the first one's key."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, os.stat(path.parent).st_mode & 0o700)
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another instance made it first: use theirs
        finally:
            aside.unlink()
    key = path.read_text().strip().encode()
    if len(key) < MIN_KEY_BYTES:
        raise MonitorConfigError(
            f"expected a key of at least {MIN_KEY_BYTES} characters in {path}, got "
            f"{len(key)}: remove the file (a new one is made) or set "
            "MODELSTREAM_MONITOR_SNAPSHOT_KEY"
        )
    return key


def run_monitor(
    kafka: KafkaConfig, config: MonitorConfig, settings: Settings | None = None
) -> None:
    """Monitor until SIGTERM/SIGINT. A config without a snapshot key gets
    :func:`snapshot_key` of ``settings`` (read here when not given)."""
    if config.snapshot_key is None:
        config = replace(config, snapshot_key=snapshot_key(settings or Settings()))
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

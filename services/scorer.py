"""The scorer process (``modelstream run scorer``): follows the registry and serves.

A follower thread keeps a :class:`~streams.scoring.DeploymentTable` in step with the
compacted ``_routing`` and ``_models`` topics: a promotion loads the new version off the
hot path and swaps the model's deployment whole; the scoring loop picks it up at its next
micro-batch, so a swap fails, loses or duplicates no request. A version that cannot be
loaded (bad digest, unpicklable) is logged and the previous deployment keeps serving.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from schemas.codec import Codec
from services.registry import (
    ModelVersion,
    RegistryView,
    RoutingChanged,
    Trust,
    UnknownModelError,
    UnknownVersionError,
    VersionAdded,
    not_registered,
)
from streams.kafka import KafkaConfig
from streams.scoring import (
    Deployment,
    DeploymentTable,
    Guard,
    Scorer,
    ScorerConfig,
    ServedModel,
    adapt,
)

__all__ = ["RegistryFollower", "run_scorer"]

log = logging.getLogger("modelstream.scorer")
MISSING_REMINDER_S = 60.0  # how often a scorer repeats that a model it serves is missing


class RegistryFollower(threading.Thread):
    """Keeps ``table`` equal to what the registry says should be served."""

    def __init__(
        self, view: RegistryView, table: DeploymentTable, models: Iterable[str] | None = None,
        poll_interval: float = 0.1,
    ) -> None:  # fmt: skip
        super().__init__(name="registry-follower", daemon=True)
        self.view = view
        self.table = table
        self.models = set(models) if models else None
        self.poll_interval = poll_interval
        self.stop_event = threading.Event()
        self._served: dict[tuple[str, int], ServedModel] = {}
        self._warned_at = time.monotonic()

    def sync(self, timeout: float = 30.0) -> None:
        """Read the registry to its end and deploy every routed model (before serving)."""
        self.view.sync(timeout)
        for name in self.view.models():
            self.refresh(name)
        self.warn_missing()

    def warn_missing(self) -> list[str]:
        """Say which of the models this scorer was told to serve are not registered
        (a typo serves nothing and waits forever); returns them."""
        known = self.view.models()
        missing = sorted((self.models or set()) - set(known))
        for name in missing:
            log.warning("%s; serving it as soon as it is registered", not_registered(name, known))
        self._warned_at = time.monotonic()
        return missing

    def run(self) -> None:
        while not self.stop_event.is_set():
            if time.monotonic() - self._warned_at > MISSING_REMINDER_S:
                self.warn_missing()
            try:
                changes = self.view.poll(self.poll_interval)
            except Exception:
                log.exception("registry poll failed; retrying")
                self.stop_event.wait(1.0)
                continue
            touched = set()
            for change in changes:
                if isinstance(change, RoutingChanged):
                    touched.add(change.model)
                elif isinstance(change, VersionAdded):
                    touched.add(change.version.name)
            for name in touched:
                self.refresh(name)

    def refresh(self, name: str) -> None:
        if self.models is not None and name not in self.models:
            return
        routing = self.view.routing(name)
        if routing is None:
            self.table.remove(name)
            return
        try:
            deployment = self._deployment(name, routing)
        except (UnknownModelError, UnknownVersionError) as exc:
            # the routing record can be read before the version record of the same
            # registry transaction (two topics): that version's arrival refreshes again
            log.debug("%s: routing read before its version record (%s)", name, exc)
            return
        except Exception:
            log.exception("cannot deploy %s (champion v%s); keeping the current one",
                          name, routing.champion)  # fmt: skip
            return
        self.table.put(deployment)
        gc.freeze()  # the loaded models are long-lived: keep them out of every GC pass
        log.info("serving %s: champion v%d challenger %s backup %s", name, routing.champion,
                 routing.challenger, routing.backup)  # fmt: skip

    def _deployment(self, name: str, routing: Any) -> Deployment:
        champion_meta = self.view.version(name, routing.champion)
        return Deployment(
            model=name,
            task=champion_meta.task,
            codec=Codec(dict(champion_meta.input_schema)),
            champion=self._load(champion_meta),
            challenger=self._optional(name, routing.challenger),
            backup=self._optional(name, routing.backup),
            shadow_fraction=routing.shadow_fraction,
            sensitive=tuple(champion_meta.sensitive_attributes),
        )

    def _optional(self, name: str, version: int | None) -> ServedModel | None:
        if version is None:
            return None
        return self._load(self.view.version(name, version))

    def _load(self, meta: ModelVersion) -> ServedModel:
        key = (meta.name, meta.version)
        if key not in self._served:
            model = self.view.load_model(meta.name, meta.version)
            predictor = adapt(model, task=meta.task, features=meta.features)
            self._served[key] = ServedModel(
                meta.version, predictor, meta.training_data_fingerprint,
                Guard(f"{meta.name}-v{meta.version}"),
            )  # fmt: skip
        return self._served[key]


def run_scorer(kafka: KafkaConfig, config: ScorerConfig, trust: Trust | None = None) -> None:
    """Serve until SIGTERM/SIGINT; finishes the batch in flight, then leaves the group."""
    # model threads (challenger, stuck champion) must hand the GIL back quickly
    sys.setswitchinterval(0.0005)
    table = DeploymentTable()
    follower = RegistryFollower(
        RegistryView(kafka, config.topics, trust=trust), table, config.models
    )
    follower.sync()
    follower.start()
    scorer = Scorer(kafka, config, table)
    # everything loaded so far lives as long as the process: a full collection over it
    # took ~90 ms here, a pause in the middle of someone's request (p99)
    gc.collect()
    gc.freeze()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("scorer %s ready: %s (%s)", config.instance_id,
             ", ".join(table.models()) or "no models yet", config.guarantee)  # fmt: skip
    try:
        scorer.run(stop)
    finally:
        follower.stop_event.set()
        scorer.close()
        log.info("scorer %s stopped: %s", config.instance_id, dict(scorer.stats))

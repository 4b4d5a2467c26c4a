"""The models the gateway can route to, followed live from the registry topics.

A daemon thread owns a :class:`~services.registry.RegistryView` (a view is single-threaded)
and publishes an immutable snapshot per model; request handlers read the snapshot without
locks. A promotion reaches the gateway within one poll interval, so the input contract a
request is checked against is always the current champion's.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from services.gateway.contract import InputContract
from services.registry import ModelVersion, RegistryView, Routing, RoutingChanged, VersionAdded

__all__ = ["ModelDirectory", "ModelEntry"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelEntry:
    """One routable model: its routing, every version, the champion's contract."""

    name: str
    routing: Routing
    versions: tuple[ModelVersion, ...]
    champion: ModelVersion
    contract: InputContract

    def role_of(self, version: int) -> str | None:
        return self.routing.role_of(version)


class ModelDirectory(threading.Thread):
    """A live, thread-safe copy of what the registry routes."""

    def __init__(self, view: RegistryView, poll_interval: float = 0.1) -> None:
        super().__init__(name="model-directory", daemon=True)
        self._view = view
        self._poll_interval = poll_interval
        self._entries: dict[str, ModelEntry] = {}
        self._contracts: dict[tuple[str, int], InputContract] = {}
        self._stop_event = threading.Event()
        self.synced = threading.Event()

    def sync(self, timeout: float = 30.0) -> None:
        """Read the registry to its end (call before serving, from the starting thread)."""
        self._view.sync(timeout)
        for name in self._view.models():
            self._refresh(name)
        self.synced.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                changes = self._view.poll(self._poll_interval)
            except Exception:
                log.exception("registry poll failed; retrying in 1 s")
                self._stop_event.wait(1.0)
                continue
            touched = {
                change.model if isinstance(change, RoutingChanged) else change.version.name
                for change in changes
                if isinstance(change, RoutingChanged | VersionAdded)
            }
            for name in touched:
                self._refresh(name)

    def _refresh(self, name: str) -> None:
        routing = self._view.routing(name)
        if routing is None:
            self._entries = {k: v for k, v in self._entries.items() if k != name}
            return
        try:
            champion = self._view.version(name, routing.champion)
            key = (name, champion.version)
            if key not in self._contracts:
                self._contracts[key] = InputContract(champion.input_schema)
            entry = ModelEntry(
                name, routing, tuple(self._view.versions(name)), champion, self._contracts[key]
            )
        except Exception:
            log.exception("cannot route %s; keeping its previous entry", name)
            return
        self._entries = {**self._entries, name: entry}  # swapped whole: readers need no lock

    def get(self, name: str) -> ModelEntry | None:
        return self._entries.get(name)

    def entries(self) -> list[ModelEntry]:
        return sorted(self._entries.values(), key=lambda entry: entry.name)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(5.0)
        self._view.close()

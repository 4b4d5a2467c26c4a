"""What the scorer serves for one model right now: the champion, optional challenger and
backup (each a loaded, adapted model version), the input contract, and the shadow
sampling fraction. Deployments are immutable; a model swap replaces the whole object,
and the scorer picks the new one up at its next batch.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

from schemas.codec import Codec
from streams.scoring.adapters import Predictor
from streams.scoring.guard import Guard
from streams.scoring.shadow import Shadow

__all__ = ["Deployment", "DeploymentTable", "ServedModel"]


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version and its threads: ``guard`` runs it as champion or backup
    (a deadline the reply path can walk away from), ``shadow`` as challenger (a queue
    the reply path never waits on)."""

    version: int
    predictor: Predictor
    training_data_fingerprint: str | None = None
    guard: Guard = field(default_factory=lambda: Guard("model"), compare=False, repr=False)
    shadow: Shadow = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shadow", Shadow(f"v{self.version}", self.predictor))


@dataclass(frozen=True)
class Deployment:
    """Champion (+ challenger, backup) of one model and its input contract."""

    model: str
    task: str
    codec: Codec
    champion: ServedModel
    challenger: ServedModel | None = None
    backup: ServedModel | None = None
    shadow_fraction: float = 1.0
    sensitive: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def in_shadow(self, request_id: str) -> bool:
        """Deterministic shadow sampling: the same request id is always in or out."""
        if self.shadow_fraction >= 1.0:
            return True
        if self.shadow_fraction <= 0.0:
            return False
        bucket = zlib.crc32(request_id.encode()) % 10_000
        return bucket < self.shadow_fraction * 10_000


class DeploymentTable:
    """Model name → current deployment; written by the registry follower, read by the
    scorer once per batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_model: dict[str, Deployment] = {}
        self.version = 0  # bumped on every change; lets readers notice swaps cheaply

    def get(self, model: str) -> Deployment | None:
        return self._by_model.get(model)

    def put(self, deployment: Deployment) -> None:
        with self._lock:
            self._by_model = self._by_model | {deployment.model: deployment}
            self.version += 1

    def remove(self, model: str) -> None:
        with self._lock:
            self._by_model = {k: v for k, v in self._by_model.items() if k != model}
            self.version += 1

    def models(self) -> list[str]:
        return sorted(self._by_model)

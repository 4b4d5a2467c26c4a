"""The registry as last read: versions, routing, and where each artifact chunk lies.

Pure bookkeeping over decoded records; :class:`~services.registry.RegistryView` feeds it
what it consumes. Chunk records are indexed by offset, not kept in memory: an artifact is
fetched again from Kafka when it is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.registry._errors import (
    IntegrityError,
    UnknownModelError,
    UnknownVersionError,
    not_registered,
)
from services.registry._model import Change, ModelVersion, Routing, RoutingChanged, VersionAdded
from services.registry._signing import Signature

__all__ = ["RegistryState"]


class RegistryState:
    """Latest value per key of the two compacted topics.

    >>> from datetime import UTC, datetime
    >>> state = RegistryState()
    >>> state.add_chunk("m", 1, 0, offset=7)
    >>> mv = ModelVersion("m", 1, "regression", {}, ("x",), "ana", datetime.now(UTC),
    ...                   "cloudpickle", "00", 3, 1)
    >>> state.add_version(mv) == VersionAdded(mv)
    True
    >>> state.chunk_offsets("m", 1), state.next_version("m"), state.next_version("new")
    ([7], 2, 1)
    """

    def __init__(self) -> None:
        self._versions: dict[str, dict[int, ModelVersion]] = {}
        self._routing: dict[str, Routing] = {}
        self._chunks: dict[tuple[str, int, int], int] = {}
        self._signatures: dict[tuple[str, int], Signature] = {}
        self._highest: dict[str, int] = {}  # survives deletions: numbers are never reused
        self._policies: dict[str, Mapping[str, Any]] = {}

    # -- applying records

    def add_chunk(self, model: str, version: int, index: int, *, offset: int | None) -> None:
        """Where chunk ``index`` lies; ``offset=None`` for a tombstone."""
        if offset is None:
            self._chunks.pop((model, version, index), None)
        else:
            self._chunks[(model, version, index)] = offset

    def set_signature(self, model: str, version: int, signature: Signature | None) -> None:
        """The signature of one version; ``None`` for a tombstone."""
        if signature is None:
            self._signatures.pop((model, version), None)
        else:
            self._signatures[(model, version)] = signature

    def add_version(self, version: ModelVersion) -> Change:
        self._versions.setdefault(version.name, {})[version.version] = version
        self._highest[version.name] = max(self._highest.get(version.name, 0), version.version)
        return VersionAdded(version)

    def remove_version(self, model: str, version: int) -> None:
        self._versions.get(model, {}).pop(version, None)

    def set_routing(self, model: str, routing: Routing | None) -> Change:
        if routing is None:
            self._routing.pop(model, None)
        else:
            self._routing[model] = routing
        return RoutingChanged(model, routing)

    def set_policy(self, model: str, policy: Mapping[str, Any] | None) -> None:
        """The model's promotion policy (a JSON object); ``None`` for a tombstone."""
        if policy is None:
            self._policies.pop(model, None)
        else:
            self._policies[model] = policy

    # -- reading

    def policy(self, model: str) -> Mapping[str, Any] | None:
        return self._policies.get(model)

    def models(self) -> list[str]:
        return sorted(name for name, versions in self._versions.items() if versions)

    def versions(self, model: str) -> list[ModelVersion]:
        """Every version of ``model``, oldest first."""
        known = self._versions.get(model)
        if not known:
            raise UnknownModelError(not_registered(model, self.models()))
        return [known[number] for number in sorted(known)]

    def version(self, model: str, version: int) -> ModelVersion:
        found = {mv.version: mv for mv in self.versions(model)}
        if version not in found:
            numbers = ", ".join(str(v) for v in found)
            raise UnknownVersionError(
                f"{model} has no version {version} (versions: {numbers}); "
                f"see `modelstream models show {model}`"
            )
        return found[version]

    def routing(self, model: str) -> Routing | None:
        return self._routing.get(model)

    def signature(self, model: str, version: int) -> Signature | None:
        """The signature of a version; None when it was registered unsigned."""
        return self._signatures.get((model, version))

    def next_version(self, model: str) -> int:
        """One more than the highest version ever seen (1 for a new model)."""
        return self._highest.get(model, 0) + 1

    def chunk_offsets(self, model: str, version: int) -> list[int]:
        """Offsets of the chunks of one version, in index order."""
        expected = self.version(model, version).chunk_count
        offsets = [self._chunks.get((model, version, index)) for index in range(expected)]
        missing = [index for index, offset in enumerate(offsets) if offset is None]
        if missing:
            raise IntegrityError(
                f"artifact of {model} v{version} is incomplete: chunks {missing[:5]} of "
                f"{expected} are missing from the models topic; register the model again"
            )
        return [offset for offset in offsets if offset is not None]

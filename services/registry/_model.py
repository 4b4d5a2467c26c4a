"""What the registry holds: model versions, routing, and the changes a follower sees."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from services.registry._artifact import ArtifactFormat

__all__ = ["Change", "ModelVersion", "Role", "Routing", "RoutingChanged", "Task", "VersionAdded"]

Task = Literal["classification", "regression"]
Role = Literal["champion", "challenger", "backup"]


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its contract, lineage and where its artifact is.

    ``positive_label`` is the class a classifier's selection rates and fairness count
    (one of ``classes`` when those are known); None for a regressor, and for versions
    registered before it was recorded. ``lineage`` says where the version came from (a
    JSON object: for a retrained version its data's time range, row count and SQL, the
    trainer, the parent version, what triggered it); empty when not declared.
    """

    name: str
    version: int
    task: Task
    input_schema: Mapping[str, Any]
    features: tuple[str, ...]
    author: str
    created_at: datetime
    artifact_format: ArtifactFormat
    artifact_sha256: str
    artifact_size: int
    chunk_count: int
    description: str = ""
    sensitive_attributes: tuple[str, ...] = ()
    training_data_fingerprint: str | None = None
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    training_metrics: Mapping[str, float] = field(default_factory=dict)
    code_version: str | None = None
    reference_profile: Mapping[str, Any] | None = None
    classes: tuple[str, ...] | None = None
    positive_label: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    lineage: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``<name>/<version>``, the record key on the models topic."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class Routing:
    """Which versions of one model serve: champion, shadow challenger, backup.

    ``previous_champions`` lists earlier champions, most recent first (where a rollback
    returns to); ``shadow_fraction`` is the share of requests the challenger also scores.
    """

    model: str
    champion: int
    challenger: int | None = None
    backup: int | None = None
    shadow_fraction: float = 1.0
    previous_champions: tuple[int, ...] = ()
    updated_at: datetime | None = None
    updated_by: str = ""
    reason: str = ""

    def role_of(self, version: int) -> Role | None:
        """The role ``version`` plays, if any (champion first).

        >>> Routing("churn", champion=2, challenger=3).role_of(3)
        'challenger'
        """
        for role, holder in (
            ("champion", self.champion),
            ("challenger", self.challenger),
            ("backup", self.backup),
        ):
            if holder == version:
                return role  # type: ignore[return-value]  # one of the Role literals
        return None


@dataclass(frozen=True)
class VersionAdded:
    """A new model version became readable."""

    version: ModelVersion


@dataclass(frozen=True)
class RoutingChanged:
    """The routing of a model changed (``routing`` is None when it was deleted)."""

    model: str
    routing: Routing | None


Change = VersionAdded | RoutingChanged

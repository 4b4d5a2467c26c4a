"""What a batch run scores with: the model's deployment, built from the registry as the
scorer's :class:`~services.scorer.RegistryFollower` builds it (the champion's input
contract, champion and backup, and the challenger when asked for), with the same
:class:`~services.registry.Trust`: a version the scorer would refuse to load, this
refuses too. Where the follower logs a failure and keeps serving, this raises: a batch
run has nothing else to serve.
"""

from __future__ import annotations

from schemas.codec import Codec
from services.batch._errors import InputError, UnreachableError
from services.registry import (
    ModelVersion,
    RegistryError,
    RegistryUnavailableError,
    RegistryView,
    not_registered,
)
from streams.scoring import Deployment, ServedModel, adapt

__all__ = ["load_deployment"]


def load_deployment(view: RegistryView, name: str, *, challenger: bool) -> Deployment:
    """``name``'s deployment now (its challenger only when ``challenger``)."""
    try:
        view.sync()
        routing = view.routing(name)
        if routing is None:
            known = view.models()
            if name in known:
                raise InputError(f"{name} has no champion: promote a version with "
                                 f"`modelstream models promote {name} VERSION`")  # fmt: skip
            raise InputError(not_registered(name, known))
        if challenger and routing.challenger is None:
            raise InputError(f"{name} has no challenger: drop --challenger, or shadow a "
                             f"version: `modelstream models set-challenger {name} V`")  # fmt: skip
        meta = view.version(name, routing.champion)
        return Deployment(
            model=name, task=meta.task, codec=Codec(dict(meta.input_schema)),
            champion=_load(view, meta),
            challenger=_optional(view, name, routing.challenger if challenger else None),
            backup=_optional(view, name, routing.backup), shadow_fraction=1.0,
            sensitive=tuple(meta.sensitive_attributes),
        )  # fmt: skip
    except RegistryUnavailableError as exc:
        raise UnreachableError(str(exc)) from exc
    except RegistryError as exc:
        raise InputError(f"cannot load {name}: {exc}") from exc


def _optional(view: RegistryView, name: str, version: int | None) -> ServedModel | None:
    return None if version is None else _load(view, view.version(name, version))


def _load(view: RegistryView, meta: ModelVersion) -> ServedModel:
    model = view.load_model(meta.name, meta.version)
    predictor = adapt(model, task=meta.task, features=meta.features)
    return ServedModel(meta.version, predictor, meta.training_data_fingerprint)

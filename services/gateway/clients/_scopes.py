"""Scopes: what a client may do, as exact strings.

::

    predict:<model>   call /predict of one model      predict:*   of every model
    batch:<model>     send batch requests to one model batch:*     to every model
    catalogue:read    list models and read their contracts
    admin             everything
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from services.gateway.clients._errors import InvalidScopeError
from streams.kafka import MODEL_NAME

__all__ = ["ADMIN", "CATALOGUE_READ", "SCOPE_FORMS", "allows", "parse_scopes"]

ADMIN: Final = "admin"
CATALOGUE_READ: Final = "catalogue:read"
SCOPE_FORMS: Final = (
    "predict:<model>",
    "predict:*",
    "batch:<model>",
    "batch:*",
    CATALOGUE_READ,
    ADMIN,
)
_PER_MODEL: Final = ("predict", "batch")


def parse_scopes(spec: str | Iterable[str]) -> tuple[str, ...]:
    """Scopes from ``"a,b"`` or an iterable; validated, duplicates dropped, order kept.

    >>> parse_scopes("predict:demo, catalogue:read,predict:demo")
    ('predict:demo', 'catalogue:read')
    >>> parse_scopes("predict:a.b")
    Traceback (most recent call last):
    ...
    services.gateway.clients._errors.InvalidScopeError: scope 'predict:a.b' is not valid: \
'a.b' is not a model name (1-100 letters, digits, '_' or '-'). Valid forms: \
predict:<model>, predict:*, batch:<model>, batch:*, catalogue:read, admin
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    scopes = [_validate(item.strip() if isinstance(item, str) else item) for item in items]
    scopes = [scope for scope in scopes if scope]
    if not scopes:
        raise InvalidScopeError(f"no scopes given: name at least one of {_forms()}")
    return tuple(dict.fromkeys(scopes))


def _validate(scope: object) -> str:
    if not isinstance(scope, str):
        raise InvalidScopeError(f"a scope must be a string, got {scope!r}. {_forms()}")
    if scope in ("", ADMIN, CATALOGUE_READ):
        return scope
    kind, sep, model = scope.partition(":")
    if not sep or kind not in _PER_MODEL:
        raise InvalidScopeError(f"scope {scope!r} is not valid: unknown kind. {_forms()}")
    if model != "*" and not MODEL_NAME.fullmatch(model):
        raise InvalidScopeError(
            f"scope {scope!r} is not valid: {model!r} is not a model name "
            f"(1-100 letters, digits, '_' or '-'). {_forms()}"
        )
    return scope


def _forms() -> str:
    return "Valid forms: " + ", ".join(SCOPE_FORMS)


def allows(scopes: Iterable[str], wanted: str) -> bool:
    """Whether ``scopes`` grant ``wanted``: ``admin`` grants everything, ``predict:*`` and
    ``batch:*`` every model, anything else only itself.

    >>> allows(("predict:*",), "predict:churn"), allows(("predict:*",), "batch:churn")
    (True, False)
    >>> allows(("admin",), "catalogue:read"), allows(("predict:churn",), "predict:iris")
    (True, False)
    """
    granted = set(scopes)
    if ADMIN in granted or wanted in granted:
        return True
    kind, sep, _ = wanted.partition(":")
    return bool(sep) and kind in _PER_MODEL and f"{kind}:*" in granted

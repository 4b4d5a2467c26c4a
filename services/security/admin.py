"""Kafka glue: SCRAM users and ACLs through the admin client (confluent-kafka).

Both changes need ALTER on the cluster (a super user, such as the local broker's
``admin``); listing ACLs needs DESCRIBE on the cluster. Kafka errors are translated here
into :class:`~services.security.SecurityAdminError` saying what to check.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, Final, Literal, cast

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from services.security._errors import InvalidUserError, SecurityAdminError
from services.security.acls import AclSpec, PatternKind, ResourceKind

__all__ = [
    "MECHANISMS",
    "add_user",
    "generate_password",
    "grant",
    "list_acls",
    "list_users",
    "to_binding",
]

MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512")
USER_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ITERATIONS: Final = 8192  # Kafka's own kafka-configs.sh default for SCRAM-SHA-*
# ACLs call the cluster CLUSTER; confluent-kafka calls the resource BROKER
_RESOURCE: Final = {"CLUSTER": ResourceType.BROKER}
NEEDS_ADMIN: Final = (
    "use a super user's credentials (MODELSTREAM_KAFKA_USERNAME/_PASSWORD; locally the "
    "`export` line of `modelstream kafka start --secure`)"
)


def generate_password() -> str:
    """A random password: 32 URL-safe characters, safe in JAAS and shell lines."""
    return secrets.token_urlsafe(24)


def check_user(name: str, password: str | None = None) -> str:
    """``name`` if it can be a SCRAM user and ACL principal.

    >>> check_user("scorer-0")
    'scorer-0'
    >>> check_user("a=b")
    Traceback (most recent call last):
    ...
    services.security._errors.InvalidUserError: user name 'a=b' is not valid: use 1-64 \
letters, digits, '.', '_' or '-'
    """
    if not USER_NAME.match(name):
        raise InvalidUserError(
            f"user name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-'"
        )
    if password is not None and len(password) < 8:
        raise InvalidUserError("the password is too short: use at least 8 characters")
    return name


def add_user(
    admin: AdminClient, name: str, password: str, mechanism: str = "SCRAM-SHA-256",
    *, timeout: float = 30.0,
) -> None:  # fmt: skip
    """Create ``name`` (or set its password) for ``mechanism``; idempotent. Returns once
    the broker knows the user (it applies the change a moment after accepting it).

    One mechanism per request: the broker refuses two changes of one user in a request.
    """
    check_user(name, password)
    if mechanism not in MECHANISMS:
        raise InvalidUserError(
            f"mechanism {mechanism!r} is not SCRAM: use {' or '.join(MECHANISMS)}"
        )
    info = ScramCredentialInfo(ScramMechanism[mechanism.replace("-", "_")], ITERATIONS)
    upsert = UserScramCredentialUpsertion(name, info, password.encode())
    futures = admin.alter_user_scram_credentials([upsert], request_timeout=timeout)
    _wait(futures[name], f"create the {mechanism} user {name!r}")

    def known() -> bool:
        return mechanism in list_users(admin, timeout=timeout).get(name, [])

    _until(known, timeout, f"the {mechanism} user {name!r}")


def list_users(admin: AdminClient, *, timeout: float = 30.0) -> dict[str, list[str]]:
    """``user -> [mechanism, ...]`` of every SCRAM user."""
    future = admin.describe_user_scram_credentials(request_timeout=timeout)
    found = _wait(cast("Future[Any]", future), "list the SCRAM users")
    return {
        user: sorted(
            str(info.mechanism.name).replace("_", "-") for info in d.scram_credential_infos
        )
        for user, d in found.items()
    }


def to_binding(spec: AclSpec) -> AclBinding:
    """The confluent-kafka binding of one spec."""
    resource = _RESOURCE.get(spec.resource) or ResourceType[spec.resource]
    return AclBinding(
        resource, spec.name, ResourcePatternType[spec.pattern], spec.principal, spec.host,
        AclOperation[spec.operation], AclPermissionType[spec.permission],
    )  # fmt: skip


def from_binding(binding: AclBinding) -> AclSpec:
    """The spec of one binding the cluster returned (``why`` is unknown: empty)."""
    resource = _name(binding.restype)
    return AclSpec(
        str(binding.principal), _name(binding.operation),
        cast("ResourceKind", "CLUSTER" if resource == "BROKER" else resource),
        str(binding.name), cast("PatternKind", _name(binding.resource_pattern_type)),
        permission=cast("Literal['ALLOW', 'DENY']", _name(binding.permission_type)),
        host=str(binding.host),
    )  # fmt: skip


def _name(value: object) -> str:
    """An enum member's name (the stubs also allow the raw str or int)."""
    return str(getattr(value, "name", value))


def grant(admin: AdminClient, specs: Iterable[AclSpec], *, timeout: float = 30.0) -> int:
    """Create these ACLs (existing ones are kept as they are); returns how many. Returns
    once the broker enforces them (it applies them a moment after accepting them)."""
    bindings = list(dict.fromkeys(to_binding(spec) for spec in specs))
    if not bindings:
        return 0
    for binding, future in admin.create_acls(bindings, request_timeout=timeout).items():
        what = f"grant {_name(binding.operation)} on {_name(binding.restype)} {binding.name}"
        _wait(future, what)
    wanted = {from_binding(binding) for binding in bindings}
    principals = {spec.principal for spec in wanted}

    def applied() -> bool:
        return wanted <= {s for p in principals for s in list_acls(admin, p, timeout=timeout)}

    _until(applied, timeout, f"{len(wanted)} ACLs")
    return len(bindings)


def list_acls(
    admin: AdminClient, principal: str | None = None, *, timeout: float = 30.0
) -> list[AclSpec]:
    """Every ACL of the cluster (or of ``principal``), sorted by principal and resource."""
    query = AclBindingFilter(  # None: any name, principal, host (the stubs say str)
        ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,  # type: ignore[arg-type]
        AclOperation.ANY, AclPermissionType.ANY,
    )  # fmt: skip
    found = _wait(admin.describe_acls(query, request_timeout=timeout), "list the ACLs")
    specs = [from_binding(binding) for binding in found]
    return sorted(specs, key=lambda s: (s.principal, s.resource, s.name, s.operation))


def _until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SecurityAdminError(
                f"the cluster accepted {what} but the broker did not apply them within "
                f"{timeout:g}s: check the broker's log, then retry (the change is idempotent)"
            )
        time.sleep(0.05)


def _wait(future: Future[Any], what: str) -> Any:
    try:
        return future.result()
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        raise SecurityAdminError(f"could not {what}: {error.str()}; {_hint(error)}") from exc


def _hint(error: KafkaError) -> str:
    """What to do about an admin request the cluster refused."""
    if "AUTHORIZATION" in error.name():
        return NEEDS_ADMIN
    if error.code() == KafkaError.SECURITY_DISABLED or "No Authorizer" in error.str():
        return (
            "this broker has no security (no authorizer, no SASL): users and ACLs need one. "
            "Locally: `modelstream kafka stop`, then `modelstream kafka start --secure`"
        )
    return "check the broker is reachable"

"""The gateway's client registry: who may call, with which token, for what, how much.

A client is a name, an API token, scopes and :class:`~services.gateway.policy.Limits`.
The token, ``ms_<token_id>_<secret>``, is shown once when the client is created or its
token rotated; only its SHA-256 is kept (why a fast hash is right for 256-bit random
tokens, unlike passwords: see ``_token.py``). Scopes are exact strings::

    predict:<model>  predict:*  batch:<model>  batch:*  catalogue:read  admin

Topic (JSON values, orjson)::

    <prefix>._clients   compacted, 1 partition
        <name>          ClientRecord: token id and digest, scopes, limits, who and when;
                        a revoked client keeps its record with revoked_at set

:class:`ClientStore` writes (the CLI, admin tools); :class:`ClientDirectory` follows the
topic live in a daemon thread, so every gateway sees a revoked token stop working within
moments, and answers :meth:`~ClientDirectory.authenticate` without touching Kafka::

    store = ClientStore(kafka, topics)
    record, token = store.create("billing", "predict:churn,catalogue:read", Limits(quota=10_000))

    directory = ClientDirectory(kafka, topics)
    directory.start()
    directory.sync()
    client = directory.authenticate(token)
    if client is None or not client.allows("predict:churn"):
        ...  # 401 / 403

Security: a token is as good as its holder's login. Grant ``Write`` on
``<prefix>._clients`` to the admins' principals only; gateways need ``Read``/``Describe``.
The digests on the topic do not give tokens away, but who may call what does: do not
grant ``Read`` more widely than needed.

Errors (all :class:`ClientError`)::

    ClientError
    ├── InvalidClientError           bad client name or record field (also a ValueError)
    ├── InvalidScopeError            a scope is not one of the valid forms (also a ValueError)
    ├── ClientExistsError            an active client of that name exists already
    ├── UnknownClientError           no active client of that name
    └── ClientStoreUnavailableError  the clients topic could not be read or written in time
"""

from services.gateway.clients._directory import ClientDirectory
from services.gateway.clients._errors import (
    ClientError,
    ClientExistsError,
    ClientStoreUnavailableError,
    InvalidClientError,
    InvalidScopeError,
    UnknownClientError,
)
from services.gateway.clients._record import ClientRecord, validate_client_name
from services.gateway.clients._scopes import SCOPE_FORMS, parse_scopes
from services.gateway.clients._store import ClientStore
from services.gateway.clients._token import new_token, token_digest, token_id_of
from services.gateway.policy import Limits

__all__ = [
    "SCOPE_FORMS",
    "ClientDirectory",
    "ClientError",
    "ClientExistsError",
    "ClientRecord",
    "ClientStore",
    "ClientStoreUnavailableError",
    "InvalidClientError",
    "InvalidScopeError",
    "Limits",
    "UnknownClientError",
    "new_token",
    "parse_scopes",
    "token_digest",
    "token_id_of",
    "validate_client_name",
]

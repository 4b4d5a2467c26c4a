"""Kafka security for modelstream: who may read and write which topics.

Each part of modelstream (scorer, monitor, sink, registry, gateway, an app producing
requests) runs as its own SASL/SCRAM principal with exactly the ACLs its code needs;
:func:`acls_for` says which, as data (see ``docs/security.md`` for the table)::

    specs = acls_for("producer", "modelstream", "User:shop", models=["churn"])
    admin = make_admin(kafka)                 # as a super user
    add_user(admin, "shop", password, "SCRAM-SHA-256")
    grant(admin, specs)

Locally, ``modelstream kafka start --secure`` runs the broker with SASL and the
StandardAuthorizer (:mod:`services.security.local`), and ``modelstream kafka users add``
creates a user with a role's ACLs.

Errors::

    KafkaSecurityError       root: catch this to handle any security failure
    ├── RoleError            an unknown role, or options the role does not take
    ├── InvalidUserError     a user name or password SCRAM and ACLs cannot carry
    ├── SecurityModeError    a local state dir's security is not the one asked for
    └── SecurityAdminError   the cluster refused or failed a user or ACL change
"""

from services.security._errors import (
    InvalidUserError,
    KafkaSecurityError,
    RoleError,
    SecurityAdminError,
    SecurityModeError,
)
from services.security.acls import ROLES, AclSpec, Role, acls_for, table_rows
from services.security.admin import (
    MECHANISMS,
    add_user,
    generate_password,
    grant,
    list_acls,
    list_users,
    to_binding,
)
from services.security.local import AdminCredentials, user_exports

__all__ = [
    "MECHANISMS",
    "ROLES",
    "AclSpec",
    "AdminCredentials",
    "InvalidUserError",
    "KafkaSecurityError",
    "Role",
    "RoleError",
    "SecurityAdminError",
    "SecurityModeError",
    "acls_for",
    "add_user",
    "generate_password",
    "grant",
    "list_acls",
    "list_users",
    "table_rows",
    "to_binding",
    "user_exports",
]

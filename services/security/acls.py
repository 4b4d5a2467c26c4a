"""Which Kafka ACLs each part of modelstream needs, as data (pure: no broker, no I/O).

Every rule is derived from what the part's code does: which topics it consumes (and
whether by name or by pattern), which it produces to, which it creates, its consumer
group and its transactional id. Kafka's own rules shape the answers:

- READ, WRITE, DELETE and ALTER imply DESCRIBE, so DESCRIBE is listed only where nothing
  implies it (a topic a part must *see* to know it exists, a group id used by an
  assign-only consumer, whose client still looks its coordinator up).
- ACL patterns match a literal name or a name *prefix*, never a suffix: a part that
  subscribes to ``^<prefix>\\.[^.]+\\.requests$`` needs prefixed READ on ``<prefix>.``
  unless it is told its models (``models=[...]``: literal READ per model topic).
- Parts that write on behalf of outsiders (``gateway``, ``producer``) must name their
  models: a prefixed WRITE on ``<prefix>.`` would let them rewrite the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.deployment import global_needs
from services.security._errors import RoleError
from streams.kafka import Topics, validate_model_name

__all__ = ["ROLES", "AclSpec", "Role", "acls_for", "permits", "table_rows"]

ResourceKind = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER"]
PatternKind = Literal["LITERAL", "PREFIXED"]
LITERAL: PatternKind = "LITERAL"
PREFIXED: PatternKind = "PREFIXED"
IMPLY_DESCRIBE = frozenset({"READ", "WRITE", "DELETE", "ALTER", "DESCRIBE"})
# group ids of assign-only consumers, from the code that creates them
REGISTRY_VIEW_GROUP = "{prefix}._registry-view"  # services/registry/_view.py
MONITOR_RESTORE_GROUP = "{prefix}.monitor.restore"  # streams/monitoring/stream.py


@dataclass(frozen=True)
class AclSpec:
    """One rule: ``principal`` may (ALLOW) or may not (DENY) do ``operation`` on the
    resources of type ``resource`` whose name is ``name`` (LITERAL) or starts with it
    (PREFIXED). ``why`` says which code needs it; it is not part of the rule."""

    principal: str
    operation: str
    resource: ResourceKind
    name: str
    pattern: PatternKind = LITERAL
    why: str = field(default="", compare=False)
    permission: Literal["ALLOW", "DENY"] = "ALLOW"
    host: str = "*"

    def covers(self, resource: ResourceKind, name: str) -> bool:
        """Whether this rule's pattern matches the resource ``name``."""
        if resource != self.resource:
            return False
        return name == self.name if self.pattern == LITERAL else name.startswith(self.name)


@dataclass
class _Rules:
    """Collects the specs of one principal, in the order they are explained."""

    principal: str
    specs: list[AclSpec] = field(default_factory=list)

    def add(
        self,
        resource: ResourceKind,
        name: str,
        ops: Iterable[str],
        why: str,
        pattern: PatternKind = LITERAL,
    ) -> None:
        for op in ops:
            self.specs.append(AclSpec(self.principal, op, resource, name, pattern, why))

    def topic(self, name: str, *ops: str, why: str, pattern: PatternKind = LITERAL) -> None:
        self.add("TOPIC", name, ops, why, pattern)

    def deny(self, name: str, *ops: str, why: str, pattern: PatternKind = LITERAL) -> None:
        """An explicit DENY: Kafka lets it win over every ALLOW, present or future."""
        for op in ops:
            self.specs.append(AclSpec(self.principal, op, "TOPIC", name, pattern, why, "DENY"))

    def sees(self, topic: str) -> bool:
        return any(
            s.permission == "ALLOW" and s.operation in IMPLY_DESCRIBE and s.covers("TOPIC", topic)
            for s in self.specs
        )

    def ensures(self, topics: Iterable[str], why: str, pattern: PatternKind = LITERAL) -> None:
        """``ensure_topics``: lists topics (DESCRIBE, unless implied) then creates the
        missing ones (CREATE)."""
        for name in topics:
            if not self.sees(name):
                self.topic(name, "DESCRIBE", why=f"{why}: must see it to know it exists")
            if not self.may("CREATE", name):
                self.topic(name, "CREATE", why=f"{why}: creates it when missing", pattern=pattern)

    def may(self, operation: str, topic: str) -> bool:
        return permits(self.specs, operation, "TOPIC", topic)


@dataclass(frozen=True)
class _Ask:
    """The arguments of one :func:`acls_for` call."""

    topics: Topics
    principal: str
    models: tuple[str, ...] | None
    instance: str | None

    @property
    def prefix(self) -> str:
        return self.topics.prefix

    def per_model(self, kinds: Sequence[str]) -> list[tuple[str, PatternKind]]:
        """The model topics of ``kinds``: literal per model, or the deployment prefix."""
        if self.models is None:
            return [(f"{self.prefix}.", PREFIXED)]
        return [(self.topics.model_topic(m, kind), LITERAL) for m in self.models for kind in kinds]

    def per_instance(self, base: str) -> tuple[str, PatternKind]:
        """``<base>.<instance>``, or every instance (prefixed ``<base>.``)."""
        if self.instance is None:
            return f"{base}.", PREFIXED
        return f"{base}.{self.instance}", LITERAL

    @property
    def app(self) -> str:
        return self.instance or self.principal.split(":", 1)[-1]


def _registry_reader(rules: _Rules, ask: _Ask, who: str) -> None:
    rules.topic(ask.topics.models, "READ", why=f"{who} reads model versions (RegistryView)")
    rules.topic(ask.topics.routing, "READ", why=f"{who} follows routing (RegistryView)")
    rules.add(
        "GROUP",
        REGISTRY_VIEW_GROUP.format(prefix=ask.prefix),
        ["DESCRIBE"],
        "RegistryView's assign-only consumer looks its group coordinator up",
    )


def _needs(part: str, ask: _Ask) -> list[str]:
    """The global topics ``part`` creates at start (:mod:`services.deployment`)."""
    return [spec.name for spec in global_needs(part, ask.topics, 1)]


def _transactional(rules: _Rules, base: str, ask: _Ask, who: str) -> None:
    name, pattern = ask.per_instance(base)
    why = f"{who}'s exactly-once producer (one transactional id per instance)"
    rules.add("TRANSACTIONAL_ID", name, ["WRITE", "DESCRIBE"], why, pattern)


def _scorer(rules: _Rules, ask: _Ask) -> None:
    for name, pattern in ask.per_model(["requests"]):
        rules.topic(
            name,
            "READ",
            pattern=pattern,
            why="consumes requests (pattern "
            "subscription unless --model: ACLs cannot match a suffix)",
        )
    _registry_reader(rules, ask, "the registry follower")
    everything = f"{ask.prefix}."
    rules.topic(
        everything,
        "WRITE",
        pattern=PREFIXED,
        why="replies, predictions, DLQ of any model, and any reply-to topic",
    )
    rules.topic(
        everything,
        "CREATE",
        pattern=PREFIXED,
        why="creates a model's topic set when its first request arrives",
    )
    rules.topic(
        everything,
        "DESCRIBE_CONFIGS",
        pattern=PREFIXED,
        why="reads each output topic's max.message.bytes: an output too large for it goes "
        "to the DLQ instead of aborting the batch",
    )
    rules.deny(
        f"{ask.prefix}._",
        "WRITE",
        pattern=PREFIXED,
        why="internal topics (registry, routing, clients, monitor state, re-drives) belong "
        "to their owners: the prefixed WRITE above must not reach them",
    )
    rules.ensures(_needs("scorer", ask), "ensures the registry topics at start")
    rules.add(
        "GROUP",
        f"{ask.prefix}.scorer",
        ["READ"],
        "joins the scorer group; commits offsets inside its transactions",
    )
    _transactional(rules, f"{ask.prefix}.scorer", ask, "the scorer")


def _monitor(rules: _Rules, ask: _Ask) -> None:
    t = ask.topics
    for name, pattern in ask.per_model(["predictions", "feedback", "dlq"]):
        rules.topic(
            name,
            "READ",
            pattern=pattern,
            why="consumes predictions, feedback and "
            "DLQ entries (pattern subscription unless --model)",
        )
    _registry_reader(rules, ask, "the monitor")
    rules.topic(t.monitor_state, "READ", "WRITE", why="restores, then snapshots, its state")
    rules.topic(t.metrics, "WRITE", why="metric points")
    rules.topic(t.alerts, "WRITE", why="alerts")
    rules.topic(t.summaries, "WRITE", why="additive window summaries")
    rules.ensures(_needs("monitor", ask), "ensures the topics it needs at start")
    rules.add(
        "GROUP",
        f"{ask.prefix}.monitor",
        ["READ"],
        "joins the monitor group; commits offsets inside its transactions",
    )
    rules.add(
        "GROUP",
        MONITOR_RESTORE_GROUP.format(prefix=ask.prefix),
        ["DESCRIBE"],
        "the assign-only state restorer looks its group coordinator up",
    )
    _transactional(rules, f"{ask.prefix}.monitor", ask, "the monitor")


def _merger(rules: _Rules, ask: _Ask) -> None:
    t = ask.topics
    _registry_reader(rules, ask, "the merger")
    rules.topic(t.summaries, "READ", why="merges the monitors' window summaries")
    rules.topic(t.metrics, "WRITE", why="per-model metric points")
    rules.topic(t.alerts, "WRITE", why="per-model alerts")
    internal = f"{ask.prefix}.merger-"
    rules.topic(
        internal, "READ", "WRITE", "CREATE", pattern=PREFIXED,
        why="faust's table changelogs and leader topic (created at start)",
    )  # fmt: skip
    rules.ensures(_needs("merger", ask), "ensures the topics it needs at start")
    rules.add("GROUP", f"{ask.prefix}.merger", ["READ"], "joins the merger group (faust)")
    rules.add(
        "TRANSACTIONAL_ID", internal, ["WRITE", "DESCRIBE"],
        "faust's exactly-once producers, one per input partition", PREFIXED,
    )  # fmt: skip


def _sink(rules: _Rules, ask: _Ask) -> None:
    t = ask.topics
    for name, pattern in ask.per_model(["predictions", "feedback", "dlq"]):
        rules.topic(
            name,
            "READ",
            pattern=pattern,
            why="lands predictions, feedback and DLQ entries (pattern subscription unless --model)",
        )
    for name in (t.metrics, t.alerts, t.summaries, t.model_events):
        rules.topic(name, "READ", why="lands metrics, alerts, window summaries and model events")
    rules.topic(
        t.models,
        "READ",
        why="lands the reference profiles of model versions (skips the artifact chunks)",
    )
    rules.add(
        "GROUP",
        f"{ask.prefix}.sink",
        ["READ"],
        "joins the sink group; announces and commits batches (offset metadata)",
    )


def _registry(rules: _Rules, ask: _Ask) -> None:
    t = ask.topics
    _registry_reader(rules, ask, "the registry")
    for name in (t.models, t.routing, t.model_events):
        rules.topic(
            name, "WRITE", why="one transaction per change: chunks, metadata, routing, audit event"
        )
    rules.topic(t.model_events, "READ", why="`models show` lists a model's latest events")
    everything = f"{ask.prefix}."
    why = "`models register` creates the model's topic set"
    rules.topic(everything, "CREATE", pattern=PREFIXED, why=why)
    rules.ensures([s.name for s in t.global_specs(1)], "`models register` ensures it")
    rules.add(
        "TRANSACTIONAL_ID",
        f"{ask.prefix}._registry.",
        ["WRITE", "DESCRIBE"],
        "one transactional id per model fences concurrent writers",
        PREFIXED,
    )


def _gateway(rules: _Rules, ask: _Ask) -> None:
    t = ask.topics
    for model in ask.models or ():
        rules.topic(t.requests(model), "WRITE", why="publishes the requests of its models")
        rules.topic(t.dlq(model), "WRITE", why="records the requests it refuses")
        rules.topic(t.predictions(model), "WRITE", why="logs what it answers (direct serving)")
    if ask.instance is None:
        reply, pattern = f"{ask.prefix}.gateway-", PREFIXED
        journal = reply
    else:
        reply, pattern = t.model_topic(f"gateway-{ask.instance}", "replies"), LITERAL
        journal = t.model_topic(f"gateway-{ask.instance}", "journal")
    rules.topic(reply, "READ", pattern=pattern, why="its reply-to topic: the scorer's replies")
    why = "its journal: answers before they are sent, read back into the logs"
    rules.topic(journal, "READ", "WRITE", pattern=pattern, why=why)
    rules.topic(clients_topic(ask.prefix), "READ", why="API clients: token digests, scopes")
    _registry_reader(rules, ask, "the model directory")
    rules.ensures(_needs("gateway", ask), "ensures the topics it follows at start")
    rules.ensures([reply], "ensures its reply topic", pattern)
    if journal != reply:
        rules.ensures([journal], "ensures its journal")
    rules.ensures([clients_topic(ask.prefix)], "ensures the clients topic")
    names = [s.name for m in ask.models or () for s in t.model_specs(m, 1)]
    rules.ensures(names, "ensures a model's topic set on its first request")
    reader = f"{ask.prefix}.gateway-{ask.instance or ''}"
    why = "the assign-only reply reader looks its group coordinator up"
    rules.add("GROUP", reader, ["DESCRIBE"], why, pattern)
    why = "the assign-only client directory readers look their coordinator up"
    rules.add("GROUP", f"{clients_topic(ask.prefix)}-directory", ["DESCRIBE"], why, PREFIXED)
    why = "the journal writer commits the journal offset inside its transactions"
    rules.add("GROUP", f"{journal}.writer" if pattern == LITERAL else journal, ["READ"], why,
              pattern)  # fmt: skip
    why = "the journal writer's transactional id fences an earlier process of the instance"
    rules.add("TRANSACTIONAL_ID", journal, ["WRITE", "DESCRIBE"], why, pattern)


def _producer(rules: _Rules, ask: _Ask) -> None:
    t = ask.topics
    for model in ask.models or ():
        rules.topic(t.requests(model), "WRITE", why="sends this model's requests")
        rules.topic(t.replies(model), "READ", why="reads this model's replies (all callers')")
    rules.add(
        "GROUP",
        f"{ask.prefix}.{ask.app}",
        ["READ"],
        "the consumer group(s) it reads replies with",
        PREFIXED,
    )


def _batch(rules: _Rules, ask: _Ask) -> None:
    t = ask.topics
    _registry_reader(rules, ask, "batch scoring")
    for model in ask.models or ():
        rules.topic(t.predictions(model), "WRITE", why="logs each scored row (source=batch)")
        rules.topic(t.dlq(model), "WRITE", why="records each refused row")
        base = f"{ask.prefix}._batch.{model}"
        why = "one transaction per chunk: its log records and its progress marker"
        rules.add("TRANSACTIONAL_ID", base, ["WRITE", "DESCRIBE"], why)
        why = "the progress marker of a run: a committed offset, so a rerun logs once"
        rules.add("GROUP", f"{base}.", ["READ"], why, PREFIXED)
    names = [s.name for m in ask.models or () for s in t.model_specs(m, 1)]
    rules.ensures(names, "ensures the model's topic set")


def _labels(rules: _Rules, ask: _Ask) -> None:
    for model in ask.models or ():
        why = "sends ground truth for this model's requests (what the gate counts)"
        rules.topic(ask.topics.feedback(model), "WRITE", why=why)


def _clients_admin(rules: _Rules, ask: _Ask) -> None:
    name = clients_topic(ask.prefix)
    rules.topic(name, "READ", "WRITE", why="reads the clients, writes the changed one")
    rules.ensures([name], "ensures the clients topic")
    why = "the assign-only reader looks its group coordinator up"
    rules.add("GROUP", f"{name}-store", ["DESCRIBE"], why)


def _dlq(rules: _Rules, ask: _Ask) -> None:
    for model in ask.models or ():
        rules.topic(ask.topics.dlq(model), "READ", why="lists and shows DLQ entries")
        rules.topic(ask.topics.requests(model), "WRITE",
                    why="re-drives entries to the model's requests topic")  # fmt: skip
    redrives = f"{ask.prefix}._redrives"
    rules.topic(redrives, "READ", "WRITE",
                why="records each re-drive (key: the DLQ position), reads them back")  # fmt: skip
    rules.ensures([redrives], "ensures the re-drive records topic")
    why = "one transactional id fences concurrent re-drives: sent and recorded at once"
    rules.add("TRANSACTIONAL_ID", f"{ask.prefix}._redrive", ["WRITE", "DESCRIBE"], why)
    why = "the assign-only DLQ reader looks its group coordinator up"
    rules.add("GROUP", f"{ask.prefix}._dlq-reader", ["DESCRIBE"], why)


def clients_topic(prefix: str) -> str:
    """The gateway's compacted client registry topic."""
    return f"{prefix}._clients"


@dataclass(frozen=True)
class Role:
    """A part of modelstream and what it may be told."""

    build: Callable[[_Rules, _Ask], None]
    summary: str
    models: Literal["required", "optional", "none"]
    instance: bool


ROLES: dict[str, Role] = {
    "scorer": Role(_scorer, "modelstream run scorer", "optional", True),
    "monitor": Role(_monitor, "modelstream run monitor", "optional", True),
    "merger": Role(_merger, "modelstream run merger", "none", False),
    "sink": Role(_sink, "modelstream run sink", "optional", False),
    "registry": Role(
        _registry,
        "modelstream models (register, promote, ...), retrain, run lifecycle",
        "none",
        False,
    ),
    "gateway": Role(_gateway, "modelstream run gateway", "required", True),
    "producer": Role(_producer, "an app: requests of some models, their replies", "required", True),
    "clients-admin": Role(_clients_admin, "modelstream clients", "none", False),
    "dlq": Role(_dlq, "modelstream dlq (list, show, redrive): an operator", "required", False),
    "batch": Role(_batch, "modelstream score: files or SQL scored and logged", "required", False),
    "labels": Role(
        _labels, "a label source: feedback (ground truth) of its models", "required", False
    ),
}


def acls_for(
    role: str,
    prefix: str,
    principal: str,
    models: Sequence[str] | None = None,
    instance: str | None = None,
) -> list[AclSpec]:
    """The ACLs ``principal`` needs to run ``role`` in the deployment ``prefix``.

    ``models``: only these models (literal topic ACLs); None: every model (prefixed).
    ``instance``: one instance's transactional id / reply topic; None: any instance.

    Examples
    --------
    >>> specs = acls_for("producer", "ms", "User:app", models=["iris"])
    >>> [(s.operation, s.resource, s.name, s.pattern) for s in specs]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('WRITE', 'TOPIC', 'ms.iris.requests', 'LITERAL'),
     ('READ', 'TOPIC', 'ms.iris.replies', 'LITERAL'),
     ('READ', 'GROUP', 'ms.app', 'PREFIXED')]
    >>> acls_for("gateway", "ms", "User:gw")
    Traceback (most recent call last):
    ...
    services.security._errors.RoleError: role 'gateway' needs --model: ...
    """
    found = ROLES.get(role)
    if found is None:
        raise RoleError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    ask = _Ask(
        Topics(prefix), principal, _models(role, found, models), _instance(role, found, instance)
    )
    rules = _Rules(principal)
    found.build(rules, ask)
    return rules.specs


def _models(role: str, found: Role, models: Sequence[str] | None) -> tuple[str, ...] | None:
    if found.models == "required" and not models:
        raise RoleError(
            f"role {role!r} needs --model: it writes on behalf of others, and a prefixed "
            "WRITE on the deployment would let it rewrite the registry; name every model"
        )
    if found.models == "none" and models:
        raise RoleError(f"role {role!r} is not per model: drop --model")
    return tuple(validate_model_name(m) for m in models) if models else None


def _instance(role: str, found: Role, instance: str | None) -> str | None:
    if instance is not None and not found.instance:
        raise RoleError(f"role {role!r} has no instances: drop --instance")
    if instance is not None:
        validate_model_name(instance)  # it becomes part of topic and group names
    return instance


def permits(specs: Iterable[AclSpec], operation: str, resource: ResourceKind, name: str) -> bool:
    """Whether ``specs`` let their principal do ``operation`` on ``name``, as the broker
    decides: a matching DENY wins over any ALLOW; READ/WRITE/DELETE/ALTER imply DESCRIBE.

    >>> specs = acls_for("scorer", "ms", "User:s")
    >>> [permits(specs, "WRITE", "TOPIC", name) for name in ("ms.a.replies", "ms._models")]
    [True, False]
    """
    ops = IMPLY_DESCRIBE if operation == "DESCRIBE" else frozenset({operation})
    matching = [s for s in specs if s.covers(resource, name)]
    if any(s.permission == "DENY" and s.operation == operation for s in matching):
        return False
    return any(s.permission == "ALLOW" and s.operation in ops for s in matching)


def table_rows(specs: Iterable[AclSpec]) -> list[tuple[str, str, str, str, str]]:
    """``(resource, pattern, name, operation, why)`` rows, for tables and docs.

    >>> table_rows(acls_for("sink", "ms", "User:s", models=["a"]))[0]
    ('TOPIC', 'LITERAL', 'ms.a.predictions', 'READ', 'lands predictions, feedback and DLQ \
entries (pattern subscription unless --model)')
    """
    return [(s.resource, s.pattern, s.name, _operation(s), s.why) for s in specs]


def _operation(spec: AclSpec) -> str:
    """``WRITE``, or ``DENY WRITE`` for a deny rule."""
    return spec.operation if spec.permission == "ALLOW" else f"DENY {spec.operation}"

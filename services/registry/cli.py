"""``modelstream models``: register model versions and route traffic between them.

Every command reads :class:`~services.settings.Settings` once. A failure prints one line
saying what went wrong and what to do next, and exits 1.

``register`` signs the version with the settings' signing key (``MODELSTREAM_SIGNING_KEY``,
else ``<data dir>/keys/registry.key``, created on first use); :func:`trust_from` and
:func:`signer_from` turn settings into what the library takes, for every process edge.
"""

from __future__ import annotations

import getpass
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from services.clikit import human_size, settings_or_exit
from services.localstack import LocalStackError
from services.registry._artifact import format_for
from services.registry._errors import InvalidSchemaError, RegistryError
from services.registry._events import ModelEvent, recent_events
from services.registry._model import ModelVersion, Routing
from services.registry._registry import Registry
from services.registry._signing import (
    KEY_FILE,
    Signature,
    Signer,
    Trust,
    load_public_keys,
    local_signer,
)
from services.runtime import kafka_config, topics
from services.settings import Settings
from streams.kafka import KafkaSetupError, ensure_topics, make_admin

__all__ = ["models_app", "open_registry", "signer_from", "trust_from"]

models_app = typer.Typer(
    no_args_is_help=True,
    help="The model registry: register versions, promote, shadow, back up, roll back.",
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
log = logging.getLogger("modelstream.registry")

Actor = Annotated[str, typer.Option(help="Who makes the change (default: your user name)")]
Reason = Annotated[str, typer.Option(help="Why, for the audit trail")]
Name = Annotated[str, typer.Argument(help="Model name")]


def parse_version(text: str) -> int:
    """A version as the CLI accepts it: ``2`` or ``v2`` (``models list`` prints ``v2``;
    the warehouse stores the string ``'2'``).

    >>> parse_version("v2"), parse_version("2"), parse_version(" V10 ")
    (2, 2, 10)
    >>> try:
    ...     parse_version("two")
    ... except typer.BadParameter as exc:
    ...     print(exc)
    'two' is not a model version: give a number such as 2 or v2
    """
    digits = text.strip().lower().removeprefix("v")
    if not digits.isdigit() or int(digits) < 1:
        raise typer.BadParameter(f"{text!r} is not a model version: give a number such as 2 or v2")
    return int(digits)


Version = Annotated[
    int, typer.Argument(help="Model version: 2 or v2", parser=parse_version, metavar="VERSION")
]


def signer_from(settings: Settings) -> Signer:
    """The writer's signing key: ``MODELSTREAM_SIGNING_KEY`` (must exist), else the data
    dir's, created on first use so a local registry works with no setup."""
    if settings.signing_key is not None:
        return local_signer(settings.signing_key, create=False)
    return local_signer(settings.keys_dir / KEY_FILE, create=True)


def trust_from(settings: Settings) -> Trust:
    """The versions a serving process may load: signed by a key in
    ``MODELSTREAM_TRUSTED_KEYS`` (default: the data dir's keys, which may not exist yet),
    or anything with ``MODELSTREAM_ALLOW_UNSIGNED=true``."""
    defaulted = not settings.trusted_keys.strip()
    keys = load_public_keys(settings.trusted_key_paths, missing_ok=defaulted)
    trust = Trust.of(*keys, allow_unsigned=settings.allow_unsigned,
                     sources=settings.trusted_key_paths)  # fmt: skip
    where = ", ".join(str(path) for path in settings.trusted_key_paths)
    log.info("loading model versions signed by keys %s (from %s)%s",
             ", ".join(sorted(trust.keys)) or "none yet", where,
             "; unsigned versions too (MODELSTREAM_ALLOW_UNSIGNED)" if trust.allow_unsigned
             else "")  # fmt: skip
    return trust


@contextmanager
def _registry(
    actor: str = "", *, create_topics: str | None = None, sign: bool = False
) -> Iterator[Registry]:
    """A registry for this deployment; known failures become one line and exit 1.
    ``create_topics``: a model name whose topic set is created (with the global topics);
    ``sign``: versions it registers are signed (:func:`signer_from`)."""
    settings = settings_or_exit()
    try:
        signer = signer_from(settings) if sign else None
        kafka, names = kafka_config(settings, client_id="modelstream-models"), topics(settings)
        if create_topics is not None:
            partitions = settings.topic_partitions
            specs = names.global_specs(partitions) + names.model_specs(create_topics, partitions)
            ensure_topics(make_admin(kafka), specs)
        actor = actor or getpass.getuser()
        with Registry(kafka, names, actor=actor, timeout=20, signer=signer) as registry:
            yield registry
    except (RegistryError, LocalStackError, KafkaSetupError, OSError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc


open_registry = _registry  # for the commands other packages add to ``models``


@models_app.command("register")
def register(
    name: Name,
    artifact: Annotated[Path, typer.Option(help="Serialised model file (cloudpickle/joblib)")],
    input_schema: Annotated[Path, typer.Option(help="Avro record schema of the input (.avsc)")],
    reference: Annotated[
        Path | None, typer.Option(help="Training data to profile (.parquet or .csv)")
    ] = None,
    role: Annotated[str | None, typer.Option(help="champion, challenger or backup")] = None,
    task: Annotated[
        str | None, typer.Option(help="classification or regression (default: guessed)")
    ] = None,
    sensitive: Annotated[str, typer.Option(help="Sensitive input fields, comma-separated")] = "",
    description: Annotated[str, typer.Option(help="What this version is, what changed")] = "",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="cloudpickle or joblib (default: joblib for *.joblib, else cloudpickle)",
        ),
    ] = None,
    code_version: Annotated[str | None, typer.Option(help="Git sha of the training code")] = None,
    positive_label: Annotated[
        str | None,
        typer.Option(
            help="The class selection rates and fairness count as positive, one of the "
            "model's classes (default: the class reading true, 1 or yes)"
        ),
    ] = None,
    actor: Actor = "",
) -> None:
    """Register an artifact file as the next version of NAME (loads it once to check it:
    register only files you trust)."""
    data = artifact.read_bytes()
    with (
        _registry(actor, create_topics=name, sign=True) as registry,
        _chunk_bar(len(data), registry.chunk_size) as on_progress,
    ):
        version = registry.register_artifact_bytes(
            name, data, _read_schema(input_schema), task=task,
            fmt=fmt or format_for(artifact.suffix),
            reference=None if reference is None else _read_frame(reference),
            sensitive=[item.strip() for item in sensitive.split(",") if item.strip()],
            description=description, code_version=code_version, role=role,
            positive_label=positive_label, on_progress=on_progress,
        )  # fmt: skip
        routing = registry.routing(name)
    role_now = routing.role_of(version.version) if routing else None
    signer_id = registry.signer.key_id if registry.signer else "-"
    positive = "" if version.positive_label is None else f"; positive {version.positive_label!r}"
    console.print(
        f"registered {name} v{version.version} ({role_now or 'no role'}; "
        f"{human_size(version.artifact_size)} in {version.chunk_count} chunks, "
        f"sha256 {version.artifact_sha256[:12]}, signed by key {signer_id}{positive})",
        soft_wrap=True,
        markup=False,
    )
    print(f"version={version.version}")


BAR_FROM_BYTES = 4 * 1024 * 1024  # a smaller artifact is written before a bar would show


def _chunk_bar(
    size: int, chunk_size: int
) -> AbstractContextManager[Callable[[int, int], None] | None]:
    """A bar on stderr over the artifact's bytes the broker acknowledged, chunk by chunk,
    for an artifact of 4 MiB or more on a terminal; otherwise no callback."""
    if size < BAR_FROM_BYTES or not err.is_terminal:
        return nullcontext(None)
    return _bar(size, chunk_size)


@contextmanager
def _bar(size: int, chunk_size: int) -> Iterator[Callable[[int, int], None]]:
    columns = (TextColumn("writing the artifact"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("artifact", total=size)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=size if done == total else done * chunk_size)

        yield advance


def _read_schema(path: Path) -> dict[str, Any]:
    try:
        schema = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidSchemaError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise InvalidSchemaError(f"{path} must hold one Avro record schema (a JSON object)")
    return schema


def _read_frame(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"reference data must be a .parquet or .csv file, got {path.name}")


@models_app.command("list")
def list_models() -> None:
    """Every model with its versions and routing."""
    with _registry() as registry:
        rows = [
            (name, registry.versions(name), registry.routing(name)) for name in registry.models()
        ]
    table = _table("model", "versions", "champion", "challenger", "backup", "updated", "by")
    for name, versions, routing in rows:
        table.add_row(name, str(len(versions)), *_routing_cells(routing))
    console.print(table if rows else "no models registered yet")


def _routing_cells(routing: Routing | None) -> list[str]:
    if routing is None:
        return ["-"] * 5
    challenger = "-"
    if routing.challenger is not None:
        challenger = f"v{routing.challenger} ({routing.shadow_fraction:.0%})"
    updated = routing.updated_at.strftime("%Y-%m-%d %H:%M") if routing.updated_at else "-"
    backup = "-" if routing.backup is None else f"v{routing.backup}"
    return [f"v{routing.champion}", challenger, backup, updated, routing.updated_by]


@models_app.command("show")
def show(
    name: Name,
    events: Annotated[int, typer.Option(help="How many of the latest events to list")] = 10,
) -> None:
    """The routing, policy, versions and latest events (decisions included) of one model."""
    from services.lifecycle import describe_policy

    settings = settings_or_exit()
    with _registry() as registry:
        versions, routing = registry.versions(name), registry.routing(name)
        signatures = {mv.version: registry.view.signature(name, mv.version) for mv in versions}
        policy = registry.view.policy(name)
        trail = recent_events(kafka_config(settings, client_id="modelstream-models"),
                              topics(settings), name, limit=events)  # fmt: skip
    if routing is not None:
        _print_routing(routing)
        history = ", ".join(f"v{v}" for v in routing.previous_champions) or "none"
        _, _, _, updated, by = _routing_cells(routing)
        console.print(f"previous champions: {history}", soft_wrap=True)
        console.print(f"routing updated {updated} by {by}: {routing.reason or '-'}", soft_wrap=True)
    console.print(f"policy: {describe_policy(policy)}", soft_wrap=True, markup=False)
    console.print(_versions_table(versions, routing, signatures))
    console.print(_lineage_table(versions))
    if trail:
        console.print(_events_table(trail))


def _events_table(trail: list[ModelEvent]) -> Table:
    table = _table("when", "version", "action", "by", "why")
    for event in trail:
        table.add_row(event.at.strftime("%Y-%m-%d %H:%M:%S"), f"v{event.version}",
                      event.action, event.actor, Text(event.reason))  # fmt: skip
    return table


def _versions_table(
    versions: list[ModelVersion], routing: Routing | None, signatures: dict[int, Signature | None]
) -> Table:
    table = _table(
        "version", "role", "task", "positive", "created", "author", "size", "sha256", "signed by"
    )
    for mv in versions:
        role = routing.role_of(mv.version) if routing else None
        created = mv.created_at.strftime("%Y-%m-%d %H:%M")
        size, digest = human_size(mv.artifact_size), mv.artifact_sha256[:12]
        signature = signatures.get(mv.version)
        table.add_row(
            f"v{mv.version}", role or "-", mv.task, Text(mv.positive_label or "-"), created,
            mv.author, size, digest, signature.key_id if signature else "unsigned",
        )  # fmt: skip
    return table


def _lineage_table(versions: list[ModelVersion]) -> Table:
    table = _table("version", "training data", "code", "from", "description")
    for mv in versions:
        data = (mv.training_data_fingerprint or "-").removeprefix("sha256:")[:12]
        table.add_row(f"v{mv.version}", data, (mv.code_version or "-")[:12],
                      Text(_origin(mv.lineage)), mv.description)  # fmt: skip
    return table


def _origin(lineage: Any) -> str:
    """One line of a version's lineage: ``retrained from v2 on 1,840 rows (alert)``."""
    if not lineage:
        return "-"
    if lineage.get("kind") != "retrain":
        return str(lineage.get("kind", "-"))
    rows = (lineage.get("data") or {}).get("rows")
    by = (lineage.get("trigger") or {}).get("by", "?")
    count = f"{rows:,}" if isinstance(rows, int) else "?"
    return f"retrained from v{lineage.get('parent_version')} on {count} rows ({by})"


def _table(*columns: str) -> Table:
    return Table(*columns, box=box.SIMPLE_HEAD, padding=(0, 0))


@models_app.command("promote")
def promote(name: Name, version: Version, reason: Reason = "", actor: Actor = "") -> None:
    """Make VERSION the champion (the current champion can be rolled back to)."""
    with _registry(actor) as registry:
        _print_routing(registry.promote(name, version, reason=reason))


@models_app.command("set-challenger")
def set_challenger(
    name: Name,
    version: Version,
    fraction: Annotated[
        float, typer.Option(help="Share of requests the challenger scores", min=0.0, max=1.0)
    ] = 1.0,
    reason: Reason = "",
    actor: Actor = "",
) -> None:
    """Score VERSION in the shadow of the champion (never served)."""
    with _registry(actor) as registry:
        _print_routing(registry.set_challenger(name, version, fraction=fraction, reason=reason))


@models_app.command("clear-challenger")
def clear_challenger(name: Name, reason: Reason = "", actor: Actor = "") -> None:
    """Stop shadow scoring."""
    with _registry(actor) as registry:
        _print_routing(registry.set_challenger(name, None, reason=reason))


@models_app.command("set-backup")
def set_backup(name: Name, version: Version, reason: Reason = "", actor: Actor = "") -> None:
    """Answer with VERSION when the champion fails."""
    with _registry(actor) as registry:
        _print_routing(registry.set_backup(name, version, reason=reason))


@models_app.command("clear-backup")
def clear_backup(name: Name, reason: Reason = "", actor: Actor = "") -> None:
    """Remove the backup."""
    with _registry(actor) as registry:
        _print_routing(registry.set_backup(name, None, reason=reason))


@models_app.command("rollback")
def rollback(name: Name, reason: Reason = "", actor: Actor = "") -> None:
    """Make the previous champion the champion again."""
    with _registry(actor) as registry:
        _print_routing(registry.rollback(name, reason=reason))


@models_app.command("archive")
def archive(
    name: Name,
    version: Version,
    to: Annotated[Path, typer.Option(help="Directory the archive goes in, as <name>-v<version>")],
    remove: Annotated[
        bool,
        typer.Option(help="Then remove the version from the models topic (tombstones); "
                     "refused while it is champion, challenger or backup"),
    ] = False,
    reason: Reason = "",
    actor: Actor = "",
) -> None:  # fmt: skip
    """Export VERSION's artifact, metadata and signature to a directory (`restore` brings
    it back); with --remove, compaction then drops it from the registry topic."""
    with _registry(actor) as registry:
        path = registry.archive(name, version, to)
        console.print(f"archived {name} v{version} to {path}", soft_wrap=True, markup=False)
        if remove:
            registry.remove(name, version, reason=reason, archived_to=str(path))
            console.print(f"removed {name} v{version} from the registry; "
                          f"`modelstream models restore {path}` brings it back",
                          soft_wrap=True, markup=False)  # fmt: skip
    print(f"archive={path}")


@models_app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="An archive directory (<dir>/<name>-v<version>)")],
    reason: Reason = "",
    actor: Actor = "",
) -> None:
    """Publish an archived version again, same number and signature (checks the
    archive's SHA-256s first; refused if that version is registered)."""
    with _registry(actor) as registry:
        mv = registry.restore(path, reason=reason)
    console.print(f"restored {mv.name} v{mv.version} (sha256 {mv.artifact_sha256[:12]}) from "
                  f"{path}", soft_wrap=True, markup=False)  # fmt: skip
    print(f"version={mv.version}")


def _print_routing(routing: Routing) -> None:
    champion, challenger, backup, _, _ = _routing_cells(routing)
    console.print(
        f"{routing.model}: champion {champion}, challenger {challenger}, backup {backup}",
        soft_wrap=True,
    )


keys_app = typer.Typer(
    no_args_is_help=True,
    help="Signing keys: writers sign each version, scorers and gateways check it.",
)
models_app.add_typer(keys_app, name="keys")


@keys_app.command("init")
def keys_init(
    out: Annotated[
        Path | None,
        typer.Option(help="Private key file (default: MODELSTREAM_SIGNING_KEY, else "
                     "<data dir>/keys/registry.key); the public key goes beside it as .pub"),
    ] = None,
) -> None:  # fmt: skip
    """Create an Ed25519 signing key for registry writers (never overwrites one)."""
    settings = settings_or_exit()
    path = out or settings.signing_key or settings.keys_dir / KEY_FILE
    if path.exists():
        err.print(f"[bold red]error:[/] {path} already exists; `modelstream models keys show` "
                  "prints its public key", soft_wrap=True)  # fmt: skip
        raise typer.Exit(1)
    signer = Signer.generate()
    try:
        public = signer.save(path)
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot write {path}: {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    console.print(f"signing key {path} (key id {signer.key_id}); public key {public}. "
                  "Give the .pub file to every scorer and gateway: "
                  f"MODELSTREAM_TRUSTED_KEYS={public}", soft_wrap=True, markup=False)  # fmt: skip
    print(signer.public_pem().decode(), end="")


@keys_app.command("show")
def keys_show() -> None:
    """The public key versions registered from here are signed with, and the keys this
    machine's scorers and gateways trust."""
    settings = settings_or_exit()
    path = settings.signing_key or settings.keys_dir / KEY_FILE
    try:
        trust = trust_from(settings)
        signer = Signer.load(path) if path.exists() else None
    except RegistryError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    trusted = ", ".join(sorted(trust.keys)) or "none"
    unsigned = "; unsigned versions allowed" if trust.allow_unsigned else ""
    console.print(f"trusted keys: {trusted}{unsigned}", soft_wrap=True, markup=False)
    if signer is None:
        console.print(f"no signing key at {path} yet: the first `modelstream models register` "
                      "creates it (or run `modelstream models keys init`)", soft_wrap=True,
                      markup=False)  # fmt: skip
        return
    console.print(f"signing key {path}: key id {signer.key_id}", soft_wrap=True, markup=False)
    print(signer.public_pem().decode(), end="")


if __name__ == "__main__":
    from services.lifecycle.policy_cli import add_commands

    add_commands(models_app)
    models_app()

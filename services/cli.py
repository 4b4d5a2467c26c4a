"""The ``modelstream`` command: local stack, warehouse, topics, demo, and the subcommands
of each part (``run``, ``models``, ``clients``, ``kafka users|acls``, ``up|status|down``).

Every command reads :class:`~services.settings.Settings` once and hands plain config to
library code. Failures print what went wrong and what to do next, and exit non-zero.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.batch.cli import score
from services.bench import BenchError
from services.clikit import console, err, friendly_errors, settings_or_exit, sql_state_file
from services.dlq.cli import app as dlq_app
from services.gateway.cli import clients_app
from services.lifecycle.cli import retrain_cmd
from services.lifecycle.policy_cli import add_commands
from services.localstack import LocalBroker, jars_ready, resolve_jars
from services.predict_cli import predict
from services.registry.cli import models_app
from services.reports.cli import report
from services.run_cli import run_app
from services.runtime import kafka_config, local_broker, topics
from services.security.cli import acls_app, users_app
from services.security.compose import compose_secrets
from services.security.local import PASSWORD_FILE, AdminCredentials, load_credentials
from services.settings import Settings
from services.stack.cli import down, status, up
from streams.kafka import ensure_topics, make_admin

app = typer.Typer(
    no_args_is_help=True,
    help="Kafka-native model serving and monitoring.",
    pretty_exceptions_enable=False,
)
kafka_app = typer.Typer(no_args_is_help=True, help="The local single-node Kafka broker.")
db_app = typer.Typer(no_args_is_help=True, help="The ClickHouse warehouse.")
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics of this deployment.")
app.add_typer(kafka_app, name="kafka")
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(run_app, name="run")
app.add_typer(models_app, name="models")
add_commands(models_app)  # policy, veto, pin, unpin: a person's say over the lifecycle
app.add_typer(clients_app, name="clients")
app.add_typer(dlq_app, name="dlq")
app.command("up")(up)
app.command("status")(status)
app.command("down")(down)
app.command("predict")(predict)
app.command("score")(score)
app.command("retrain")(retrain_cmd)
app.command("report")(report)

T = TypeVar("T")
_settings = settings_or_exit
BATCHING = {"both": (False, True), "off": (False,), "on": (True,)}  # bench --mlserver-batching


def _friendly_errors() -> AbstractContextManager[None]:
    return friendly_errors(BenchError)


def _timed(label: str, action: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = action()
    console.print(f"{label} [dim]({time.perf_counter() - started:.1f}s)[/]")
    return result


@contextmanager
def _waiting(what: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the seconds waited on stderr, while a person waits on a terminal
    (nothing otherwise: stdout keeps its machine-readable lines); yields a callback
    that changes the text."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(what, total=None)
        yield lambda text: bar.update(task, description=text)


def _start(broker: LocalBroker, timeout: float) -> str:
    with _waiting("starting the Kafka broker, waiting until it answers"):
        return broker.start(timeout)


def _resolve_jars(settings: Settings) -> Path:
    """The broker's jars, resolved with a spinner counting Maven's downloads the first time."""
    version, cache = settings.kafka_version, settings.cache_dir
    if jars_ready(version, cache):
        return resolve_jars(version, cache)
    what = f"resolving Apache Kafka {version} from Maven Central"
    with _waiting(what) as show:
        return resolve_jars(
            version, cache, on_download=lambda n: show(f"{what}: {n} files downloaded")
        )


@kafka_app.command("jars")
def kafka_jars() -> None:
    """Resolve the Kafka broker jars from Maven Central into the cache (idempotent)."""
    settings = _settings()
    with _friendly_errors():
        libs = _timed("kafka jars ready", lambda: _resolve_jars(settings))
    console.print(f"jars={libs}")


@kafka_app.command("start")
def kafka_start(
    port: Annotated[int | None, typer.Option(help="Broker port (default: free port)")] = None,
    controller_port: Annotated[int | None, typer.Option(help="KRaft controller port")] = None,
    heap_mb: Annotated[int, typer.Option(help="Broker JVM heap in MB")] = 512,
    timeout: Annotated[float, typer.Option(help="Seconds to wait until ready")] = 90.0,
    secure: Annotated[
        bool, typer.Option("--secure", help="SASL/SCRAM + ACLs; prints the admin's credentials")
    ] = False,
) -> None:
    """Start the local single-node Kafka broker (KRaft) and print its bootstrap address."""
    settings = _settings()
    with _friendly_errors():
        _resolve_jars(settings)  # the first start downloads them: show it
        broker = local_broker(
            settings, port=port, controller_port=controller_port, heap_mb=heap_mb, secure=secure
        )
        running = broker.status()
        had_admin = load_credentials(broker.state_dir) is not None
        if running.running:
            bootstrap = broker.start(timeout)  # checks --secure against the running one
            ignored = _ignored_options(port, controller_port, bootstrap)
            console.print(f"kafka broker already running (pid {running.pid}){ignored}")
        else:
            bootstrap = _timed("kafka broker started", lambda: _start(broker, timeout))
        admin = broker.admin_credentials() if secure else None
    console.print(f"logs: {broker.log_file}")
    print(f"bootstrap={bootstrap}")
    if admin is not None:
        _print_admin(admin, broker.state_dir, created=not had_admin)


def _print_admin(admin: AdminCredentials, state_dir: Path, *, created: bool) -> None:
    """The admin's export line: with its password the one time it is created, then
    pointing at the 0600 file that keeps it (a secret is not printed twice)."""
    print(
        f"# SASL/SCRAM + ACLs. {admin.username} is a SUPER USER (no ACL check applies): "
        "give each service its own user, `modelstream kafka users add NAME --role ROLE`"
    )
    password_file = (state_dir / PASSWORD_FILE).absolute()
    if created:
        print(f"# the admin password is shown this once; it is kept in {password_file} (0600)")
        print(admin.exports())
    else:
        print(admin.file_exports(password_file))


def _ignored_options(port: int | None, controller_port: int | None, bootstrap: str) -> str:
    """What a start of a running broker does not change.

    >>> _ignored_options(9092, None, "127.0.0.1:40000")
    '; --port 9092 is ignored (it listens on 127.0.0.1:40000): `modelstream kafka stop` first'
    >>> _ignored_options(None, None, "127.0.0.1:40000")
    ''
    """
    given = []
    if port and not bootstrap.endswith(f":{port}"):
        given.append(f"--port {port}")
    if controller_port:
        given.append(f"--controller-port {controller_port}")
    if not given:
        return ""
    return (
        f"; {' and '.join(given)} {'is' if len(given) == 1 else 'are'} ignored (it listens "
        f"on {bootstrap}): `modelstream kafka stop` first"
    )


@app.command("compose-secrets")
def compose_secrets_cmd(
    directory: Annotated[Path, typer.Argument(help="Where docker-compose.yml looks")] = Path(
        "secrets"
    ),
) -> None:
    """Generate the docker-compose deployment's secrets (Kafka users, JAAS, ClickHouse
    password) into DIRECTORY (0700); existing ones are kept."""
    created = compose_secrets(directory)
    for path in created:
        console.print(f"created {path}")
    console.print(
        f"{len(created)} secret(s) created in {directory}"
        + ("" if created else " (all were there)")
        + ": `docker compose up` uses them"
    )


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker (SIGTERM, SIGKILL after 30 s)."""
    settings = _settings()
    with _friendly_errors():
        stopped = local_broker(settings).stop()
    console.print("kafka broker stopped" if stopped else "no local broker was running")


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the local broker runs; exit code 0 if it does, 3 if not."""
    settings = _settings()
    with _friendly_errors():
        status = local_broker(settings).status()
    if status.running:
        security = "SASL_PLAINTEXT" if status.secure else "PLAINTEXT"
        print(f"running pid={status.pid} bootstrap={status.bootstrap} security={security}")
        return
    print(f"not running (state dir {status.state_dir})")
    raise typer.Exit(3)


kafka_app.add_typer(users_app, name="users")
kafka_app.add_typer(acls_app, name="acls")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the ClickHouse migrations not applied yet (idempotent)."""
    from services.warehouse import connect

    settings = _settings()
    with _friendly_errors(), connect(settings.clickhouse_dsn) as warehouse:
        applied = warehouse.migrate(ttl_days=settings.clickhouse_ttl_days)
        where = warehouse.dsn.redacted()  # the DSN may carry a password: never print it
    for name in applied:
        console.print(f"applied {name}")
    console.print(f"warehouse up to date ({len(applied)} applied) at {where}")


@topics_app.command("create")
def topics_create(
    model: Annotated[list[str] | None, typer.Option(help="Create this model's topic set")] = None,
) -> None:
    """Create the global topics and, for each --model, its topic set (idempotent)."""
    settings = _settings()
    names = topics(settings)
    with _friendly_errors():
        specs = names.global_specs(settings.topic_partitions)
        for name in model or []:
            specs += names.model_specs(name, settings.topic_partitions)
        created = ensure_topics(make_admin(kafka_config(settings)), specs)
    for name in created:
        console.print(f"created {name}")
    console.print(f"{len(specs)} topics present ({len(created)} new)")


@app.command("demo")
def demo(
    events: Annotated[int, typer.Option(help="How many requests to stream")] = 20_000,
    rate: Annotated[float, typer.Option(help="Offered load, requests per second")] = 1_000.0,
    json: Annotated[
        Path | None, typer.Option("--json", help="Summary file (default: <data dir>/demo.json)")
    ] = None,
    keep: Annotated[
        bool,
        typer.Option(
            help="Leave the broker running and churn registered, ready for `modelstream up` "
            "and the README's curl (--no-keep: stop the broker the demo started)"
        ),
    ] = True,
) -> None:
    """Run the end-to-end demo on the local stack."""
    from services.demo import run_demo

    with _friendly_errors():
        run_demo(_settings(), events=events, rate=rate, console=console, json_path=json, keep=keep)


@app.command("sql")
def sql_cmd(
    query: Annotated[str, typer.Argument(help="A read statement, e.g. SELECT ...")],
    output: Annotated[str, typer.Option(help="table | csv | json")] = "table",
) -> None:
    """Run read-only SQL on the warehouse (through the sink when it owns the embedded one).

    Either way the statement runs with ClickHouse ``readonly=1``, bounded by
    MODELSTREAM_SQL_MAX_EXECUTION_TIME_S and MODELSTREAM_SQL_MAX_MEMORY_BYTES."""
    from services.clikit import sql_limits
    from services.sink.sqlserver import SqlRejectedError, remote_query
    from services.warehouse import QueryError, ReadOnlySql, refusal

    settings = _settings()
    reason = refusal(query)
    if reason is not None:
        err.print(f"[bold red]error:[/] {reason}")
        raise typer.Exit(2)
    with _friendly_errors():
        try:
            answer = remote_query(sql_state_file(settings), query)
            if answer is None:  # no sink serves it: open the warehouse ourselves
                with ReadOnlySql.open(settings.clickhouse_dsn, sql_limits(settings)) as sql:
                    result = sql.run(query)
                answer = {"columns": list(result.columns), "rows": [list(r) for r in result.rows]}
        except (SqlRejectedError, QueryError) as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from exc
    _print_result(answer["columns"], answer["rows"], output)


def _print_result(columns: list[str], rows: list[list[object]], output: str) -> None:
    if output == "json":
        print(
            orjson.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str).decode()
        )
        return
    if output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
        return
    table = Table(*columns, show_lines=False)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    console.print(f"[dim]{len(rows)} row(s)[/]")


@app.command("bench")
def bench_cmd(
    quick: Annotated[
        bool, typer.Option("--quick", help="Keep the run short (2-3 min; --gateway 3-4)")
    ] = False,
    events: Annotated[int | None, typer.Option(help="Requests per throughput phase")] = None,
    rate: Annotated[float, typer.Option(help="Offered load of the latency phase, req/s")] = 2_000.0,
    json: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON")] = None,
    gateway: Annotated[
        bool, typer.Option("--gateway", help="Gateway and scorer against MLServer instead")
    ] = False,
    concurrency: Annotated[
        int, typer.Option(help="--gateway: requests in flight (HTTP connections, gRPC calls)")
    ] = 32,
    mlserver_workers: Annotated[
        list[int] | None,
        typer.Option(
            help="--gateway: MLServer parallel_workers to try, repeatable (0: in-process); "
            "default 0, 1 and 2"
        ),
    ] = None,
    mlserver_batching: Annotated[
        str,
        typer.Option(help="--gateway: MLServer adaptive batching to try: both, off or on"),
    ] = "both",
) -> None:
    """Measure the scorer against a raw passthrough and a faust agent, in one run; with
    --gateway, the gateway (direct REST and gRPC, and --via-kafka) and the scorer against
    MLServer at its best configuration (REST, gRPC and Kafka mode)."""
    from services.bench import GatewayConfig, run_bench, run_gateway_bench

    batching = BATCHING.get(mlserver_batching)
    if batching is None:
        raise typer.BadParameter(f"use both, off or on, not {mlserver_batching!r}",
                                 param_hint="--mlserver-batching")  # fmt: skip
    with _friendly_errors():
        if gateway:
            try:
                config = GatewayConfig.choose(
                    quick=quick, events=events, concurrency=concurrency,
                    mlserver_workers=tuple(mlserver_workers or (0, 1, 2)),
                    mlserver_batching=batching,
                )  # fmt: skip
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from exc
            run_gateway_bench(_settings(), config, json_path=json, console=console)
            return
        run_bench(
            _settings(), quick=quick, events=events, rate=rate, json_path=json, console=console
        )

"""``modelstream score NAME``: score a file or a query with a model, as the scorer would.

Settings are read here, once; everything below receives plain objects. Exit codes (for
cron): 0 every row scored; 1 a usage or input error (the message says what to do); 2
some rows refused or failed (the output still has them, with ``error``); 3 Kafka or the
warehouse cannot be reached (rerun later: what is logged stays logged once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from confluent_kafka import KafkaException
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.batch._deploy import load_deployment
from services.batch._errors import BatchError, InputError, UnreachableError
from services.batch._job import Job, Summary, check_batch_size, run_batch
from services.batch._log import PredictionLog, run_key, served_versions
from services.batch._source import Source, file_format, from_file, from_rows
from services.batch._write import FileOutput, Output, TableOutput
from services.clikit import err, sql_limits, sql_state_file
from services.localstack import LocalStackError
from services.registry import KeyFileError, RegistryView
from services.registry.cli import trust_from
from services.runtime import KafkaUnreachableError, NoKafkaError, kafka_config, topics
from services.settings import Settings
from services.sink.reader import SinkReader
from services.warehouse import ReadOnlySql, WarehouseError, WarehouseUnavailable, connect
from streams.kafka import KafkaSetupError, Topics, ensure_topics, make_admin
from streams.scoring import Deployment

__all__ = ["score"]


def score(
    name: Annotated[str, typer.Argument(help="The model to score with (its champion)")],
    input_file: Annotated[
        Path | None, typer.Option("--input", help="Rows to score: a .parquet or .csv file")
    ] = None,
    sql: Annotated[
        str | None, typer.Option(help="Rows to score: a read-only SELECT on the warehouse")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write here (.parquet or .csv), replaced atomically")
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="Insert into this ClickHouse table (created if missing)")
    ] = None,
    challenger: Annotated[
        bool, typer.Option("--challenger", help="Also score with the challenger")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar, no summary")] = False,
    batch_size: Annotated[int, typer.Option(help="Rows per chunk (and per transaction)")] = 10_000,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not write the prediction log nor the DLQ")
    ] = False,
) -> None:
    """Score a file or a query with a model's champion, as the scorer does: same contract
    check, same models; each row logged once with source=batch (cron-friendly)."""
    code = 1
    try:
        _usage(input_file, sql, output, table)
        size = check_batch_size(batch_size)
        summary = _run(name, input_file, sql, output, table, challenger=challenger,
                       quiet=quiet, batch_size=size, log=not no_log)  # fmt: skip
        code = summary.exit_code
        if not quiet:
            typer.echo(summary.line())
        elif code:  # quiet: say nothing unless cron should mail something
            err.print(escape(summary.line()), highlight=False, soft_wrap=True)
    except Exception as exc:  # every known failure is one line and an exit code
        known = _exit_code(exc)
        if known is None:
            raise
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        code = known
    raise typer.Exit(code)


def _exit_code(exc: Exception) -> int | None:
    """The exit code of a known failure (None: a bug, let it show)."""
    if isinstance(exc, BatchError):
        return exc.exit_code
    if isinstance(exc, KafkaUnreachableError | NoKafkaError | WarehouseUnavailable):
        return 3
    if isinstance(exc, KafkaException | KafkaSetupError):
        return 3
    if isinstance(exc, LocalStackError | WarehouseError | KeyFileError | ValueError):
        return 1
    return None


def _usage(input_file: Path | None, sql: str | None, output: Path | None,
           table: str | None) -> None:  # fmt: skip
    if (input_file is None) == (sql is None):
        raise InputError("give the rows to score: --input FILE.parquet|FILE.csv, or --sql "
                         "\"SELECT ...\" (one of them)")  # fmt: skip
    if (output is None) == (table is None):
        raise InputError("say where the scores go: --output FILE.parquet|FILE.csv, or "
                         "--table T (one of them)")  # fmt: skip
    if output is not None:
        file_format(output)
    if input_file is not None and output is not None and input_file.resolve() == output.resolve():
        raise InputError(f"--output {output} is the input: write the scores elsewhere")


def _run(name: str, input_file: Path | None, sql: str | None, output: Path | None,
         table: str | None, *, challenger: bool, quiet: bool, batch_size: int,
         log: bool) -> Summary:  # fmt: skip
    settings = _settings()
    kafka = kafka_config(settings, client_id=f"score-{name}")
    names = topics(settings)
    with RegistryView(kafka, names, trust=trust_from(settings)) as view:
        dep = load_deployment(view, name, challenger=challenger)
    source = _source(settings, dep, input_file, sql)
    versions = served_versions(dep)
    key = run_key(name, source.fingerprint, versions)
    job = Job(dep, source, batch_size, key, versions)
    with ExitStack() as stack:
        out = stack.enter_context(_output(settings, output, table, key, batch_size))
        prediction_log = None
        if log:
            _ensure_topics(kafka, names, name, settings.topic_partitions)
            prediction_log = PredictionLog(kafka, names, name, key)
            stack.callback(prediction_log.close)
        advance = stack.enter_context(_progress(source, quiet))
        summary = run_batch(job, out, prediction_log, advance)
    return summary


def _settings() -> Settings:
    """The settings; a bad ``MODELSTREAM_*`` value is an input error (exit 1, not 2: 2
    means refused rows here)."""
    try:
        return Settings()
    except ValueError as exc:
        raise InputError(f"invalid MODELSTREAM_* setting:\n{exc}") from exc


def text_columns(dep: Deployment) -> list[str]:
    """Fields the input contract declares as text (a CSV reads them as text)."""
    out = []
    for field in dep.codec.schema["fields"]:
        kind: Any = field["type"]
        kinds = kind if isinstance(kind, list) else [kind]
        if any(k == "string" or (isinstance(k, dict) and k.get("type") == "enum") for k in kinds):
            out.append(field["name"])
    return out


def _source(settings: Settings, dep: Deployment, input_file: Path | None,
            sql: str | None) -> Source:  # fmt: skip
    if input_file is not None:
        return from_file(input_file, text_columns(dep))
    assert sql is not None
    sink = SinkReader(sql_state_file(settings))
    if settings.clickhouse is None and sink.available():  # the sink holds it: ask the sink
        columns, rows = sink.query(sql)  # the endpoint runs the same guard
        return from_rows(sql, columns, rows)
    with ReadOnlySql.open(settings.clickhouse_dsn, sql_limits(settings)) as guard:
        columns, rows = guard.run(sql)
    return from_rows(sql, columns, rows)


@contextmanager
def _output(settings: Settings, output: Path | None, table: str | None, key: str,
            batch_size: int) -> Iterator[Output]:  # fmt: skip
    if output is not None:
        with FileOutput(output) as out:
            yield out
        return
    assert table is not None
    if settings.clickhouse is None and SinkReader(sql_state_file(settings)).available():
        raise InputError(
            "the running sink holds the embedded warehouse, so --table cannot write to it: "
            "write a file (--output), stop the stack (`modelstream down --keep-kafka`), or "
            "use a ClickHouse server (MODELSTREAM_CLICKHOUSE)"
        )
    with connect(settings.clickhouse_dsn) as warehouse:
        yield TableOutput(warehouse, table, key, batch_size)


def _ensure_topics(kafka: Any, names: Topics, model: str, partitions: int) -> None:
    """The model's prediction log and DLQ, as registration creates them (idempotent)."""
    try:
        ensure_topics(make_admin(kafka), names.model_specs(model, partitions))
    except KafkaSetupError as exc:
        raise UnreachableError(f"cannot check {model}'s topics: {exc}") from exc


@contextmanager
def _progress(source: Source, quiet: bool) -> Iterator[Callable[[int], None]]:
    if quiet:
        yield lambda _n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"scoring {source.name[:40]}", total=source.rows)
        yield lambda n: progress.advance(task, n)

"""``modelstream dlq list|show|redrive``: inspect refused requests, re-drive them after a fix.

Every command reads :class:`~services.settings.Settings` once, reads the DLQ topics
(the source of truth; the warehouse's ``dlq`` table holds the same entries once the sink
landed them) and prints positions as ``topic[partition]@offset``. A failure prints one
line saying what to do next and exits 1.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from services.clikit import console, err, friendly_errors, human_size, settings_or_exit
from services.dlq._entry import DlqEntry, Position, parse_position, preview, redrive_headers
from services.dlq._errors import DlqError, EntryNotFoundError, SelectionError
from services.dlq._read import DlqReader
from services.dlq._records import RedriveRecord, records_spec
from services.dlq._redrive import Redriver
from services.dlq._select import Selection, parse_since
from services.runtime import kafka_config, topics
from streams.kafka import KafkaConfig, Topics, ensure_topics, make_admin

__all__ = ["app"]

app = typer.Typer(
    no_args_is_help=True,
    help="Dead-letter queues: list and show refused requests, re-drive them after a fix.",
    pretty_exceptions_enable=False,
)

Model = Annotated[str | None, typer.Option("--model", "-m", help="The model whose DLQ to read")]
All = Annotated[bool, typer.Option("--all", help="Every model's DLQ (instead of --model)")]
Reasons = Annotated[
    list[str] | None, typer.Option("--reason", help="Only entries with this reason (repeatable)")
]
Since = Annotated[
    str | None,
    typer.Option(help="Only entries from this time on: 30m, 1h, 2d or an ISO time (UTC)"),
]
RequestId = Annotated[str | None, typer.Option(help="Only the entries of this request id")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of a table")]


@dataclass(frozen=True)
class _Session:
    kafka: KafkaConfig
    topics: Topics
    reader: DlqReader


@contextmanager
def _session() -> Iterator[_Session]:
    """Settings, Kafka config and a reader; known failures become one line and exit 1."""
    settings = settings_or_exit()
    with friendly_errors(DlqError):
        kafka = kafka_config(settings, client_id="modelstream-dlq")
        names = topics(settings)
        with DlqReader(kafka, names) as reader:
            yield _Session(kafka, names, reader)


def _scope(model: str | None, every: bool) -> str | None:
    if (model is None) == (not every):
        raise typer.BadParameter("give --model NAME, or --all for every model")
    return model


def _selection(reasons: list[str] | None, since: str | None, request_id: str | None,
               positions: frozenset[Position] = frozenset()) -> Selection:  # fmt: skip
    try:
        since_ms = None if since is None else int(parse_since(since).timestamp() * 1000)
    except SelectionError as exc:
        raise typer.BadParameter(str(exc)) from None
    return Selection(tuple(reasons or ()), since_ms, request_id, positions)


def _select(s: _Session, model: str | None, selection: Selection, *, values: bool = False
            ) -> list[DlqEntry]:  # fmt: skip
    found = s.reader.entries(s.reader.dlq_topics(model), selection.since_ms, values=values)
    chosen = [e for e in found if selection.matches(e)]
    return sorted(chosen, key=lambda e: (e.timestamp_ms, e.position))


# -- list ---------------------------------------------------------------------------


@app.command("list")
def list_entries(
    model: Model = None,
    every: All = False,
    reason: Reasons = None,
    since: Since = None,
    request_id: RequestId = None,
    limit: Annotated[int, typer.Option(help="Show the most recent N entries", min=1)] = 50,
    as_json: AsJson = False,
) -> None:
    """The DLQ entries of --model (or --all), oldest first, with whether each was re-driven."""
    scope, selection = _scope(model, every), _selection(reason, since, request_id)
    with _session() as s:
        entries = _select(s, scope, selection)
        redrives = s.reader.redrives()
    shown = entries[-limit:]
    if as_json:
        rows = [_entry_dict(e, redrives.get(e.position)) for e in shown]
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    if not entries:
        console.print("no DLQ entries match", highlight=False)
        return
    console.print(_list_table(shown, redrives))
    more = len(entries) - len(shown)
    tail = f"; {more} older not shown (--limit, --since)" if more else ""
    console.print(
        f"{len(entries)} entries{tail}. `modelstream dlq show POSITION` shows one; the "
        "warehouse has the same entries in table dlq",
        soft_wrap=True, highlight=False, markup=False,
    )  # fmt: skip


def _list_table(entries: list[DlqEntry], redrives: dict[Position, RedriveRecord]) -> Table:
    table = Table("time (UTC)", "model", "reason", "stage", "request id", "client", "size",
                  "position", "redriven", box=box.SIMPLE_HEAD, padding=(0, 1))  # fmt: skip
    for e in entries:
        record = redrives.get(e.position)
        table.add_row(
            _when(e.timestamp_ms), e.model, Text(e.reason or "-"), Text(e.stage or "-"),
            Text(e.request_id or "-"), Text(e.client_id or "-"), human_size(e.size),
            Text(str(e.position)), _redriven(record),
        )  # fmt: skip
    return table


def _redriven(record: RedriveRecord | None) -> str:
    if record is None:
        return "-"
    times = f" ({record.times}x)" if record.times > 1 else ""
    return f"{record.when.strftime('%Y-%m-%d %H:%M')} by {record.actor}{times}"


def _entry_dict(e: DlqEntry, record: RedriveRecord | None) -> dict[str, Any]:
    return {
        "time": _iso(e.timestamp_ms), "model": e.model, "reason": e.reason, "stage": e.stage,
        "error": e.header("ms-error"), "request_id": e.request_id, "client_id": e.client_id,
        "size": e.size, "position": str(e.position), "truncated": e.truncated,
        "redriven": None if record is None else orjson.loads(record.to_bytes()),
    }  # fmt: skip


def _when(ms: int) -> str:
    """
    >>> _when(1_765_100_000_000)
    '2025-12-07 09:33:20'
    """
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(ms: int) -> str:
    """
    >>> _iso(1_765_100_000_123)
    '2025-12-07T09:33:20.123+00:00'
    """
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


# -- show ---------------------------------------------------------------------------


@app.command("show")
def show(
    target: Annotated[str, typer.Argument(help="topic[partition]@offset, or a request id")],
    model: Model = None,
    every: All = False,
    since: Since = None,
    raw: Annotated[bool, typer.Option("--raw", help="Write the original bytes to stdout")] = False,
    as_json: AsJson = False,
) -> None:
    """One entry: its headers, reason and original bytes. A request id needs --model or
    --all; the latest entry of that id is shown."""
    position = parse_position(target)
    scope = None if position is not None else _scope(model, every)
    selection = _selection(None, since, target)
    with _session() as s:
        if position is not None:
            entry = s.reader.at(position)
        else:
            entry = _by_request_id(s, selection, scope, since)
        record = s.reader.redrives().get(entry.position)
    value = entry.value or b""
    if raw:
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
    elif as_json:
        out = _entry_dict(entry, record) | {
            "headers": [[k, None if v is None else v.decode("utf-8", "replace")]
                        for k, v in entry.headers],
            "value": value.decode("utf-8", "replace"), "value_hex": value.hex(),
        }  # fmt: skip
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_entry(entry, record, value)


def _by_request_id(s: _Session, selection: Selection, model: str | None, since: str | None
                   ) -> DlqEntry:  # fmt: skip
    rid = selection.request_id or ""
    found = _select(s, model, selection, values=True)
    if not found:
        where = f"the DLQ of {model}" if model else "any DLQ"
        raise EntryNotFoundError(
            f"no entry of request {rid!r} in {where}{'' if since is None else ' since ' + since}"
            ": `modelstream dlq list` shows the request ids"
        )
    if len(found) > 1:
        others = ", ".join(str(e.position) for e in found[:-1])
        err.print(f"request {escape(rid)} was refused {len(found)} times; the latest is "
                  f"shown (also at {escape(others)})", soft_wrap=True)  # fmt: skip
    return found[-1]


def _print_entry(entry: DlqEntry, record: RedriveRecord | None, value: bytes) -> None:
    say = console.print
    say(f"[bold]{escape(str(entry.position))}[/]  {_when(entry.timestamp_ms)} UTC", highlight=False)
    say(f"reason: {escape(entry.reason or '-')} at stage {escape(entry.stage or '-')}",
        highlight=False)  # fmt: skip
    say(f"error:  {escape(entry.header('ms-error') or '-')}", soft_wrap=True, highlight=False)
    key = "-" if entry.key is None else repr(entry.key)
    say(f"key:    {escape(key)}", highlight=False)
    say(f"redriven: {escape(_redriven(record))}"
        + ("" if record is None else f" → {escape(record.target)}"), highlight=False)  # fmt: skip
    table = Table("header", "value", box=box.SIMPLE_HEAD, padding=(0, 1))
    for name, raw in entry.headers:
        table.add_row(Text(name), Text("(null)" if raw is None else repr(raw)[2:-1]))
    say(table)
    truncated = f" (only the first of {entry.header('ms-truncated')})" if entry.truncated else ""
    say(f"value: {len(value)} bytes{truncated}", highlight=False)
    say(Text(preview(value)))


# -- redrive ------------------------------------------------------------------------


@app.command("redrive")
def redrive(
    model: Model = None,
    every: All = False,
    reason: Reasons = None,
    since: Since = None,
    request_id: RequestId = None,
    entry: Annotated[
        list[str] | None,
        typer.Option("--entry", help="Only this topic[partition]@offset (repeatable)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    again: Annotated[bool, typer.Option("--again", help="Also entries re-driven before")] = False,
    actor: Annotated[str, typer.Option(help="Who re-drives (default: your user name)")] = "",
) -> None:
    """Re-publish the selected entries' original key, bytes and headers (minus the DLQ's
    ms-* headers; same request id) to their model's requests topic, each with a record
    in <prefix>._redrives, in one transaction. Entries re-driven before are skipped
    unless --again."""
    scope = _scope(model, every)
    positions = frozenset(_positions(entry or []))
    selection = _selection(reason, since, request_id, positions)
    with _session() as s:
        selected = _select(s, scope, selection)
        chosen = [e for e in selected if not e.truncated]
        truncated = len(selected) - len(chosen)
        if dry_run:
            _print_plan(*_split(chosen, s.reader.redrives(), again), truncated, dry=True)
            return
        with Redriver(s.kafka, s.topics, actor or getpass.getuser()) as redriver:
            # read the records only once this run's producer has fenced any other
            previous = s.reader.redrives()
            todo, skipped = _split(chosen, previous, again)
            _print_plan(todo, skipped, truncated, dry=False)
            if not todo:
                return
            if not yes and not typer.confirm(f"re-drive {len(todo)} entries?"):
                console.print("nothing was sent")
                return
            ensure_topics(make_admin(s.kafka), [records_spec(s.topics)])
            done = _send(s, redriver, todo, previous)
    console.print(f"re-drove {len(done)} entries; `modelstream dlq list` shows them as redriven",
                  highlight=False)  # fmt: skip


def _positions(texts: list[str]) -> Iterator[Position]:
    for text in texts:
        position = parse_position(text)
        if position is None:
            raise typer.BadParameter(f"--entry {text!r} is not a topic[partition]@offset")
        yield position


def _split(chosen: list[DlqEntry], records: dict[Position, RedriveRecord], again: bool
           ) -> tuple[list[DlqEntry], list[DlqEntry]]:  # fmt: skip
    if again:
        return chosen, []
    return ([e for e in chosen if e.position not in records],
            [e for e in chosen if e.position in records])  # fmt: skip


def _print_plan(todo: list[DlqEntry], skipped: list[DlqEntry], truncated: int, *,
                dry: bool) -> None:  # fmt: skip
    if todo:
        table = Table("position", "request id", "reason", "to", "headers sent",
                      box=box.SIMPLE_HEAD, padding=(0, 1))  # fmt: skip
        for e in todo[:50]:
            names = ", ".join(k for k, _ in redrive_headers(e))
            target = e.position.topic.removesuffix(".dlq") + ".requests"
            table.add_row(Text(str(e.position)), Text(e.request_id or "-"), Text(e.reason),
                          target, Text(names))  # fmt: skip
        console.print(table)
        if len(todo) > 50:
            console.print(f"... and {len(todo) - 50} more", highlight=False)
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} re-driven before are skipped (--again sends them too)")
    if truncated:
        notes.append(f"{truncated} truncated entries cannot be re-driven (the DLQ kept only "
                     "their first bytes)")  # fmt: skip
    verb = "would re-drive" if dry else "to re-drive:"
    console.print(f"{verb} {len(todo)} entries" + "".join(f"; {n}" for n in notes),
                  highlight=False, soft_wrap=True)  # fmt: skip


def _send(s: _Session, redriver: Redriver, todo: list[DlqEntry],
          previous: dict[Position, RedriveRecord]) -> list[RedriveRecord]:  # fmt: skip
    """Read the chosen entries again, with their bytes, and send them in transactions."""
    wanted = Selection(positions=frozenset(e.position for e in todo))
    since = min(e.timestamp_ms for e in todo)
    topics = sorted({e.position.topic for e in todo})
    with Progress(TextColumn("re-driving"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True) as bar:  # fmt: skip
        task = bar.add_task("redrive", total=len(todo))
        found = (e for e in s.reader.entries(topics, since) if wanted.matches(e))
        return redriver.send(found, previous, progress=lambda n: bar.advance(task, n))

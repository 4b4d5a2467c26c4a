"""``modelstream report NAME --out report.html``: a model's monitoring report, one file.

The settings are read once here; the warehouse is read through the running sink when it
holds the embedded one (``modelstream up``), directly otherwise. The file is written
next to its destination and renamed into place, so a reader never opens half a report.
Prints the path, then what needs attention. A failure prints one line saying what to do
next and exits 1 (2 for a bad option).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from services.clikit import console, friendly_errors, settings_or_exit
from services.reports._errors import ReportError
from services.reports._report import Report, render_report
from services.reports._window import utc
from services.sink.reader import open_reader

__all__ = ["parse_time", "report", "write_atomically"]


def report(
    name: Annotated[str, typer.Argument(help="Model name")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the HTML file")] = Path(
        "report.html"
    ),
    start: Annotated[
        str | None,
        typer.Option("--from", help="Window start, ISO 8601 (UTC unless it says); default "
                     "24 h before the end"),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Window end (exclusive), ISO 8601; default just after the "
                     "model's latest prediction"),
    ] = None,
) -> None:  # fmt: skip
    """Write NAME's monitoring report (traffic, drift, performance, fairness, alerts and
    model events) as one self-contained HTML file that opens offline."""
    try:
        began = parse_time("--from", start)
        until = parse_time("--to", end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    settings = settings_or_exit()
    with friendly_errors(ReportError, OSError), open_reader(settings) as reader:
        made = render_report(reader, name, start=began, end=until)
        path = write_atomically(out, made.html)
    _print(path, made)


def parse_time(option: str, text: str | None) -> datetime | None:
    """An option's time, UTC unless it says (None when not given).

    >>> parse_time("--from", "2026-12-01T10:00").isoformat()
    '2026-12-01T10:00:00+00:00'
    >>> parse_time("--to", "yesterday")
    Traceback (most recent call last):
    ValueError: --to: expected an ISO 8601 time such as 2026-12-01T10:00, got 'yesterday'
    """
    if text is None:
        return None
    try:
        return utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(
            f"{option}: expected an ISO 8601 time such as 2026-12-01T10:00, got {text!r}"
        ) from None


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` beside ``path`` and rename it into place; the absolute path."""
    target = path.expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _print(path: Path, made: Report) -> None:
    print(path)
    if not made.attention:
        console.print("nothing needs attention", highlight=False)
    for line in made.attention:
        console.print(f"attention: {line}", soft_wrap=True, markup=False, highlight=False)

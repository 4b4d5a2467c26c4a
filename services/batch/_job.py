"""One batch run: chunks of the source → door → score → output (and the prediction log).

For each chunk, in input order: the rows' schema fields are checked and scored
(:func:`score_chunk`), the output gets the input columns plus what scoring added
(:class:`Layout`), and, when logging, one transaction carries the chunk's log records,
its refused rows' DLQ entries and the marker (:class:`PredictionLog`); a chunk the
marker already covers is scored for the output but not logged again. The output is
committed (renamed into place) after the last chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from services.batch._chunk import ScoredChunk, score_chunk
from services.batch._columns import Layout
from services.batch._errors import InputError
from services.batch._log import PredictionLog, Requests, chunk_messages
from services.batch._source import Source
from services.batch._write import Output
from streams.scoring import Deployment

__all__ = ["Job", "Summary", "run_batch"]


@dataclass(frozen=True)
class Job:
    """What to score with, what, and in which chunks; ``key`` names the run."""

    dep: Deployment
    source: Source
    batch_size: int
    key: str
    versions: str


@dataclass(frozen=True)
class Summary:
    """What a run did; :attr:`exit_code` 2 when any row has no prediction."""

    rows: int
    scored: int
    refused: int
    failed: int
    logged: int
    already_logged: int
    seconds: float
    where: str

    @property
    def exit_code(self) -> int:
        return 2 if self.refused or self.failed else 0

    def line(self) -> str:
        """One line for people and cron mail.

        >>> Summary(1000, 990, 10, 0, 990, 0, 0.5, "out.parquet").line()
        'scored 990 of 1000 rows (10 refused, 0 failed) in 0.5s, 2000 rows/s; logged 990 → out.parquet'
        """  # noqa: E501
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        logged = f"logged {self.logged}"
        if self.already_logged:
            logged += f" ({self.already_logged} logged by an earlier run)"
        return (f"scored {self.scored} of {self.rows} rows ({self.refused} refused, "
                f"{self.failed} failed) in {self.seconds:.1f}s, {rate:.0f} rows/s; "
                f"{logged} → {self.where}")  # fmt: skip


@dataclass
class _Tally:
    rows: int = 0
    scored: int = 0
    refused: int = 0
    failed: int = 0
    logged: int = 0
    already: int = 0

    def add(self, chunk: ScoredChunk) -> None:
        self.rows += chunk.size
        self.refused += len(chunk.admitted.refused)
        failed = sum(r.served_by == "none" for r in chunk.results)
        self.failed += failed
        self.scored += len(chunk.results) - failed

    def log(self, chunk: ScoredChunk, start: int, done: int) -> None:
        """Count the chunk's scored rows as logged now or by an earlier run (``done``)."""
        earlier = sum(start + i < done for i in chunk.admitted.indices)
        self.already += earlier
        self.logged += len(chunk.results) - earlier


def run_batch(job: Job, output: Output, log: PredictionLog | None,
              progress: Callable[[int], None] = lambda _n: None) -> Summary:  # fmt: skip
    """Score every row of ``job.source`` into ``output`` (and ``log``); see the module."""
    started = time.perf_counter()
    dep, source = job.dep, job.source
    fields = [f["name"] for f in dep.codec.schema["fields"]]
    present = [name for name in source.schema.names if name in fields]
    done = log.start() if log is not None else 0
    requests = Requests(source.name, source.fingerprint)
    layout: Layout | None = None
    tally, start = _Tally(), 0
    for index, table in enumerate(source.chunks(job.batch_size)):
        chunk = score_chunk(dep, table.select(present).to_pylist())
        if layout is None:
            layout = _first_layout(dep, chunk, table.schema, output)
        output.write(_output_table(layout, dep, table, chunk), index)
        tally.add(chunk)
        if log is not None:
            tally.log(chunk, start, done)
            if start + chunk.size > done:
                messages = chunk_messages(dep, requests, start, chunk, log.dlq, done)
                log.write(messages, start + chunk.size, _about(job))
        start += chunk.size
        progress(chunk.size)
    if layout is None:  # an empty input: the output still has every column
        empty = Layout(dep.task, (), () if dep.challenger is not None else None)
        output.open(empty.schema(source.schema))
    output.commit()
    return Summary(tally.rows, tally.scored, tally.refused, tally.failed, tally.logged,
                   tally.already, time.perf_counter() - started, output.where)  # fmt: skip


def _first_layout(dep: Deployment, chunk: ScoredChunk, schema: pa.Schema,
                  output: Output) -> Layout:  # fmt: skip
    layout = Layout.of(dep, chunk)
    layout.check_input(schema.names)
    output.open(layout.schema(schema))
    return layout


def _output_table(layout: Layout, dep: Deployment, table: pa.Table, chunk: ScoredChunk
                  ) -> pa.Table:  # fmt: skip
    added = layout.columns(dep, chunk)
    return pa.Table.from_arrays([*table.columns, *added.values()],
                                schema=layout.schema(table.schema))  # fmt: skip


def _about(job: Job) -> dict[str, Any]:
    return {"run": job.key, "source": job.source.name[:200],
            "fingerprint": job.source.fingerprint, "versions": job.versions,
            "rows": job.source.rows}  # fmt: skip


def check_batch_size(size: int) -> int:
    """A chunk size, 1 or more.

    >>> check_batch_size(0)
    Traceback (most recent call last):
    services.batch._errors.InputError: --batch-size 0: expected 1 or more rows per chunk
    """
    if size < 1:
        raise InputError(f"--batch-size {size}: expected 1 or more rows per chunk")
    return size

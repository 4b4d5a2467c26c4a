"""Batch scoring: ``modelstream score NAME`` over a file or a query, next to the real-time
path and with its core.

Rows come from a Parquet or CSV file or a read-only SQL query (:mod:`._source`), in
chunks; each row passes the scorer's door (the model's input contract, :mod:`._door`),
and the valid rows of a chunk are scored as one frame by the scorer's own
:func:`streams.scoring.score` with the deployment the registry routes, under the same
trust (:mod:`._deploy`). The output is the input plus prediction columns
(:mod:`._columns`), written aside and renamed, or inserted into a ClickHouse table with
deduplication tokens (:mod:`._write`). Each scored row's prediction-log record (``source``
``batch``) and each refused row's DLQ entry go out in one Kafka transaction per chunk
with a marker that makes a rerun log nothing twice (:mod:`._log`).

Errors: :class:`BatchError` and its subclasses (the tree is in :mod:`._errors`); each
carries the command's exit code.
"""

from services.batch._chunk import BATCH_POLICY, ScoredChunk, score_chunk
from services.batch._columns import Layout
from services.batch._deploy import load_deployment
from services.batch._door import Admitted, Refusal, admit
from services.batch._errors import BatchError, InputError, UnreachableError
from services.batch._job import Job, Summary, check_batch_size, run_batch
from services.batch._log import PredictionLog, Requests, chunk_messages, run_key, served_versions
from services.batch._source import Source, exact_chunks, file_format, from_file, from_rows
from services.batch._write import FileOutput, Output, TableOutput, clickhouse_type, table_name

__all__ = [
    "BATCH_POLICY",
    "Admitted",
    "BatchError",
    "FileOutput",
    "InputError",
    "Job",
    "Layout",
    "Output",
    "PredictionLog",
    "Refusal",
    "Requests",
    "ScoredChunk",
    "Source",
    "Summary",
    "TableOutput",
    "UnreachableError",
    "admit",
    "check_batch_size",
    "chunk_messages",
    "clickhouse_type",
    "exact_chunks",
    "file_format",
    "from_file",
    "from_rows",
    "load_deployment",
    "run_batch",
    "run_key",
    "score_chunk",
    "served_versions",
    "table_name",
]

"""Dead-letter queues: the requests a stage refused, read back and re-driven after a fix.

Every refused request lands on ``<prefix>.<model>.dlq`` with its original key, bytes and
headers plus ``ms-*`` headers saying why (:func:`streams.scoring.envelope.dlq_headers`).
This package reads those topics (:class:`DlqReader`: from ``--since`` via the broker's
time index, ``read_committed``) and re-publishes chosen entries to the model's requests
topic under their original request id (:class:`Redriver`). Each re-drive is recorded on
the compacted ``<prefix>._redrives`` topic in the same transaction as the request it
sends, so an entry is re-driven once unless asked again, and never recorded unsent.

``modelstream dlq list|show|redrive`` (:mod:`services.dlq.cli`) is the front end.

Errors::

    DlqError                   root: any failure of ``modelstream dlq``
    ├── SelectionError         a bad --since, position or model name (also a ValueError)
    ├── EntryNotFoundError     no DLQ entry at that position or with that request id
    └── RedriveError           a re-drive transaction failed; nothing of it was sent
        └── RedriveFencedError another re-drive of this deployment took over
"""

from services.dlq._entry import DlqEntry, Position, parse_position, preview, redrive_headers
from services.dlq._errors import (
    DlqError,
    EntryNotFoundError,
    RedriveError,
    RedriveFencedError,
    SelectionError,
)
from services.dlq._read import DlqReader
from services.dlq._records import RedriveRecord, records_spec, records_topic
from services.dlq._redrive import Redriver
from services.dlq._select import Selection, parse_since

__all__ = [
    "DlqEntry",
    "DlqError",
    "DlqReader",
    "EntryNotFoundError",
    "Position",
    "RedriveError",
    "RedriveFencedError",
    "RedriveRecord",
    "Redriver",
    "Selection",
    "SelectionError",
    "parse_position",
    "parse_since",
    "preview",
    "records_spec",
    "records_topic",
    "redrive_headers",
]

"""The DLQ tool's errors::

DlqError                   root: any failure of ``modelstream dlq``
├── SelectionError         a bad --since, position or model name (also a ValueError)
├── EntryNotFoundError     no DLQ entry at that position or with that request id
└── RedriveError           a re-drive transaction failed; nothing of it was sent
    └── RedriveFencedError another re-drive of this deployment took over
"""

from __future__ import annotations

__all__ = [
    "DlqError",
    "EntryNotFoundError",
    "RedriveError",
    "RedriveFencedError",
    "SelectionError",
]


class DlqError(Exception):
    """Root of the DLQ tool's errors."""


class SelectionError(DlqError, ValueError):
    """What to select was given in a form the tool does not read."""


class EntryNotFoundError(DlqError):
    """No DLQ entry matches."""


class RedriveError(DlqError):
    """A re-drive transaction was aborted: none of its requests or records are visible."""


class RedriveFencedError(RedriveError):
    """A newer re-drive with the same transactional id started; this one must stop."""

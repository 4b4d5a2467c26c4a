"""Errors of batch scoring; each says what to do next and maps to one exit code.

::

    BatchError                  root: catch this to handle any batch-scoring failure
    ├── InputError              the input, output or model cannot be used as given (exit 1)
    └── UnreachableError        Kafka or the warehouse cannot be reached or written (exit 3)
"""

from __future__ import annotations

__all__ = ["BatchError", "InputError", "UnreachableError"]


class BatchError(Exception):
    """Root of every error raised by :mod:`services.batch`."""

    exit_code = 1


class InputError(BatchError):
    """The input file or query, the output, or the model cannot be used as given."""

    exit_code = 1


class UnreachableError(BatchError):
    """Kafka or the warehouse cannot be reached, or refused a write; a rerun may work."""

    exit_code = 3

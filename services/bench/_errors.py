"""The benchmark's errors: one root, a precise subclass per way a run can fail::

BenchError
├── ServiceError     the scorer or faust process did not start, or died
└── LoadError        the requests under test could not be produced
"""

from __future__ import annotations

__all__ = ["BenchError", "LoadError", "ServiceError"]


class BenchError(Exception):
    """Root of ``modelstream bench``'s errors."""


class ServiceError(BenchError):
    """A process under test (the scorer, the faust worker) did not start or died."""


class LoadError(BenchError):
    """The requests under test could not be produced."""

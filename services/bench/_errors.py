"""The benchmark's errors: one root, a precise subclass per way a run can fail::

BenchError
├── ServiceError          a process under test did not start, or died
├── LoadError             the requests under test could not be produced
└── MLServerUnavailableError  MLServer's own virtualenv could not be installed (--gateway)
"""

from __future__ import annotations

__all__ = ["BenchError", "LoadError", "MLServerUnavailableError", "ServiceError"]


class BenchError(Exception):
    """Root of ``modelstream bench``'s errors."""


class ServiceError(BenchError):
    """A process under test (scorer, faust worker, gateway, MLServer) did not start or died."""


class LoadError(BenchError):
    """The requests under test could not be produced."""


class MLServerUnavailableError(BenchError):
    """MLServer's virtualenv could not be created or installed (``--gateway``)."""
